"""The clinic's screen: a FastAPI app serving the REST API and a plain HTML/JS page.

``fetalhead serve`` runs it on 127.0.0.1. Needs the ``web`` extra (FastAPI,
uvicorn, python-multipart; fpdf2 and uharfbuzz for PDF reports).

Safety: uploads are limited in size and accepted by their content (magic bytes),
not their name; every error is a JSON ``{"error": {"code", "message"}}`` with a
4xx status; an upload is only ever written into a fresh temporary folder that is
removed after the request; identifying DICOM fields are returned only when
``include_identifying`` is asked for; the page writes untrusted text with
``textContent`` only, and a Content-Security-Policy allows nothing but this
server (no CDN, no external request).
"""


import base64
import html
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np

from ..geometry import Ellipse, ellipse_landmarks
from ..imageio import ScanReadError, read_scan
from ..measurement import REVIEW_FLAGS, Measurement, apply_biometry, measure_image
from ..model import load_model
from ..report import LANGUAGES, growth_curves, report_html, report_pdf, translations

__all__ = ["create_app", "sniff_type", "DEFAULT_MAX_UPLOAD_BYTES"]

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
_SUFFIX = {"png": ".png", "jpeg": ".jpg", "bmp": ".bmp", "tiff": ".tif", "dicom": ".dcm"}


