"""The measurement going back to the PACS: a DICOM Comprehensive SR and a secondary capture of the
overlay, in the source image's study, in a new series (extra ``dicom``: pydicom and highdicom).

The SR follows TID 5000 "OB-GYN Ultrasound Procedure Report" (DICOM PS3.16), in its order:

* root CONTAINER (125000, DCM, "OB-GYN Ultrasound Procedure Report"), template 5000 (DCMR): the
  language (TID 1204), the observation context (TID 1001): the device that measured (fetalhead and its
  model version, TID 1004) and the procedure (Study Instance UID, Accession Number, TID 1005); the
  patient characteristics (TID 5001: height, weight, gravida, para...) when a caller gives them
  (``patient_characteristics``);
* when a visit record dates the pregnancy (``dating``, :class:`PregnancyDating`), the summary (TID 5002):
  CONTAINER (121111, DCM, "Summary") with the LMP (8665-2, LN) and the EDD from the LMP (11779-6, LN) as
  DATEs (CID 12003), and a CONTAINER (125008, DCM, "Fetus Summary") with the fetus's subject context and
  the gestational age by dates in days: (11885-1, LN, "Gestational Age by LMP") from the LMP, or
  (18185-9, LN, "Gestational Age") when only a typed one is known (CID 12019). TID 5001 has no place for
  these: they are the pregnancy's dating, not the patient's characteristics;
* every fetal section starts with the fetus's subject context (TID 1008: (121030, DCM, "Subject ID") =
  the Fetus ID, "1" by default: one fetus is measured);
* CONTAINER (125001, DCM, "Fetal Biometry Ratios", TID 5004) with the cephalic index (11823-2, LN) in %;
* CONTAINER (125002, DCM, "Fetal Biometry", TID 5005) holding one CONTAINER (125005, DCM, "Biometry
  Group", TID 5008) per measure: the NUM in mm (UCUM) - HC (11984-2, LN), BPD (11820-8, LN), OFD
  (11851-3, LN) - with its Measurement Method (CID 7230: Automated; Manual when the outline was placed
  by hand), INFERRED FROM its SCOORD on the source image (the ellipse for HC, the two calipers for BPD
  and OFD), its calibrated 90 % interval as lower and upper measurement uncertainty (CID 225); then one
  NUM (18185-9, LN, "Gestational Age") in days INFERRED FROM the CODE (121424, DCM, "Table of Values")
  naming its equation (CID 12013: HC, Hadlock 1984 11932-1; BPD, Hadlock 1984 11902-4); one percentile
  (125012) and, for HC, one z-score (125013), each INFERRED FROM its chart (CID 12015 has no
  INTERGROWTH-21st or WHO code: private codes, :data:`GROWTH_TABLES`). INTERGROWTH-21st's dating of the
  same HC (a group holds one gestational age) follows the groups in the section, inferred from its own
  (private) equation code;
* a result the software flags carries, on each figure, (software-flag, 99FHEAD) = (64957009, SCT,
  "Uncertain"), as does the BPD's gestational age of a head whose cephalic index is outside 74-83 %;
  the document is UNVERIFIED (a clinician verifies);
* a TEXT comment (121106, DCM) with the status, the flag codes and each in words (what is wrong,
  where on the outline, what to check), the notes (information, not warnings) apart, and "needs a
  clinician's review".

Patient and study modules are copied from the source (highdicom's evidence), which is where they
belong in DICOM going back to the PACS; they go nowhere else. SOP Instance UIDs are derived from the
source instance, the frame and the model, so measuring the same image again with the same model
gives the same UIDs: a PACS stores a resent result once.
"""

from __future__ import annotations

import copy
import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._version import __version__

__all__ = ["structured_report", "overlay_capture", "write_hospital_dicom", "fetalhead_uid", "SR_SERIES_NUMBER", "CAPTURE_SERIES_NUMBER", "instance_number",
           "PRIVATE_SCHEME", "GA_EQUATIONS", "GROWTH_TABLES", "PregnancyDating", "DEFAULT_FETUS_ID"]

