"""Running the web app safely: bounded work, bounded bodies, timeouts, Host/Origin checks, login.

* :class:`WorkLimiter`: at most ``workers`` scans are measured at once (threads: ONNX Runtime and
  OpenCV release the GIL) and at most ``queue`` more wait, each at most ``wait_s`` seconds; beyond
  that the answer is 503 with ``Retry-After``. ``/health`` never waits behind a scan.
* :class:`GuardMiddleware` (pure ASGI): counts body bytes as they arrive and answers 413 at the
  limit (chunked uploads included, nothing spooled past it), answers 408 when the body stalls,
  refuses Host headers outside the allow-list (DNS rebinding) and cross-origin POSTs, and asks for
  a login when a password file is set (HTTP Basic, scrypt hashes).
* client gone: once a request's body has been read, the guard waits on the connection for the
  client to leave and sets the request's :data:`CLIENT_GONE` event (``scope[CLIENT_GONE]``, a
  ``threading.Event``); the work limiter and a loop being measured check it, so that the work of a
  client that left stops and its worker is free again (issue 26: it used to run to its end).
* :class:`GuardedH11Protocol`: closes a connection that has not sent a whole request header in
  ``HEADER_TIMEOUT_S`` (idle and slow-header connections cannot hold file descriptors).
* :func:`run`: uvicorn with those, a connection limit and a keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from uvicorn.protocols.http.h11_impl import H11Protocol

from ..clinical.limits import LOOPBACK_HOSTS

_LOG = logging.getLogger("fetalhead.web")

__all__ = ["WorkLimiter", "GuardMiddleware", "ClientGone", "CLIENT_GONE", "GuardedH11Protocol", "run", "make_server", "free_loopback_port", "Busy", "hash_password", "read_password_file",
           "LOOPBACK_HOSTS", "HEADER_TIMEOUT_S", "BODY_TIMEOUT_S", "MAX_CONNECTIONS", "KEEP_ALIVE_S", "FIRST_BYTE_TIMEOUT_S"]

#: A client must send its whole request header within this time (slowloris).
HEADER_TIMEOUT_S = 10.0
#: ... and never pause longer than this while sending a body.
BODY_TIMEOUT_S = 30.0
#: Open connections at most, well under the default 1024 file descriptors. At the limit a new
#: connection takes the place of the oldest one that has sent nothing yet; when every one is busy it
#: is answered 503 (JSON, Retry-After) and closed.
MAX_CONNECTIONS = 256
#: A connection that sends no byte at all within this time is closed (idle sockets cannot hold the
#: slots; a browser's pre-opened connection is simply opened again when needed).
FIRST_BYTE_TIMEOUT_S = 3.0
#: Idle keep-alive connections are closed after this time.
KEEP_ALIVE_S = 5
_SCRYPT = dict(n=2 ** 14, r=8, p=1, dklen=32)  # RFC 7914's interactive-login parameters
#: Largest JSON body (bytes): a measurement with a 10 000-frame HC trace is about 1.5 MB; JSON is parsed
#: whole before a handler runs, so a bigger body is refused as it arrives (413).
MAX_JSON_BODY_BYTES = 2_000_000
#: Failed logins allowed per client address and per user name within :data:`LOGIN_WINDOW_S`; beyond
#: them 429 with Retry-After (OWASP Authentication Cheat Sheet: throttle, do not lock accounts forever).
LOGIN_FAILURES_ALLOWED = 5
LOGIN_WINDOW_S = 60.0
#: Most clients and user names whose failures are remembered (memory stays bounded under a flood).
_LOGIN_MEMORY = 10_000


#: The scope key of a request's "client gone" event (a ``threading.Event``, set by :class:`GuardMiddleware`).
CLIENT_GONE = "fetalhead.client_gone"
#: How often (s) a request waiting for a worker looks whether its client is still there.
_GONE_POLL_S = 0.2


class ClientGone(Exception):
    """The client has closed its connection: the work for it is dropped (nobody reads the answer)."""


class Busy(Exception):
    """No slot for a scan now: answer 503 with Retry-After."""

    def __init__(self, message: str, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class WorkLimiter:
    """At most ``workers`` scans at once and ``queue`` waiting; see the module docstring."""

    def __init__(self, workers: int = 2, queue: int = 16, wait_s: float = 20.0):
        self.workers, self.queue, self.wait_s = max(1, int(workers)), max(0, int(queue)), float(wait_s)
        self._running = threading.BoundedSemaphore(self.workers)
        self._lock = threading.Lock()
        self.admitted = 0

    @contextmanager
    def slot(self, client_gone: threading.Event | None = None):
        """Hold a worker for the ``with`` block; waits (at most ``wait_s``) for one, unless the client
        leaves meanwhile (``client_gone`` set: :class:`ClientGone`, the place in the queue is freed)."""
        with self._lock:
            if self.admitted >= self.workers + self.queue:
                raise Busy(f"the server is busy ({self.admitted} scans in hand); try again shortly", 2)
            self.admitted += 1
        try:
            self._acquire(client_gone)
            try:
                yield
            finally:
                self._running.release()
        finally:
            with self._lock:
                self.admitted -= 1

    def _acquire(self, client_gone: threading.Event | None) -> None:
        import time

        deadline = time.monotonic() + self.wait_s
        while True:
            if client_gone is not None and client_gone.is_set():
                raise ClientGone("the client left before a worker was free")
            left = deadline - time.monotonic()
            if left <= 0:
                raise Busy(f"the server is busy: no slot within {self.wait_s:g} s; try again shortly", 5)
            step = left if client_gone is None else min(left, _GONE_POLL_S)
            if self._running.acquire(timeout=step):
                return


# --- passwords ---------------------------------------------------------------------------------


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$<salt hex>$<hash hex>`` (Python's hashlib.scrypt, OpenSSL's implementation)."""
    salt = salt or os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def _check_password(password: str, stored: str) -> bool:
    try:
        kind, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), **_SCRYPT)
        return hmac.compare_digest(got.hex(), digest)
    except (ValueError, TypeError):
        return False


