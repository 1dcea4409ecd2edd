"""Deterministic damages of a labelled scan, for calibration and benchmarks (numpy and OpenCV only).

Each variation takes ``(image, ellipse, pixel_size_mm, rng)`` (grey float32 in [0, 1], the
reference head ellipse in pixels, mm per pixel) and returns the damaged image, the reference
ellipse moved with it, and the pixel size that now holds. Geometric ones move the ellipse;
acoustic shadows, missing skull arcs and sector cuts (from :mod:`fetalhead.model.augment`) leave the
head where it was and hide part of its skull; the beam comes from the top of the image, as in
HC18's sector scans.

:data:`VARIATIONS` is the list that ``fetalhead calibrate``, ``bench/robustness.py`` and
``bench/trust.py`` use; :data:`NON_HEAD` makes images that hold no fetal head at all.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..model.augment import acoustic_shadow, missing_skull_arc, sector_cut
from ..clinical.geometry import Ellipse, ellipse_landmarks

__all__ = ["VARIATIONS", "EXTRA_VARIATIONS", "HARD_VARIATIONS", "NON_HEAD", "variation_names"]

BEAM = (0.0, 1.0)  # the sound travels down the image
#: Span of echo strengths (dB) the log-compressed display maps from black to white. Assumed: 60 dB,
#: mid-way in the 40-80 dB that B-mode presets offer; a gain change of G dB shifts every grey by G / 60.
DISPLAY_RANGE_DB = 60.0
#: How far :func:`gain_low_12db` turns the receiver gain down (dB).
GAIN_LOW_DB = 12.0
#: Mean grey (share of the scale) of the noise floor left where turning the gain down has put the echoes
#: under black (noise that enters after the gain stage: converter and display). Assumed: 3 %.
NOISE_FLOOR_MEAN = 0.03


def _affine(img, e, m):
    h, w = img.shape
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return out, e.transformed(m)


def identity(img, e, ps, rng):
    return img, e, ps


def gain_low_12db(img, e, ps, rng):
    """The receiver gain turned :data:`GAIN_LOW_DB` (12 dB) down, as a scanner shows it.

    On the log-compressed display a gain change shifts every grey by gain / :data:`DISPLAY_RANGE_DB`
    (a fifth of the scale): the echoes weaker than that (brain, soft tissue, the skull's fainter arcs)
    sink into black and the skull stays, dimmer; where the echoes are gone the noise floor shows
    (grainy, Rayleigh-distributed like an echo envelope, mean :data:`NOISE_FLOOR_MEAN`; none outside
    the sector, where the scan is black); the picture is 8-bit again. A plain factor (``img * 0.5``,
    this variation's first form, ``gain_low``) changed nothing the network sees: each view is
    standardised to zero mean and unit variance, which cancels a global gain (its errors were those of
    the clean scans, to the last digit).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    grain = [cv2.GaussianBlur(rng.standard_normal(img.shape).astype(np.float32), (0, 0), 0.8) for _ in range(2)]
    envelope = np.hypot(*grain) / float(np.std(grain[0]))  # Rayleigh of scale 1: mean sqrt(pi / 2)
    floor = envelope * (NOISE_FLOOR_MEAN / np.sqrt(np.pi / 2))
    out = np.where(img > 0, np.maximum(img - GAIN_LOW_DB / DISPLAY_RANGE_DB, floor), 0)  # no noise off the sector
    return (np.round(np.clip(out, 0, 1) * 255) / 255).astype(np.float32), e, ps


def gain_high(img, e, ps, rng):
    return np.clip(img * 1.8, 0, 1).astype(np.float32), e, ps


def contrast(img, e, ps, rng):
    return np.power(img, 1.8).astype(np.float32), e, ps


def speckle(img, e, ps, rng):
    n = cv2.GaussianBlur(rng.standard_normal(img.shape).astype(np.float32), (0, 0), 0.8)
    n /= n.std()
    return np.clip(img * (1 + 0.3 * n), 0, 1).astype(np.float32), e, ps


def half_resolution(img, e, ps, rng):
    h, w = img.shape
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    m = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25]])  # pixel-centre convention of a 2x reduction
    return small, e.transformed(m), ps * 2


def rotate_30(img, e, ps, rng):
    h, w = img.shape
    out, e2 = _affine(img, e, cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 30, 1.0))
    return out, e2, ps


def rotate_90(img, e, ps, rng):
    h, w = img.shape
    out = np.ascontiguousarray(np.rot90(img))  # counter-clockwise: (x, y) -> (y, w - 1 - x)
    return out, e.transformed(np.array([[0, 1, 0], [-1, 0, w - 1]], float)), ps


