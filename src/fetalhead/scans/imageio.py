"""Reading scans from files, with clear errors for bad input.

Every failure raises :class:`ScanReadError` whose message names the file and the
problem, so a batch can report it and go on.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np


__all__ = ["ScanReadError", "read_scan", "read_file", "decode_image", "check_scan_array", "check_dimensions",
           "image_dimensions", "sniff_type", "has_dicom_preamble", "file_sha256", "bytes_sha256", "MIN_SIDE_PX", "MAX_SIDE_PX",
           "MAX_PIXELS", "IMAGE_KINDS", "is_plain_grey8_png", "to_grey_float", "BlankImageError", "is_blank"]

#: Sides shorter than this hold no measurable head at the network's 160 px view.
MIN_SIDE_PX = 64
#: Longest side accepted (twice a 4K screen capture); larger is no ultrasound frame.
MAX_SIDE_PX = 8192
#: Most pixels accepted in one frame (8 x a 1920 x 1080 capture, 64 MB as float32):
#: checked from the file's header *before* decoding, so a small file that would
#: decode to gigabytes (a decompression bomb) is refused without being decoded.
MAX_PIXELS = 16 * 1024 * 1024
#: The kinds :func:`sniff_type` tells apart.
IMAGE_KINDS = ("png", "jpeg", "bmp", "tiff", "dicom")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"


def bytes_sha256(data: bytes) -> str:
    """sha256 (hex) of bytes in memory."""
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 (hex) of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ScanReadError(ValueError):
    """A file that cannot be measured as a scan; the message names the file and why."""


class BlankImageError(ScanReadError):
    """An image (or a loop's frame) of a single grey level: nothing to measure. A still image so is
    refused; a loop's blank frame is a failed row of that frame, and the loop goes on."""


def is_blank(grey: np.ndarray) -> bool:
    """A single grey level (to 1/255), as :func:`check_scan_array` refuses."""
    return float(grey.max() - grey.min()) < 1.0 / 255.0


def has_dicom_preamble(head: bytes) -> bool:
    """True when the bytes carry 'DICM' at byte 128, the DICOM file marker (PS3.10 7.1)."""
    return len(head) >= 132 and head[128:132] == b"DICM"


def sniff_type(data: bytes) -> str | None:
    """The scan type from a file's first bytes: png, jpeg, bmp, tiff, dicom, video (MP4/MOV, AVI,
    Matroska/WebM: cine loops), or None.

    DICOM is tested first ('DICM' at byte 128): its 128-byte preamble may hold
    anything, a TIFF header included (DICOM PS3.10 7.1).
    """
    if has_dicom_preamble(data):
        return "dicom"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"BM") and len(data) > 26:
        return "bmp"
    if data.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    if data[4:8] == b"ftyp" or (data.startswith(b"RIFF") and data[8:12] == b"AVI ") or \
            data.startswith(b"\x1a\x45\xdf\xa3"):
        return "video"
    return None


