"""Reading scans from files, with clear errors for bad input.

Every failure raises :class:`ScanReadError` whose message names the file and the
problem, so a batch can report it and go on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from .transforms import to_grey_float

__all__ = ["ScanReadError", "read_scan", "check_scan_array", "file_sha256", "MIN_SIDE_PX", "MAX_SIDE_PX"]

MIN_SIDE_PX = 64
MAX_SIDE_PX = 8192
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ScanReadError(ValueError):
    """A file that cannot be measured as a scan; the message names the file and why."""


def check_scan_array(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Validate a decoded scan and return it as grey float32 in [0, 1].

    Refuses images with a side under ``MIN_SIDE_PX`` or over ``MAX_SIDE_PX``
    pixels, and images of a single grey level (empty or constant).
    """
    img = np.asarray(image)
    if img.size == 0:
        raise ScanReadError(f"{name}: the image is empty")
    try:
        grey = to_grey_float(img)
    except ValueError as exc:
        raise ScanReadError(f"{name}: {exc}") from None
    h, w = grey.shape
    if min(h, w) < MIN_SIDE_PX:
        raise ScanReadError(f"{name}: the image is too small ({w}x{h} px; at least {MIN_SIDE_PX} px a side)")
    if max(h, w) > MAX_SIDE_PX:
        raise ScanReadError(f"{name}: the image is too large ({w}x{h} px; at most {MAX_SIDE_PX} px a side)")
    if float(grey.max() - grey.min()) < 1.0 / 255.0:
        raise ScanReadError(f"{name}: the image has a single grey level (blank or constant), no scan to measure")
    return grey


def read_scan(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG/BMP/TIFF scan as grey float32 in [0, 1] (8/16-bit, grey or colour).

    Raises
    ------
    ScanReadError
        When the file is missing, unreadable, truncated, not an image, or fails
        :func:`check_scan_array`.
    """
    path = Path(path)
    if not path.is_file():
        raise ScanReadError(f"{path}: no such file")
    data = path.read_bytes()
    if not data:
        raise ScanReadError(f"{path}: the file is empty")
    if data.startswith(_PNG_SIGNATURE) and not data.rstrip(b"\x00").endswith(_PNG_END):
        raise ScanReadError(f"{path}: the PNG file is truncated (it ends before its end marker)")
    if data.startswith(b"\xff\xd8") and b"\xff\xd9" not in data[-1024:]:
        raise ScanReadError(f"{path}: the JPEG file is truncated (it ends before its end marker)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        if path.suffix.lower() in (".dcm", ".dicom") or data[128:132] == b"DICM":
            raise ScanReadError(f"{path}: DICOM files are not supported by this reader")
        raise ScanReadError(f"{path}: not a readable image (unknown format, or the file is damaged)")
    return check_scan_array(img, str(path))
