"""A measurement as a FHIR R4 Bundle, for health records (India's ABDM speaks FHIR R4).

One Bundle (type ``collection``) per measured scan:

* a Device: fetalhead, with the model version (``version``) and the model's sha256 as identifier;
* an Observation per figure, LOINC-coded with UCUM units: HC (11984-2), BPD (11820-8), OFD (11851-3)
  in mm, the cephalic index (11823-2) in %, the gestational age from HC by Hadlock 1984 (11932-1) and
  from BPD by Hadlock 1984 (11902-4) in weeks, and the INTERGROWTH-21st HC gestational age (no code
  of its own: 18185-9 "Gestational age" with the method in words). Status ``preliminary``: measured
  by software, a clinician reviews it. The calibrated 90 % interval is a note (FHIR's referenceRange
  is a normal range, which this is not); a flagged result gets the interpretation "abnormal" only
  when it is flagged for review, with the reasons in words in the note (what is wrong, where, what to
  check); information that is no warning (a cephalic index outside Hadlock's +/-1 SD, a figure left
  out) is a note of its own;
* the HC centile on the chart, coded (125012, DCM, "Growth Percentile rank": LOINC has no fetal HC
  percentile), with the z-score as a component (125013, DCM, "Growth Z-score"), the chart as its
  method, derived from the HC Observation;
* each Observation refers to the device and, for DICOM, to the imaging study by its Study Instance UID
  (``derivedFrom``: an ImagingStudy identifier ``urn:oid:<uid>``), and to no patient unless the caller
  names one (``subject``: a visit record's patient, by identifier, :func:`patient_reference`): without
  it the receiving system links the Bundle to its own patient record (nothing identifying leaves in
  this file);
* when a visit record dates the pregnancy (``dating``), its LMP (8665-2), the EDD from it (11779-6) and
  the gestational age by dates in days (11885-1 by LMP, or 18185-9 as typed), as the clinic entered them
  (status ``final``, no device);
* each Observation's
  ``effectiveDateTime`` is the study's date and time (StudyDate, StudyTime and the timezone offset of
  the DICOM file; the date alone when the file gives no timezone, since FHIR wants one with a time).

Plain dictionaries (the JSON form); the tests validate them with the ``fhir.resources`` library.
"""

from __future__ import annotations

import datetime as _dt
import json
from pathlib import Path

from .._version import __version__

__all__ = ["fhir_bundle", "write_fhir", "study_effective", "patient_reference", "LOINC", "UCUM", "DICOM_DCM",
           "LOINC_CODES", "BUNDLE_TYPES", "PATIENT_ID_SYSTEM"]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
_DICOM_UID = "urn:dicom:uid"
#: DICOM's own codes (PS3.16 Annex D) as a FHIR code system
DICOM_DCM = "http://dicom.nema.org/resources/ontology/DCM"
#: The identifier system of a visit record's patient ID (the clinic's own ID, not a national one): the
#: receiving system maps it to its patients (``fetalhead serve --patient-id-system`` names the clinic's).
PATIENT_ID_SYSTEM = "urn:fetalhead:patient-id"


def patient_reference(patient_id: str, system: str = PATIENT_ID_SYSTEM) -> dict:
    """A FHIR Reference to the patient by identifier (a logical reference: the receiving server resolves
    it to its Patient), for an Observation's ``subject``."""
    if not str(patient_id or "").strip():
        raise ValueError("a patient reference needs a patient ID")
    return {"type": "Patient", "identifier": {"system": system, "value": str(patient_id)}}