def sniff_type(data: bytes) -> str | None:
    """The scan type from the file's first bytes: png, jpeg, bmp, tiff, dicom, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM") and len(data) > 26:
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if len(data) > 132 and data[128:132] == b"DICM":
        return "dicom"
    return None


def _safe_name(name: str | None) -> str:
    """A display name for an upload: its base name, printable characters only, at most 120."""
    base = Path(name or "upload").name
    clean = "".join(ch for ch in base if ch.isprintable() and ch not in "<>\"'`&\\/")
    return clean[:120] or "upload"


def _png_base64(grey: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", np.clip(grey * 255 + 0.5, 0, 255).astype(np.uint8))
    return base64.b64encode(buf.tobytes()).decode() if ok else ""


def create_app(model_path: str | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES):
    """Build the FastAPI application (the model is loaded once, at start)."""
    from fastapi import FastAPI, File, Form, Query, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
    from pydantic import BaseModel, Field
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from .. import __version__

    model = load_model(model_path)
    app = FastAPI(title="fetalhead", version=__version__, docs_url=None, redoc_url=None,
                  description="Fetal head biometry on 2D ultrasound. Results need a clinician's review.")

    class ApiError(Exception):
        def __init__(self, status: int, code: str, message: str):
            self.status, self.code, self.message = status, code, message

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, "http_error", str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in e.get('loc', []))}: {e.get('msg', '')}" for e in exc.errors()]
        return error(422, "invalid_request", "; ".join(parts)[:500])

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > max_upload_bytes + 1_000_000:
            return error(413, "too_large", f"upload larger than {max_upload_bytes // 1_000_000} MB")
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
            "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    async def read_upload(file: UploadFile) -> tuple[bytes, str]:
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise ApiError(413, "too_large", f"upload larger than {max_upload_bytes // 1_000_000} MB")
        if not data:
            raise ApiError(400, "empty", "the uploaded file is empty")
        kind = sniff_type(data)
        if kind is None:
            raise ApiError(415, "unsupported_type", "not a PNG, JPEG, BMP, TIFF or DICOM file (judged by content)")
        return data, kind

    def measure_upload(data: bytes, kind: str, name: str, pixel_size_mm, ga_weeks, frame: int,
                       include_identifying: bool, accept_anisotropic: bool) -> tuple[Measurement, np.ndarray]:
        if pixel_size_mm is not None and not pixel_size_mm > 0:
            raise ApiError(400, "invalid_pixel_size", "pixel_size_mm must be positive")
        with tempfile.TemporaryDirectory(prefix="fetalhead-") as tmp:
            path = Path(tmp) / ("upload" + _SUFFIX[kind])
            path.write_bytes(data)
            try:
                if kind == "dicom":
                    from ..dicom import read_dicom

                    scan = read_dicom(path, frame=frame, accept_anisotropic=accept_anisotropic,
                                      include_identifying=include_identifying)
                    grey = scan.image
                else:
                    scan, grey = None, read_scan(path)
            except ScanReadError as exc:
                raise ApiError(422, "unreadable_scan", str(exc).replace(str(path), name)) from None
        m = measure_image(grey, pixel_size_mm, dicom_scan=scan, ga_weeks=ga_weeks, model=model, source=name,
                          spacing_source="entered on the page")
        m.messages = [msg.replace(str(path), name) for msg in m.messages]
        return m, grey

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str):
        allowed = {"app.js": "text/javascript", "style.css": "text/css", "docs.js": "text/javascript"}
        if name not in allowed:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(STATIC / name, media_type=allowed[name])

    @app.get("/static/fonts/{name}", include_in_schema=False)
    def fonts(name: str):
        allowed = {"NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSansDevanagari-Regular.ttf",
                   "NotoSansTelugu-Regular.ttf", "OFL.txt"}
        if name not in allowed:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(STATIC.parent / "fonts" / name,
                            media_type="text/plain" if name.endswith(".txt") else "font/ttf")

    @app.get("/api/v1/health")
    def health():
        """Liveness: the server answers and the model is loaded."""
        return {"status": "ok", "model_version": model.version}

    @app.get("/api/v1/model")
    def model_card():
        """The shipped model's metadata: version, input, training data and command, validation figures."""
        meta = model.metadata
        return {k: meta.get(k) for k in ("name", "version", "architecture", "input", "pipeline", "training",
                                         "validation", "validation_last_epoch", "sha256", "size_bytes", "license")}

    @app.get("/api/v1/i18n/{lang}")
    def i18n(lang: str):
        """The page's labels in one language (en, hi, te)."""
        if lang not in LANGUAGES:
            raise ApiError(404, "unknown_language", f"language must be one of {', '.join(LANGUAGES)}")
        return translations(lang)

    @app.get("/api/v1/growth-chart")
    def growth_chart(measure: str = Query("hc", pattern="^(hc|bpd|ofd)$")):
        """INTERGROWTH-21st centile curves (3rd, 10th, 50th, 90th, 97th; mm) over 14-40 weeks."""
        return growth_curves(measure)

    @app.post("/api/v1/measure")
    async def measure_endpoint(file: UploadFile = File(..., description="PNG, JPEG, BMP, TIFF or DICOM"),
                               pixel_size_mm: float | None = Form(None, gt=0, lt=10),
                               ga_weeks: float | None = Form(None, ge=5, le=45),
                               frame: int = Form(0, ge=0),
                               include_identifying: bool = Form(False),
                               accept_anisotropic: bool = Form(False),
                               include_image: bool = Form(True)):
        """Measure the fetal head on an uploaded scan. DICOM files use their own calibration."""
        data, kind = await read_upload(file)
        name = _safe_name(file.filename)
        m, grey = measure_upload(data, kind, name, pixel_size_mm, ga_weeks, frame, include_identifying,
                                 accept_anisotropic)
        out = m.to_dict()
        out["path"] = name
        out["image_width"], out["image_height"] = int(grey.shape[1]), int(grey.shape[0])
        if include_image:
            out["image_png_base64"] = _png_base64(grey)
        return out

    class EllipseIn(BaseModel):
        center_x: float
        center_y: float
        semi_major: float = Field(gt=0)
        semi_minor: float = Field(gt=0)
        angle_deg: float

    class BiometryIn(BaseModel):
        ellipse: EllipseIn
        pixel_spacing_mm: float | list[float] | None = None
        ga_weeks: float | None = Field(None, ge=5, le=45)

    def _ellipse(e: EllipseIn) -> Ellipse:
        try:
            return Ellipse.from_axes(e.center_x, e.center_y, e.semi_major, e.semi_minor, e.angle_deg)
        except ValueError as exc:
            raise ApiError(400, "invalid_ellipse", str(exc)) from None

    @app.post("/api/v1/biometry")
    def biometry_endpoint(body: BiometryIn):
        """Recompute the figures for an ellipse adjusted by hand (pixels)."""
        e = _ellipse(body.ellipse)
        spacing = body.pixel_spacing_mm
        if isinstance(spacing, list):
            if len(spacing) != 2:
                raise ApiError(400, "invalid_pixel_size", "pixel_spacing_mm must be a number or [x, y]")
            spacing = tuple(spacing)
        m = Measurement("adjusted", "ok", ellipse=e, landmarks=ellipse_landmarks(e), model_version=model.version)
        try:
            apply_biometry(m, spacing, "entered on the page", body.ga_weeks)
        except ValueError as exc:
            raise ApiError(400, "invalid_pixel_size", str(exc)) from None
        m.flags.append("adjusted_by_hand")
        return m.to_dict()

    @app.post("/api/v1/report")
    async def report_endpoint(file: UploadFile = File(...), pixel_size_mm: float | None = Form(None, gt=0, lt=10),
                              ga_weeks: float | None = Form(None, ge=5, le=45), frame: int = Form(0, ge=0),
                              lang: str = Form("en"), format: str = Form("pdf"),
                              ellipse: str | None = Form(None, description="JSON of an ellipse adjusted by hand")):
        """The printable report (PDF or HTML) of an uploaded scan, optionally with an adjusted ellipse."""
        if lang not in LANGUAGES:
            raise ApiError(400, "unknown_language", f"lang must be one of {', '.join(LANGUAGES)}")
        if format not in ("pdf", "html"):
            raise ApiError(400, "unknown_format", "format must be pdf or html")
        data, kind = await read_upload(file)
        name = _safe_name(file.filename)
        m, grey = measure_upload(data, kind, name, pixel_size_mm, ga_weeks, frame, False, False)
        if ellipse:
            try:
                e = _ellipse(EllipseIn(**json.loads(ellipse)))
            except (ValueError, TypeError) as exc:
                raise ApiError(400, "invalid_ellipse", f"ellipse: {exc}"[:300]) from None
            spacing, source = m.pixel_spacing_mm, m.spacing_source
            keep = [f for f in m.flags if f in REVIEW_FLAGS]
            m = Measurement(name, "flagged" if keep else "ok", ellipse=e, landmarks=ellipse_landmarks(e), model_version=m.model_version,
                            quality=m.quality, flags=keep + ["adjusted_by_hand"], identifiers=m.identifiers)
            apply_biometry(m, spacing, source, ga_weeks)
        stem = Path(name).stem or "scan"
        if format == "html":
            return HTMLResponse(report_html(m, grey, lang),
                                headers={"Content-Disposition": f'attachment; filename="{stem}_report.html"'})
        return Response(report_pdf(m, grey, lang), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{stem}_report.pdf"'})

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs():
        """API documentation rendered here from the OpenAPI schema (no external assets)."""
        spec = app.openapi()
        rows = []
        for path, ops in spec.get("paths", {}).items():
            for method, op in ops.items():
                params = [p.get("name", "") for p in op.get("parameters", [])]
                body = op.get("requestBody", {}).get("content", {})
                form = []
                for ctype, c in body.items():
                    ref = c.get("schema", {}).get("$ref", "")
                    schema = spec.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
                    form += [f"{k} ({ctype})" for k in schema.get("properties", {})]
                rows.append(f"<section><h2><code>{html.escape(method.upper())} {html.escape(path)}</code></h2>"
                            f"<p>{html.escape(op.get('description') or op.get('summary') or '')}</p>"
                            + (f"<p>Query: {html.escape(', '.join(params))}</p>" if params else "")
                            + (f"<p>Body: {html.escape(', '.join(form))}</p>" if form else "") + "</section>")
        return ("<!doctype html><html><head><meta charset='utf-8'><title>fetalhead API</title>"
                "<link rel='stylesheet' href='/static/style.css'></head><body class='docs'>"
                f"<h1>fetalhead API {html.escape(spec['info']['version'])}</h1>"
                "<p>The machine-readable schema is at <a href='/openapi.json'>/openapi.json</a>. "
                "Errors are JSON: {\"error\": {\"code\", \"message\"}}.</p>" + "".join(rows) + "</body></html>")

    return app