def off_centre(img, e, ps, rng):
    h, w = img.shape
    out, e2 = _affine(img, e, np.array([[1, 0, 0.2 * w], [0, 1, -0.1 * h]], float))
    return out, e2, ps


def jpeg_q30(img, e, ps, rng):
    ok, buf = cv2.imencode(".jpg", (img * 255 + 0.5).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255, e, ps


def _shadow(img, e: Ellipse, offset: float, width: float, attenuation: float = 0.08):
    """A shadow cast from above the head: ``offset`` across the head (-1..1 of the semi-major axis,
    horizontally), ``width`` in shares of the BPD."""
    x = e.center_x + offset * e.semi_major
    top = e.center_y - 1.3 * max(e.semi_major, e.semi_minor)
    return acoustic_shadow(img, (x, top), BEAM, width * 2 * e.semi_minor, attenuation, softness_px=3.0)


def shadow_narrow_centre(img, e, ps, rng):
    return _shadow(img, e, 0.0, 0.15), e, ps


def shadow_wide_centre(img, e, ps, rng):
    return _shadow(img, e, 0.0, 0.4), e, ps


def shadow_side(img, e, ps, rng):
    return _shadow(img, e, 0.75, 0.3), e, ps


def shadow_two_bands(img, e, ps, rng):
    return _shadow(_shadow(img, e, -0.6, 0.2), e, 0.5, 0.2), e, ps


def missing_arc_60(img, e, ps, rng):
    return missing_skull_arc(img, e, start_deg=-30, extent_deg=60, visibility=0.0), e, ps


def missing_arcs_faint(img, e, ps, rng):
    out = missing_skull_arc(img, e, start_deg=60, extent_deg=70, visibility=0.3)
    return missing_skull_arc(out, e, start_deg=200, extent_deg=50, visibility=0.0), e, ps


def sector_edge_cut(img, e, ps, rng):
    """The sector's edge crosses the head: a quarter of its width lies outside (black)."""
    return sector_cut(img, (e.center_x + 0.5 * e.semi_major, e.center_y), (1.0, 0.3), softness_px=1.0), e, ps


def border_cut(img, e, ps, rng):
    """The head shifted so that the image border cuts about a fifth of its width."""
    h, w = img.shape
    dx = (w - 1) - (e.center_x + 0.6 * max(e.semi_major, e.semi_minor))
    out, e2 = _affine(img, e, np.array([[1, 0, dx], [0, 1, 0]], float))
    return out, e2, ps


#: Screen layout of :func:`screen_export` (pixels): the screen's size and where the scan's box starts.
SCREEN_SIZE = (1024, 768)
SCREEN_IMAGE_ORIGIN = (112, 100)
#: Grey of the scanner's drawing on the screen (calipers, trace, text): yellow (0.89 as grey) and white.
INK_GREY = 0.9


def screen_export(img, e, ps, rng):
    """The scan as a clinic sends it: a screenshot of the scanner's screen after measuring (issue 20).

    The scan, at its own pixel size, in a black 1024 x 768 screen with the scanner's text around it and
    a depth scale beside it; on the scan the sonographer's measurement as scanners draw it: a dotted
    ellipse trace (another observer's: the reference scaled by 0.98-1.02), "+" calipers at its four
    ends and the figures ("HC 17.3cm", "BPD 4.7cm", "GA 20w1d") written over the scan's top corner.
    The reference moves with the scan; a scan larger than the box is cropped to it (its head kept)."""
    sw, sh = SCREEN_SIZE
    x0, y0 = SCREEN_IMAGE_ORIGIN
    h, w = img.shape
    bw, bh = min(w, sw - x0 - 60), min(h, sh - y0 - 40)
    cx0 = int(np.clip(round(e.center_x - bw / 2), 0, w - bw))
    cy0 = int(np.clip(round(e.center_y - bh / 2), 0, h - bh))
    out = np.zeros((sh, sw), np.float32)
    out[y0:y0 + bh, x0:x0 + bw] = img[cy0:cy0 + bh, cx0:cx0 + bw]
    ref = e.transformed(np.array([[1, 0, x0 - cx0], [0, 1, y0 - cy0]], float))
    trace = Ellipse(ref.center_x, ref.center_y, ref.semi_major * rng.uniform(0.98, 1.02),
                    ref.semi_minor * rng.uniform(0.98, 1.02), ref.angle_deg)
    t = np.linspace(0, 2 * np.pi, max(24, int(trace.perimeter_px / 8)), endpoint=False)
    th = np.radians(trace.angle_deg)
    xs = trace.center_x + trace.semi_major * np.cos(t) * np.cos(th) - trace.semi_minor * np.sin(t) * np.sin(th)
    ys = trace.center_y + trace.semi_major * np.cos(t) * np.sin(th) + trace.semi_minor * np.sin(t) * np.cos(th)
    ink = np.zeros((sh, sw), np.uint8)  # OpenCV draws text on 8-bit pictures only
    for x, y in zip(xs, ys):
        cv2.circle(ink, (int(round(x)), int(round(y))), 1, 255, -1, cv2.LINE_AA)
    for x, y in ellipse_landmarks(trace).values():
        cx, cy = int(round(x)), int(round(y))
        cv2.line(ink, (cx - 6, cy), (cx + 6, cy), 255, 1)
        cv2.line(ink, (cx, cy - 6), (cx, cy + 6), 255, 1)
    hc_cm = trace.perimeter_px * ps / 10
    font = cv2.FONT_HERSHEY_SIMPLEX
    for k, text in enumerate((f"HC {hc_cm:.1f}cm", f"BPD {2 * trace.semi_minor * ps / 10:.1f}cm", "GA 20w1d")):
        cv2.putText(ink, text, (x0 + 8, y0 + 22 + 22 * k), font, 0.6, 255, 1, cv2.LINE_AA)
    cv2.putText(ink, "Gen OB  C5-1  28Hz  MI 0.9  TIs 0.4", (10, 30), font, 0.6, 255, 1, cv2.LINE_AA)
    cv2.putText(ink, "Gn 60  C 61  3/3/4  Frq Gen", (10, sh - 16), font, 0.6, 255, 1, cv2.LINE_AA)
    px_cm = 10.0 / ps
    for k in range(int(bh / px_cm) + 1):  # the depth scale: a tick every cm beside the scan
        y = int(round(y0 + k * px_cm))
        cv2.line(ink, (x0 + bw + 10, y), (x0 + bw + (22 if k % 5 == 0 else 16), y), 255, 1)
    out = np.maximum(out, ink.astype(np.float32) * (INK_GREY / 255.0))
    return out, ref, ps


VARIATIONS = [identity, gain_low_12db, gain_high, contrast, speckle, half_resolution, rotate_30, rotate_90, off_centre,
              jpeg_q30, shadow_narrow_centre, shadow_wide_centre, shadow_side, shadow_two_bands, missing_arc_60,
              missing_arcs_faint, sector_edge_cut, border_cut]
#: Variations measured on request (``--variations``), not (yet) part of the calibration set above.
EXTRA_VARIATIONS = [screen_export]
HARD_VARIATIONS = [shadow_narrow_centre, shadow_wide_centre, shadow_side, shadow_two_bands, missing_arc_60,
                   missing_arcs_faint, sector_edge_cut, border_cut]


def variation_names(fns=VARIATIONS) -> list[str]:
    return [f.__name__ for f in fns]


# --- images that hold no fetal head --------------------------------------------------------------


def no_head_crop(img, e, rng):
    """The part of the scan farthest from the head, enlarged to the scan's size (tissue, no head)."""
    h, w = img.shape
    side = int(min(h, w) * 0.45)
    corners = [(0, 0), (w - side, 0), (0, h - side), (w - side, h - side)]
    far = max(corners, key=lambda c: (c[0] + side / 2 - e.center_x) ** 2 + (c[1] + side / 2 - e.center_y) ** 2)
    crop = img[far[1]:far[1] + side, far[0]:far[0] + side]
    return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)


def speckle_texture(img, e, rng):
    """Speckle-like tissue texture with no structure."""
    h, w = img.shape
    n = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 2.0)
    return np.clip(0.35 + 0.12 * n / n.std(), 0, 1).astype(np.float32)


def gradient_image(img, e, rng):
    h, w = img.shape
    return np.tile(np.linspace(0.05, 0.9, w, dtype=np.float32), (h, 1))


def bright_disc(img, e, rng):
    """A filled bright disc with no skull echo (a bladder- or cyst-like blob, inverted)."""
    h, w = img.shape
    out = np.full((h, w), 0.15, np.float32)
    cv2.circle(out, (w // 2, h // 2), min(h, w) // 4, 0.8, -1)
    return cv2.GaussianBlur(out, (0, 0), 2.0)


NON_HEAD = [no_head_crop, speckle_texture, gradient_image, bright_disc]
