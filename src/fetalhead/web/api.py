"""The REST API (``/api/v1``): module-level handlers on an ``APIRouter``; the model and the
settings come in as dependencies from ``app.state`` (see :func:`fetalhead.web.app.create_app`).

The handlers decide nothing about a scan: :func:`fetalhead.measurement.load_scan` decides the
input type, :func:`fetalhead.measurement.measure_scan` the spacing and the status, and
:meth:`fetalhead.measurement.Measurement.with_ellipse` a hand adjustment (no network run).
CPU work runs in plain ``def`` handlers, which FastAPI runs in its thread pool, so the event
loop (and ``/health``) is never blocked by a scan.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from pathlib import Path
from urllib.parse import quote

import cv2
import numpy as np
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field, field_validator

from ..clinical.geometry import Ellipse
from ..scans.imageio import ScanReadError, is_plain_grey8_png, sniff_type
from ..clinical.biometry import CHART_NAMES, CHARTS, DEFAULT_CHART, chart_measures
from ..clinical.limits import GA_BY_DATES_RANGE_WEEKS, PIXEL_SIZE_RANGE_MM, LimitError, form_limits
from ..measurement import PAGE_SPACING_SOURCE, Measurement, ScaleError, load_scan, measure_scan, two_point_scale
from ..model.runtime import HeadModel
from ..outputs.results import ellipse_json
from ..outputs.report import LANGUAGES, display_values, growth_chart_svg, growth_curves, report_html, report_pdf, translations
from .._version import SOFTWARE_NAME
from .serving import CLIENT_GONE, ClientGone
from .signing import new_key, patient_key, sign, verify

__all__ = ["router", "ApiError", "get_model", "get_settings", "get_client_gone", "Settings", "content_disposition",
           "safe_name", "dicom_hand_off"]

router = APIRouter(prefix="/api/v1")
_LOG = logging.getLogger("fetalhead.web")

#: Longest a loop is measured for one request (s): a 9999-frame video took 211 s of CPU and held a
#: worker; past this the answer is a failed result that says so (issue 26).
LOOP_TIME_LIMIT_S = 60.0
#: Largest coordinate or axis (pixels) accepted for an ellipse: 4 x the largest image side.
MAX_ELLIPSE_PX = 4 * 8192


class ApiError(Exception):
    """An error answered as JSON ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Settings:
    """What the handlers need besides the model."""

    def __init__(self, max_upload_bytes: int, signing_key: bytes | None = None,
                 loop_time_limit_s: float = LOOP_TIME_LIMIT_S):
        self.max_upload_bytes = int(max_upload_bytes)
        self.loop_time_limit_s = float(loop_time_limit_s)
        #: the key this server signs its measurements with (made at start, never written down)
        self.signing_key = signing_key or new_key()


def get_model(request: Request) -> HeadModel:
    return request.app.state.model


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_limiter(request: Request):
    return request.app.state.limiter


def get_client_gone(request: Request) -> threading.Event:
    """Set once the client has closed its connection (:class:`fetalhead.web.serving.GuardMiddleware` sets
    it); a request that did not come through the guard gets one that is never set."""
    return request.scope.get(CLIENT_GONE) or threading.Event()


def safe_name(name: str | None) -> str:
    """A display name for an upload: its base name, printable characters only, at most 120."""
    base = Path(name or "upload").name
    clean = "".join(ch for ch in base if ch.isprintable() and ch not in "<>\"'`&\\/")
    return clean[:120] or "upload"


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / RFC 5987)."""
    ascii_name = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename) or "report"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _png_base64(grey: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8))
    return base64.b64encode(buf.tobytes()).decode() if ok else ""


def read_upload(file: UploadFile, settings: Settings) -> tuple[bytes, str]:
    """The upload's bytes (at most the limit, counted as read) and its display name."""
    limit = settings.max_upload_bytes
    data = file.file.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, "too_large", f"upload larger than {limit // 1_000_000} MB")
    if not data:
        raise ApiError(400, "empty", "the uploaded file is empty")
    if sniff_type(data) is None:
        raise ApiError(415, "unsupported_type", "not a PNG, JPEG, BMP, TIFF, DICOM or video (MP4, AVI) file "
                                                "(judged by content)")
    return data, safe_name(file.filename)