#: The series numbers of fetalhead's results in the source study: the SRs (Modality SR) and the overlay
#: captures (Modality OT) each in a series of their own, so that a series query for SR finds them.
SR_SERIES_NUMBER = 9901
CAPTURE_SERIES_NUMBER = 9902
#: Body Part Examined of the overlay capture when the source says none: fetal head biometry is done on
#: transabdominal obstetric scans (from 14 weeks).
OBSTETRIC_BODY_PART = "ABDOMEN"
#: Private coding scheme for what DICOM has no code for (the 90 % interval limits).
PRIVATE_SCHEME = "99FHEAD"
_ROOT_UID_NAME = "fetalhead"
#: The Fetus ID of TID 1008 "Subject Context, Fetus": fetalhead measures one fetus, the first.
DEFAULT_FETUS_ID = "1"


@dataclass(frozen=True)
class PregnancyDating:
    """The pregnancy's dating from a visit record, for the SR's summary (TID 5002) and the FHIR Bundle.

    ``lmp``: first day of the last menstrual period; ``edd``: the expected date of delivery from it
    (Naegele's rule); ``ga_days``: the gestational age by dates on the day of the study, in days (from
    the LMP when ``ga_from_lmp``, else as typed in the visit record)."""

    lmp: _dt.date | None = None
    edd: _dt.date | None = None
    ga_days: float | None = None
    ga_from_lmp: bool = False

    def __post_init__(self):
        if self.ga_from_lmp and self.lmp is None:
            raise ValueError("a gestational age by LMP needs the LMP")
        from ..clinical.growth import LMP_GA_RANGE_DAYS

        lo, hi = LMP_GA_RANGE_DAYS
        if self.ga_days is not None and not lo <= self.ga_days <= hi:
            raise ValueError(f"gestational age by dates of {self.ga_days} days is outside {lo}-{hi} days")

    @property
    def empty(self) -> bool:
        return self.lmp is None and self.edd is None and self.ga_days is None


