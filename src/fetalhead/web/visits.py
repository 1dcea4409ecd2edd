"""The visit record's API (``/api/v1``): patients' visits, measurements saved to a visit, typed AC/FL,
the visit's figures and its report. Module-level handlers on an ``APIRouter``; the record
(:class:`fetalhead.records.store.Records`) and the EFW setting come from ``app.state``.

The server keeps only measurements it issued: a measurement saved to a visit must carry this server's
signature (:func:`fetalhead.web.api._measurement_from`), and its figures are recomputed from its ellipse.
A saved measurement of a DICOM source goes to the hospital with the visit: its SR (with the pregnancy's
dating, TID 5002) and its FHIR Bundle (the patient as ``subject``), given the DICOM file again (the
record keeps no DICOM).
Errors are JSON with a clear code: ``unknown_patient``, ``unknown_visit``, ``unknown_measurement`` (404),
``visit_of_another_patient``, ``measurement_not_issued``, ``measurement_of_another_scan``,
``dicom_of_another_patient`` (409), ``measurement_not_in_mm``, ``ac_out_of_range``, ``fl_out_of_range``,
``lmp_in_future``, ``lmp_after_exam``, ``invalid_patient_id`` (422). Who did what goes to the record's
audit trail (the login's user name; ``local`` without a login); patient fields are never logged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import re
import threading

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ..clinical.biometry import OutOfRangeError
from ..clinical.growth import check_ac_mm, check_fl_mm, check_lmp, ga_days_by_lmp
from ..clinical.limits import GA_BY_DATES_RANGE_WEEKS
from ..hospital.fhir import PATIENT_ID_SYSTEM, fhir_bundle, patient_reference, study_effective
from ..measurement import Measurement
from ..model.runtime import HeadModel
from ..outputs.report import LANGUAGES, translations
from ..records.report import efw_chart_svg, visit_chart_svg, visit_report_html, visit_report_pdf
from ..records.store import LOCAL_USER, RecordError, Records
from ..records.visit import visit_dating, visit_summary
from .api import (ApiError, Settings, _load, _measurement_from, content_disposition, dicom_hand_off, get_client_gone,
                  get_limiter, get_model, get_settings, read_upload)
from .serving import LOGIN_USER_KEY
from .signing import canonical, patient_key

__all__ = ["router", "get_records", "PATIENT_ID_PATTERN"]

router = APIRouter(prefix="/api/v1")

#: A patient ID as clinics write them: 1-64 letters, digits, '-', '_', '.', '/' not allowed (it is a path part).
PATIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: The mother's age accepted (years): a guard against typing slips (a year of birth, months), not a clinical limit.
MATERNAL_AGE_RANGE_YEARS = (10, 70)
_STATUS = {"unknown_patient": 404, "unknown_visit": 404, "unknown_measurement": 404,
           "visit_of_another_patient": 409}


def get_records(request: Request) -> Records:
    records = getattr(request.app.state, "records", None)
    if records is None:
        raise ApiError(503, "no_record", "this server keeps no visit record (start it with --db FILE)")
    return records


def get_user(request: Request) -> str:
    """The login's user name, ``local`` without a login."""
    return request.scope.get(LOGIN_USER_KEY) or LOCAL_USER


@router.get("/me")
def who_is_logged_in(request: Request):
    """The login's user name (``null`` when the server asks for no login): the page fills the visit's
    sonographer with it, and the sonographer can still change it."""
    return {"user": request.scope.get(LOGIN_USER_KEY) or None}


def get_efw_method(request: Request) -> str:
    return getattr(request.app.state, "efw_method", "hadlock1985")


def _record_error(exc: RecordError) -> ApiError:
    return ApiError(_STATUS.get(exc.code, 400), exc.code, str(exc))


def _check_patient_id(patient_id: str) -> str:
    if not re.match(PATIENT_ID_PATTERN, patient_id or ""):
        raise ApiError(422, "invalid_patient_id", "a patient ID is 1-64 letters, digits, '.', '_' or '-'")
    return patient_id


def _visit(records: Records, visit_id: int, patient_id: str | None) -> dict:
    try:
        return records.visit(visit_id, patient_id)
    except RecordError as exc:
        raise _record_error(exc) from None


def _summary(records: Records, visit: dict, efw_method: str) -> dict:
    prev = records.previous_visit(visit)
    return visit_summary(visit, records.measurements(visit["id"]), prev,
                         records.measurements(prev["id"]) if prev else None, efw_method)