def _load(data: bytes, name: str, frame: int, include_identifying: bool = False, accept_anisotropic: bool = False,
          blank_outside_regions: bool = True):
    try:
        return load_scan(data, name, frame, accept_anisotropic, include_identifying,
                         blank_outside_regions=blank_outside_regions)
    except ScanReadError as exc:
        raise ApiError(422, "unreadable_scan", str(exc)) from None


_PS = dict(ge=PIXEL_SIZE_RANGE_MM[0], le=PIXEL_SIZE_RANGE_MM[1])
_GA = dict(ge=GA_BY_DATES_RANGE_WEEKS[0], le=GA_BY_DATES_RANGE_WEEKS[1])


# --- read-only endpoints ---------------------------------------------------------------------


@router.get("/health")
async def health(model: HeadModel = Depends(get_model)):
    """Liveness: the server answers and the model is loaded."""
    return {"status": "ok", "model_version": model.version}


@router.get("/model")
def model_card(model: HeadModel = Depends(get_model)):
    """The shipped model's metadata: version, input, training data and command, validation figures."""
    meta = model.metadata
    return {k: meta.get(k) for k in ("name", "version", "architecture", "input", "pipeline", "training",
                                     "validation", "validation_last_epoch", "sha256", "size_bytes", "license")}


@router.get("/limits")
def limits():
    """The limits of the form and the chart (pixel size, GA by dates, chart axes), from the formulas."""
    return form_limits()


@router.get("/i18n/{lang}")
def i18n(lang: str):
    """The page's labels in one language (en, hi, te)."""
    if lang not in LANGUAGES:
        raise ApiError(404, "unknown_language", f"language must be one of {', '.join(LANGUAGES)}")
    return translations(lang)


@router.get("/growth-chart")
def growth_chart(measure: str = Query("hc", pattern="^(hc|bpd|ofd)$"), chart: str = Query(DEFAULT_CHART)):
    """Centile curves (3rd, 10th, 50th, 90th, 97th; mm) of a growth chart over the chart's weeks."""
    _check_chart(chart)
    if measure not in chart_measures(chart):
        raise ApiError(400, "not_in_chart", f"the {CHART_NAMES[chart]} have no centiles for {measure}")
    return growth_curves(measure, chart=chart)


@router.get("/growth-chart.svg")
def growth_chart_picture(lang: str = Query("en"), hc_mm: float | None = Query(None, gt=0, lt=10_000),
                         ga_weeks: float | None = Query(None, **_GA), chart: str = Query(DEFAULT_CHART)):
    """The HC centile chart as the report draws it (SVG), with this fetus when both values are given."""
    _check_lang(lang)
    _check_chart(chart)
    return Response(growth_chart_svg(hc_mm, ga_weeks, translations(lang), chart=chart), media_type="image/svg+xml")


def _check_chart(chart: str) -> None:
    if chart not in CHARTS:
        raise ApiError(400, "unknown_chart", f"chart must be one of {', '.join(CHARTS)}")


def _check_lang(lang: str) -> None:
    if lang not in LANGUAGES:
        raise ApiError(400, "unknown_language", f"lang must be one of {', '.join(LANGUAGES)}")


def _answer(m: Measurement, lang: str, settings: Settings, dicom_patient_key: str | None = None) -> dict:
    """A measurement's JSON form, signed by this server (``signature``, see :mod:`fetalhead.web.signing`),
    with ``display``: its figures written out in ``lang`` (as the report writes them), and, for a DICOM
    that names a patient, ``dicom_patient_key`` (:func:`fetalhead.web.signing.patient_key`: a visit checks
    the patient without the answer showing the ID)."""
    out = m.to_dict()
    out["software"] = SOFTWARE_NAME  # what measured: the software and (model_version) its model
    if dicom_patient_key:
        out["dicom_patient_key"] = dicom_patient_key
    out["signature"] = sign(out, settings.signing_key)
    out["display"] = display_values(m, translations(lang))
    return out