def instance_number(source_uid: str, frame: int) -> int:
    """The Instance Number of a result of one source instance and frame: derived from both (so the results
    of the images of one study do not share a number, and a re-sent result keeps its own), 1 to 2**31 - 1
    (Instance Number is an IS of at most 12 characters, PS3.5 6.2)."""
    import hashlib

    digest = hashlib.sha256(f"{source_uid}:{int(frame)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2 ** 31 - 1) + 1


def _need():
    try:
        import highdicom as hd
        import pydicom
    except ImportError:
        raise RuntimeError("DICOM SR needs the 'dicom' extra: pip install 'fetalhead[dicom]'") from None
    return hd, pydicom


def fetalhead_uid(*parts) -> str:
    """A UID derived from ``parts``: "2.25." and the integer of a name-based UUID (ISO/IEC 9834-8, the
    DICOM root for UUID-derived UIDs, PS3.5 B.2): the same parts always give the same UID."""
    import uuid

    return "2.25." + str(uuid.uuid5(uuid.NAMESPACE_OID, ":".join([_ROOT_UID_NAME, *map(str, parts)])).int)


def _codes():
    from pydicom.sr.coding import Code

    from .fhir import LOINC_CODES

    def loinc(attr):
        code, display = LOINC_CODES[attr]
        return Code(code, "LN", display)

    return {
        "report": Code("125000", "DCM", "OB-GYN Ultrasound Procedure Report"),
        "biometry": Code("125002", "DCM", "Fetal Biometry"),
        "ratios": Code("125001", "DCM", "Fetal Biometry Ratios"),
        "group": Code("125005", "DCM", "Biometry Group"),
        "hc": loinc("head_circumference_mm"),
        "bpd": loinc("biparietal_diameter_mm"),
        "ofd": loinc("occipitofrontal_diameter_mm"),
        "ci": loinc("cephalic_index"),
        "ga": Code("18185-9", "LN", "Gestational Age"),
        "table": Code("121424", "DCM", "Table of Values"),
        "percentile": Code("125012", "DCM", "Growth Percentile rank"),
        "zscore": Code("125013", "DCM", "Growth Z-score"),
        "comment": Code("121106", "DCM", "Comment"),
        "image": Code("121112", "DCM", "Source of Measurement"),
        "upper": Code("371886008", "SCT", "+, range of upper measurement uncertainty"),
        "lower": Code("371885007", "SCT", "-, range of lower measurement uncertainty"),
        "method": Code("370129005", "SCT", "Measurement Method"),
        "automated": Code("8359006", "SCT", "Automated"),
        "manual": Code("87982008", "SCT", "Manual"),
        "review": Code("software-flag", PRIVATE_SCHEME, "Flagged by the software for a clinician's review"),
        "uncertain": Code("64957009", "SCT", "Uncertain"),
        "study_uid": Code("121018", "DCM", "Procedure Study Instance UID"),
        "accession": Code("121022", "DCM", "Accession Number"),
        "characteristics": Code("121118", "DCM", "Patient Characteristics"),
        "summary": Code("121111", "DCM", "Summary"),
        "fetus_summary": Code("125008", "DCM", "Fetus Summary"),
        "lmp": Code("8665-2", "LN", "LMP"),
        "edd_lmp": Code("11779-6", "LN", "EDD from LMP"),
        "ga_lmp": Code("11885-1", "LN", "Gestational Age by LMP"),
        "subject_id": Code("121030", "DCM", "Subject ID"),
        "mm": Code("mm", "UCUM", "mm"),
        "d": Code("d", "UCUM", "days"),
        "percent": Code("%", "UCUM", "Percent"),
        "one": Code("1", "UCUM", "no units"),
    }


#: The equation (CID 12013 "Gestational Age Equations and Tables") each gestational age is inferred from:
#: result attribute -> (code value, scheme, meaning). INTERGROWTH-21st's HC dating equation has no code in
#: CID 12013 (LOINC has none): a private one.
GA_EQUATIONS = {
    "ga_hc_hadlock_weeks": ("11932-1", "LN", "HC, Hadlock 1984"),
    "ga_bpd_hadlock_weeks": ("11902-4", "LN", "BPD, Hadlock 1984"),
    "ga_hc_intergrowth_weeks": ("GA-HC-IG21-2016", PRIVATE_SCHEME, "HC, INTERGROWTH-21st 2016"),
}
#: The growth chart (CID 12015 "Fetal Growth Equations and Tables") of each centile and z-score: neither
#: INTERGROWTH-21st (Papageorghiou 2014) nor WHO (Kiserud 2017) has a code in CID 12015: private codes.
GROWTH_TABLES = {
    ("intergrowth", "hc"): ("HC-IG21-2014", "HC by GA, INTERGROWTH-21st 2014"),
    ("intergrowth", "bpd"): ("BPD-IG21-2014", "BPD by GA, INTERGROWTH-21st 2014"),
    ("intergrowth", "ofd"): ("OFD-IG21-2014", "OFD by GA, INTERGROWTH-21st 2014"),
    ("who", "hc"): ("HC-WHO-2017", "HC by GA, WHO 2017"),
    ("who", "bpd"): ("BPD-WHO-2017", "BPD by GA, WHO 2017"),
    ("who", "ofd"): ("OFD-WHO-2017", "OFD by GA, WHO 2017"),
}
#: Days in a week: the SR gives gestational ages in days (TID 5008), fetalhead computes them in weeks.
DAYS_PER_WEEK = 7.0


def _num(hd, name, value, unit, relationship="CONTAINS"):
    return hd.sr.NumContentItem(name=name, value=float(value), unit=unit, relationship_type=relationship)


def _code(hd, name, value, relationship):
    return hd.sr.CodeContentItem(name=name, value=value, relationship_type=relationship)


def _ascii(text: str) -> str:
    """Our words in the default DICOM character set (the formulas' superscripts written as ^2, ^3)."""
    text = str(text).replace("²", "^2").replace("³", "^3").replace("±", "+/-").replace("–", "-")
    return text.encode("ascii", "replace").decode("ascii")


def _text(hd, name, value, relationship):
    return hd.sr.TextContentItem(name=name, value=_ascii(value)[:1024], relationship_type=relationship)


def _fetus(hd, c, fetus_id: str):
    """TID 1008 "Subject Context, Fetus": the Fetus ID as (121030, DCM, "Subject ID"), HAS OBS CONTEXT."""
    return _text(hd, c["subject_id"], fetus_id, "HAS OBS CONTEXT")


def _summary(hd, c, dating: PregnancyDating, fetus_id: str):
    """TID 5002 "OB-GYN Procedure Summary Section": the dates (CID 12003) and the fetus's summary
    (CID 12019) with the gestational age by dates in days."""
    box = hd.sr.ContainerContentItem(name=c["summary"], relationship_type="CONTAINS")
    items = []
    for key, value in (("lmp", dating.lmp), ("edd_lmp", dating.edd)):
        if value is not None:
            items.append(hd.sr.DateContentItem(name=c[key], value=value, relationship_type="CONTAINS"))
    if dating.ga_days is not None:
        fetus = hd.sr.ContainerContentItem(name=c["fetus_summary"], relationship_type="CONTAINS")
        fetus.ContentSequence = [_fetus(hd, c, fetus_id),
                                 _num(hd, c["ga_lmp"] if dating.ga_from_lmp else c["ga"], dating.ga_days, c["d"])]
        items.append(fetus)
    box.ContentSequence = items
    return box


def _on_image(hd, header, frame: int, graphic_type: str, points, c):
    """A SCOORD on the source image (pixel coordinates, DICOM's convention: the top-left pixel's
    centre is (1, 1), fetalhead's is (0, 0)), SELECTED FROM that image."""
    scoord = hd.sr.ScoordContentItem(name=c["image"], graphic_type=graphic_type,
                                     graphic_data=np.asarray(points, float) + 1.0,
                                     pixel_origin_interpretation="VOLUME" if int(header.get("NumberOfFrames", 1)
                                                                                 or 1) <= 1 else "FRAME",
                                     relationship_type="INFERRED FROM")
    image = hd.sr.ImageContentItem(name=c["image"], referenced_sop_class_uid=header.SOPClassUID,
                                   referenced_sop_instance_uid=header.SOPInstanceUID,
                                   referenced_frame_numbers=frame + 1 if int(header.get("NumberOfFrames", 1) or 1) > 1
                                   else None, relationship_type="SELECTED FROM")
    scoord.ContentSequence = [image]
    return scoord


def _how_measured(hd, c, m, uncertain: bool = False) -> list:
    """The coded statements on a figure: how it was measured (Measurement Method, CID 7230: Automated, or
    Manual for an outline placed by hand) and, for a result the software flags (or a figure it calls
    unreliable), the property "Uncertain" (SCT 64957009) under fetalhead's review-flag concept."""
    items = [_code(hd, c["method"], c["manual"] if m.status == "adjusted" else c["automated"], "HAS CONCEPT MOD")]
    if uncertain or m.status == "flagged":
        items.append(_code(hd, c["review"], c["uncertain"], "HAS PROPERTIES"))
    return items


def _gestational_age(hd, c, m, attr: str, uncertain: bool = False):
    """NUM (18185-9, LN, "Gestational Age") in days, INFERRED FROM the CODE (121424, DCM, "Table of
    Values") naming its equation (CID 12013), as TID 5008 asks."""
    value, scheme, meaning = GA_EQUATIONS[attr]
    from pydicom.sr.coding import Code

    ga = _num(hd, c["ga"], getattr(m, attr) * DAYS_PER_WEEK, c["d"])
    ga.ContentSequence = [_code(hd, c["table"], Code(value, scheme, meaning), "INFERRED FROM"),
                          *_how_measured(hd, c, m, uncertain)[1:]]
    return ga


def _growth_rank(hd, c, m, name: str, value: float, unit, measure: str):
    """A percentile (125012) or z-score (125013) row, INFERRED FROM the CODE of its growth chart
    (CID 12015; private codes: see :data:`GROWTH_TABLES`)."""
    from pydicom.sr.coding import Code

    code, meaning = GROWTH_TABLES[(m.chart, measure)]
    item = _num(hd, c[name], value, unit)
    item.ContentSequence = [_code(hd, c["table"], Code(code, PRIVATE_SCHEME, meaning), "INFERRED FROM")]
    return item


def _biometry_group(hd, c, m, key, value, points, graphic, header):
    """TID 5008 "Fetal Biometry Group": the measure in mm (with how it was measured, the outline it was
    measured on and its calibrated 90 % interval as lower and upper uncertainty, CID 225), the gestational
    age in days it dates to (HC and BPD: Hadlock 1984), and its percentile and z-score on the chart."""
    group = hd.sr.ContainerContentItem(name=c["group"], relationship_type="CONTAINS")
    num = _num(hd, c[key], value, c["mm"])
    children = [*_how_measured(hd, c, m), _on_image(hd, header, m.frame, graphic, points, c)]
    column = {"hc": "hc_mm", "bpd": "bpd_mm", "ofd": "ofd_mm"}[key]
    if column in (m.intervals or {}):
        lo, hi = m.intervals[column]
        children += [_num(hd, c["lower"], value - lo, c["mm"], "HAS PROPERTIES"),
                     _num(hd, c["upper"], hi - value, c["mm"], "HAS PROPERTIES")]
    num.ContentSequence = children
    items = [num]
    ga_attr = {"hc": "ga_hc_hadlock_weeks", "bpd": "ga_bpd_hadlock_weeks"}.get(key)
    if ga_attr and getattr(m, ga_attr) is not None:
        # BPD dates a head whose cephalic index is outside 74-83 % unreliably (the page greys it)
        items.append(_gestational_age(hd, c, m, ga_attr,
                                      uncertain=key == "bpd" and "cephalic_index_out_of_range" in m.notes))
    centile = getattr(m, f"{key}_centile", None)
    if centile is not None:
        items.append(_growth_rank(hd, c, m, "percentile", centile, c["percent"], key))
    if key == "hc" and m.hc_zscore is not None:
        items.append(_growth_rank(hd, c, m, "zscore", m.hc_zscore, c["one"], key))
    group.ContentSequence = items
    return group


def structured_report(m, header, *, model_version: str, model_sha256: str = "", notes: list | None = None,
                      patient_characteristics: list | None = None, dating: PregnancyDating | None = None,
                      fetus_id: str = DEFAULT_FETUS_ID):
    """The Comprehensive SR (a pydicom Dataset) of measurement ``m`` of the image whose header is
    ``header`` (pydicom Dataset of the source, pixel data not needed). ``m`` must have mm figures.

    ``patient_characteristics``: content items (highdicom) of TID 5001 (height, weight, gravida, para...),
    placed in a (121118, DCM, "Patient Characteristics") container where TID 5000 puts it.
    ``dating``: the pregnancy's LMP, EDD and gestational age by dates (a visit record's), in the summary
    section (TID 5002). ``fetus_id``: the Fetus ID of every fetal section's subject context (TID 1008).

    Raises ``ValueError`` when ``m`` has no mm figures (failed, or no pixel spacing)."""
    hd, _ = _need()

    if m.ellipse is None or m.head_circumference_mm is None:
        raise ValueError(f"{m.source}: no measurement in mm to report (status {m.status})")
    c = _codes()
    lm = m.landmarks
    e = m.ellipse
    ellipse_points = [lm["ofd_1"], lm["ofd_2"], lm["bpd_1"], lm["bpd_2"]]  # major axis ends, then minor
    biometry = hd.sr.ContainerContentItem(name=c["biometry"], relationship_type="CONTAINS")
    sections = [
        _biometry_group(hd, c, m, "hc", m.head_circumference_mm, ellipse_points, "ELLIPSE", header),
        _biometry_group(hd, c, m, "bpd", m.biparietal_diameter_mm, [lm["bpd_1"], lm["bpd_2"]], "POLYLINE", header),
        _biometry_group(hd, c, m, "ofd", m.occipitofrontal_diameter_mm, [lm["ofd_1"], lm["ofd_2"]], "POLYLINE",
                        header),
    ]
    if m.ga_hc_intergrowth_weeks is not None:
        # a second dating of the same HC: TID 5008 has one gestational age per group, so this one is a
        # measurement of the section (TID 300) inferred from its own equation
        sections.append(_gestational_age(hd, c, m, "ga_hc_intergrowth_weeks"))
    biometry.ContentSequence = [_fetus(hd, c, fetus_id), *sections]
    ratios = hd.sr.ContainerContentItem(name=c["ratios"], relationship_type="CONTAINS")
    ci = _num(hd, c["ci"], m.cephalic_index, c["percent"])
    ci.ContentSequence = _how_measured(hd, c, m)
    ratios.ContentSequence = [_fetus(hd, c, fetus_id), ci]
    words = f"status {m.status}" + (f"; flags: {', '.join(m.flags)}" if m.flags else "") + \
        (f"; to check: {m.message}" if m.messages else "") + \
        (f"; notes (information, not warnings): {m.note_message}" if m.note_messages else "") + \
        (f"; centiles at a gestational age by dates of {m.ga_by_dates_weeks:.3f} weeks"
         if m.ga_by_dates_weeks is not None and m.hc_centile is not None else "") + \
        "; uncertainty ranges are the calibrated 90 % intervals" + \
        f"; ellipse centre ({e.center_x:.1f}, {e.center_y:.1f}) px, pixel spacing {m.pixel_spacing_mm} mm " \
        f"(x, y; source {m.spacing_source}); measured by software: needs a clinician's review before any clinical use"
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=fetalhead_uid("device", model_sha256 or model_version), name="fetalhead",
            manufacturer_name="fetalhead (open source)", model_name=model_version[:64]))
    ev = _evidence(header, notes)
    # TID 1001 Observation Context: the observer (TID 1002, a device) and the procedure (TID 1005)
    procedure = [hd.sr.UIDRefContentItem(name=c["study_uid"], value=str(ev.StudyInstanceUID),
                                         relationship_type="HAS OBS CONTEXT")]
    if str(ev.get("AccessionNumber", "") or "").strip():
        procedure.append(_text(hd, c["accession"], str(ev.AccessionNumber).strip(), "HAS OBS CONTEXT"))
    characteristics = []
    if patient_characteristics:
        box = hd.sr.ContainerContentItem(name=c["characteristics"], relationship_type="CONTAINS")
        box.ContentSequence = list(patient_characteristics)
        characteristics = [box]
    if dating is not None and not dating.empty:
        characteristics.append(_summary(hd, c, dating, fetus_id))
    root = hd.sr.ContainerContentItem(name=c["report"], template_id="5000")
    # TID 5000's order: language, observation context, patient characteristics (TID 5001), the summary
    # (TID 5002), the ratios (TID 5004) before the biometry (TID 5005); the comment last
    root.ContentSequence = [*hd.sr.LanguageOfContentItemAndDescendants(hd.sr.CodedConcept("en", "RFC5646", "English")),
                            *observer, *procedure, *characteristics, ratios, biometry,
                            _text(hd, c["comment"], words, "CONTAINS")]
    source_uid = str(header.SOPInstanceUID)
    # highdicom copies the whole content tree, parses it back and searches it three times while building
    # the document (two thirds of the SR's time, the largest part of a node's store-to-PACS latency): it
    # is given the bare root (title, template and language), and the content built above goes in after
    title = hd.sr.ContainerContentItem(name=c["report"], template_id="5000")
    title.ContentSequence = root.ContentSequence[:1]  # highdicom wants a content sequence
    sr = hd.sr.ComprehensiveSR(
        evidence=[ev], content=title,
        series_instance_uid=fetalhead_uid("series", ev.StudyInstanceUID, model_version),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=fetalhead_uid("sr", source_uid, m.frame, model_version),
        instance_number=instance_number(source_uid, m.frame), manufacturer="fetalhead (open source)",
        is_complete=True, is_final=False,
        is_verified=False)
    sr.ContentSequence = root.ContentSequence
    sr.SeriesDescription = "fetalhead fetal head biometry"
    sr.SoftwareVersions = [__version__, model_version[:64]]  # (0018,1020): the software, then its model
    _declare_private_scheme(sr)
    _encoded_as_built(sr)
    return sr


