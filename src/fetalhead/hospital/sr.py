"""The measurement going back to the PACS: a DICOM Comprehensive SR and a secondary capture of the
overlay, in the source image's study, in a new series (extra ``dicom``: pydicom and highdicom).

The SR follows the structure of TID 5000 "OB-GYN Ultrasound Procedure Report" (DICOM PS3.16):

* root CONTAINER (125000, DCM, "OB-GYN Ultrasound Procedure Report"), template 5000 (DCMR), with the
  observer context: the device that measured (fetalhead and its model version, TID 1004);
* CONTAINER (125002, DCM, "Fetal Biometry") holding one CONTAINER (125005, DCM, "Biometry Group")
  per measure (TID 5008): the NUM in mm (UCUM) - HC (11984-2, LN), BPD (11820-8, LN), OFD (11851-3,
  LN) - INFERRED FROM its SCOORD on the source image (the ellipse for HC, the two calipers for BPD and
  OFD), with its calibrated 90 % interval (a private code, 99FHEAD, since DICOM has none for it); the
  gestational age derived from it (Hadlock 1984: HC 11932-1, BPD 11902-4; INTERGROWTH-21st, which has
  no code, as (18185-9, LN, "Gestational age") with its equation as text, 121420 DCM "Equation");
  the centile and z-score (125012 / 125013, DCM) on the chart named as text (121424, DCM, "Table of
  Values") when a GA by dates was given;
* CONTAINER (125001, DCM, "Fetal Biometry Ratios") with the cephalic index (11823-2, LN) in %;
* a TEXT comment (121106, DCM) with the status and flags in words ("needs a clinician's review").

Patient and study modules are copied from the source (highdicom's evidence), which is where they
belong in DICOM going back to the PACS; they go nowhere else. SOP Instance UIDs are derived from the
source instance, the frame and the model, so measuring the same image again with the same model
gives the same UIDs: a PACS stores a resent result once.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np

from .._version import __version__

__all__ = ["structured_report", "overlay_capture", "write_hospital_dicom", "fetalhead_uid", "SR_SERIES_NUMBER", "CAPTURE_SERIES_NUMBER", "instance_number",
           "PRIVATE_SCHEME"]

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
        "ga_hc_hadlock": loinc("ga_hc_hadlock_weeks"),
        "ga_bpd_hadlock": loinc("ga_bpd_hadlock_weeks"),
        "ga": loinc("ga_hc_intergrowth_weeks"),
        "equation": Code("121420", "DCM", "Equation"),
        "table": Code("121424", "DCM", "Table of Values"),
        "percentile": Code("125012", "DCM", "Growth Percentile rank"),
        "zscore": Code("125013", "DCM", "Growth Z-score"),
        "comment": Code("121106", "DCM", "Comment"),
        "image": Code("121112", "DCM", "Source of Measurement"),
        "low": Code("interval-low", PRIVATE_SCHEME, "Lower limit of the calibrated 90 % interval"),
        "high": Code("interval-high", PRIVATE_SCHEME, "Upper limit of the calibrated 90 % interval"),
        "mm": Code("mm", "UCUM", "millimeter"),
        "wk": Code("wk", "UCUM", "week"),
        "percent": Code("%", "UCUM", "percent"),
        "one": Code("1", "UCUM", "no units"),
    }


def _num(hd, name, value, unit, relationship="CONTAINS"):
    return hd.sr.NumContentItem(name=name, value=float(value), unit=unit, relationship_type=relationship)


def _ascii(text: str) -> str:
    """Our words in the default DICOM character set (the formulas' superscripts written as ^2, ^3)."""
    text = str(text).replace("²", "^2").replace("³", "^3").replace("±", "+/-").replace("–", "-")
    return text.encode("ascii", "replace").decode("ascii")


def _text(hd, name, value, relationship):
    return hd.sr.TextContentItem(name=name, value=_ascii(value)[:1024], relationship_type=relationship)


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


def _biometry_group(hd, c, m, key, value, points, graphic, header, extra=()):
    group = hd.sr.ContainerContentItem(name=c["group"], relationship_type="CONTAINS")
    num = _num(hd, c[key], value, c["mm"])
    children = [_on_image(hd, header, m.frame, graphic, points, c)]
    column = {"hc": "hc_mm", "bpd": "bpd_mm", "ofd": "ofd_mm"}[key]
    if column in (m.intervals or {}):
        lo, hi = m.intervals[column]
        children += [_num(hd, c["low"], lo, c["mm"], "HAS PROPERTIES"), _num(hd, c["high"], hi, c["mm"], "HAS PROPERTIES")]
    num.ContentSequence = children
    group.ContentSequence = [num, *extra]
    return group


def structured_report(m, header, *, model_version: str, model_sha256: str = "", notes: list | None = None):
    """The Comprehensive SR (a pydicom Dataset) of measurement ``m`` of the image whose header is
    ``header`` (pydicom Dataset of the source, pixel data not needed). ``m`` must have mm figures.

    Raises ``ValueError`` when ``m`` has no mm figures (failed, or no pixel spacing)."""
    hd, _ = _need()
    from ..clinical.biometry import CHART_NAMES, FORMULAS

    if m.ellipse is None or m.head_circumference_mm is None:
        raise ValueError(f"{m.source}: no measurement in mm to report (status {m.status})")
    c = _codes()
    lm = m.landmarks
    e = m.ellipse
    ellipse_points = [lm["ofd_1"], lm["ofd_2"], lm["bpd_1"], lm["bpd_2"]]  # major axis ends, then minor
    ga_items = []
    if m.ga_hc_hadlock_weeks is not None:
        ga_items.append(_num(hd, c["ga_hc_hadlock"], m.ga_hc_hadlock_weeks, c["wk"]))
    if m.ga_hc_intergrowth_weeks is not None:
        ig = _num(hd, c["ga"], m.ga_hc_intergrowth_weeks, c["wk"])
        ig.ContentSequence = [_text(hd, c["equation"], "INTERGROWTH-21st: " + FORMULAS["ga_hc_intergrowth_weeks"],
                                    "HAS CONCEPT MOD")]
        ga_items.append(ig)
    if m.hc_centile is not None:
        table = _text(hd, c["table"], f"{CHART_NAMES[m.chart]}; GA by dates {m.ga_by_dates_weeks:.3f} weeks",
                      "HAS CONCEPT MOD")
        centile = _num(hd, c["percentile"], m.hc_centile, c["percent"])
        centile.ContentSequence = [table]
        z = _num(hd, c["zscore"], m.hc_zscore, c["one"])
        z.ContentSequence = [_text(hd, c["table"], CHART_NAMES[m.chart], "HAS CONCEPT MOD")]
        ga_items += [centile, z]
    bpd_items = []
    if m.ga_bpd_hadlock_weeks is not None:
        bpd_items.append(_num(hd, c["ga_bpd_hadlock"], m.ga_bpd_hadlock_weeks, c["wk"]))
    biometry = hd.sr.ContainerContentItem(name=c["biometry"], relationship_type="CONTAINS")
    biometry.ContentSequence = [
        _biometry_group(hd, c, m, "hc", m.head_circumference_mm, ellipse_points, "ELLIPSE", header, ga_items),
        _biometry_group(hd, c, m, "bpd", m.biparietal_diameter_mm, [lm["bpd_1"], lm["bpd_2"]], "POLYLINE", header,
                        bpd_items),
        _biometry_group(hd, c, m, "ofd", m.occipitofrontal_diameter_mm, [lm["ofd_1"], lm["ofd_2"]], "POLYLINE",
                        header),
    ]
    ratios = hd.sr.ContainerContentItem(name=c["ratios"], relationship_type="CONTAINS")
    ratios.ContentSequence = [_num(hd, c["ci"], m.cephalic_index, c["percent"])]
    words = f"status {m.status}" + (f"; flags: {', '.join(m.flags)}" if m.flags else "") + \
        f"; ellipse centre ({e.center_x:.1f}, {e.center_y:.1f}) px, pixel spacing {m.pixel_spacing_mm} mm " \
        f"(x, y; source {m.spacing_source}); measured by software: needs a clinician's review before any clinical use"
    observer = hd.sr.ObserverContext(
        observer_type=hd.sr.CodedConcept("121007", "DCM", "Device"),
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=fetalhead_uid("device", model_sha256 or model_version), name="fetalhead",
            manufacturer_name="fetalhead (open source)", model_name=model_version[:64]))
    ev = _evidence(header, notes)
    root = hd.sr.ContainerContentItem(name=c["report"], template_id="5000")
    root.ContentSequence = [*observer, biometry, ratios, _text(hd, c["comment"], words, "CONTAINS")]
    source_uid = str(header.SOPInstanceUID)
    sr = hd.sr.ComprehensiveSR(
        evidence=[ev], content=root,
        series_instance_uid=fetalhead_uid("series", ev.StudyInstanceUID, model_version),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=fetalhead_uid("sr", source_uid, m.frame, model_version),
        instance_number=instance_number(source_uid, m.frame), manufacturer="fetalhead (open source)",
        is_complete=True, is_final=False,
        is_verified=False)
    sr.SeriesDescription = "fetalhead fetal head biometry"
    sr.SoftwareVersions = [__version__, model_version[:64]]  # (0018,1020): the software, then its model
    _declare_private_scheme(sr)
    return sr


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