def _check_dates(exam: _dt.date, lmp: _dt.date | None) -> None:
    if lmp is None:
        return
    try:
        check_lmp(lmp, _dt.date.today())
    except ValueError as exc:
        raise ApiError(422, "lmp_in_future", str(exc)) from None
    if lmp > exam:
        raise ApiError(422, "lmp_after_exam", f"the LMP {lmp} lies after the exam date {exam}")
    try:
        ga_days_by_lmp(lmp, exam)
    except (OutOfRangeError, ValueError) as exc:
        raise ApiError(422, "invalid_lmp", str(exc)) from None


_GA = dict(ge=GA_BY_DATES_RANGE_WEEKS[0], le=GA_BY_DATES_RANGE_WEEKS[1])


class VisitIn(BaseModel):
    date: _dt.date = Field(description="the exam date (YYYY-MM-DD)")
    lmp: _dt.date | None = Field(None, description="first day of the last menstrual period")
    ga_by_dates: float | None = Field(None, **_GA, description="GA by dates (weeks) when there is no LMP")
    sonographer: str | None = Field(None, max_length=120)
    name: str | None = Field(None, max_length=200, description="the patient's name (kept only in the record)")
    age: float | None = Field(None, ge=MATERNAL_AGE_RANGE_YEARS[0], le=MATERNAL_AGE_RANGE_YEARS[1],
                              description="the patient's age (years)")
    reuse_same_date: bool = Field(False, description="answer the patient's visit of this date when there is one "
                                                     "(the page reopening a visit) instead of making another")


@router.post("/patients/{patient_id}/visits", status_code=201)
def create_visit(patient_id: str, body: VisitIn, response: Response, records: Records = Depends(get_records),
                 user: str = Depends(get_user), efw_method: str = Depends(get_efw_method)):
    """A new visit of the patient (the patient is created on the first visit): answered with its ``id``
    and figures (201). With ``reuse_same_date`` the patient's visit of that date, when there is one (200), with
    the LMP (or GA by dates), name and age given now kept."""
    _check_patient_id(patient_id)
    if body.date > _dt.date.today():
        raise ApiError(422, "exam_in_future", f"the exam date {body.date} lies in the future")
    _check_dates(body.date, body.lmp)
    if body.reuse_same_date:
        try:
            same = [v for v in records.visits(patient_id) if v["exam_date"] == body.date.isoformat()]
        except RecordError:
            same = []
        if same:  # reopened: the dating and the patient's fields typed now are kept, never dropped silently
            visit, changes = same[0], {}
            if body.lmp is not None and visit.get("lmp") != body.lmp.isoformat():
                changes["lmp"] = body.lmp.isoformat()
            elif body.lmp is None and body.ga_by_dates is not None and not visit.get("lmp") \
                    and visit.get("ga_by_dates_weeks") != body.ga_by_dates:
                changes["ga_by_dates_weeks"] = body.ga_by_dates
            try:
                if changes:
                    visit = records.update_visit(visit["id"], changes, user=user)
                records.update_patient(patient_id, name=body.name, age_years=body.age, user=user)
            except RecordError as exc:
                raise _record_error(exc) from None
            response.status_code = 200
            return _summary(records, visit, efw_method)
    sonographer = body.sonographer or (user if user != LOCAL_USER else None)
    visit = records.create_visit(patient_id, body.date.isoformat(), lmp=body.lmp and body.lmp.isoformat(),
                                 ga_by_dates_weeks=body.ga_by_dates, sonographer=sonographer, name=body.name,
                                 age_years=body.age, user=user)
    return _summary(records, visit, efw_method)


@router.get("/patients/{patient_id}/visits")
def list_visits(patient_id: str, records: Records = Depends(get_records),
                efw_method: str = Depends(get_efw_method)):
    """The patient (ID, name, age) and their visits, newest first, each with its figures."""
    _check_patient_id(patient_id)
    try:
        patient = records.patient(patient_id)
        visits = records.visits(patient_id)
    except RecordError as exc:
        raise _record_error(exc) from None
    return {"patient": patient, "visits": [_summary(records, v, efw_method) for v in visits]}