# --- measuring -------------------------------------------------------------------------------


@router.post("/measure")
def measure_endpoint(file: UploadFile = File(..., description="PNG, JPEG, BMP, TIFF, DICOM or a video loop"),
                     pixel_size_mm: float | None = Form(None, **_PS), ga_weeks: float | None = Form(None, **_GA),
                     frame: int | None = Form(None, ge=0, le=100_000, description="a loop's frame to measure, "
                                              "counted from 0 (the page and the reports say 'frame N of M', "
                                              "counted from 1: frame 0 is 'frame 1 of M'); without it a loop "
                                              "is measured whole and its best frame answered, with every "
                                              "frame's HC in hc_trace"),
                     include_identifying: bool = Form(False),
                     keep_outside_regions: bool = Form(False, description="DICOM: keep the pixels outside the "
                                                       "ultrasound regions (burned-in text) in the image answered"),
                     accept_anisotropic: bool = Form(False), include_image: bool = Form(True),
                     lang: str = Form("en", description="language of the figures written out in `display`"),
                     chart: str = Form(DEFAULT_CHART, description="growth chart of the centiles: intergrowth or who"),
                     scale_points: str | None = Form(None, description="a scale set by hand instead of pixel_size_mm: "
                                                     "two points of the picture, 'x1,y1,x2,y2' (pixels of the "
                                                     "image measured, as image_width/height), with "
                                                     "scale_distance_cm; spacing_source is then two_points"),
                     scale_distance_cm: float | None = Form(None, description="the distance between the two "
                                                            "scale_points (cm)"),
                     model: HeadModel = Depends(get_model), settings: Settings = Depends(get_settings),
                     limiter=Depends(get_limiter), gone: threading.Event = Depends(get_client_gone)):
    """Measure the fetal head on an uploaded scan. DICOM files use their own calibration. A loop
    stops being measured when the client leaves (its worker is free again). Two points and their
    distance (``scale_points``, ``scale_distance_cm``) that give no scale are refused (422, the code of
    :data:`fetalhead.measurement.SCALE_ERRORS`)."""
    _check_lang(lang)
    _check_chart(chart)
    data, name = read_upload(file, settings)
    with limiter.slot(gone):
        blank = not keep_outside_regions
        scan = _load(data, name, frame or 0, include_identifying, accept_anisotropic, blank)
        scale = dict(scale_points=scale_points, scale_distance_cm=scale_distance_cm)
        if scale_points is not None or scale_distance_cm is not None:
            _check_scale(scale_points, scale_distance_cm, pixel_size_mm, scan)
        if frame is None:  # a loop: its best frame (a still image: itself)
            from ..measurement import measure_loop

            m = measure_loop(data, pixel_size_mm, frames="best", ga_weeks=ga_weeks, model=model, source=name,
                             spacing_source=PAGE_SPACING_SOURCE, accept_anisotropic=accept_anisotropic,
                             include_identifying=include_identifying, chart=chart, blank_outside_regions=blank,
                             first=scan, time_limit_s=settings.loop_time_limit_s, should_stop=gone.is_set,
                             **scale)[0]
            if m.failure == "stopped":
                _LOG.warning("%s: client left; measuring stopped after %d of %d frames", name, m.frame, m.n_frames)
                raise ClientGone(f"{name}: the client left")
            if m.frame != scan.frame and m.status != "failed":
                scan = _load(data, name, m.frame, include_identifying, accept_anisotropic, blank)
        else:
            m = measure_scan(scan, pixel_size_mm, ga_weeks=ga_weeks, model=model, spacing_source=PAGE_SPACING_SOURCE,
                             chart=chart, **scale)
        out = _answer(m, lang, settings, _dicom_patient_key(scan, settings))
        if include_image:  # a plain 8-bit grey PNG upload is the image measured: sent back as it came
            plain = scan.kind == "png" and scan.frame == 0 and is_plain_grey8_png(data)
            out["image_png_base64"] = base64.b64encode(data).decode() if plain else _png_base64(scan.image)
    return out