def _jpeg_dimensions(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h = int.from_bytes(data[i + 5:i + 7], "big")
            w = int.from_bytes(data[i + 7:i + 9], "big")
            return w, h
        if length < 2:
            return None
        i += 2 + length
    return None


def _tiff_dimensions(data: bytes) -> tuple[int, int] | None:
    order = "little" if data[:2] == b"II" else "big"
    if len(data) < 8:
        return None
    off = int.from_bytes(data[4:8], order)
    if off + 2 > len(data):
        return None
    n = int.from_bytes(data[off:off + 2], order)
    dims = {}
    for k in range(n):
        e = off + 2 + 12 * k
        if e + 12 > len(data):
            return None
        tag, typ = int.from_bytes(data[e:e + 2], order), int.from_bytes(data[e + 2:e + 4], order)
        if tag in (256, 257):
            size = 2 if typ == 3 else 4
            dims[tag] = int.from_bytes(data[e + 8:e + 8 + size], order)
    if 256 in dims and 257 in dims:
        return dims[256], dims[257]
    return None


#: PNG chunks that change nothing of how the grey levels show (pixel size, time): a PNG with only
#: these besides IHDR/IDAT/IEND shows exactly the grey levels it decodes to.
_PLAIN_PNG_CHUNKS = {b"IHDR", b"IDAT", b"IEND", b"pHYs", b"tIME"}


def is_plain_grey8_png(data: bytes) -> bool:
    """True for an 8-bit greyscale, non-interlaced PNG with no chunk that alters its display (gamma,
    colour profile, palette, transparency) or carries text: such a file *is* the grey image it
    decodes to, and can be shown as it came instead of encoded again."""
    if len(data) < 33 or data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return False
    if data[24] != 8 or data[25] != 0 or data[28] != 0:  # bit depth, colour type grey, interlace
        return False
    i = 8
    while i + 8 <= len(data):
        n = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        if kind not in _PLAIN_PNG_CHUNKS:
            return False
        if kind == b"IEND":
            return True
        i += 12 + n
    return False


def image_dimensions(data: bytes, kind: str) -> tuple[int, int] | None:
    """``(width, height)`` read from an image file's header without decoding it (None if unreadable)."""
    try:
        if kind == "png":
            if data[12:16] != b"IHDR":
                return None
            return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        if kind == "jpeg":
            return _jpeg_dimensions(data)
        if kind == "bmp":
            return (abs(int.from_bytes(data[18:22], "little", signed=True)),
                    abs(int.from_bytes(data[22:26], "little", signed=True)))
        if kind == "tiff":
            return _tiff_dimensions(data)
    except (IndexError, ValueError):
        return None
    return None


def check_dimensions(width: int, height: int, name: str, channels: int = 1) -> None:
    """Refuse, before decoding, a frame too small or too large to be an ultrasound scan."""
    if min(width, height) < MIN_SIDE_PX:
        raise ScanReadError(f"{name}: the image is too small ({width}x{height} px; "
                            f"at least {MIN_SIDE_PX} px a side)")
    if max(width, height) > MAX_SIDE_PX or width * height > MAX_PIXELS:
        raise ScanReadError(f"{name}: the image is too large ({width}x{height} px; at most {MAX_SIDE_PX} px a "
                            f"side and {MAX_PIXELS // (1024 * 1024)} megapixels), refused before decoding")
    if channels not in (1, 3, 4):
        raise ScanReadError(f"{name}: {channels} samples per pixel is not a grey or colour image")


def check_scan_array(image: np.ndarray, name: str = "image", allow_blank: bool = False) -> np.ndarray:
    """Validate a decoded scan and return it as grey float32 in [0, 1].

    Refuses images with a side under ``MIN_SIDE_PX`` or over ``MAX_SIDE_PX``
    pixels (or more than ``MAX_PIXELS``), and images of a single grey level
    (empty or constant).
    """
    img = np.asarray(image)
    if img.size == 0:
        raise ScanReadError(f"{name}: the image is empty")
    if img.ndim >= 2:
        check_dimensions(img.shape[1], img.shape[0], name, img.shape[2] if img.ndim == 3 else 1)
    try:
        grey = to_grey_float(img)
    except ValueError as exc:
        raise ScanReadError(f"{name}: {exc}") from None
    if not allow_blank and is_blank(grey):
        raise BlankImageError(f"{name}: the image has a single grey level (blank or constant), no scan to measure")
    return grey


def decode_image(data: bytes, name: str, kind: str | None = None) -> np.ndarray:
    """Decode a PNG/JPEG/BMP/TIFF file's bytes to grey float32 in [0, 1].

    The size is checked from the header before decoding; JPEG EXIF orientation is applied.

    Raises
    ------
    ScanReadError
        When the data are empty, truncated, not an image, too large, or fail
        :func:`check_scan_array`.
    """
    if not data:
        raise ScanReadError(f"{name}: the file is empty")
    kind = kind or sniff_type(data)
    if kind == "dicom":
        raise ScanReadError(f"{name}: a DICOM file: read it with fetalhead.scans.dicom.read_dicom")
    if kind is None:
        raise ScanReadError(f"{name}: not a readable image (not PNG, JPEG, BMP, TIFF or DICOM by content)")
    if kind == "png" and not data.rstrip(b"\x00").endswith(_PNG_END):
        raise ScanReadError(f"{name}: the PNG file is truncated (it ends before its end marker)")
    if kind == "jpeg" and b"\xff\xd9" not in data[-1024:]:
        raise ScanReadError(f"{name}: the JPEG file is truncated (it ends before its end marker)")
    dims = image_dimensions(data, kind)
    if dims is None:
        raise ScanReadError(f"{name}: damaged {kind.upper()} header (no image size)")
    check_dimensions(*dims, name)
    # JPEG: decode as colour so that OpenCV applies the EXIF orientation (IMREAD_UNCHANGED ignores it)
    flags = cv2.IMREAD_COLOR if kind == "jpeg" else cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if img is None:
        raise ScanReadError(f"{name}: not a readable image (the {kind.upper()} file is damaged)")
    return check_scan_array(img, name)


def read_file(path: str | Path, name: str | None = None) -> bytes:
    """A file's bytes; :class:`ScanReadError` naming it (``name``, default the path) when it cannot be read."""
    path = Path(path)
    name = name or str(path)
    if not path.is_file():
        raise ScanReadError(f"{name}: no such file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ScanReadError(f"{name}: cannot read ({exc.strerror or exc})") from None


def read_scan(path: str | Path) -> np.ndarray:
    """Read a PNG/JPEG/BMP/TIFF scan file as grey float32 in [0, 1]; see :func:`decode_image`."""
    return decode_image(read_file(path), str(path))


def to_grey_float(image: np.ndarray) -> np.ndarray:
    """Grey levels in [0, 1] as float32 from an 8- or 16-bit, grey or colour image.

    Colour (H, W, 3|4, in OpenCV's BGR order) is converted with the ITU-R BT.601
    luma weights; 16-bit images are scaled by their own maximum range (65535),
    floating-point images are taken as already in [0, 1] and clipped.
    """
    img = np.asarray(image)
    if img.ndim == 3:
        if img.shape[2] == 1:
            img = img[:, :, 0]
        elif img.shape[2] in (3, 4):
            img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
        else:
            raise ValueError(f"unsupported number of channels: {img.shape[2]}")
    if img.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(img.astype(np.float32), 0.0, 1.0)
    if np.issubdtype(img.dtype, np.integer) or img.dtype == bool:
        info_max = 1.0 if img.dtype == bool else float(np.iinfo(img.dtype).max)
        return np.clip(img.astype(np.float32) / info_max, 0.0, 1.0)
    raise ValueError(f"unsupported image type {img.dtype}")