@router.get("/visits/{visit_id}")
def get_visit(visit_id: int, patient_id: str | None = Query(None, description="refuse a visit of another patient"),
              records: Records = Depends(get_records), efw_method: str = Depends(get_efw_method)):
    """The visit: its measurements, their mean (HC, BPD, OFD), GA by LMP and by the mean HC, the typed
    AC/FL, ``efw_g`` (and both EFW formulas), centiles, the previous visit and the growth since."""
    return _summary(records, _visit(records, visit_id, patient_id), efw_method)


#: Fields of a saved measurement that are not its content: two saves of the same content are one measurement
#: even when the server restarted between them (a new key, so a new signature and patient key).
_NOT_CONTENT = ("dicom_patient_key", "image_png_base64", "display", "signature", "identifiers",
                "saved_with_other_patient_id")
#: Not kept with a visit: the picture goes to its own column, the display is redrawn, and the DICOM's
#: patient fields (asked for with include_identifying) are the visit's patient's, or another's: neither is
#: the record's to copy.
_NOT_KEPT = ("image_png_base64", "display", "identifiers")
#: One save at a time: the checks of a save (the same measurement, the same scan) and its insert are one step,
#: so that two saves sent at once (a double tap, two tabs) cannot both pass the checks (a hostile test got two
#: rows of one scan in 4 of 13 tries). The server is one process; the record's own lock covers the write alone.
_SAVE_LOCK = threading.Lock()


@router.post("/visits/{visit_id}/measurements", status_code=201)
def save_measurement(visit_id: int, body: dict, response: Response, patient_id: str | None = Query(None),
                     other_patient_id: bool = Query(False, description="save it although the scan's DICOM names "
                                                                       "another patient ID than the visit's"),
                     replace: bool = Query(False, description="put it in the place of the visit's saved measurement "
                                                              "of the same scan and frame (a hand adjustment)"),
                     records: Records = Depends(get_records), settings: Settings = Depends(get_settings),
                     user: str = Depends(get_user), efw_method: str = Depends(get_efw_method)):
    """Keep a measurement with the visit: the JSON ``/measure`` or ``/biometry`` answered (this server's
    signature checked), with its picture (``image_png_base64``) when it has one. Refused (409) when its
    DICOM names another patient ID than the visit's (``dicom_of_another_patient``; ``other_patient_id=true``
    saves it anyway, and the audit log says so), when the same measurement is saved already
    (``measurement_already_saved``) and when another measurement of the same scan and frame is
    (``scan_already_saved``): a visit's means are of different scans, each counted once; ``replace=true``
    puts this one in its place (200), as a hand adjustment of that scan."""
    with _SAVE_LOCK:
        return _save_measurement(visit_id, body, response, patient_id, other_patient_id, replace, records, settings,
                                 user, efw_method)


