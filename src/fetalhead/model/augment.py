"""Scanner-like image augmentations for training (numpy and OpenCV only).

Each function takes a float32 grey view in [0, 1] and a ``numpy.random.Generator``
and returns a new float32 view in [0, 1]; none moves the geometry (geometric
augmentation - rotation, scale, shift, mirror - is the choice of view in
:mod:`fetalhead.training.train`). Each is a plain function that can be tested alone.

Two families:

* the scanner's look (gain, contrast, depth gain, speckle, blur, resolution,
  JPEG): :func:`random_scanner_look`;
* what hard real scans show (acoustic shadows cast from the probe side across
  the skull, skull arcs missing or faint, reverberation bands, part of the head
  outside the imaged sector): deterministic functions (:func:`acoustic_shadow`,
  :func:`missing_skull_arc`, :func:`sector_cut`, :func:`reverberation`), used
  by the robustness benchmark, and :func:`random_scan_defects`, used in training.
  The training target stays the whole head ellipse, so the network learns to
  complete what a shadow or a missing arc hides.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "random_gain",
    "random_gamma",
    "random_depth_gain",
    "random_speckle",
    "random_blur",
    "random_lower_resolution",
    "random_jpeg",
    "random_scanner_look",
    "acoustic_shadow",
    "missing_skull_arc",
    "sector_cut",
    "reverberation",
    "random_scan_defects",
]


def random_gain(view: np.ndarray, rng: np.random.Generator, low=0.6, high=1.6) -> np.ndarray:
    """Overall gain: multiply grey levels by a factor in [low, high]."""
    return np.clip(view * rng.uniform(low, high), 0.0, 1.0).astype(np.float32)


def random_gamma(view: np.ndarray, rng: np.random.Generator, low=0.6, high=1.7) -> np.ndarray:
    """Contrast (dynamic range) change: grey ** gamma, gamma log-uniform in [low, high]."""
    gamma = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    return np.power(np.clip(view, 0.0, 1.0), gamma).astype(np.float32)


def random_depth_gain(view: np.ndarray, rng: np.random.Generator, strength=0.5) -> np.ndarray:
    """Time-gain-compensation-like ramp: gain varying linearly along a random direction."""
    h, w = view.shape
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = ((xx - w / 2) * np.cos(ang) + (yy - h / 2) * np.sin(ang)) / max(h, w)
    ramp = 1.0 + rng.uniform(-strength, strength) * 2 * t
    return np.clip(view * ramp, 0.0, 1.0).astype(np.float32)


def random_speckle(view: np.ndarray, rng: np.random.Generator, max_sigma=0.35) -> np.ndarray:
    """Multiplicative speckle-like noise, spatially correlated over 1-2 pixels, plus a little additive noise."""
    h, w = view.shape
    sigma = rng.uniform(0.0, max_sigma)
    noise = rng.standard_normal((h, w)).astype(np.float32)
    blur = rng.uniform(0.0, 1.2)
    if blur > 0.3:
        noise = cv2.GaussianBlur(noise, (0, 0), blur)
        noise /= max(float(noise.std()), 1e-6)
    out = view * (1.0 + sigma * noise) + rng.uniform(0, 0.03) * rng.standard_normal((h, w)).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def random_blur(view: np.ndarray, rng: np.random.Generator, max_sigma=1.5) -> np.ndarray:
    """Gaussian blur (defocus, lower lateral resolution) with sigma in [0, max_sigma] pixels."""
    s = rng.uniform(0.0, max_sigma)
    if s < 0.2:
        return view.astype(np.float32)
    return cv2.GaussianBlur(view, (0, 0), s).astype(np.float32)


def random_lower_resolution(view: np.ndarray, rng: np.random.Generator, max_factor=3.0) -> np.ndarray:
    """Lower resolution: shrink by a factor in [1, max_factor] and enlarge back."""
    h, w = view.shape
    f = rng.uniform(1.0, max_factor)
    small = cv2.resize(view, (max(8, int(round(w / f))), max(8, int(round(h / f)))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).astype(np.float32)


def random_jpeg(view: np.ndarray, rng: np.random.Generator, low=15, high=90) -> np.ndarray:
    """JPEG re-compression at a quality in [low, high]."""
    q = int(rng.integers(low, high + 1))
    u8 = np.clip(view * 255.0 + 0.5, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, q])
    if not ok:
        return view.astype(np.float32)
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0


def random_scanner_look(view: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Each augmentation above applied with probability ``p``, in a fixed physical order."""
    out = view.astype(np.float32)
    for fn in (random_lower_resolution, random_blur, random_speckle, random_depth_gain,
               random_gain, random_gamma, random_jpeg):
        if rng.random() < p:
            out = fn(out, rng)
    return out


