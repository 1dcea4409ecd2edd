"""The two-pass pipeline alone, with a synthetic predictor: no network, exact geometry.

The synthetic predictor reads the view itself: the scan is a rendered ellipse (inside bright), so
the predictor's logit is the grey level minus the view's mid-grey; the 0.5 crossing of its sigmoid
is the rendered outline. Whatever the pipeline does (letterbox, coarse fit, head-centred crop,
mirroring, mapping back), the ellipse must come back where it was drawn.
"""

import math

import cv2
import numpy as np
import pytest

from fetalhead.clinical.geometry import Ellipse, ellipse_coverage
from fetalhead.model.pipeline import HeadNotFoundError, PipelineConfig, PredictorError, segment_head


def image_reader(batch: np.ndarray) -> np.ndarray:
    """Logits from the views: positive where the view is brighter than its mid-grey."""
    out = np.empty_like(batch)
    for k, v in enumerate(batch[:, 0]):
        lo, hi = float(v.min()), float(v.max())
        out[k, 0] = 40.0 * (v - (lo + hi) / 2) / max(hi - lo, 1e-6)
    return out


def hidden_half_reader(batch: np.ndarray) -> np.ndarray:
    """Like :func:`image_reader`, but the left half of every view reads as background."""
    out = image_reader(batch)
    out[:, :, :, : batch.shape[3] // 2] = -20.0
    return out


def render(e: Ellipse, shape=(540, 800)) -> np.ndarray:
    return (0.15 + 0.6 * ellipse_coverage(e, shape)).astype(np.float32)


def assert_same_ellipse(got: Ellipse, want: Ellipse, tol_px=0.35, tol_deg=0.5):
    assert got.center_x == pytest.approx(want.center_x, abs=tol_px)
    assert got.center_y == pytest.approx(want.center_y, abs=tol_px)
    assert got.semi_major == pytest.approx(want.semi_major, abs=tol_px)
    assert got.semi_minor == pytest.approx(want.semi_minor, abs=tol_px)
    d = (got.angle_deg - want.angle_deg + 90) % 180 - 90
    assert abs(d) < tol_deg


@pytest.mark.parametrize("angle", [0, 17, 45, 90, 123, 179])
def test_ellipse_comes_back_for_any_rotation(angle):
    e = Ellipse(400, 270, 180, 130, angle)
    res = segment_head(render(e), image_reader)
    assert_same_ellipse(res.ellipse, e)
    assert res.quality > 0.95 and res.components["inside_fraction"] == 1.0


@pytest.mark.parametrize("centre, axes", [((160, 140), (90, 70)), ((650, 420), (110, 80)), ((420, 260), (40, 30))])
def test_off_centre_and_small_heads(centre, axes):
    e = Ellipse(*centre, *axes, 60)
    assert_same_ellipse(segment_head(render(e), image_reader).ellipse, e)


def test_anisotropic_scale_of_the_whole_scan():
    """The scan stretched along x (as an anisotropic pixel grid shows it): the pipeline finds the image of
    the ellipse under the same stretch."""
    e = Ellipse(300, 260, 150, 110, 30)
    img = render(e, (540, 640))
    stretched = cv2.resize(img, (800, 540), interpolation=cv2.INTER_LINEAR)
    sx = 800 / 640
    m = np.array([[sx, 0, (sx - 1) / 2], [0, 1, 0]])  # cv2.resize's pixel-centre convention
    want = e.transformed(m)
    assert_same_ellipse(segment_head(stretched, image_reader).ellipse, want, tol_px=0.5)


def test_no_mirroring_and_vertical_flips_give_the_same_ellipse():
    e = Ellipse(380, 250, 170, 120, 75)
    for cfg in (PipelineConfig(mirror_tta=False), PipelineConfig(vertical_flip_tta=True), PipelineConfig(refine_passes=2)):
        assert_same_ellipse(segment_head(render(e), image_reader, cfg).ellipse, e)


def test_a_head_cut_by_the_border_scores_lower():
    e = Ellipse(60, 270, 180, 130, 0)  # more than a third of the outline outside the image
    res = segment_head(render(e), image_reader)
    assert res.components["inside_fraction"] < 0.8
    assert res.quality < 0.85


def test_hidden_half_of_the_skull_is_not_confident():
    """A predictor whose output hides half the skull: the fit may be wrong, but never with a high score."""
    e = Ellipse(400, 270, 180, 130, 0)
    try:
        res = segment_head(render(e), hidden_half_reader)
    except HeadNotFoundError:
        return
    hc_err = abs(res.ellipse.perimeter_px - e.perimeter_px) / e.perimeter_px
    assert hc_err > 0.1 and res.quality < 0.85


def test_nothing_in_the_image_is_no_head():
    blank = np.full((540, 800), 0.3, np.float32)
    with pytest.raises(HeadNotFoundError):
        segment_head(blank, lambda b: np.full_like(b, -10.0))


def test_predictor_shape_is_checked():
    with pytest.raises(PredictorError, match="shape"):
        segment_head(render(Ellipse(400, 270, 180, 130, 0)), lambda b: b[:, :, :10])


def test_image_must_be_2d():
    with pytest.raises(ValueError):
        segment_head(np.zeros((10, 10, 3), np.float32), image_reader)


def test_landmark_geometry_follows_the_ellipse():
    from fetalhead.clinical.geometry import ellipse_landmarks

    e = segment_head(render(Ellipse(400, 270, 180, 130, 30)), image_reader).ellipse
    lm = ellipse_landmarks(e)
    assert math.dist(lm["ofd_1"], lm["ofd_2"]) == pytest.approx(2 * e.semi_major)
    assert math.dist(lm["bpd_1"], lm["bpd_2"]) == pytest.approx(2 * e.semi_minor)


def test_outline_evidence_sees_a_skull_ring_and_not_a_disc():
    from fetalhead.model.pipeline import outline_evidence

    e = Ellipse(80, 80, 50, 40, 0)
    inner = Ellipse(80, 80, 47, 37.6, 0)
    full, brain = ellipse_coverage(e, (160, 160)), ellipse_coverage(inner, (160, 160))
    ring = (0.1 + 0.8 * (full - brain) + 0.2 * brain).astype(np.float32)
    prob = full.astype(np.float32)
    seen = outline_evidence(ring, prob, e)
    assert seen["outline_seen"] == 1.0 and seen["skull_gap"] == 0.0 and seen["boundary_sharpness"] > 0.9
    disc = (0.1 + 0.7 * full).astype(np.float32)
    assert outline_evidence(disc, prob, e)["outline_seen"] == 0.0
    half = ring.copy()
    half[:, 80:] = 0.1  # the right half of the skull missing
    ev = outline_evidence(half, prob, e)
    assert 0.3 < ev["outline_seen"] < 0.7 and 0.3 < ev["skull_gap"] < 0.7


def test_outline_in_field_is_the_share_of_the_outline_with_any_echo():
    """Black beyond a sector edge (no echo at all) lowers ``outline_in_field``; a dark acoustic
    shadow, whose speckle still holds some echo, does not."""
    from fetalhead.model.augment import sector_cut
    from fetalhead.model.pipeline import outline_evidence

    e = Ellipse(80, 80, 50, 40, 0)
    inner = Ellipse(80, 80, 47, 37.6, 0)
    full, brain = ellipse_coverage(e, (160, 160)), ellipse_coverage(inner, (160, 160))
    ring = (0.1 + 0.8 * (full - brain) + 0.2 * brain).astype(np.float32)
    prob = full.astype(np.float32)
    assert outline_evidence(ring, prob, e)["outline_in_field"] == 1.0
    # the sector's edge 30 px right of the centre: the outline beyond x = 110 (about a fifth of the
    # angles, and the rays from 0.7 to 1.3 of the radius there) lies in the black
    cut = sector_cut(ring, (110.0, 80.0), (1.0, 0.0))
    in_field = outline_evidence(cut, prob, e)["outline_in_field"]
    beyond = np.mean(80 + 0.7 * 50 * np.cos(np.linspace(0, 2 * np.pi, 72, endpoint=False)) > 110)
    assert in_field == pytest.approx(1 - beyond, abs=0.03) and in_field < 0.9
    shadow = ring.copy()
    rng = np.random.default_rng(0)
    shadow[:, 110:] = rng.uniform(0.0, 0.03, shadow[:, 110:].shape)  # dark, but speckled
    assert outline_evidence(shadow, prob, e)["outline_in_field"] == 1.0


def test_weighted_fit_follows_the_sure_arcs():
    """Boundary points of a true ellipse plus a bulge where the probability is soft: the weighted fit
    stays on the sure arcs."""
    from fetalhead.clinical.geometry import ellipse_points, fit_ellipse_to_points

    e = Ellipse(100, 100, 60, 45, 0)
    pts = ellipse_points(e, 360)
    bulge = pts[:60].copy()
    bulge[:, 0] += 8  # a soft, wrong arc on the right
    pts = np.vstack([pts[60:], bulge])
    w = np.r_[np.ones(300), np.full(60, 0.02)]
    plain = fit_ellipse_to_points(pts, robust=False)
    weighted = fit_ellipse_to_points(pts, robust=False, weights=w)
    assert abs(weighted.perimeter_px - e.perimeter_px) < 0.3 * abs(plain.perimeter_px - e.perimeter_px)
    with pytest.raises(ValueError):
        fit_ellipse_to_points(pts, weights=np.zeros(len(pts)))


def test_mirrored_views_are_compared_along_the_outline():
    e = Ellipse(400, 270, 170, 125, 30)
    agree = segment_head(render(e), image_reader).components
    assert agree["tta_hc_rel_diff"] < 0.002 and agree["tta_outline_diff"] < 0.005

    def swollen_when_mirrored(batch):
        """The mirrored view (the second) reads the head 5 % larger: its outline lies outside."""
        out = image_reader(batch)
        if len(batch) > 1:
            v = out[1, 0]
            grown = cv2.resize(v, None, fx=1.05, fy=1.05, interpolation=cv2.INTER_LINEAR)
            k0 = (grown.shape[0] - v.shape[0]) // 2
            out[1, 0] = grown[k0:k0 + v.shape[0], k0:k0 + v.shape[1]]
        return out

    disagree = segment_head(render(e), swollen_when_mirrored).components
    assert disagree["tta_hc_rel_diff"] == pytest.approx(0.05, abs=0.01)
    assert disagree["tta_outline_diff"] > 0.03