def _save_measurement(visit_id, body, response, patient_id, other_patient_id, replace, records, settings, user,
                      efw_method):
    visit = _visit(records, visit_id, patient_id)
    m = _measurement_from(body, "saved", settings)
    if m.head_circumference_mm is None:  # in pixels (no pixel size) or nothing measured: nothing for the file
        raise ApiError(422, "measurement_not_in_mm", "only a measurement in mm can be saved to a visit: set the scale "
                                                     "(or type the pixel size), measure, then save")
    if not body.get("sha256"):  # an ellipse drawn through /biometry with no measurement: no scan to trace it to
        raise ApiError(422, "measurement_without_scan", "a visit keeps measurements of scans: measure the scan "
                                                        "(/measure), adjust it by hand if needed (/biometry with that "
                                                        "measurement), then save")
    content = canonical({k: v for k, v in body.items() if k not in _NOT_CONTENT})
    same_scan = None
    for row in records.measurements(visit["id"]):
        if canonical({k: v for k, v in row["measurement"].items() if k not in _NOT_CONTENT}) == content:
            raise ApiError(409, "measurement_already_saved",
                           f"this measurement is saved to the visit already (measurement {row['id']})")
        saved = row["measurement"]
        if body.get("sha256") and saved.get("sha256") == body.get("sha256") \
                and int(saved.get("frame") or 0) == int(body.get("frame") or 0):
            same_scan = row
    if same_scan is not None and not replace:
        raise ApiError(409, "scan_already_saved",
                       f"this scan is saved to the visit already (measurement {same_scan['id']}): a visit's means "
                       "are of different scans; replace=true puts this measurement in its place")
    # the patient after the scan (a scan saved already is said first: the user is not asked to confirm a patient
    # for a save that is refused anyway)
    scan_patient = body.get("dicom_patient_key")
    other = bool(scan_patient) and scan_patient != patient_key(visit["patient_id"], settings.signing_key)
    if other and not other_patient_id:
        raise ApiError(409, "dicom_of_another_patient",
                       "the scan's DICOM names another patient ID than this visit's: check that the scan is this "
                       "patient's, or open the visit of the patient it names (other_patient_id=true saves it anyway)")
    picture = None
    if body.get("image_png_base64"):
        try:
            picture = base64.b64decode(body["image_png_base64"], validate=True)
        except (binascii.Error, ValueError, TypeError):
            raise ApiError(400, "invalid_picture", "image_png_base64 is not base64") from None
    kept = {k: v for k, v in body.items() if k not in _NOT_KEPT}
    if other:  # saved anyway: the row says so wherever the visit is shown (page, reports), not only the audit log
        kept["saved_with_other_patient_id"] = True
    figures = dict(status=m.status, hc_mm=m.head_circumference_mm, bpd_mm=m.biparietal_diameter_mm,
                   ofd_mm=m.occipitofrontal_diameter_mm, picture_png=picture, user=user)
    try:
        if same_scan is not None:  # replace=true: the hand adjustment takes the saved one's place
            saved = records.replace_measurement(same_scan["id"], kept, **figures)
            response.status_code = 200
        else:
            saved = records.add_measurement(visit["id"], kept, **figures)
    except RecordError as exc:
        raise _record_error(exc) from None
    if other:
        records.audit(user, "saved_dicom_of_another_patient", visit["patient_id"], visit["id"],
                      f"measurement {saved['id']}: the DICOM names another patient ID, saved as asked")
    if visit.get("lmp") is None and visit.get("ga_by_dates_weeks") is None and m.ga_by_dates_weeks is not None:
        # the GA by dates typed for this measurement dates the visit that had none (its centiles, its report)
        try:
            visit = records.update_visit(visit["id"], {"ga_by_dates_weeks": m.ga_by_dates_weeks}, user=user)
        except RecordError as exc:
            raise _record_error(exc) from None
    out = _summary(records, visit, efw_method)
    out["saved_measurement_id"] = saved["id"]
    return out


class VisitChange(BaseModel):
    ac_mm: float | None = None
    fl_mm: float | None = None
    notes: str | None = Field(None, max_length=2000)
    lmp: _dt.date | None = None
    ga_by_dates: float | None = Field(None, **_GA)
    sonographer: str | None = Field(None, max_length=120)


@router.patch("/visits/{visit_id}")
def change_visit(visit_id: int, body: VisitChange, patient_id: str | None = Query(None),
                 records: Records = Depends(get_records), user: str = Depends(get_user),
                 efw_method: str = Depends(get_efw_method)):
    """Biometry typed from the scanner (AC, FL in mm), notes, LMP or GA by dates; ``null`` clears a field."""
    visit = _visit(records, visit_id, patient_id)
    changes = body.model_dump(exclude_unset=True)
    for key, check in (("ac_mm", check_ac_mm), ("fl_mm", check_fl_mm)):
        if changes.get(key) is not None:
            try:
                check(changes[key])
            except OutOfRangeError as exc:
                raise ApiError(422, f"{key[:2]}_out_of_range", str(exc)) from None
    if "lmp" in changes:
        _check_dates(_dt.date.fromisoformat(visit["exam_date"]), changes["lmp"])
        changes["lmp"] = changes["lmp"] and changes["lmp"].isoformat()
    if "ga_by_dates" in changes:
        changes["ga_by_dates_weeks"] = changes.pop("ga_by_dates")
    try:
        visit = records.update_visit(visit_id, changes, user=user)
    except RecordError as exc:
        raise _record_error(exc) from None
    return _summary(records, visit, efw_method)


def _history(records: Records, visit: dict, efw_method: str) -> list[dict]:
    """The patient's visits up to this one (newest first), each with its figures."""
    return [_summary(records, v, efw_method) for v in records.visits(visit["patient_id"])
            if v["exam_date"] <= visit["exam_date"]]