def _dicom_patient_key(scan, settings: Settings) -> str | None:
    """The keyed digest of the patient ID a DICOM scan names (None: not a DICOM, or no ID)."""
    header = getattr(scan.dicom, "header", None)
    pid = str(header.get("PatientID", "") or "").strip() if header is not None else ""
    return patient_key(pid, settings.signing_key) if pid else None


def _check_scale(points, distance_cm, pixel_size_mm, scan) -> None:
    """Two points and a distance refused before measuring, with the library's code (422)."""
    if pixel_size_mm is not None:
        raise ApiError(422, "scale_and_pixel_size", "give either pixel_size_mm or scale_points with "
                                                    "scale_distance_cm, not both")
    h, w = scan.image.shape[:2]
    try:
        two_point_scale(points, distance_cm, (w, h))
    except ScaleError as exc:
        raise ApiError(422, exc.code, str(exc)) from None


class EllipseIn(BaseModel):
    center_x: float = Field(ge=-MAX_ELLIPSE_PX, le=MAX_ELLIPSE_PX)
    center_y: float = Field(ge=-MAX_ELLIPSE_PX, le=MAX_ELLIPSE_PX)
    semi_major: float = Field(gt=0, le=MAX_ELLIPSE_PX)
    semi_minor: float = Field(gt=0, le=MAX_ELLIPSE_PX)
    angle_deg: float = Field(ge=-3600, le=3600)

    def to_ellipse(self) -> Ellipse:
        try:
            return Ellipse.from_axes(self.center_x, self.center_y, self.semi_major, self.semi_minor, self.angle_deg)
        except ValueError as exc:
            raise ApiError(400, "invalid_ellipse", str(exc)) from None


class BiometryIn(BaseModel):
    """An ellipse adjusted by hand, with the measurement it adjusts (as ``/measure`` answered it),
    or, without one, the pixel spacing to use."""

    ellipse: EllipseIn
    measurement: dict | None = None
    pixel_spacing_mm: float | list[float] | None = None
    ga_weeks: float | None = Field(None, **_GA)
    lang: str = "en"
    chart: str | None = None  # another growth chart for the centiles (default: the measurement's)

    @field_validator("pixel_spacing_mm")
    @classmethod
    def _spacing(cls, v):
        if isinstance(v, list) and len(v) != 2:
            raise ValueError("pixel_spacing_mm must be a number or [x, y]")
        return v


def _measurement_from(body, source: str, settings: Settings) -> Measurement:
    """A measurement sent back by the page: refused (409) unless this server issued it as it is, then
    its figures recomputed from its ellipse."""
    if not verify(body, settings.signing_key):
        raise ApiError(409, "measurement_not_issued",
                       "the measurement sent is not one this server issued, or it was changed since (flags, "
                       "intervals, ellipse, identifiers), or the server has restarted: measure the scan again")
    try:
        m = Measurement.from_dict(body)
    except (LimitError, ValueError, TypeError) as exc:
        raise ApiError(400, "invalid_measurement", f"measurement: {exc}"[:300]) from None
    if not m.source:
        m.source = source
    return m


@router.post("/biometry")
def biometry_endpoint(body: BiometryIn, settings: Settings = Depends(get_settings), limiter=Depends(get_limiter),
                      gone: threading.Event = Depends(get_client_gone)):
    """The figures, flags and status for an ellipse adjusted by hand (pixels), without the network.

    With ``measurement`` (the page's current result) the scan's flags, spacing, frame and
    quality are kept; ``ga_weeks`` is the gestational age by dates now entered (null: none).
    Counted by the work limiter like a scan (its JSON can be large).
    """
    _check_lang(body.lang)
    if body.chart is not None:
        _check_chart(body.chart)
    with limiter.slot(gone):
        return _biometry(body, settings)