#: The LOINC code and display of each figure (result attribute -> (code, display)): the FHIR Bundle
#: and the DICOM SR (:mod:`fetalhead.hospital.sr`) name the figures by these. INTERGROWTH-21st's GA has no
#: code of its own: "Gestational age" with its method in words.
LOINC_CODES = {
    "head_circumference_mm": ("11984-2", "Head Circumference"),
    "biparietal_diameter_mm": ("11820-8", "Biparietal Diameter"),
    "occipitofrontal_diameter_mm": ("11851-3", "Occipital-Frontal Diameter"),
    "cephalic_index": ("11823-2", "Cephalic Index"),
    "ga_hc_hadlock_weeks": ("11932-1", "Head Circumference estimated gestational age, Hadlock 1984"),
    "ga_bpd_hadlock_weeks": ("11902-4", "Biparietal Diameter estimated gestational age, Hadlock 1984"),
    "ga_hc_intergrowth_weeks": ("18185-9", "Gestational age"),
}
#: (result attribute, UCUM unit, unit display, method text or None) of each Observation
_FIGURES = (
    ("head_circumference_mm", "mm", "mm", None),
    ("biparietal_diameter_mm", "mm", "mm", None),
    ("occipitofrontal_diameter_mm", "mm", "mm", None),
    ("cephalic_index", "%", "%", None),
    ("ga_hc_hadlock_weeks", "wk", "weeks", "Hadlock FP et al., Radiology 1984;152:497-501"),
    ("ga_bpd_hadlock_weeks", "wk", "weeks", "Hadlock FP et al., Radiology 1984;152:497-501"),
    ("ga_hc_intergrowth_weeks", "wk", "weeks",
     "INTERGROWTH-21st HC dating equation: Papageorghiou AT et al., Ultrasound Obstet Gynecol 2016;48:719-726"),
)
_INTERVALS = {"head_circumference_mm": "hc_mm", "biparietal_diameter_mm": "bpd_mm",
              "occipitofrontal_diameter_mm": "ofd_mm", "ga_hc_hadlock_weeks": "ga_hc_hadlock_weeks",
              "ga_hc_intergrowth_weeks": "ga_hc_intergrowth_weeks"}


def study_effective(header) -> str | None:
    """The study's date and time as a FHIR ``dateTime`` from a DICOM header: ``2026-11-28T10:15:00+05:30``
    with StudyDate, StudyTime and TimezoneOffsetFromUTC; ``2026-11-28`` when there is no time or no
    timezone (FHIR requires one with a time); ``None`` without a valid StudyDate."""
    import re

    date = str(getattr(header, "get", lambda *_: None)("StudyDate") or "").strip()
    if not re.fullmatch(r"\d{8}", date):
        return None
    try:
        _dt.date(int(date[:4]), int(date[4:6]), int(date[6:]))
    except ValueError:
        return None
    day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    time = re.fullmatch(r"(\d{2})(\d{2})(\d{2})?(?:\.\d+)?", str(header.get("StudyTime") or "").strip())
    zone = re.fullmatch(r"([+-])(\d{2})(\d{2})", str(header.get("TimezoneOffsetFromUTC") or "").strip())
    if not time or not zone or int(time.group(1)) > 23 or int(time.group(2)) > 59 or int(time.group(3) or 0) > 59:
        return day
    return (f"{day}T{time.group(1)}:{time.group(2)}:{time.group(3) or '00'}"
            f"{zone.group(1)}{zone.group(2)}:{zone.group(3)}")


def _uuid(*parts) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, "fetalhead:" + ":".join(map(str, parts))))


#: The Bundle types written: a ``collection`` (a document to file) or a ``transaction`` (each entry with
#: its ``request``, to POST to a FHIR server's base URL; the Device only if none has the model's sha256).
BUNDLE_TYPES = ("collection", "transaction")