def _encoded_as_built(ds) -> bool:
    """Mark ``ds`` and every item nested in it as encoded in Explicit VR Little Endian, the transfer syntax
    it is written in, unless an element's VR is ambiguous (then nothing is marked; returns False).

    A dataset built in memory has no original encoding, so pydicom's writer runs its ambiguous-VR
    correction on every item of every sequence, each time over the whole subtree below it: for the SR's
    nested content tree this was a quarter of the time of writing it (the bytes written are the same:
    ``test_the_sr_is_written_as_pydicom_writes_it``). An SR written in another transfer syntax is still
    corrected (its encoding differs from the one marked)."""
    items, stack, ambiguous = [], [ds], False
    while stack:
        item = stack.pop()
        items.append(item)
        for elem in item.values():  # the elements as held (no conversion)
            if elem.VR == "SQ":
                stack.extend(elem.value)
            elif elem.VR and " or " in elem.VR:
                ambiguous = True
    if ambiguous:
        return False
    for item in items:
        item.set_original_encoding(False, True, item._character_set)
    return True


#: Type 2 attributes of the Patient and General Study modules: present (maybe empty) in a valid
#: image; an image that lacks one gets it empty in the copy handed on, never a made-up value.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")


#: What the SR and the capture take from the source besides the Patient module (group 0010): the
#: General Study module and the source instance's identity (for the evidence references).
_EVIDENCE_KEYWORDS = ("SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID",
                      "SeriesInstanceUID", "Modality", "StudyDate", "StudyTime", "ReferringPhysicianName",
                      "StudyID", "AccessionNumber", "StudyDescription", "NumberOfFrames")