def _unit(direction_xy) -> np.ndarray:
    d = np.asarray(direction_xy, dtype=np.float64)
    n = float(np.hypot(d[0], d[1]))
    if not np.isfinite(n) or n == 0:
        raise ValueError("direction must be a non-zero vector")
    return d / n


def acoustic_shadow(view: np.ndarray, start_xy, direction_xy, width_px: float,
                    attenuation: float = 0.15, softness_px: float = 2.0) -> np.ndarray:
    """An acoustic shadow: a band that goes dark distal to an occluder.

    Everything within ``width_px / 2`` of the ray from ``start_xy`` along
    ``direction_xy`` (the direction the sound travels, away from the probe), and
    beyond ``start_xy`` along it, is multiplied by ``attenuation``; the band's
    edges are soft over ``softness_px`` pixels.

    Parameters
    ----------
    view : ndarray (H, W) float32 in [0, 1]
    start_xy : (x, y) in view pixels, where the shadow starts (the occluder).
    direction_xy : (dx, dy), any length, pointing away from the probe.
    width_px : float, width of the band in pixels.
    attenuation : float in [0, 1], grey-level factor inside the shadow.
    softness_px : float, width of the soft edge in pixels.
    """
    h, w = view.shape
    d = _unit(direction_xy)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rx, ry = xx - float(start_xy[0]), yy - float(start_xy[1])
    along = rx * d[0] + ry * d[1]
    across = np.abs(-rx * d[1] + ry * d[0])
    soft = max(float(softness_px), 1e-3)
    inside = np.clip((width_px / 2.0 - across) / soft + 0.5, 0.0, 1.0)
    inside *= np.clip(along / soft + 0.5, 0.0, 1.0)
    factor = 1.0 - inside * (1.0 - float(attenuation))
    return np.clip(view * factor, 0.0, 1.0).astype(np.float32)


