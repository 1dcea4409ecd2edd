"""From a grey scan to the head ellipse: coarse localisation, then a fine, head-centred pass.

The procedure does not depend on how the network runs: it takes a ``predict``
callable mapping a float32 batch ``(N, 1, S, S)`` of standardised views to logits
of the same shape (ONNX Runtime when measuring, PyTorch while training).

1. Coarse: the whole image, letterboxed into an ``S x S`` view; the largest
   region of the predicted head mask gives a first ellipse.
2. Fine: a view of side ``crop_side_factor x semi-major axis`` centred on that
   ellipse (so every head fills the view about the same, whatever its size),
   predicted as is and mirrored (test-time augmentation); the mean probability's
   sub-pixel crossings of ``boundary_level`` (hundreds of boundary points) get a
   robust ellipse fit, mapped back to original pixels. ``refine_passes`` repeats this pass
   centred on the refined ellipse.

A quality score in [0, 1] comes with every result (see :class:`SegmentationResult`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..clinical.geometry import (Ellipse, distance_to_outline, ellipse_points, ellipse_to_mask, fit_ellipse_to_points,
                       mask_boundary_points)
from ..clinical.limits import INSIDE_FRACTION_SCORE_RANGE, MIN_AXIS_RATIO, TTA_HC_DISAGREEMENT_ZERO
from .transforms import invert_affine, letterbox_affine, standardize, view_affine, warp_to_view

__all__ = ["PipelineConfig", "SegmentationResult", "HeadNotFoundError", "PredictorError", "segment_head",
           "inside_fraction", "outline_evidence", "outline_angles", "EVIDENCE_ANGLES"]

Predict = Callable[[np.ndarray], np.ndarray]


class HeadNotFoundError(RuntimeError):
    """The network found no head-like region in the image."""


class PredictorError(RuntimeError):
    """The ``predict`` callable broke its contract (wrong output shape): a programming error."""


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the two-pass procedure; they travel with the model in its metadata."""

    input_size: int = 160
    crop_side_factor: float = 2.5
    refine_passes: int = 1
    mirror_tta: bool = True
    vertical_flip_tta: bool = False
    min_coarse_area_fraction: float = 0.002
    weighted_fit: bool = True  # measured: lower HC error clean and under shadows (BENCHMARKS.md)
    #: the probability level taken as the outline; 0.5 unless ``fetalhead calibrate`` chose, on
    #: *training* images, the level at which the model's HC has no median bias
    #: (:func:`fetalhead.studies.calibration.choose_boundary_level`)
    boundary_level: float = 0.5

    @classmethod
    def from_dict(cls, d: dict) -> "PipelineConfig":
        names = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class SegmentationResult:
    """The head ellipse (original pixels) and how far to trust it.

    ``quality`` is the smallest of three scores in [0, 1]:

    * ``mask_fit``: intersection-over-union of the network's head mask with the
      fitted ellipse in the fine view (a mask that is not an ellipse, e.g. a
      partial or doubled skull, scores low);
    * ``tta_agreement``: 1 - |HC(view) - HC(mirrored view)| / HC / 0.04, clipped
      (the two predictions disagree by 4 % or more -> 0);
    * ``inside``: share of the ellipse outline that lies inside the image, scaled so
      that 90 % inside or more scores 1 and 60 % or less scores 0.
    """

    ellipse: Ellipse
    quality: float
    components: dict = field(default_factory=dict)
    coarse_ellipse: Ellipse | None = None
    #: per angle around the outline (:func:`outline_angles`, plus ``mirror_diff``: how far the mirrored
    #: views' outlines differ there, in semi-minor axes, and ``points``: where on the image (original
    #: pixels) each angle lies); empty when not computed
    outline: dict = field(default_factory=dict)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _predict_prob(predict: Predict, views: list[np.ndarray]) -> np.ndarray:
    batch = np.stack([standardize(v) for v in views])[:, None].astype(np.float32)
    logits = np.asarray(predict(batch), dtype=np.float32)
    if logits.shape != batch.shape:
        raise PredictorError(f"model returned shape {logits.shape}, expected {batch.shape}")
    return _sigmoid(logits[:, 0])


def _fit_prob(prob: np.ndarray, weighted: bool = False, level: float = 0.5
              ) -> tuple[Ellipse, np.ndarray, np.ndarray]:
    """Ellipse (view pixels) fitted to the ``level`` crossings around the largest region, that region
    and the crossing points. With ``weighted`` each point counts by the sharpness of the probability
    there (the arcs the network is sure of lead; a shadowed, uncertain arc is completed)."""
    try:
        pts, region = mask_boundary_points(prob, level)
    except ValueError:
        raise HeadNotFoundError("no head region in the network output") from None
    if region.sum() < 10:
        raise HeadNotFoundError("no head region in the network output")
    weights = _boundary_sharpness(prob, pts) if weighted else None
    return fit_ellipse_to_points(pts, weights=weights), region, pts