def _evidence(header, notes: list | None = None):
    """The source's patient and study modules and identity, as a small dataset (copying the whole
    header would cost more than measuring); Type 2 attributes it lacks are added empty, and values
    real scanners write out of the standard are repaired or dropped (:func:`repair_header`), each with
    a note appended to ``notes``."""
    from pydicom.dataset import Dataset

    ev = Dataset()
    for elem in header:
        if elem.tag.group == 0x0010 or elem.keyword in _EVIDENCE_KEYWORDS:
            ev.add(copy.deepcopy(elem))
    for note in repair_header(ev):
        if notes is not None and note not in notes:
            notes.append(note)
    for keyword in _TYPE2:
        if keyword not in ev:
            setattr(ev, keyword, "")
    return ev


_SEX = {"F": "F", "FEMALE": "F", "WOMAN": "F", "M": "M", "MALE": "M", "MAN": "M", "O": "O", "OTHER": "O"}
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def _repair_date(text: str) -> str | None:
    import datetime as dt

    digits = re.sub(r"[-/. ]", "", text.strip())
    if re.fullmatch(r"\d{8}", digits):
        try:
            dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
            return digits
        except ValueError:
            return None
    return None


def _repair_time(text: str) -> str | None:
    m = re.fullmatch(r"(\d{2}):?(\d{2})(?::?(\d{2})(\.\d{1,6})?)?", text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59 or (m.group(3) and int(m.group(3)) > 60):
        return None
    return m.group(1) + m.group(2) + (m.group(3) or "") + (m.group(4) or "")


def repair_header(ds) -> list[str]:
    """Make the patient and study attributes of ``ds`` (the SR's and capture's copy) conform, in place.

    Dates written ``1990-01-01`` or ``2024/05/01`` become ``19900101``; times ``10:15:00`` become
    ``101500``; Patient's Sex ``FEMALE`` becomes ``F``; what cannot be repaired is emptied (Type 2) or
    removed; a missing or malformed Study Instance UID is derived from the image's SOP Instance UID, so
    that the results still form one study. Returns a note per change (no patient data in them)."""
    notes = []
    for elem in list(ds):
        value = elem.value
        if elem.VR in ("DA", "TM") and value not in (None, "") and not isinstance(value, (list, tuple)):
            text = str(value)
            fixed = (_repair_date if elem.VR == "DA" else _repair_time)(text)
            if fixed is None:
                ds[elem.tag].value = ""
                notes.append(f"{elem.keyword}: not a DICOM {elem.VR} value, left empty")
            elif fixed != text.strip():
                ds[elem.tag].value = fixed
                notes.append(f"{elem.keyword}: written out of the standard, repaired to the {elem.VR} form")
    sex = str(ds.get("PatientSex", "") or "").strip().upper()
    if sex and sex in _SEX and _SEX[sex] != sex:
        ds.PatientSex = _SEX[sex]
        notes.append("PatientSex: written out of the standard, repaired to M/F/O")
    elif sex and sex not in _SEX:
        ds.PatientSex = ""
        notes.append("PatientSex: not M, F or O, left empty")
    study = str(ds.get("StudyInstanceUID", "") or "").strip()
    if not study or len(study) > 64 or not _UID.match(study):
        ds.StudyInstanceUID = fetalhead_uid("study-of", ds.get("SOPInstanceUID", ""))
        notes.append("StudyInstanceUID: missing or malformed in the image; the results form a study derived "
                     "from the image's SOP Instance UID")
    return notes


def _declare_private_scheme(ds) -> None:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = "fetalhead codes for what DICOM has none"
    item.CodingSchemeResponsibleOrganization = "fetalhead project"
    ds.CodingSchemeIdentificationSequence = [item]


def overlay_capture(m, header, overlay_rgb: np.ndarray, *, model_version: str, notes: list | None = None):
    """A secondary capture (RGB) of the overlay: what was measured, drawn on the source image, in the
    same new series as the SR."""
    hd, _ = _need()
    source_uid = str(header.SOPInstanceUID)
    rgb = np.ascontiguousarray(overlay_rgb[..., ::-1]).astype(np.uint8)  # OpenCV BGR -> RGB
    ev = _evidence(header, notes)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=ev, pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=fetalhead_uid("capture-series", ev.StudyInstanceUID, model_version),
        series_number=CAPTURE_SERIES_NUMBER, sop_instance_uid=fetalhead_uid("sc", source_uid, m.frame, model_version),
        instance_number=instance_number(source_uid, m.frame), manufacturer="fetalhead (open source)",
        patient_orientation=("L", "F"))
    sc.SeriesDescription = "fetalhead fetal head biometry"
    sc.SoftwareVersions = [__version__, model_version[:64]]
    # the image the capture was drawn on (General Image module, Source Image Sequence)
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = str(header.SOPClassUID), source_uid
    if int(header.get("NumberOfFrames", 1) or 1) > 1:
        ref.ReferencedFrameNumber = int(m.frame) + 1  # DICOM counts frames from 1
    sc.SourceImageSequence = [ref]
    # General Series: Laterality is required (2C) for paired body parts; saying which part this is
    # (the source's, else the abdomen of a transabdominal obstetric scan) tells readers it is not paired
    sc.BodyPartExamined = str(header.get("BodyPartExamined") or "") or OBSTETRIC_BODY_PART
    sc.ImageComments = "fetalhead overlay: the head ellipse and calipers measured; needs a clinician's review"
    return sc


