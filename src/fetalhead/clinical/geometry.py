"""Ellipse geometry: the head outline as numbers.

Conventions (the same as ``ellipses.csv`` of the HC18 data): coordinates are in
pixels of the original image, origin at the centre of the top-left pixel, x to the
right, y down. ``angle_deg`` is the direction of the major axis in degrees,
clockwise from +x as seen on screen (that is, the ordinary counter-clockwise angle
of a y-down coordinate system), in [0, 180).

Everything here is plain functions on numbers and numpy arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Ellipse",
    "ellipse_perimeter",
    "ellipse_points",
    "ellipse_landmarks",
    "fit_ellipse_to_points",
    "fit_ellipse_to_mask",
    "fit_ellipse_to_outline",
    "ellipse_to_mask",
    "ellipse_coverage",
    "hausdorff_distance",
    "dice_coefficient",
    "threshold_crossings",
    "mask_boundary_points",
    "largest_component",
    "distance_to_outline",
]


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in image pixel coordinates.

    Parameters
    ----------
    center_x, center_y : float
        Centre in pixels (origin at the top-left pixel centre, x right, y down).
    semi_major, semi_minor : float
        Semi-axes in pixels, ``semi_major >= semi_minor > 0``.
    angle_deg : float
        Direction of the major axis, degrees clockwise from +x on screen, [0, 180).
    """

    center_x: float
    center_y: float
    semi_major: float
    semi_minor: float
    angle_deg: float

    def __post_init__(self) -> None:
        values = (self.center_x, self.center_y, self.semi_major, self.semi_minor, self.angle_deg)
        if not all(math.isfinite(float(v)) for v in values):
            raise ValueError(f"ellipse parameters must be finite, got {values}")
        if not (self.semi_minor > 0 and self.semi_major > 0):
            raise ValueError(f"semi-axes must be positive, got {self.semi_major}, {self.semi_minor}")
        if self.semi_minor > self.semi_major:
            raise ValueError("semi_minor must not exceed semi_major; use Ellipse.from_axes")

    @classmethod
    def from_axes(cls, center_x: float, center_y: float, axis_1: float, axis_2: float,
                  angle_1_deg: float) -> "Ellipse":
        """Build an ellipse from two semi-axes in any order.

        ``angle_1_deg`` is the direction of ``axis_1``; the result is normalised so
        that ``semi_major >= semi_minor`` and ``angle_deg`` lies in [0, 180).
        """
        a, b, ang = float(axis_1), float(axis_2), float(angle_1_deg)
        if b > a:
            a, b, ang = b, a, ang + 90.0
        return cls(float(center_x), float(center_y), a, b, ang % 180.0)

    @property
    def center(self) -> tuple[float, float]:
        return (self.center_x, self.center_y)

    @property
    def perimeter_px(self) -> float:
        """Perimeter in pixels (Ramanujan's second approximation)."""
        return ellipse_perimeter(self.semi_major, self.semi_minor)

    @property
    def area_px(self) -> float:
        return math.pi * self.semi_major * self.semi_minor

    def as_tuple(self) -> tuple[float, float, float, float, float]:
        return (self.center_x, self.center_y, self.semi_major, self.semi_minor, self.angle_deg)

    def implicit(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(u/a)^2 + (v/b)^2 at points (x, y): < 1 inside, 1 on, > 1 outside."""
        t = math.radians(self.angle_deg)
        dx, dy = np.asarray(x, float) - self.center_x, np.asarray(y, float) - self.center_y
        u = dx * math.cos(t) + dy * math.sin(t)
        v = -dx * math.sin(t) + dy * math.cos(t)
        return (u / self.semi_major) ** 2 + (v / self.semi_minor) ** 2

    def transformed(self, matrix: np.ndarray) -> "Ellipse":
        """The image of this ellipse under an affine map ``p -> A p + t``.

        ``matrix`` is 2x3 ``[A | t]`` (as used by ``cv2.warpAffine``). Any
        non-singular affine map sends an ellipse to an ellipse, so this also
        converts pixels to millimetres with anisotropic spacing
        (``A = diag(sx, sy)``).
        """
        m = np.asarray(matrix, float)
        if m.shape != (2, 3):
            raise ValueError("matrix must be 2x3")
        a_mat, t_vec = m[:, :2], m[:, 2]
        if abs(np.linalg.det(a_mat)) < 1e-12:
            raise ValueError("affine map is singular")
        th = math.radians(self.angle_deg)
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        # Points of the ellipse: c + R diag(a, b) [cos s, sin s]; its image: c' + M [cos s, sin s].
        m_full = a_mat @ rot @ np.diag([self.semi_major, self.semi_minor])
        u, s, _ = np.linalg.svd(m_full)
        centre = a_mat @ np.array(self.center) + t_vec
        angle = math.degrees(math.atan2(u[1, 0], u[0, 0]))
        return Ellipse.from_axes(centre[0], centre[1], s[0], s[1], angle)


def ellipse_perimeter(semi_major: float, semi_minor: float) -> float:
    """Perimeter of an ellipse by Ramanujan's second approximation.

    P = pi (a + b) (1 + 3h / (10 + sqrt(4 - 3h))),  h = (a - b)^2 / (a + b)^2.

    Ramanujan S. "Modular equations and approximations to pi", Quarterly Journal of
    Mathematics 45 (1914) 350-372, eq. (2). Its relative error is below 1e-9 for
    the eccentricities of fetal heads. HC18 computes the reference head
    circumference with this formula (van den Heuvel et al., PLOS ONE 2018).

    Parameters
    ----------
    semi_major, semi_minor : float
        Semi-axes in any length unit; the perimeter is in the same unit.
    """
    a, b = float(semi_major), float(semi_minor)
    if a < 0 or b < 0:
        raise ValueError("semi-axes must be non-negative")
    if a + b == 0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def ellipse_points(ellipse: Ellipse, n: int = 360) -> np.ndarray:
    """``n`` points on the outline, evenly spaced in the parametric angle, shape (n, 2) as (x, y)."""
    s = np.linspace(0.0, 2 * np.pi, int(n), endpoint=False)
    t = math.radians(ellipse.angle_deg)
    u, v = ellipse.semi_major * np.cos(s), ellipse.semi_minor * np.sin(s)
    x = ellipse.center_x + u * math.cos(t) - v * math.sin(t)
    y = ellipse.center_y + u * math.sin(t) + v * math.cos(t)
    return np.stack([x, y], axis=1)


def ellipse_landmarks(ellipse: Ellipse) -> dict[str, tuple[float, float]]:
    """The four caliper landmarks, in pixels.

    Returns a dict with ``ofd_1``, ``ofd_2`` (end points of the major axis, the
    occipito-frontal diameter) and ``bpd_1``, ``bpd_2`` (end points of the minor
    axis, the biparietal diameter). With u the major-axis direction and p = u
    turned by +90 degrees, "1" is the end at -u (-p) and "2" the end at +u (+p),
    which reproduces the order of ``ellipses.csv``. The order carries no anatomy
    (which end is occiput is not known): compare landmark pairs order-free.
    """
    t = math.radians(ellipse.angle_deg)
    cx, cy, a, b = ellipse.center_x, ellipse.center_y, ellipse.semi_major, ellipse.semi_minor
    ux, uy = math.cos(t), math.sin(t)
    px, py = -uy, ux
    return {
        "ofd_1": (cx - a * ux, cy - a * uy),
        "ofd_2": (cx + a * ux, cy + a * uy),
        "bpd_1": (cx - b * px, cy - b * py),
        "bpd_2": (cx + b * px, cy + b * py),
    }


def _conic_to_ellipse(coef: np.ndarray) -> Ellipse:
    """Geometric parameters of the conic A x^2 + B xy + C y^2 + D x + E y + F = 0."""
    a, b, c, d, e, f = (float(v) for v in coef)
    disc = b * b - 4 * a * c
    if disc >= 0:
        raise ValueError("points do not determine an ellipse")
    x0 = (2 * c * d - b * e) / disc
    y0 = (2 * a * e - b * d) / disc
    # Value of the conic at the centre; the quadratic form Q scaled gives the axes.
    f0 = a * x0 * x0 + b * x0 * y0 + c * y0 * y0 + d * x0 + e * y0 + f
    q = np.array([[a, b / 2], [b / 2, c]])
    evals, evecs = np.linalg.eigh(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        axes_sq = -f0 / evals
    if not np.all(axes_sq > 0):
        raise ValueError("points do not determine a real ellipse")
    axes = np.sqrt(axes_sq)
    # eigh sorts eigenvalues ascending: smallest |eval| gives the longest axis
    i_major = int(np.argmax(axes))
    vec = evecs[:, i_major]
    angle = math.degrees(math.atan2(vec[1], vec[0]))
    return Ellipse.from_axes(x0, y0, axes[i_major], axes[1 - i_major], angle)


def _direct_fit(points: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Direct least-squares ellipse fit (Fitzgibbon, Pilu & Fisher 1999, PAMI 21:476),
    in the numerically stable form of Halir & Flusser (1998); ``weights`` scale each
    point's squared algebraic residual. Returns conic coefficients."""
    x, y = points[:, 0], points[:, 1]
    d1 = np.stack([x * x, x * y, y * y], axis=1)
    d2 = np.stack([x, y, np.ones_like(x)], axis=1)
    if weights is not None:
        sw = np.sqrt(np.asarray(weights, dtype=float))[:, None]
        d1, d2 = d1 * sw, d2 * sw
    s1, s2, s3 = d1.T @ d1, d1.T @ d2, d2.T @ d2
    t = -np.linalg.solve(s3, s2.T)
    m = s1 + s2 @ t
    m = np.array([m[2] / 2, -m[1], m[0] / 2])
    evals, evecs = np.linalg.eig(m)
    evecs = np.real(evecs)
    cond = 4 * evecs[0] * evecs[2] - evecs[1] ** 2
    ok = np.where(cond > 0)[0]
    if ok.size == 0:
        raise ValueError("points do not determine an ellipse")
    a1 = evecs[:, ok[0]]
    return np.concatenate([a1, t @ a1])


def _sampson_distance(coef: np.ndarray, points: np.ndarray) -> np.ndarray:
    """First-order geometric distance of points to the conic, in pixels."""
    a, b, c, d, e, f = coef
    x, y = points[:, 0], points[:, 1]
    val = a * x * x + b * x * y + c * y * y + d * x + e * y + f
    gx, gy = 2 * a * x + b * y + d, b * x + 2 * c * y + e
    return np.abs(val) / np.maximum(np.hypot(gx, gy), 1e-12)


def fit_ellipse_to_points(points: np.ndarray, robust: bool = True, max_iter: int = 5,
                          outlier_sigmas: float = 3.0, weights: np.ndarray | None = None) -> Ellipse:
    """Least-squares ellipse through boundary points, robust to a few stray points.

    A direct conic fit (Fitzgibbon et al. 1999) on coordinates centred and scaled
    for conditioning; with ``robust`` the fit is repeated without the points whose
    geometric (Sampson) distance exceeds ``outlier_sigmas`` robust standard
    deviations (1.4826 x median absolute distance, at least 0.5 px).

    Parameters
    ----------
    points : array_like, shape (n, 2)
        (x, y) in pixels, n >= 5.
    weights : array_like, shape (n,), optional
        Non-negative confidence of each point (e.g. the boundary's sharpness): the fit
        follows the points it is sure of and completes the rest.

    Raises
    ------
    ValueError
        If there are fewer than 5 finite points or they fit no ellipse.
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError("points must have shape (n, 2)")
    w = None if weights is None else np.asarray(weights, dtype=float).ravel()
    if w is not None and (w.shape != (len(pts),) or np.any(w < 0) or not np.all(np.isfinite(w))):
        raise ValueError("weights must be one finite non-negative number per point")
    finite = np.all(np.isfinite(pts), axis=1)
    pts = pts[finite]
    if w is not None:
        w = w[finite]
        if (w > 0).sum() < 5:
            raise ValueError("an ellipse fit needs at least 5 points with weight")
    if len(pts) < 5:
        raise ValueError(f"an ellipse fit needs at least 5 points, got {len(pts)}")
    mean = pts.mean(axis=0)
    scale = float(np.sqrt(((pts - mean) ** 2).sum(axis=1).mean())) or 1.0
    norm = (pts - mean) / scale
    keep = np.ones(len(pts), bool)
    coef = _direct_fit(norm, w)
    if robust:
        for _ in range(max_iter):
            dist = _sampson_distance(coef, norm) * scale
            sigma = max(1.4826 * float(np.median(dist[keep])), 0.5)
            new_keep = dist <= outlier_sigmas * sigma
            if new_keep.sum() < 5 or np.array_equal(new_keep, keep):
                break
            keep = new_keep
            coef = _direct_fit(norm[keep], None if w is None else w[keep])
    e = _conic_to_ellipse(coef)
    return Ellipse(e.center_x * scale + mean[0], e.center_y * scale + mean[1],
                   e.semi_major * scale, e.semi_minor * scale, e.angle_deg)


def threshold_crossings(values: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Sub-pixel points where a 2D map crosses ``threshold``, shape (n, 2) as (x, y).

    Between each pair of horizontally or vertically neighbouring pixels whose
    values lie on either side of the threshold, the crossing is placed by linear
    interpolation (the edges of a marching-squares contour).
    """
    v = np.asarray(values)
    if v.ndim != 2:
        raise ValueError("values must be a 2D array")
    d = v - np.asarray(threshold, dtype=v.dtype if v.dtype.kind == "f" else np.float64)
    above, below = d > 0, d < 0  # strictly either side: a value on the threshold is no crossing
    out = []
    for axis in (1, 0):  # horizontal, then vertical neighbours
        lo = (slice(None), slice(None, -1)) if axis == 1 else (slice(None, -1), slice(None))
        hi = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None), slice(None))
        yy, xx = np.nonzero((above[lo] & below[hi]) | (below[lo] & above[hi]))
        if yy.size:
            fa = d[lo][yy, xx].astype(np.float64)
            fb = d[hi][yy, xx].astype(np.float64)
            step = fa / (fa - fb)
            out.append(np.stack([xx + step, yy.astype(float)] if axis == 1 else [xx.astype(float), yy + step], axis=1))
    if not out:
        return np.zeros((0, 2))
    return np.concatenate(out, axis=0)