def _biometry(body: BiometryIn, settings: Settings) -> dict:
    e = body.ellipse.to_ellipse()
    if body.measurement is not None:
        m = _measurement_from(body.measurement, "adjusted", settings)
        if m.ellipse is None:
            raise ApiError(400, "invalid_measurement", "the measurement has no ellipse to adjust (it failed)")
        try:
            chart = m.chart if body.chart is None else body.chart
            return _answer(m.with_ellipse(e, ga_weeks=body.ga_weeks, chart=chart), body.lang, settings,
                           body.measurement.get("dicom_patient_key"))  # signed: kept as issued
        except (LimitError, ValueError) as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None
    try:
        m = Measurement.from_dict({"path": "adjusted", "status": "ok", "pixel_spacing_mm": body.pixel_spacing_mm,
                                   "spacing_source": PAGE_SPACING_SOURCE, "ellipse": ellipse_json(e),
                                   "ga_by_dates_weeks": body.ga_weeks, "flags": ["adjusted_by_hand"],
                                   "chart": body.chart or DEFAULT_CHART})
    except (LimitError, ValueError) as exc:
        raise ApiError(400, "invalid_pixel_size_mm", str(exc)) from None
    return _answer(m, body.lang, settings)


@router.post("/report")
def report_endpoint(file: UploadFile = File(..., description="the scan, for the picture"),
                    measurement: str | None = Form(None, description="the measurement shown (JSON, as /measure or "
                                                                      "/biometry answered it); without it the scan "
                                                                      "is measured"),
                    pixel_size_mm: float | None = Form(None, **_PS), ga_weeks: float | None = Form(None, **_GA),
                    frame: int = Form(0, ge=0, le=100_000), lang: str = Form("en"), format: str = Form("pdf"),
                    chart: str = Form(DEFAULT_CHART, description="growth chart, when the scan is measured here"),
                    model: HeadModel = Depends(get_model), settings: Settings = Depends(get_settings),
                    limiter=Depends(get_limiter), gone: threading.Event = Depends(get_client_gone)):
    """The printable report (PDF or HTML) of exactly the measurement sent (figures recomputed from its
    ellipse by the same code, no network run); the scan is sent for the picture only."""
    _check_lang(lang)
    _check_chart(chart)
    if format not in ("pdf", "html"):
        raise ApiError(400, "unknown_format", "format must be pdf or html")
    data, name = read_upload(file, settings)
    with limiter.slot(gone):
        return _report(data, name, measurement, pixel_size_mm, ga_weeks, frame, lang, format, model, chart,
                       settings)


def _measurement_and_scan(data, name, measurement, pixel_size_mm, ga_weeks, frame, model, chart, settings):
    """The measurement sent (figures recomputed from its ellipse) with its scan, or the scan measured here."""
    if measurement:
        try:
            sent = json.loads(measurement)
        except ValueError as exc:
            raise ApiError(400, "invalid_measurement", f"measurement: not JSON ({exc})"[:300]) from None
        m = _measurement_from(sent, name, settings)
        scan = _load(data, name, m.frame)
        if m.sha256 != scan.sha256:
            raise ApiError(409, "measurement_of_another_scan",
                           "the measurement sent is of another file than the scan sent: measure this scan first")
        m.source = name
        return m, scan
    scan = _load(data, name, frame)
    return measure_scan(scan, pixel_size_mm, ga_weeks=ga_weeks, model=model, spacing_source=PAGE_SPACING_SOURCE,
                        chart=chart), scan


def _report(data, name, measurement, pixel_size_mm, ga_weeks, frame, lang, format, model, chart, settings):
    m, scan = _measurement_and_scan(data, name, measurement, pixel_size_mm, ga_weeks, frame, model, chart,
                                    settings)
    stem = Path(name).stem or "scan"
    if format == "html":
        return HTMLResponse(report_html(m, scan.image, lang),
                            headers={"Content-Disposition": content_disposition(f"{stem}_report.html")})
    return Response(report_pdf(m, scan.image, lang), media_type="application/pdf",
                    headers={"Content-Disposition": content_disposition(f"{stem}_report.pdf")})


_MEASUREMENT_FORM = "the measurement (JSON, as /measure or /biometry answered it); without it the scan is measured"


