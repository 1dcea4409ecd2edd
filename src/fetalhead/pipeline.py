"""From a grey scan to the head ellipse: coarse localisation, then a fine, head-centred pass.

The procedure does not depend on how the network runs: it takes a ``predict``
callable mapping a float32 batch ``(N, 1, S, S)`` of standardised views to logits
of the same shape (ONNX Runtime when measuring, PyTorch while training).

1. Coarse: the whole image, letterboxed into an ``S x S`` view; the largest
   region of the predicted head mask gives a first ellipse.
2. Fine: a view of side ``crop_side_factor x semi-major axis`` centred on that
   ellipse (so every head fills the view about the same, whatever its size),
   predicted as is and mirrored (test-time augmentation); the mean probability's
   sub-pixel 0.5 crossings (hundreds of boundary points) get a robust ellipse
   fit, mapped back to original pixels. ``refine_passes`` repeats this pass
   centred on the refined ellipse.

A quality score in [0, 1] comes with every result (see :class:`SegmentationResult`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .geometry import Ellipse, ellipse_points, ellipse_to_mask, fit_ellipse_to_points, mask_boundary_points
from .limits import INSIDE_FRACTION_SCORE_RANGE, MIN_AXIS_RATIO, TTA_HC_DISAGREEMENT_ZERO
from .transforms import invert_affine, letterbox_affine, standardize, view_affine, warp_to_view

__all__ = ["PipelineConfig", "SegmentationResult", "HeadNotFoundError", "PredictorError", "segment_head"]

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


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -40, 40)))


def _predict_prob(predict: Predict, views: list[np.ndarray]) -> np.ndarray:
    batch = np.stack([standardize(v) for v in views])[:, None].astype(np.float32)
    logits = np.asarray(predict(batch), dtype=np.float32)
    if logits.shape != batch.shape:
        raise PredictorError(f"model returned shape {logits.shape}, expected {batch.shape}")
    return _sigmoid(logits[:, 0])


def _fit_prob(prob: np.ndarray) -> tuple[Ellipse, np.ndarray]:
    """Ellipse (view pixels) fitted to the 0.5 crossings around the largest region, and that region."""
    try:
        pts, region = mask_boundary_points(prob, 0.5)
    except ValueError:
        raise HeadNotFoundError("no head region in the network output") from None
    if region.sum() < 10:
        raise HeadNotFoundError("no head region in the network output")
    return fit_ellipse_to_points(pts), region


def _coarse(image: np.ndarray, predict: Predict, cfg: PipelineConfig) -> Ellipse:
    size = cfg.input_size
    m = letterbox_affine(image.shape, size)
    prob = _predict_prob(predict, [warp_to_view(image, m, size)])[0]
    if (prob > 0.5).sum() < cfg.min_coarse_area_fraction * size * size:
        raise HeadNotFoundError("no head found in the image")
    e_view, _ = _fit_prob(prob)
    return e_view.transformed(invert_affine(m))


def _inside_fraction(e: Ellipse, shape) -> float:
    pts = ellipse_points(e, 360)
    h, w = shape
    ok = (pts[:, 0] >= -0.5) & (pts[:, 0] <= w - 0.5) & (pts[:, 1] >= -0.5) & (pts[:, 1] <= h - 0.5)
    return float(ok.mean())


def _fine(image: np.ndarray, e0: Ellipse, predict: Predict, cfg: PipelineConfig
          ) -> tuple[Ellipse, dict]:
    size = cfg.input_size
    side = cfg.crop_side_factor * e0.semi_major
    m = view_affine(e0.center, side, size)
    view = warp_to_view(image, m, size)
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
    e_view, region = _fit_prob(mean_prob)
    comps = {}
    fit_mask = ellipse_to_mask(e_view, (size, size))
    inter = np.logical_and(fit_mask, region).sum()
    union = np.logical_or(fit_mask, region).sum()
    comps["mask_fit"] = float(inter / max(union, 1))
    if len(flips) > 1:
        try:
            hcs = [_fit_prob(p)[0].perimeter_px for p in probs[:2]]
            rel = abs(hcs[0] - hcs[1]) / max(e_view.perimeter_px, 1e-9)
        except (HeadNotFoundError, ValueError):
            rel = 1.0
        comps["tta_hc_rel_diff"] = float(rel)
    return e_view.transformed(invert_affine(m)), comps


def segment_head(image: np.ndarray, predict: Predict, config: PipelineConfig | None = None
                 ) -> SegmentationResult:
    """Find the head ellipse in a grey scan.

    Parameters
    ----------
    image : ndarray (H, W), float32 in [0, 1]
        The scan (see :func:`fetalhead.transforms.to_grey_float`).
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
        coarse = _coarse(img, predict, cfg)
        e, comps = coarse, {}
        for _ in range(max(1, cfg.refine_passes)):
            e, comps = _fine(img, e, predict, cfg)
    except ValueError as exc:  # an ellipse fit that failed on a degenerate mask
        raise HeadNotFoundError(f"no head ellipse could be fitted ({exc})") from None
    inside = _inside_fraction(e, img.shape)
    comps["inside_fraction"] = inside
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
    return SegmentationResult(ellipse=e, quality=quality, components=comps, coarse_ellipse=coarse)