def largest_component(binary: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a binary map (all False when there is none)."""
    return _largest_component_box(binary)[0]


def _largest_component_box(binary: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """The largest 8-connected region and its bounding box (x0, y0, x1, y1), ends excluded."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(binary, dtype=bool), (0, 0, 0, 0)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(stats[best, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                                  cv2.CC_STAT_HEIGHT))
    return labels == best, (x, y, x + w, y + h)


def mask_boundary_points(mask: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel boundary points of the largest region of a filled mask, and that region.

    The points are the ``threshold`` crossings (:func:`threshold_crossings`) next to the
    largest connected region above the threshold, so small stray blobs add no points.
    Returns ``(points (n, 2) as (x, y), region (H, W) bool)``.
    """
    import cv2

    m = np.asarray(mask)
    if m.dtype.kind != "f":
        m = m.astype(np.float64)
    if m.ndim != 2:
        raise ValueError("mask must be 2D")
    region, (bx0, by0, bx1, by1) = _largest_component_box(m > threshold)
    if region.sum() < 5:
        raise ValueError("mask has no region to fit")
    # only the region's box, 1 pixel wider, can hold its crossings
    y0, y1, x0, x1 = max(by0 - 1, 0), by1 + 1, max(bx0 - 1, 0), bx1 + 1
    box = region[y0:y1, x0:x1]
    near = cv2.dilate(box.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    pts = threshold_crossings(np.where(near, m[y0:y1, x0:x1], 0.0), threshold)
    return pts + np.array([x0, y0], dtype=float), region


def fit_ellipse_to_mask(mask: np.ndarray, threshold: float = 0.5, robust: bool = True) -> Ellipse:
    """Ellipse fitted to the boundary of a filled binary or probability mask.

    The boundary is the sub-pixel ``threshold`` crossing of the map around its largest
    connected region (:func:`mask_boundary_points`).

    Parameters
    ----------
    mask : ndarray, shape (H, W)
        Binary (0/1, bool) or probability map of the filled head.
    threshold : float
        Level of the boundary, 0.5 for a probability map.
    """
    pts, _ = mask_boundary_points(mask, threshold)
    return fit_ellipse_to_points(pts, robust=robust)


def fit_ellipse_to_outline(outline: np.ndarray, robust: bool = True) -> Ellipse:
    """Ellipse fitted to the pixels of a drawn outline (an HC18 annotation PNG).

    Every non-zero pixel centre is a boundary point.
    """
    o = np.asarray(outline)
    if o.ndim == 3:
        o = o.max(axis=2)
    yy, xx = np.nonzero(o > 0)
    if yy.size < 5:
        raise ValueError("outline has fewer than 5 pixels")
    return fit_ellipse_to_points(np.stack([xx, yy], axis=1).astype(float), robust=robust)


def ellipse_to_mask(ellipse: Ellipse, shape: tuple[int, int]) -> np.ndarray:
    """Filled ellipse rasterised on a grid of ``shape`` (H, W): True where the pixel centre is inside."""
    h, w = int(shape[0]), int(shape[1])
    yy, xx = np.ogrid[0:h, 0:w]
    return ellipse.implicit(xx, yy) <= 1.0


def ellipse_coverage(ellipse: Ellipse, shape: tuple[int, int]) -> np.ndarray:
    """Soft filled ellipse: the approximate fraction of each pixel inside, float32 in [0, 1].

    Uses the first-order signed distance to the outline, (F - 1) / |grad F| with F
    the implicit function, so the 0.5 level lies on the outline to sub-pixel
    accuracy. Used as the training target of the segmentation network.
    """
    h, w = int(shape[0]), int(shape[1])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t = math.radians(ellipse.angle_deg)
    dx, dy = xx - ellipse.center_x, yy - ellipse.center_y
    u = dx * math.cos(t) + dy * math.sin(t)
    v = -dx * math.sin(t) + dy * math.cos(t)
    a2, b2 = ellipse.semi_major ** 2, ellipse.semi_minor ** 2
    f = u * u / a2 + v * v / b2
    grad = 2 * np.sqrt((u / a2) ** 2 + (v / b2) ** 2)
    # Near the centre grad -> 0: those pixels are deep inside anyway.
    signed = (f - 1.0) / np.maximum(grad, 1e-9)
    signed = np.where(f < 0.25, -1e3, signed)
    return np.clip(0.5 - signed, 0.0, 1.0).astype(np.float32)


def _outline_samples(ellipse: Ellipse, spacing_px: float) -> np.ndarray:
    n = max(64, int(math.ceil(ellipse.perimeter_px / spacing_px)))
    return ellipse_points(ellipse, n)


def distance_to_outline(points: np.ndarray, ellipse: Ellipse) -> np.ndarray:
    """Euclidean distance from points to the outline of ``ellipse`` (Newton on the parametric angle)."""
    t = math.radians(ellipse.angle_deg)
    a, b = ellipse.semi_major, ellipse.semi_minor
    dx, dy = points[:, 0] - ellipse.center_x, points[:, 1] - ellipse.center_y
    u = np.abs(dx * math.cos(t) + dy * math.sin(t))
    v = np.abs(-dx * math.sin(t) + dy * math.cos(t))
    # Closest point on the first-quadrant arc: minimise over s in [0, pi/2].
    s = np.arctan2(a * v, b * u)
    for _ in range(30):  # Newton converges in a few steps: stop once no angle moves by 1e-12 rad
        cs, sn = np.cos(s), np.sin(s)
        ex, ey = a * cs - u, b * sn - v
        g = -ex * a * sn + ey * b * cs
        gp = (a * sn) ** 2 + (b * cs) ** 2 - ex * a * cs - ey * b * sn
        s_new = np.clip(s - g / np.where(np.abs(gp) < 1e-12, 1e-12, gp), 0.0, np.pi / 2)
        done = s_new.size == 0 or float(np.max(np.abs(s_new - s))) < 1e-12
        s = s_new
        if done:
            break
    return np.hypot(a * np.cos(s) - u, b * np.sin(s) - v)


def hausdorff_distance(e1: Ellipse, e2: Ellipse, spacing_px: float = 0.25) -> float:
    """Symmetric Hausdorff distance between two ellipse outlines, in pixels.

    Each outline is sampled every ``spacing_px`` pixels and the exact distance of
    each sample to the other outline is computed, so the result is accurate to
    about ``spacing_px^2 / (8 r)``.
    """
    p1, p2 = _outline_samples(e1, spacing_px), _outline_samples(e2, spacing_px)
    return float(max(distance_to_outline(p1, e2).max(), distance_to_outline(p2, e1).max()))


def dice_coefficient(e1: Ellipse, e2: Ellipse, shape: tuple[int, int] | None = None) -> float:
    """Dice overlap of the two filled ellipses rasterised on a pixel grid, in [0, 1].

    With ``shape`` the grid is the image (H, W) and parts outside it are cut off,
    as when comparing masks; without it the grid covers both ellipses entirely.
    """
    if shape is None:
        x0 = math.floor(min(e1.center_x - e1.semi_major, e2.center_x - e2.semi_major)) - 1
        y0 = math.floor(min(e1.center_y - e1.semi_major, e2.center_y - e2.semi_major)) - 1
        x1 = math.ceil(max(e1.center_x + e1.semi_major, e2.center_x + e2.semi_major)) + 2
        y1 = math.ceil(max(e1.center_y + e1.semi_major, e2.center_y + e2.semi_major)) + 2
        off = np.array([[1, 0, -x0], [0, 1, -y0]], float)
        e1, e2 = e1.transformed(off), e2.transformed(off)
        shape = (y1 - y0, x1 - x0)
    m1, m2 = ellipse_to_mask(e1, shape), ellipse_to_mask(e2, shape)
    total = int(m1.sum()) + int(m2.sum())
    if total == 0:
        return 1.0
    return 2.0 * float(np.logical_and(m1, m2).sum()) / total
