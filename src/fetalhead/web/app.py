"""The clinic's screen: a FastAPI app serving the REST API (:mod:`fetalhead.web.api`) and a
plain HTML/JS page.

``fetalhead serve`` runs it on 127.0.0.1. Needs the ``web`` extra (FastAPI,
uvicorn, python-multipart; fpdf2 and uharfbuzz for PDF reports).

Safety: uploads are limited in size and accepted by their content (magic bytes),
not their name; every error is a JSON ``{"error": {"code", "message"}}`` with a
4xx status (a 500 too, never a traceback); uploads are decoded in memory, never
written to disk; identifying DICOM fields are returned only when
``include_identifying`` is asked for; the page writes untrusted text with
``textContent`` only, and a Content-Security-Policy allows nothing but this
server (no CDN, no external request).
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..assets import FONTS_DIR, WEB_FONTS_DIR
from ..scans.imageio import sniff_type
from ..model.runtime import load_model
from .api import LOOP_TIME_LIMIT_S, ApiError, Settings, router
from .serving import LOOPBACK_HOSTS, Busy, ClientGone, GuardMiddleware, WorkLimiter
from .visits import router as visits_router
from ..clinical.growth import EFW_METHODS
from ..records.store import Records

__all__ = ["create_app", "sniff_type", "DEFAULT_MAX_UPLOAD_BYTES", "SECURITY_HEADERS"]

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_BYTES = 64 * 1024 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_STATIC_FILES = {"app.js": "text/javascript", "style.css": "text/css"}
_FONT_FILES = {p.name for p in WEB_FONTS_DIR.glob("*.woff2")}


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=SECURITY_HEADERS)


async def _api_error(request: Request, exc: ApiError):
    return error_response(exc.status, exc.code, exc.message)


async def _http_error(request: Request, exc: StarletteHTTPException):
    return error_response(exc.status_code, "http_error", str(exc.detail))


#: Form fields whose errors get their own code (``invalid_<field>``), which the page translates.
CODED_FIELDS = ("pixel_size_mm", "ga_weeks", "scale_distance_cm")


async def _validation_error(request: Request, exc: RequestValidationError):
    errors = exc.errors()
    parts = [f"{'.'.join(str(x) for x in e.get('loc', []))}: {e.get('msg', '')}" for e in errors]
    fields = [str(e.get("loc", [""])[-1]) for e in errors]
    code = next((f"invalid_{f}" for f in fields if f in CODED_FIELDS), "invalid_request")
    return error_response(422, code, "; ".join(parts)[:500])


async def _busy(request: Request, exc: Busy):
    resp = error_response(503, "busy", str(exc))
    resp.headers["Retry-After"] = str(exc.retry_after_s)
    return resp


async def _client_gone(request: Request, exc: ClientGone):
    # nobody reads this answer (the connection is closed); 499 as nginx logs a client that closed first
    return error_response(499, "client_left", str(exc))


async def _unexpected_error(request: Request, exc: Exception):
    return error_response(500, "internal_error", "the server could not handle this request")


def index():
    return FileResponse(STATIC / "index.html", media_type="text/html")


def static(name: str):
    if name not in _STATIC_FILES:
        raise ApiError(404, "not_found", "no such file")
    return FileResponse(STATIC / name, media_type=_STATIC_FILES[name])


def fonts(name: str):
    """The page's fonts (WOFF2 subsets) and their licence; cached: they change only with a release."""
    if name == "OFL.txt":
        return FileResponse(FONTS_DIR / name, media_type="text/plain")
    if name not in _FONT_FILES:
        raise ApiError(404, "not_found", "no such file")
    return FileResponse(WEB_FONTS_DIR / name, media_type="font/woff2",
                        headers={"Cache-Control": "public, max-age=604800"})


def docs(request: Request):
    """API documentation rendered here from the OpenAPI schema (no external assets)."""
    spec = request.app.openapi()
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
    return HTMLResponse("<!doctype html><html><head><meta charset='utf-8'><title>fetalhead API</title>"
                        "<link rel='stylesheet' href='/static/style.css'></head><body class='docs'>"
                        f"<h1>fetalhead API {html.escape(spec['info']['version'])}</h1>"
                        "<p>The machine-readable schema is at <a href='/openapi.json'>/openapi.json</a>. "
                        "Errors are JSON: {\"error\": {\"code\", \"message\"}}.</p>" + "".join(rows) + "</body></html>")


def create_app(model_path: str | None = None, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, *,
               workers: int = 2, queue: int = 16, wait_s: float = 20.0, allowed_hosts=LOOPBACK_HOSTS,
               users: dict | None = None, precision: str | None = None,
               loop_time_limit_s: float | None = None, db_path=None, efw_method: str = "hadlock1985",
               patient_id_system: str | None = None) -> FastAPI:
    """Build the FastAPI application (the model is loaded once, at start, into ``app.state``).

    ``workers`` scans run at once and ``queue`` more may wait ``wait_s`` seconds (then 503 with
    Retry-After); ``allowed_hosts``: the Host names answered (others: 400); ``users``: a
    :func:`fetalhead.web.serving.read_password_file` table to require a login; ``db_path``: the visit
    record (:class:`fetalhead.records.store.Records`, created on first use; ``None``: no record, the visit
    routes answer 503); ``efw_method``: the fetal weight shown first (``hadlock1985`` or ``intergrowth2017``);
    ``patient_id_system``: the FHIR identifier system of the record's patient IDs (the clinic's URI; default
    :data:`fetalhead.hospital.fhir.PATIENT_ID_SYSTEM`).
    """
    from .._version import __version__

    app = FastAPI(title="fetalhead", version=__version__, docs_url=None, redoc_url=None,
                  description="Fetal head biometry on 2D ultrasound. Results need a clinician's review.")
    app.state.model = load_model(model_path, precision=precision)
    app.state.settings = Settings(max_upload_bytes, loop_time_limit_s=loop_time_limit_s or LOOP_TIME_LIMIT_S)
    app.state.limiter = WorkLimiter(workers, queue, wait_s)
    if efw_method not in EFW_METHODS:
        raise ValueError(f"efw_method must be one of {', '.join(EFW_METHODS)}")
    app.state.records = Records(db_path) if db_path is not None else None
    app.state.efw_method = efw_method
    app.state.patient_id_system = patient_id_system
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(Busy, _busy)
    app.add_exception_handler(ClientGone, _client_gone)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    # outermost: body bytes counted as they arrive (multipart overhead allowed), Host, Origin, login
    app.add_middleware(GuardMiddleware, max_body_bytes=max_upload_bytes + 1_000_000, allowed_hosts=allowed_hosts,
                       users=users, security_headers=SECURITY_HEADERS)
    app.include_router(router)
    app.include_router(visits_router)
    app.add_api_route("/", index, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
    app.add_api_route("/static/{name}", static, methods=["GET"], include_in_schema=False)
    app.add_api_route("/static/fonts/{name}", fonts, methods=["GET"], include_in_schema=False)
    app.add_api_route("/docs", docs, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
    return app