def read_password_file(path: str | Path) -> dict[str, str]:
    """``user:scrypt$salt$hash`` lines (``fetalhead serve --add-user`` writes them); '#' comments."""
    users = {}
    for i, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, stored = line.partition(":")
        if not sep or not stored.startswith("scrypt$"):
            raise ValueError(f"{path} line {i}: expected 'user:scrypt$salt$hash'")
        users[user] = stored
    if not users:
        raise ValueError(f"{path}: no users")
    return users


class LoginThrottle:
    """Failed logins per client and per user name in a sliding window (:data:`LOGIN_FAILURES_ALLOWED`
    in :data:`LOGIN_WINDOW_S`)."""

    def __init__(self, allowed: int = LOGIN_FAILURES_ALLOWED, window_s: float = LOGIN_WINDOW_S, clock=None):
        import time

        self.allowed, self.window = int(allowed), float(window_s)
        self.clock = clock or time.monotonic
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(key, ()) if now - t < self.window]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, *keys: str) -> int:
        """Seconds until a login may be tried again for these keys (0: now)."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.allowed:
                wait = max(wait, self.window - (now - times[-self.allowed]))
        return int(wait) + 1 if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        if len(self._failures) > _LOGIN_MEMORY:
            self._failures.clear()
        for key in keys:
            self._failures.setdefault(key, []).append(now)


def _basic_user(value: str) -> tuple[str, str] | None:
    """``(user, password)`` of an HTTP Basic Authorization header value, or None."""
    if not value.lower().startswith("basic "):
        return None
    try:
        user, sep, password = base64.b64decode(value[6:], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (user, password) if sep else None


# --- ASGI guard --------------------------------------------------------------------------------


def _host_only(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


_DEFAULT_PORTS = {"http": 80, "https": 443}


def same_origin(origin: str, scheme: str, host_header: str) -> bool:
    """Whether an ``Origin`` header names this server itself: the same scheme, host and port (RFC 6454;
    a default port written or not is the same port). ``null`` and anything unparsable are not."""
    from urllib.parse import urlsplit

    try:
        o = urlsplit(origin.strip())
        h = urlsplit(f"{scheme}://{host_header.strip()}")
        o_port = o.port or _DEFAULT_PORTS.get(o.scheme.lower())
        h_port = h.port or _DEFAULT_PORTS.get(scheme.lower())
    except ValueError:
        return False
    return (bool(o.scheme) and o.scheme.lower() == scheme.lower() and o.hostname is not None
            and o.hostname == h.hostname and o_port == h_port and not o.path.strip("/"))


class GuardMiddleware:
    """Body limit and timeout, Host allow-list, same-origin POSTs, optional login (pure ASGI)."""

    def __init__(self, app, max_body_bytes: int, allowed_hosts=LOOPBACK_HOSTS, users: dict | None = None,
                 body_timeout_s: float = BODY_TIMEOUT_S, security_headers: dict | None = None):
        self.app = app
        self.max_body = int(max_body_bytes)
        self.allowed = {h.lower() for h in allowed_hosts}
        self.users = users or {}
        self.body_timeout = body_timeout_s
        self.headers = security_headers or {}
        self._verified: dict[str, str] = {}  # header value -> user, after one scrypt check
        self.throttle = LoginThrottle()
        # an unknown user name costs one scrypt too, so that timing does not tell which names exist
        self._decoy = hash_password(os.urandom(16).hex()) if self.users else ""

    async def _send_error(self, send, status: int, code: str, message: str, extra=()):
        body = json.dumps({"error": {"code": code, "message": message}}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"cache-control", b"no-store"), (b"connection", b"close")]
        headers += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        headers += [(k.encode(), v.encode()) for k, v in extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _authorised(self, value: str) -> bool:
        """Checks the credentials (scrypt: run in a thread, never on the event loop)."""
        if value in self._verified:
            return True
        creds = _basic_user(value)
        if creds is None:
            return False
        user, password = creds
        stored = self.users.get(user)
        ok = _check_password(password, stored or self._decoy) and stored is not None
        if ok:
            if len(self._verified) > 1000:
                self._verified.clear()
            self._verified[value] = user
        return ok

    async def _login(self, scope, headers, send) -> bool:
        """True when the request may go on; otherwise the 401 or 429 has been sent."""
        value = headers.get("authorization", "")
        if value in self._verified:
            return True
        challenge = [("www-authenticate", 'Basic realm="fetalhead", charset="UTF-8"')]
        creds = _basic_user(value)
        if creds is None:
            await self._send_error(send, 401, "login_required", "log in to use this server", challenge)
            return False
        client = f"client:{(scope.get('client') or ('unknown',))[0]}"
        user = f"user:{creds[0][:200]}"
        wait = self.throttle.retry_after(client, user)
        if wait:
            await self._send_error(send, 429, "too_many_logins",
                                   f"too many failed logins: try again in {wait} s", [("retry-after", str(wait))])
            return False
        if await asyncio.to_thread(self._authorised, value):
            return True
        self.throttle.failed(client, user)
        _LOG.warning("failed login for user %r from %s", creds[0][:200], client[7:])
        await self._send_error(send, 401, "login_required", "log in to use this server", challenge)
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = _host_only(headers.get("host", ""))
        if self.allowed and "*" not in self.allowed and host not in self.allowed:
            return await self._send_error(send, 400, "host_not_allowed",
                                          "this server does not answer for that host name")
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get("origin")
            if origin is not None and not same_origin(origin, scope.get("scheme", "http"), headers.get("host", "")):
                return await self._send_error(send, 403, "cross_origin", "requests from other web sites are refused")
        if self.users and not await self._login(scope, headers, send):
            return
        is_json = headers.get("content-type", "").split(";")[0].strip().lower().endswith("json")
        limit = min(self.max_body, MAX_JSON_BODY_BYTES) if is_json else self.max_body
        too_large = (f"JSON body larger than {limit // 1_000_000} MB" if is_json else
                     f"upload larger than {limit // 1_000_000} MB")
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            return await self._send_error(send, 413, "too_large", too_large)
        received = 0
        started = answered = finished = False
        gone = scope[CLIENT_GONE] = threading.Event()
        watcher: asyncio.Task | None = None

        async def watch():
            # the body has been read: uvicorn's receive() now returns only when the client leaves (or
            # when the answer has been sent)
            try:
                message = await receive()
            except Exception:  # noqa: BLE001 - a server going down: nothing to watch any more
                return
            if message["type"] == "http.disconnect" and not finished:
                gone.set()

        async def answer(status, code, message):
            nonlocal answered
            if not started and not answered:
                answered = True
                await self._send_error(send, status, code, message)

        async def guarded_receive():
            nonlocal received, watcher
            if answered:
                return {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), timeout=self.body_timeout)
            except asyncio.TimeoutError:
                await answer(408, "body_timeout", f"the upload stalled for {self.body_timeout:g} s")
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # counted as it arrives: the rest is never read
                    await answer(413, "too_large", too_large)
                    return {"type": "http.disconnect"}
                if not message.get("more_body", False) and watcher is None:
                    watcher = asyncio.ensure_future(watch())
            elif message["type"] == "http.disconnect":
                gone.set()
            return message

        async def tracked_send(message):
            nonlocal started, finished
            if answered:
                return  # the guard has answered already
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                finished = True  # before sending: the watcher then wakes, and this is no client leaving
            await send(message)

        try:
            await self.app(scope, guarded_receive, tracked_send)
        finally:
            finished = True
            if watcher is not None:
                watcher.cancel()


# --- the server --------------------------------------------------------------------------------


_BUSY_BODY = json.dumps({"error": {"code": "busy", "message": "the server has too many open connections; "
                                                               "try again shortly"}}).encode()
_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncache-control: no-store\r\n"
         b"retry-after: 2\r\nconnection: close\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n"
         + _BUSY_BODY)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections that send no whole request header in time, and
    those that send nothing at all sooner (:data:`FIRST_BYTE_TIMEOUT_S`); at :attr:`max_connections`
    the oldest silent connection makes room, else the new one gets a JSON 503 with Retry-After."""

    header_timeout_s = HEADER_TIMEOUT_S
    first_byte_timeout_s = FIRST_BYTE_TIMEOUT_S
    max_connections = MAX_CONNECTIONS

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._silent, self._opened_at = True, self.loop.time()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timed_out)
        self._first_byte_timer = self.loop.call_later(self.first_byte_timeout_s, self._first_byte_timed_out)
        if len(self.connections) > self.max_connections:
            silent = [c for c in self.connections if c is not self and getattr(c, "_silent", False)
                      and c.transport is not None and not c.transport.is_closing()]
            if silent:
                min(silent, key=lambda c: c._opened_at).transport.close()
            else:
                transport.write(_BUSY)
                transport.close()

    def _first_byte_timed_out(self) -> None:
        if self._silent and self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def _header_timed_out(self) -> None:
        if self.cycle is None and self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self._silent and data:
            self._silent = False
            self._first_byte_timer.cancel()
        super().data_received(data)
        if self.cycle is not None and getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def connection_lost(self, exc) -> None:
        if getattr(self, "_first_byte_timer", None) is not None:
            self._first_byte_timer.cancel()
        if getattr(self, "_header_timer", None) is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (for tests and benchmarks that start a server)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_server(app, host: str, port: int, max_connections: int = MAX_CONNECTIONS):
    """A uvicorn server for ``app``, bounded: connection limit (:class:`GuardedH11Protocol`, not uvicorn's
    plain-text 503), keep-alive, first-byte and header timeouts."""
    import uvicorn

    protocol = type("BoundedH11Protocol", (GuardedH11Protocol,), {"max_connections": int(max_connections)})
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", http=protocol,
                            limit_concurrency=None, timeout_keep_alive=KEEP_ALIVE_S, server_header=False)
    return uvicorn.Server(config)


def run(app, host: str, port: int) -> None:
    """Serve ``app`` until interrupted (see :func:`make_server`)."""
    make_server(app, host, port).run()