def _outline_polar(shape, ellipse):
    """Per pixel: angle around the ellipse's centre (parametric, radians) and normalised radius."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = np.deg2rad(ellipse.angle_deg)
    dx, dy = xx - ellipse.center_x, yy - ellipse.center_y
    u = (dx * np.cos(t) + dy * np.sin(t)) / ellipse.semi_major
    v = (-dx * np.sin(t) + dy * np.cos(t)) / ellipse.semi_minor
    return np.arctan2(v, u), np.hypot(u, v)


def missing_skull_arc(view: np.ndarray, ellipse, start_deg: float, extent_deg: float,
                      visibility: float = 0.0, thickness: float = 0.18) -> np.ndarray:
    """Part of the skull outline missing (``visibility`` 0) or faint (0 < ``visibility`` < 1).

    The pixels within ``thickness`` (relative radius) of the ellipse outline, over
    the parametric angles ``start_deg .. start_deg + extent_deg``, are blended
    towards the local background (the view blurred over a quarter of the head),
    keeping ``visibility`` of the original.

    Parameters
    ----------
    view : ndarray (H, W) float32 in [0, 1]
    ellipse : :class:`fetalhead.clinical.geometry.Ellipse` in view pixels (the head).
    start_deg, extent_deg : float, the arc in degrees around the ellipse.
    visibility : float in [0, 1].
    thickness : float, half-thickness of the band as a share of the radius.
    """
    ang, rad = _outline_polar(view.shape, ellipse)
    rel = np.mod(np.rad2deg(ang) - start_deg, 360.0)
    edge = 6.0  # degrees over which the arc fades in and out
    along = np.clip(np.minimum(rel, extent_deg - rel) / edge + 0.5, 0.0, 1.0) * (rel <= extent_deg + edge)
    band = np.clip((thickness - np.abs(rad - 1.0)) / (0.3 * thickness), 0.0, 1.0)
    weight = (along * band * (1.0 - float(visibility))).astype(np.float32)
    sigma = max(2.0, ellipse.semi_minor / 4.0)
    background = cv2.GaussianBlur(view.astype(np.float32), (0, 0), sigma)
    background = np.minimum(background, float(np.median(view)) + 0.05)
    return np.clip(view * (1.0 - weight) + background * weight, 0.0, 1.0).astype(np.float32)


def sector_cut(view: np.ndarray, point_xy, normal_xy, softness_px: float = 1.0) -> np.ndarray:
    """Black beyond a straight line (outside the imaged sector).

    Pixels on the side of the line through ``point_xy`` that ``normal_xy``
    points to become 0, as outside an ultrasound sector.
    """
    h, w = view.shape
    n = _unit(normal_xy)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    side = (xx - float(point_xy[0])) * n[0] + (yy - float(point_xy[1])) * n[1]
    keep = np.clip(0.5 - side / max(float(softness_px), 1e-3), 0.0, 1.0)
    return (view * keep).astype(np.float32)


def reverberation(view: np.ndarray, start_xy, direction_xy, spacing_px: float, count: int = 3,
                  amplitude: float = 0.3, thickness_px: float = 1.5) -> np.ndarray:
    """Reverberation: ``count`` bright bands perpendicular to the beam, equally spaced, fading.

    Band ``k`` lies ``k * spacing_px`` beyond ``start_xy`` along ``direction_xy``
    and adds ``amplitude * 0.6 ** k`` to the grey level.
    """
    h, w = view.shape
    d = _unit(direction_xy)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xx - float(start_xy[0])) * d[0] + (yy - float(start_xy[1])) * d[1]
    out = view.astype(np.float32).copy()
    for k in range(1, int(count) + 1):
        out += amplitude * 0.6 ** (k - 1) * np.exp(-0.5 * ((along - k * spacing_px) / thickness_px) ** 2)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def random_scan_defects(view: np.ndarray, rng: np.random.Generator, ellipse, probe_direction_xy=(0.0, 1.0),
                        p_shadow: float = 0.3, p_arc: float = 0.2, p_reverb: float = 0.1,
                        p_cut: float = 0.1) -> np.ndarray:
    """What hard scans show, at random, around the head ``ellipse`` (view pixels).

    ``probe_direction_xy`` is the direction the sound travels in the view (down
    in an unrotated HC18 scan). Shadows: 1-2 bands, 0.1-0.7 x the head's minor
    axis wide, attenuation 0.03-0.5, cast along the beam +/-25 degrees from a
    point near the skull outline. Missing arcs: 1-2 arcs of 20-100 degrees,
    visibility 0-0.5. Reverberation: 2-4 bands near the skull's proximal side.
    Sector cut: a line that leaves 60-95 % of the head inside.
    """
    out = view.astype(np.float32)
    beam = _unit(probe_direction_xy)
    a, b = ellipse.semi_major, ellipse.semi_minor
    if rng.random() < p_arc:
        for _ in range(int(rng.integers(1, 3))):
            out = missing_skull_arc(out, ellipse, rng.uniform(0, 360), rng.uniform(20, 100),
                                    visibility=rng.uniform(0.0, 0.5))
    if rng.random() < p_shadow:
        for _ in range(int(rng.integers(1, 3))):
            t = rng.uniform(0, 2 * np.pi)
            rot = np.deg2rad(rng.uniform(-25, 25))
            d = np.array([beam[0] * np.cos(rot) - beam[1] * np.sin(rot),
                          beam[0] * np.sin(rot) + beam[1] * np.cos(rot)])
            on_outline = np.array([ellipse.center_x, ellipse.center_y]) + _ellipse_offset(ellipse, t)
            start = on_outline - d * rng.uniform(0.0, 0.4) * b
            out = acoustic_shadow(out, start, d, rng.uniform(0.1, 0.7) * 2 * b,
                                  attenuation=rng.uniform(0.03, 0.5), softness_px=rng.uniform(1.0, 4.0))
    if rng.random() < p_reverb:
        start = np.array([ellipse.center_x, ellipse.center_y]) - beam * (a + rng.uniform(0.0, 0.3) * a)
        out = reverberation(out, start, beam, rng.uniform(0.08, 0.2) * b, int(rng.integers(2, 5)),
                            amplitude=rng.uniform(0.1, 0.4))
    if rng.random() < p_cut:
        t = rng.uniform(0, 2 * np.pi)
        normal = np.array([np.cos(t), np.sin(t)])
        depth = rng.uniform(0.3, 0.9)  # distance of the line from the centre, in radii along the normal
        centre = np.array([ellipse.center_x, ellipse.center_y])
        out = sector_cut(out, centre + normal * depth * a, normal, softness_px=rng.uniform(0.5, 2.0))
    return out


def _ellipse_offset(ellipse, t: float) -> np.ndarray:
    """Offset from the centre to the outline point at parametric angle ``t`` (radians)."""
    th = np.deg2rad(ellipse.angle_deg)
    u, v = ellipse.semi_major * np.cos(t), ellipse.semi_minor * np.sin(t)
    return np.array([u * np.cos(th) - v * np.sin(th), u * np.sin(th) + v * np.cos(th)])