@router.get("/visits/{visit_id}/chart.svg")
def visit_chart(visit_id: int, lang: str = Query("en"), measure: str = Query("hc", pattern="^(hc|efw)$"),
                patient_id: str | None = Query(None), records: Records = Depends(get_records),
                efw_method: str = Depends(get_efw_method)):
    """The INTERGROWTH-21st HC chart with the mean HC of this visit and the earlier ones, dated, or
    (``measure=efw``) the INTERGROWTH-21st EFW chart with their fetal weights (SVG)."""
    if lang not in LANGUAGES:
        raise ApiError(400, "unknown_language", f"lang must be one of {', '.join(LANGUAGES)}")
    visit = _visit(records, visit_id, patient_id)
    draw = efw_chart_svg if measure == "efw" else visit_chart_svg
    return Response(draw(_history(records, visit, efw_method), translations(lang)), media_type="image/svg+xml")


@router.get("/visits/{visit_id}/report")
def visit_report(visit_id: int, format: str = Query("pdf", pattern="^(pdf|html)$"), lang: str = Query("en"),
                 patient_id: str | None = Query(None), records: Records = Depends(get_records),
                 user: str = Depends(get_user), efw_method: str = Depends(get_efw_method)):
    """One report of the visit (PDF or HTML; en, hi, te): the patient, the sonographer, the measurements
    and their mean, dating, AC/FL, both fetal weights, growth since the previous visit, every formula named.
    The file name carries the visit number only, never the patient."""
    if lang not in LANGUAGES:
        raise ApiError(400, "unknown_language", f"lang must be one of {', '.join(LANGUAGES)}")
    visit = _visit(records, visit_id, patient_id)
    summary = _summary(records, visit, efw_method)
    patient = records.patient(visit["patient_id"])
    history = _history(records, visit, efw_method)
    pictures = [m["picture_png"] for m in records.measurements(visit_id, with_pictures=True) if m.get("picture_png")]
    records.audit(user, "view_report", visit["patient_id"], visit_id, format)
    name = f"visit_{visit_id}_report.{format}"
    if format == "html":
        return HTMLResponse(visit_report_html(summary, patient, history, pictures[-1:], lang),
                            headers={"Content-Disposition": content_disposition(name)})
    return Response(visit_report_pdf(summary, patient, history, pictures[-1:], lang), media_type="application/pdf",
                    headers={"Content-Disposition": content_disposition(name)})


# --- the hospital hand-off of a saved measurement: DICOM SR and FHIR, with the visit -------------------


def _saved(records: Records, visit: dict, measurement_id: int) -> dict:
    """The saved measurement ``measurement_id`` of ``visit`` (404 ``unknown_measurement`` otherwise)."""
    try:
        row = records.measurement(measurement_id)
    except RecordError as exc:
        raise _record_error(exc) from None
    if row["visit_id"] != visit["id"]:
        raise ApiError(404, "unknown_measurement", f"measurement {measurement_id} is not one of visit {visit['id']}")
    return row


def _study_date(header) -> _dt.date | None:
    effective = study_effective(header) if header is not None else None
    return _dt.date.fromisoformat(effective[:10]) if effective else None


def _with_source(row: dict, visit: dict, data: bytes | None, name: str, other_patient_id: bool):
    """The saved measurement (figures recomputed, centiles at the visit's GA by dates on the study's day),
    its scan read from the file sent again (``None`` without one) and the visit's dating on that day.
    The file must be the one measured (409 ``measurement_of_another_scan``) and, unless
    ``other_patient_id``, name the visit's patient or none (409 ``dicom_of_another_patient``)."""
    stored = dict(row["measurement"])
    scan = header = None
    if data is not None:
        scan = _load(data, name, int(stored.get("frame") or 0))
        if stored.get("sha256") and stored["sha256"] != scan.sha256:
            raise ApiError(409, "measurement_of_another_scan",
                           "the file sent is not the scan this measurement was made on: send that scan")
        header = getattr(scan.dicom, "header", None)
        dicom_patient = str(header.get("PatientID", "") or "").strip() if header is not None else ""
        if dicom_patient and dicom_patient != visit["patient_id"] and not other_patient_id:
            raise ApiError(409, "dicom_of_another_patient",
                           "the DICOM file names another patient ID than this visit's: check that the scan is "
                           "this patient's (other_patient_id=true makes the SR anyway, in the DICOM's study)")
    dating = visit_dating(visit, _study_date(header))
    if dating is not None and dating.ga_days is not None:
        weeks = dating.ga_days / 7
        if GA_BY_DATES_RANGE_WEEKS[0] <= weeks <= GA_BY_DATES_RANGE_WEEKS[1]:
            stored["ga_by_dates_weeks"] = weeks  # the SR's centiles at the dating it carries
    try:
        m = Measurement.from_dict(stored)
    except ValueError as exc:
        raise ApiError(400, "invalid_measurement", f"saved measurement: {exc}"[:300]) from None
    if name:
        m.source = name
    return m, scan, header, dating