def write_hospital_dicom(m, scan, out_dir: str | Path, *, model_version: str, model_sha256: str = "") -> list[Path]:
    """Write ``<stem>_sr.dcm`` and ``<stem>_overlay.dcm`` for a measured ultrasound DICOM ``scan``
    (:class:`fetalhead.measurement.Scan`) into ``out_dir``; return the paths.

    Raises ``ValueError`` for a scan that is not DICOM or a measurement without mm figures."""
    from ..outputs.overlay import draw_overlay

    header = getattr(getattr(scan, "dicom", None), "header", None)
    if header is None:
        raise ValueError(f"{scan.name}: not a DICOM file: a DICOM SR needs the source instance")
    notes: list[str] = []
    sr = structured_report(m, header, model_version=model_version, model_sha256=model_sha256, notes=notes)
    sc = overlay_capture(m, header, draw_overlay(scan.image, m, with_text=False), model_version=model_version,
                         notes=notes)
    m.messages.extend(f"DICOM SR: {note}" for note in notes)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = Path(scan.name).stem + (f"_f{m.frame}" if m.frame else "")
    paths = [out_dir / f"{stem}_sr.dcm", out_dir / f"{stem}_overlay.dcm"]
    for ds, path in zip((sr, sc), paths):
        tmp = path.with_suffix(".tmp")
        ds.save_as(tmp, enforce_file_format=True)
        tmp.replace(path)
    return paths
