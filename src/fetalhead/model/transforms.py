"""Image transforms shared by training and measuring (numpy and OpenCV only).

The network always sees a square ``size x size`` view of the scan made by a
similarity transform (scale, rotation, shift, optional mirror) of the original
image. The 2x3 matrices here map original pixel coordinates to view pixel
coordinates (pixel centres at integer coordinates, as in ``cv2.warpAffine``), so
an ellipse goes from the image to the view with ``Ellipse.transformed(M)`` and
back with ``Ellipse.transformed(invert_affine(M))``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

__all__ = [
    "view_affine",
    "letterbox_affine",
    "invert_affine",
    "affine_scale",
    "warp_to_view",
    "standardize",
]


def view_affine(center_xy, side_px: float, size: int, angle_deg: float = 0.0,
                mirror: bool = False) -> np.ndarray:
    """Matrix taking original pixels to a ``size x size`` view.

    The view is a square of ``side_px`` original pixels centred on ``center_xy``,
    rotated by ``angle_deg`` (the image content turns by -angle_deg in the view),
    optionally mirrored left-right.
    """
    if side_px <= 0 or size <= 0:
        raise ValueError("side_px and size must be positive")
    s = size / float(side_px)
    t = math.radians(angle_deg)
    c, sn = math.cos(t) * s, math.sin(t) * s
    # rotate by -angle: [[c, s], [-s, c]]
    a = np.array([[c, sn], [-sn, c]])
    if mirror:
        a = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ a
    mid = (size - 1) / 2.0
    cx, cy = center_xy
    shift = np.array([mid, mid]) - a @ np.array([cx, cy], float)
    return np.hstack([a, shift[:, None]])


def letterbox_affine(image_shape: tuple[int, int], size: int) -> np.ndarray:
    """Matrix fitting the whole image, centred and unrotated, into a ``size x size`` view."""
    h, w = int(image_shape[0]), int(image_shape[1])
    return view_affine(((w - 1) / 2.0, (h - 1) / 2.0), float(max(h, w)), size)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2x3 affine matrix."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def affine_scale(matrix: np.ndarray) -> float:
    """Mean linear scale factor (view pixels per original pixel) of a 2x3 matrix."""
    m = np.asarray(matrix, float)[:, :2]
    return float(math.sqrt(abs(np.linalg.det(m))))


def warp_to_view(image: np.ndarray, matrix: np.ndarray, size: int, pyramid: list | None = None) -> np.ndarray:
    """Resample ``image`` (2D float32) into the ``size x size`` view; outside the image is 0.

    When the view shrinks the image by more than 2x, the image is first reduced
    with Gaussian pyramid steps (each halves it after low-pass filtering), so the
    view is not aliased. ``pyramid``: a list kept by the caller for several views of
    the same image (its reduced levels, ``pyramid[k]`` halved ``k + 1`` times), so
    that each level is computed once.
    """
    m = np.asarray(matrix, dtype=np.float64).copy()
    img = image
    k = 0
    while affine_scale(m) < 0.5 and min(img.shape[:2]) > 8:
        if pyramid is None:
            img = cv2.pyrDown(img)
        else:
            if len(pyramid) <= k:
                pyramid.append(cv2.pyrDown(img))
            img = pyramid[k]
        k += 1
        m[:, :2] *= 2.0  # a pixel of the reduced image is 2 pixels of the previous one
    return cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def standardize(view: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance over the view (float32); a constant view becomes zeros."""
    v = view.astype(np.float32)
    mean, std = float(v.mean()), float(v.std())
    return (v - mean) / max(std, 1e-3)
