"""Scanner-like image augmentations for training (numpy and OpenCV only).

Each function takes a float32 grey view in [0, 1] and a ``numpy.random.Generator``
and returns a new float32 view in [0, 1]; none moves the geometry (geometric
augmentation - rotation, scale, shift, mirror - is the choice of view in
:mod:`fetalhead.training.train`). Each is a plain function that can be tested alone.
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