def _dating_observations(dating, key, subject, effective) -> list[dict]:
    """The visit record's dating (:class:`fetalhead.hospital.sr.PregnancyDating`) as Observations."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    rows = []
    if dating.lmp is not None:
        rows.append(("8665-2", "Last menstrual period start date", {"valueDateTime": dating.lmp.isoformat()}, None))
    if dating.edd is not None:
        rows.append(("11779-6", "Delivery date Estimated from last menstrual period",
                     {"valueDateTime": dating.edd.isoformat()}, "Naegele's rule: LMP + 280 days"))
    if dating.ga_days is not None:
        code, display, method = (("11885-1", "Gestational age Estimated from last menstrual period",
                                  "exam date - first day of the LMP") if dating.ga_from_lmp else
                                 ("18185-9", "Gestational age", "by dates, as typed in the visit record"))
        rows.append((code, display, {"valueQuantity": {"value": round(float(dating.ga_days), 1), "unit": "days",
                                                       "system": UCUM, "code": "d"}}, method))
    out = []
    for code, display, value, method in rows:
        obs_id = _uuid("observation", *key, "dating", code)
        obs = {"resourceType": "Observation", "id": obs_id, "status": "final",
               "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
               **value, "issued": now}
        _set_context(obs, method, subject, effective)
        out.append({"fullUrl": f"urn:uuid:{obs_id}", "resource": obs})
    return out


def _set_context(obs: dict, method: str | None, subject: dict | None, effective: str | None) -> None:
    """An Observation's method (text), subject (a Reference) and effectiveDateTime, where known."""
    if method:
        obs["method"] = {"text": method}
    if subject:
        obs["subject"] = subject
    if effective:
        obs["effectiveDateTime"] = effective


def _flagged_interpretation() -> list[dict]:
    """The interpretation of an Observation of a result flagged for review: HL7 v3 "A" (abnormal), in words."""
    return [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                         "code": "A", "display": "Abnormal"}], "text": "flagged for review by the software"}]