@router.post("/visits/{visit_id}/measurements/{measurement_id}/sr")
def visit_measurement_sr(visit_id: int, measurement_id: int,
                         file: UploadFile = File(..., description="the ultrasound DICOM instance the measurement "
                                                                  "was made on (the record keeps no DICOM)"),
                         part: str = Form("sr", pattern="^(sr|overlay)$"),
                         other_patient_id: bool = Form(False, description="make it although the DICOM names "
                                                                          "another patient ID than the visit's"),
                         patient_id: str | None = Query(None), records: Records = Depends(get_records),
                         model: HeadModel = Depends(get_model), settings: Settings = Depends(get_settings),
                         limiter=Depends(get_limiter), gone=Depends(get_client_gone), user: str = Depends(get_user)):
    """The DICOM SR (TID 5000) of a saved measurement with the visit's dating (the LMP, the EDD from it and
    the GA by dates on the study's day, in the summary section, TID 5002), or (``part=overlay``) its
    overlay capture; in the DICOM's study (application/dicom). The file name carries the visit and
    measurement numbers only."""
    visit = _visit(records, visit_id, patient_id)
    row = _saved(records, visit, measurement_id)
    data, name = read_upload(file, settings)
    with limiter.slot(gone):
        m, scan, _, dating = _with_source(row, visit, data, name, other_patient_id)
        body = dicom_hand_off(m, scan, part, model, dating=dating)
    records.audit(user, f"export_{part}", visit["patient_id"], visit_id, f"measurement {measurement_id}")
    return Response(body, media_type="application/dicom", headers={
        "Content-Disposition": content_disposition(f"visit_{visit_id}_measurement_{measurement_id}_{part}.dcm")})


def get_patient_id_system(request: Request) -> str:
    return getattr(request.app.state, "patient_id_system", None) or PATIENT_ID_SYSTEM


@router.post("/visits/{visit_id}/measurements/{measurement_id}/fhir")
def visit_measurement_fhir(visit_id: int, measurement_id: int,
                           file: UploadFile | None = File(None, description="the scan measured, for the study's "
                                                                            "date and time (optional)"),
                           bundle_type: str = Form("collection", pattern="^(collection|transaction)$"),
                           other_patient_id: bool = Form(False), patient_id: str | None = Query(None),
                           records: Records = Depends(get_records), model: HeadModel = Depends(get_model),
                           settings: Settings = Depends(get_settings), user: str = Depends(get_user),
                           system: str = Depends(get_patient_id_system), limiter=Depends(get_limiter),
                           gone=Depends(get_client_gone)):
    """The FHIR R4 Bundle of a saved measurement: every Observation's ``subject`` the visit's patient (by
    identifier), and the visit's LMP, EDD and GA by dates as Observations; effective on the study's
    date and time when the scan is sent, else on the visit's exam date (application/fhir+json)."""
    visit = _visit(records, visit_id, patient_id)
    row = _saved(records, visit, measurement_id)
    data, name = read_upload(file, settings) if file is not None else (None, "")
    with limiter.slot(gone):  # the scan sent is read like any other
        m, _, header, dating = _with_source(row, visit, data, name, other_patient_id)
    if m.head_circumference_mm is None:
        raise ApiError(422, "nothing_to_report", f"nothing measured in mm for a health record (status {m.status})")
    effective = (study_effective(header) if header is not None else None) or visit["exam_date"]
    bundle = fhir_bundle(m, model_version=model.version, model_sha256=model.metadata.get("sha256", ""),
                         bundle_type=bundle_type, effective=effective,
                         subject=patient_reference(visit["patient_id"], system), dating=dating)
    records.audit(user, "export_fhir", visit["patient_id"], visit_id, f"measurement {measurement_id}")
    return Response(json.dumps(bundle), media_type="application/fhir+json", headers={
        "Content-Disposition": content_disposition(f"visit_{visit_id}_measurement_{measurement_id}_fhir.json")})
