"""Scanner screens drawn for the tests and the benchmark: an image with a depth scale at a known pixel size.

Also the real ultrasound files of the pydicom-data wheel rendered as plain pictures (their pixels,
colour as the scanner showed it, without their calibration), with their region calibration as truth.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

#: The pydicom-data files whose screens carry a depth scale, one per scanner, and the region whose
#: PhysicalDeltaY (cm per pixel) is the truth.
REAL_SCREENS = {"Philips EPIQ 7C": "JPGLosslessP14SV1_1s_1f_8b.dcm", "Philips CX50": "OBXXXX1A.dcm",
                "SonoSite Turbo": "color3d_jpeg_baseline.dcm", "ALOKA SSD-4000": "gdcm-US-ALOKA-16.dcm"}


def pydicom_data_root() -> Path | None:
    try:
        import data_store
    except ImportError:
        return None
    return Path(os.path.dirname(data_store.__file__)) / "data"


def render_dicom_screen(path) -> tuple[np.ndarray, float]:
    """A DICOM file's first frame as an RGB uint8 picture, and its region's mm per pixel (the truth)."""
    import pydicom
    from pydicom.pixels import apply_color_lut

    ds = pydicom.dcmread(path)
    a = ds.pixel_array  # pydicom gives YBR as RGB already
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        a = a[0]
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        a = apply_color_lut(a, ds)
        a = (a / (257 if a.max() > 255 else 1)).astype(np.uint8)
    if a.ndim == 2:
        a = np.dstack([a, a, a])
    return np.ascontiguousarray(a.astype(np.uint8)), 10.0 * float(ds.SequenceOfUltrasoundRegions[0].PhysicalDeltaY)


def jpeg(rgb: np.ndarray, quality: int = 60) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()


def resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    return cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def speckle(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A grey speckle texture (uint8) standing in for the scan."""
    rng = np.random.default_rng(seed)
    x = rng.rayleigh(1.0, (h, w)).astype(np.float32)
    x = cv2.GaussianBlur(x, (0, 0), sigmaX=2.5, sigmaY=1.2)
    x = x / x.mean() * np.linspace(1.3, 0.5, h, dtype=np.float32)[:, None]
    return np.clip(x * 80, 0, 255).astype(np.uint8)


def _draw_mark(img, p, n, kind, big, colour):
    """A dot or a tick at ``p``; a tick points along ``n`` (away from the image)."""
    x, y = p
    if kind == "dots":
        r = 3 if big else 1
        cv2.circle(img, (int(round(x)), int(round(y))), r, colour, -1)
    else:
        length = 12 if big else 6
        q = (int(round(x + n[0] * length)), int(round(y + n[1] * length)))
        cv2.line(img, (int(round(x)), int(round(y))), q, colour, 2 if big else 1)


def render_screen(scan=None, mm_per_px: float = 0.2, *, marks: str | None = "ticks", side: str = "right",
                  half: bool = False, major: bool = True, label: bool = True, colour=(230, 230, 230),
                  size=(1024, 768), image_box=(160, 90, 640, 520), seed: int = 0) -> np.ndarray:
    """A scanner screen (RGB uint8): a scan, text, and a depth scale of 1 cm = 10 / ``mm_per_px`` pixels.

    ``marks``: "ticks", "dots" or None (no scale); ``side``: "right", "left" (of the image box) or "sector"
    (along the right side of a sector from the top centre); ``half``: half-centimetre marks (the cm marks
    bigger); ``major``: a bigger mark every 5 cm; ``label``: a depth label "NNcm" at the top left.
    """
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    x0, y0, bw, bh = image_box
    if scan is None:
        scan = speckle(bh, bw, seed)
    scan = np.asarray(scan)
    if scan.dtype != np.uint8:
        scan = np.clip(scan * 255, 0, 255).astype(np.uint8)
    sh, sw = scan.shape[:2]
    bh, bw = min(bh, sh, h - y0), min(bw, sw, w - x0)
    img[y0:y0 + bh, x0:x0 + bw] = np.dstack([scan[:bh, :bw]] * 3) if scan.ndim == 2 else scan[:bh, :bw, :3]
    px_cm = 10.0 / mm_per_px
    depth_cm = bh / px_cm
    cv2.putText(img, "Gen OB  C5-1  28Hz", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (230, 230, 230), 1, cv2.LINE_AA)
    cv2.putText(img, "Gn 60  C 61  3/3/4", (10, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (230, 230, 230), 1,
                cv2.LINE_AA)
    if label:
        cv2.putText(img, f"{depth_cm:.0f}cm", (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (230, 230, 230), 2, cv2.LINE_AA)
    if marks is None:
        return img
    step = 0.5 if half else 1.0
    if side == "sector":
        apex = (x0 + bw / 2, y0)
        a = math.radians(35)
        u = (math.sin(a), math.cos(a))
        out = (math.cos(a), -math.sin(a))  # away from the sector
        # blank the sector's outside so the marks lie on black, as scanners draw them
        poly = np.array([apex, (apex[0] + u[0] * 2000, apex[1] + u[1] * 2000), (w, h), (w, 0)], np.int32)
        cv2.fillPoly(img, [poly], (0, 0, 0))
        origin = (apex[0] + 8 * out[0], apex[1] + 8 * out[1])
    elif side == "right":
        u, origin = (0.0, 1.0), (x0 + bw + 10, y0)
    elif side == "left":
        u, origin = (0.0, 1.0), (x0 - 10, y0)
    else:
        raise ValueError(side)
    k = 0
    while k * step <= depth_cm + 1e-9:
        d = k * step * px_cm
        p = (origin[0] + u[0] * d, origin[1] + u[1] * d)
        cm = k * step
        big = (half and abs(cm - round(cm)) < 1e-9) or (not half and major and k % 5 == 0)
        if half and major and abs(cm / 5 - round(cm / 5)) < 1e-9:
            big = True
        away = {"right": (1.0, 0.0), "left": (-1.0, 0.0)}.get(side, out if side == "sector" else None)
        _draw_mark(img, p, away, marks, big, colour)
        k += 1
    return img


def colour_bar(img: np.ndarray, x: int = 930, y: int = 120, n: int = 12, band: int = 16, gap: int = 2) -> np.ndarray:
    """A colour bar of ``n`` bands, each a different colour, separated by thin black lines: ticks to a careless eye."""
    hsv = np.zeros((1, n, 3), np.uint8)
    hsv[0, :, 0] = np.linspace(0, 150, n).astype(np.uint8)
    hsv[0, :, 1:] = 255
    cols = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0]
    for i in range(n):
        top = y + i * (band + gap)
        img[top:top + band, x:x + 14] = cols[i]
    return img