def fhir_bundle(m, *, model_version: str, model_sha256: str = "", study_instance_uid: str | None = None,
                effective: str | None = None, bundle_type: str = "collection", subject: dict | None = None,
                dating=None) -> dict:
    """The FHIR R4 Bundle (a dict) of measurement ``m``; see the module's docstring. The imaging study is
    ``study_instance_uid``, by default the one the measured DICOM file named (``m.identifiers``).
    ``subject``: the patient (a Reference, :func:`patient_reference`) of every Observation; ``dating``: a
    visit record's LMP, EDD and gestational age by dates (:class:`fetalhead.hospital.sr.PregnancyDating`).

    Raises ``ValueError`` when ``m`` has no figure in mm (failed, or no pixel spacing)."""
    from ..clinical.biometry import CHART_NAMES

    if bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle type must be one of {', '.join(BUNDLE_TYPES)}, got {bundle_type!r}")
    if m.head_circumference_mm is None:
        raise ValueError(f"{m.source}: no measurement in mm for a health record (status {m.status})")
    study_instance_uid = study_instance_uid or (m.identifiers or {}).get("StudyInstanceUID")
    key = (m.sha256 or m.source, m.frame, model_version)
    device_id = _uuid("device", model_sha256 or model_version)
    device = {"resourceType": "Device", "id": device_id,
              "deviceName": [{"name": "fetalhead", "type": "model-name"}],
              "manufacturer": "fetalhead (open source)",
              "version": [{"type": {"text": "software"}, "value": __version__},
                          {"type": {"text": "model"}, "value": model_version}],
              "note": [{"text": "Fetal head biometry software on 2D ultrasound; results need a clinician's review"}]}
    if model_sha256:
        device["identifier"] = [{"system": "urn:fetalhead:model-sha256", "value": model_sha256}]
    entries = [{"fullUrl": f"urn:uuid:{device_id}", "resource": device}]
    review = m.status in ("flagged", "adjusted")
    hc_url = None
    for attr, unit, unit_display, method in _FIGURES:
        code, display = LOINC_CODES[attr]
        value = getattr(m, attr)
        if value is None:
            continue
        obs_id = _uuid("observation", *key, code, attr)
        obs = {"resourceType": "Observation", "id": obs_id, "status": "preliminary",
               "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                         "code": "imaging", "display": "Imaging"}]}],
               "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
               "valueQuantity": {"value": round(float(value), 2), "unit": unit_display, "system": UCUM, "code": unit},
               "device": {"reference": f"urn:uuid:{device_id}"},
               "issued": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        _set_context(obs, method, subject, effective)
        notes = []
        interval = (m.intervals or {}).get(_INTERVALS.get(attr, ""))
        if interval:
            notes.append(f"calibrated 90 % interval {interval[0]:.2f}-{interval[1]:.2f} {unit_display}")
        if unit_display == "mm" and m.pixel_spacing_mm:  # the pixel size behind a length, and its source
            sx, sy = m.pixel_spacing_mm
            notes.append(f"pixel size {sx:.5g} x {sy:.5g} mm ({m.spacing_source})")
        if review:
            notes.append(f"status {m.status}" + (f": {', '.join(m.flags)}" if m.flags else "")
                         + (f" ({m.message})" if m.messages else ""))
            if m.status == "flagged":
                obs["interpretation"] = _flagged_interpretation()
        if notes:
            obs["note"] = [{"text": "; ".join(notes)}]
        if m.note_messages:  # information, a note of its own, never the interpretation "abnormal"
            obs.setdefault("note", []).append({"text": f"information (not a warning): {m.note_message}"})
        if study_instance_uid:
            obs["derivedFrom"] = [{"type": "ImagingStudy", "identifier": {"system": _DICOM_UID,
                                                                          "value": f"urn:oid:{study_instance_uid}"}}]
        entries.append({"fullUrl": f"urn:uuid:{obs_id}", "resource": obs})
        if attr == "head_circumference_mm":
            hc_url = f"urn:uuid:{obs_id}"
    if m.hc_centile is not None:
        obs_id = _uuid("observation", *key, "centile")
        centile = {
            "resourceType": "Observation", "id": obs_id, "status": "preliminary",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "imaging", "display": "Imaging"}]}],
            "code": {"coding": [{"system": DICOM_DCM, "code": "125012", "display": "Growth Percentile rank"}],
                     "text": f"Head circumference centile ({CHART_NAMES[m.chart]})"},
            "method": {"text": CHART_NAMES[m.chart]},
            "valueQuantity": {"value": round(float(m.hc_centile), 1), "unit": "%", "system": UCUM, "code": "%"},
            "note": [{"text": f"z-score {m.hc_zscore:+.2f} at a gestational age by dates of "
                              f"{m.ga_by_dates_weeks:.3f} weeks"}],
            "device": {"reference": f"urn:uuid:{device_id}"},
            "issued": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        if m.hc_zscore is not None:
            centile["component"] = [{
                "code": {"coding": [{"system": DICOM_DCM, "code": "125013", "display": "Growth Z-score"}]},
                "valueQuantity": {"value": round(float(m.hc_zscore), 3), "unit": "SD", "system": UCUM, "code": "1"}}]
        if subject:
            centile["subject"] = subject
        if effective:
            centile["effectiveDateTime"] = effective
        if hc_url:
            centile["derivedFrom"] = [{"reference": hc_url}]
        if m.status == "flagged":  # the figure a flag may be about (hc_far_from_ga): flagged as the lengths are
            centile["interpretation"] = _flagged_interpretation()
            centile["note"].append({"text": f"status {m.status}: {', '.join(m.flags)} ({m.message})"})
        entries.append({"fullUrl": f"urn:uuid:{obs_id}", "resource": centile})
    if dating is not None:
        entries += _dating_observations(dating, key, subject, effective)
    if bundle_type == "transaction":
        for entry in entries:
            kind = entry["resource"]["resourceType"]
            entry["request"] = {"method": "POST", "url": kind}
            if kind == "Device" and model_sha256:
                entry["request"]["ifNoneExist"] = f"identifier=urn:fetalhead:model-sha256|{model_sha256}"
    return {"resourceType": "Bundle", "id": _uuid("bundle", *key), "type": bundle_type,
            "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "entry": entries}


def write_fhir(m, out_dir: str | Path, *, model_version: str, model_sha256: str = "",
               bundle_type: str = "collection", effective: str | None = None, subject: dict | None = None,
               dating=None) -> Path:
    """Write ``<stem>_fhir.json`` (:func:`fhir_bundle`) into ``out_dir``; return its path."""
    bundle = fhir_bundle(m, model_version=model_version, model_sha256=model_sha256, bundle_type=bundle_type,
                         effective=effective, subject=subject, dating=dating)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{Path(m.source).stem}{f'_f{m.frame}' if m.frame else ''}_fhir.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(bundle, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path