def write_hospital_dicom(m, scan, out_dir: str | Path, *, model_version: str, model_sha256: str = "",
                         patient_characteristics: list | None = None,
                         dating: PregnancyDating | None = None) -> list[Path]:
    """Write ``<stem>_sr.dcm`` and ``<stem>_overlay.dcm`` for a measured ultrasound DICOM ``scan``
    (:class:`fetalhead.measurement.Scan`) into ``out_dir``; return the paths. ``patient_characteristics``
    and ``dating`` (a visit record's LMP, EDD and GA by dates): see :func:`structured_report`.

    Raises ``ValueError`` for a scan that is not DICOM or a measurement without mm figures."""
    from ..outputs.overlay import draw_overlay

    header = getattr(getattr(scan, "dicom", None), "header", None)
    if header is None:
        raise ValueError(f"{scan.name}: not a DICOM file: a DICOM SR needs the source instance")
    notes: list[str] = []
    sr = structured_report(m, header, model_version=model_version, model_sha256=model_sha256, notes=notes,
                           patient_characteristics=patient_characteristics, dating=dating)
    sc = overlay_capture(m, header, draw_overlay(scan.image, m, with_text=False), model_version=model_version,
                         notes=notes)
    m.messages.extend(f"DICOM SR: {note}" for note in notes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(scan.name).stem + (f"_f{m.frame}" if m.frame else "")
    paths = [out_dir / f"{stem}_sr.dcm", out_dir / f"{stem}_overlay.dcm"]
    for ds, path in zip((sr, sc), paths):
        tmp = path.with_suffix(".tmp")
        try:
            ds.save_as(tmp, enforce_file_format=True)
            tmp.replace(path)
        except OSError:  # a full disk: the half-written file takes no more room
            tmp.unlink(missing_ok=True)
            raise
    return paths