@router.post("/sr")
def sr_endpoint(file: UploadFile = File(..., description="the ultrasound DICOM instance measured"),
                measurement: str | None = Form(None, description=_MEASUREMENT_FORM),
                ga_weeks: float | None = Form(None, **_GA), frame: int = Form(0, ge=0, le=100_000),
                chart: str = Form(DEFAULT_CHART), part: str = Form("sr", pattern="^(sr|overlay)$"),
                model: HeadModel = Depends(get_model), settings: Settings = Depends(get_settings),
                limiter=Depends(get_limiter), gone: threading.Event = Depends(get_client_gone)):
    """The DICOM Comprehensive SR (TID 5000) of the measurement, or (``part=overlay``) the secondary
    capture of its overlay, in the source's study and a new series (application/dicom)."""
    _check_chart(chart)
    data, name = read_upload(file, settings)
    with limiter.slot(gone):
        m, scan = _measurement_and_scan(data, name, measurement, None, ga_weeks, frame, model, chart, settings)
        body = dicom_hand_off(m, scan, part, model)
    stem = Path(name).stem or "scan"
    return Response(body, media_type="application/dicom",
                    headers={"Content-Disposition": content_disposition(f"{stem}_{part}.dcm")})


def dicom_hand_off(m: Measurement, scan, part: str, model: HeadModel, dating=None) -> bytes:
    """The SR (``part="sr"``, with a visit record's ``dating`` when given) or the overlay capture
    (``"overlay"``) of measurement ``m`` of the DICOM ``scan``, encoded as a DICOM file."""
    from ..hospital.sr import overlay_capture, structured_report
    from ..outputs.overlay import draw_overlay

    header = getattr(scan.dicom, "header", None)
    if header is None:
        raise ApiError(415, "not_dicom", "a DICOM SR needs the source DICOM instance (this file is not DICOM)")
    if m.head_circumference_mm is None:
        raise ApiError(422, "nothing_to_report", f"nothing measured in mm to report (status {m.status})")
    if part == "sr":
        ds = structured_report(m, header, model_version=model.version, model_sha256=model.metadata.get("sha256", ""),
                               dating=dating)
    else:
        ds = overlay_capture(m, header, draw_overlay(scan.image, m, with_text=False), model_version=model.version)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@router.post("/fhir")
def fhir_endpoint(file: UploadFile = File(..., description="the scan measured"),
                  measurement: str | None = Form(None, description=_MEASUREMENT_FORM),
                  pixel_size_mm: float | None = Form(None, **_PS), ga_weeks: float | None = Form(None, **_GA),
                  frame: int = Form(0, ge=0, le=100_000), chart: str = Form(DEFAULT_CHART),
                  bundle_type: str = Form("collection", pattern="^(collection|transaction)$",
                                          description="collection, or transaction (entries with their POST "
                                                      "requests, for a FHIR server)"),
                  model: HeadModel = Depends(get_model), settings: Settings = Depends(get_settings),
                  limiter=Depends(get_limiter), gone: threading.Event = Depends(get_client_gone)):
    """The FHIR R4 Bundle of the measurement: LOINC-coded Observations in UCUM units, the device, the
    imaging study by its Study Instance UID; no patient data (application/fhir+json)."""
    from ..hospital.fhir import fhir_bundle, study_effective

    _check_chart(chart)
    data, name = read_upload(file, settings)
    with limiter.slot(gone):
        m, scan = _measurement_and_scan(data, name, measurement, pixel_size_mm, ga_weeks, frame, model, chart,
                                        settings)
    if m.head_circumference_mm is None:
        raise ApiError(422, "nothing_to_report", f"nothing measured in mm for a health record (status {m.status})")
    header = getattr(getattr(scan, "dicom", None), "header", None)
    bundle = fhir_bundle(m, model_version=model.version, model_sha256=model.metadata.get("sha256", ""),
                         bundle_type=bundle_type, effective=study_effective(header) if header is not None else None)
    return Response(json.dumps(bundle), media_type="application/fhir+json")