def _boundary_sharpness(prob: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Gradient magnitude of the probability at each point (per pixel), floored so no point is ignored.

    Central differences at the nearest pixel (one-sided on the border), as ``np.gradient``, read at
    the points only."""
    h, w = prob.shape
    x = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
    y = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
    xm, xp = np.maximum(x - 1, 0), np.minimum(x + 1, w - 1)
    ym, yp = np.maximum(y - 1, 0), np.minimum(y + 1, h - 1)
    p = prob.astype(np.float32, copy=False)
    gx = (p[y, xp] - p[y, xm]) / np.maximum(xp - xm, 1)
    gy = (p[yp, x] - p[ym, x]) / np.maximum(yp - ym, 1)
    return np.maximum(np.hypot(gx, gy), 0.02).astype(float)


def _sample(img: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``img`` at points ``xy`` (..., 2); 0 outside."""
    import cv2

    mx = np.ascontiguousarray(xy[..., 0], dtype=np.float32)
    my = np.ascontiguousarray(xy[..., 1], dtype=np.float32)
    return cv2.remap(img.astype(np.float32), mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _scaled_points(e: Ellipse, radii: np.ndarray, n: int) -> np.ndarray:
    """Points at relative radii ``radii`` (r,) of ``e``'s outline, for ``n`` angles: shape (n, r, 2)."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)[:, None]
    th = np.deg2rad(e.angle_deg)
    u, v = e.semi_major * np.cos(t) * radii, e.semi_minor * np.sin(t) * radii
    x = e.center_x + u * np.cos(th) - v * np.sin(th)
    y = e.center_y + u * np.sin(th) + v * np.cos(th)
    return np.stack([x, y], axis=-1)


#: Angles around the outline at which the evidence for the skull is read.
EVIDENCE_ANGLES = 72
#: A skull echo is "seen" at an angle when the brightest grey within 10 % of the outline stands
#: out from the brighter of the grey inside (0.7 r) and outside (1.3 r) by this share of the
#: view's grey range (1st-99th centile): a bright ring, not the edge of a bright disc.
SKULL_ECHO_MIN_CONTRAST = 0.12
#: Grey level (of 1) at or below which a pixel holds no echo at all: the black outside an
#: ultrasound sector or outside the image (one 8-bit step; speckle, even in an acoustic shadow, is
#: brighter somewhere along 0.7-1.3 of the radius).
NO_ECHO_GREY = 1.0 / 255.0


def outline_angles(view: np.ndarray, prob: np.ndarray, e: Ellipse) -> dict:
    """What the image and the network show at each of :data:`EVIDENCE_ANGLES` angles around the
    fitted outline ``e`` (view pixels), angle ``k`` at the ellipse parameter ``2 pi k / n``:

    * ``echo`` (bool): a skull echo on the outline (a bright ridge within 10 % of the radius,
      brighter than both sides, 0.7 r and 1.3 r, by :data:`SKULL_ECHO_MIN_CONTRAST` of the grey range);
    * ``sharpness`` (0-1): prob(0.9 r) - prob(1.1 r), the network's certainty that the outline is there;
    * ``in_field`` (bool): the scan holds any echo (grey above :data:`NO_ECHO_GREY`) between 0.7 and
      1.3 of the radius.
    """
    radii = np.array([0.7, 0.9, 0.95, 1.0, 1.05, 1.1, 1.3])
    pts = _scaled_points(e, radii, EVIDENCE_ANGLES)
    grey = _sample(view, pts)
    lo, hi = np.percentile(view, [1, 99])
    span = max(float(hi - lo), 1e-3)
    ridge = grey[:, 1:6].max(axis=1) - np.maximum(grey[:, 0], grey[:, 6])
    p = _sample(prob, pts)
    return {"echo": ridge / span > SKULL_ECHO_MIN_CONTRAST, "sharpness": np.clip(p[:, 1] - p[:, 5], 0, 1),
            "in_field": grey.max(axis=1) > NO_ECHO_GREY}


def outline_evidence(view: np.ndarray, prob: np.ndarray, e: Ellipse) -> dict:
    """How much of the fitted outline the image and the network actually show (view pixels), from
    :func:`outline_angles`:

    * ``outline_seen``: share of angles where the image has a skull echo on the outline;
      low behind acoustic shadows, missing skull arcs, or where there is no skull;
    * ``skull_gap``: the longest run of angles without one, as a share of the outline;
    * ``boundary_sharpness``: mean over angles of prob(0.9 r) - prob(1.1 r), the network's
      certainty that the outline is there;
    * ``outline_in_field``: share of angles where the scan holds any echo between 0.7 and 1.3 of
      the radius: low where the outline runs out of the imaged sector or out of the image.
    """
    return _evidence_of(outline_angles(view, prob, e))


def _evidence_of(a: dict) -> dict:
    """:func:`outline_evidence`'s shares from :func:`outline_angles`'s per-angle evidence ``a``."""
    return {"outline_seen": float(np.mean(a["echo"])), "skull_gap": _longest_gap(a["echo"]),
            "boundary_sharpness": float(a["sharpness"].mean()), "outline_in_field": float(np.mean(a["in_field"]))}


#: Rays from the fitted centre along which the mirrored views' outlines are compared, and the
#: relative radii searched along each for the outline.
TTA_RAYS = 72
_TTA_RADII = np.linspace(0.75, 1.25, 51)


def _outline_radii(prob: np.ndarray, rays: np.ndarray, level: float) -> np.ndarray:
    """Where ``prob`` last falls through ``level`` along each ray of ``rays`` (points at the relative
    radii :data:`_TTA_RADII` of an ellipse, ``_scaled_points(e, _TTA_RADII, TTA_RAYS)``), as a radius
    relative to the ellipse's (0.75 or 1.25 when it does not within that range).

    The mirrored views' outlines compared ray by ray: far cheaper than an ellipse fit to each view."""
    p = _sample(prob, rays)
    inside = p >= level
    last = len(_TTA_RADII) - 1 - np.argmax(inside[:, ::-1], axis=1)  # outermost sample inside
    rows = np.arange(len(p))
    nxt = np.minimum(last + 1, len(_TTA_RADII) - 1)
    pa, pb = p[rows, last], p[rows, nxt]
    frac = np.where(pa > pb, (pa - level) / np.maximum(pa - pb, 1e-9), 0.0)
    step = _TTA_RADII[1] - _TTA_RADII[0]
    r = _TTA_RADII[last] + np.clip(frac, 0.0, 1.0) * step
    r[~inside.any(axis=1)] = _TTA_RADII[0]
    return r


def _longest_gap(seen: np.ndarray) -> float:
    """The longest run of angles without a skull echo, as a share of the outline (runs wrap around)."""
    if seen.all():
        return 0.0
    if not seen.any():
        return 1.0
    k = int(np.argmax(seen))  # start the walk on a seen angle, so no run wraps
    longest = run = 0
    for v in np.roll(seen, -k):
        run = 0 if v else run + 1
        longest = max(longest, run)
    return longest / len(seen)


def _coarse(image: np.ndarray, predict: Predict, cfg: PipelineConfig, pyramid: list | None = None
            ) -> tuple[Ellipse, dict]:
    """The first ellipse (original pixels) and what the whole-image view says about the head:
    ``coarse_area`` (share of the view the network calls head) and ``coarse_confidence`` (the mean
    head probability over the region the ellipse was fitted to: near 1 for a fetal head, lower where
    the network is unsure there is a head at all)."""
    size = cfg.input_size
    m = letterbox_affine(image.shape, size)
    prob = _predict_prob(predict, [warp_to_view(image, m, size, pyramid)])[0]
    area = float((prob > 0.5).mean())
    if area < cfg.min_coarse_area_fraction:
        raise HeadNotFoundError("no head found in the image")
    e_view, region, _ = _fit_prob(prob, level=cfg.boundary_level)
    comps = {"coarse_area": area, "coarse_confidence": float(prob[region > 0].mean()) if region.any() else 0.0}
    return e_view.transformed(invert_affine(m)), comps


def inside_fraction(e: Ellipse, shape) -> float:
    """Share of the outline of ``e`` inside an image of ``shape`` (height, width)."""
    pts = ellipse_points(e, 360)
    h, w = shape
    ok = (pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)
    return float(ok.mean())


def _fine(image: np.ndarray, e0: Ellipse, predict: Predict, cfg: PipelineConfig, pyramid: list | None = None
          ) -> tuple[Ellipse, dict, dict]:
    size = cfg.input_size
    side = cfg.crop_side_factor * e0.semi_major
    m = view_affine(e0.center, side, size)
    view = warp_to_view(image, m, size, pyramid)
    flips = [(False, False)]
    if cfg.mirror_tta:
        flips.append((True, False))
    if cfg.vertical_flip_tta:
        flips += [(False, True)] + ([(True, True)] if cfg.mirror_tta else [])
    views = [np.ascontiguousarray(view[::-1 if v else 1, ::-1 if h else 1]) for h, v in flips]
    probs = _predict_prob(predict, views)
    for k, (h, v) in enumerate(flips):  # back to the view's orientation
        probs[k] = probs[k][::-1 if v else 1, ::-1 if h else 1].copy()
    mean_prob = probs.mean(axis=0)
    e_view, region, pts = _fit_prob(mean_prob, cfg.weighted_fit, cfg.boundary_level)
    angles = outline_angles(view, mean_prob, e_view)
    comps = _evidence_of(angles)
    comps["fit_residual"] = float(np.sqrt(np.mean(distance_to_outline(pts, e_view) ** 2)) / e_view.semi_minor)
    fit_mask = ellipse_to_mask(e_view, (size, size))
    inter = np.logical_and(fit_mask, region).sum()
    union = np.logical_or(fit_mask, region).sum()
    comps["mask_fit"] = float(inter / max(union, 1))
    comps["head_confidence"] = float(mean_prob[region > 0].mean())  # how sure the network is of its head
    if len(flips) > 1:
        rays = _scaled_points(e_view, _TTA_RADII, TTA_RAYS)
        r0, r1 = (_outline_radii(p, rays, cfg.boundary_level) for p in probs[:2])
        rho = np.hypot(*(rays[:, 0] - e_view.center).T) / _TTA_RADII[0]  # the outline's radius per ray
        comps["tta_hc_rel_diff"] = float(abs(np.mean(r0 - r1)))
        comps["tta_outline_diff"] = float(np.mean(np.abs(r0 - r1) * rho) / e_view.semi_minor)
        angles["mirror_diff"] = np.abs(r0 - r1) * rho / e_view.semi_minor  # TTA_RAYS == EVIDENCE_ANGLES
    back = invert_affine(m)
    on_outline = _scaled_points(e_view, np.array([1.0]), EVIDENCE_ANGLES)[:, 0]
    angles["points"] = on_outline @ back[:, :2].T + back[:, 2]  # original pixels
    return e_view.transformed(back), comps, angles


def segment_head(image: np.ndarray, predict: Predict, config: PipelineConfig | None = None
                 ) -> SegmentationResult:
    """Find the head ellipse in a grey scan.

    Parameters
    ----------
    image : ndarray (H, W), float32 in [0, 1]
        The scan (see :func:`fetalhead.scans.imageio.to_grey_float`).
    predict : callable
        Batch of standardised views ``(N, 1, S, S)`` -> logits of the same shape.
    config : PipelineConfig

    Raises
    ------
    HeadNotFoundError
        When no head-like region is found.
    """
    cfg = config or PipelineConfig()
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError("image must be 2D grey")
    try:
        pyramid: list = []  # the image's reduced levels, shared by the coarse and fine views
        coarse, coarse_comps = _coarse(img, predict, cfg, pyramid)
        e, comps, angles = coarse, {}, {}
        for _ in range(max(1, cfg.refine_passes)):
            previous = e
            e, comps, angles = _fine(img, e, predict, cfg, pyramid)
        comps.update(coarse_comps)
        if cfg.refine_passes > 1:  # how far the last fine pass moved the outline of the one before
            comps["refine_rel_diff"] = float(abs(previous.perimeter_px - e.perimeter_px) / max(e.perimeter_px, 1e-9))
    except ValueError as exc:  # an ellipse fit that failed on a degenerate mask
        raise HeadNotFoundError(f"no head ellipse could be fitted ({exc})") from None
    inside = inside_fraction(e, img.shape)
    comps["inside_fraction"] = inside
    comps["coarse_fine_rel_diff"] = float(abs(coarse.perimeter_px - e.perimeter_px) / max(e.perimeter_px, 1e-9))
    comps["head_px"] = float(e.perimeter_px)
    lo, hi = INSIDE_FRACTION_SCORE_RANGE
    scores = [comps["mask_fit"], min(1.0, max(0.0, (inside - lo) / (hi - lo)))]
    if "tta_hc_rel_diff" in comps:
        scores.append(min(1.0, max(0.0, 1.0 - comps["tta_hc_rel_diff"] / TTA_HC_DISAGREEMENT_ZERO)))
    quality = float(min(scores))
    h, w = img.shape
    if not (-w < e.center_x < 2 * w and -h < e.center_y < 2 * h) or e.semi_major > 2 * max(h, w):
        raise HeadNotFoundError("the fitted ellipse lies far outside the image")
    if e.semi_minor / e.semi_major < MIN_AXIS_RATIO:
        comps["implausible_shape"] = True
        quality = min(quality, 0.0)
    return SegmentationResult(ellipse=e, quality=quality, components=comps, coarse_ellipse=coarse, outline=angles)
