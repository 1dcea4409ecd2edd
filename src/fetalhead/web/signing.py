"""What this server issued, and proof of it: an HMAC-SHA256 over the canonical form of a measurement.

The page sends a measurement back for a hand adjustment, a report, an SR or a FHIR Bundle. The server
reports only what it measured itself: every measurement it answers carries ``signature``, an HMAC
(RFC 2104, SHA-256) under a key made when the server starts (``secrets.token_bytes``, never written
anywhere), over the measurement's canonical JSON. A measurement sent back whose signature is missing
or does not match (a flag removed, an interval narrowed, an ellipse or identifier changed, or issued by
an earlier run of the server) is refused; the figures of a signed one are still recomputed from its
ellipse by :meth:`fetalhead.measurement.Measurement.from_dict`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import secrets

__all__ = ["new_key", "canonical", "sign", "verify", "patient_key", "UNSIGNED_FIELDS", "KEY_BYTES"]

#: Key length (bytes): the HMAC-SHA256 block is 64 bytes; 32 random bytes give 256-bit security.
KEY_BYTES = 32
#: Fields of an answer that are not the measurement (written out for display, the picture, the proof).
UNSIGNED_FIELDS = ("signature", "display", "image_png_base64")


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _normal(value):
    """Numbers as floats (a browser writes 2.0 as 2), NaN and infinities refused, keys sorted by json."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        f = float(value)
        if not math.isfinite(f):
            raise ValueError("not a finite number")
        return f
    if isinstance(value, dict):
        return {str(k): _normal(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normal(v) for v in value]
    raise ValueError(f"not a JSON value: {type(value).__name__}")


def canonical(measurement: dict) -> bytes:
    """The measurement's canonical bytes: without :data:`UNSIGNED_FIELDS`, numbers as floats, keys sorted,
    no spaces. The same for the dict the server answered and the one a browser sends back."""
    body = {k: v for k, v in measurement.items() if k not in UNSIGNED_FIELDS}
    return json.dumps(_normal(body), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode()


def sign(measurement: dict, key: bytes) -> str:
    return hmac.new(key, canonical(measurement), hashlib.sha256).hexdigest()


def verify(measurement, key: bytes) -> bool:
    """Whether ``measurement`` (as sent back) carries this server's signature over exactly its content."""
    if not isinstance(measurement, dict) or not isinstance(measurement.get("signature"), str):
        return False
    try:
        expected = sign(measurement, key)
    except (ValueError, TypeError, RecursionError):
        return False
    return hmac.compare_digest(expected, measurement["signature"])


def patient_key(patient_id: str, key: bytes) -> str:
    """A keyed digest of a patient ID (HMAC-SHA256 under this server's key, 128 bits in hex): what a
    measurement of a DICOM carries instead of the ID itself, so that a visit can tell whether the scan
    names its patient without the answer showing the ID (the ID stripped of surrounding spaces)."""
    return hmac.new(key, b"patient-id\x00" + str(patient_id).strip().encode("utf-8"), hashlib.sha256).hexdigest()[:32]
