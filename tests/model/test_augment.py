"""Training augmentations: the scanner's look and what hard scans show (shadows, missing arcs...)."""

import numpy as np
import pytest

from fetalhead.model import augment
from fetalhead.clinical.geometry import Ellipse, ellipse_coverage, fit_ellipse_to_mask, ellipse_points

AUGMENTS = [augment.random_gain, augment.random_gamma, augment.random_depth_gain, augment.random_speckle,
            augment.random_blur, augment.random_lower_resolution, augment.random_jpeg, augment.random_scanner_look]


@pytest.mark.parametrize("fn", AUGMENTS)
def test_each_augmentation_keeps_shape_range_and_is_seeded(fn):
    rng = np.random.default_rng(3)
    view = rng.uniform(0, 1, (64, 64)).astype(np.float32)
    out = fn(view, np.random.default_rng(0))
    assert out.shape == view.shape and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    assert np.array_equal(out, fn(view, np.random.default_rng(0)))


def test_augmentations_keep_the_head_where_it_is():
    e = Ellipse(80, 80, 50, 40, 30)
    view = 0.2 + 0.6 * ellipse_coverage(e, (160, 160))
    rng = np.random.default_rng(0)
    for fn in (augment.random_blur, augment.random_lower_resolution, augment.random_jpeg, augment.random_gain):
        out = fn(view, rng)
        f = fit_ellipse_to_mask(out, threshold=float(out[80, 80] + out[2, 2]) / 2)
        assert f.center_x == pytest.approx(80, abs=0.5) and f.semi_major == pytest.approx(50, abs=1.5)


HEAD = Ellipse(80, 80, 50, 40, 30)


def head_view():
    return (0.2 + 0.6 * ellipse_coverage(HEAD, (160, 160))).astype(np.float32)


def test_acoustic_shadow_darkens_only_the_band_beyond_its_start():
    view = np.full((100, 100), 0.8, np.float32)
    out = augment.acoustic_shadow(view, (50, 30), (0, 1), width_px=20, attenuation=0.1, softness_px=1)
    assert out[80, 50] == pytest.approx(0.08, abs=1e-4)  # beyond the start, in the band
    assert out[10, 50] == pytest.approx(0.8)  # before the occluder: untouched
    assert out[80, 10] == pytest.approx(0.8) and out[80, 90] == pytest.approx(0.8)  # beside the band
    tilted = augment.acoustic_shadow(view, (50, 30), (1, 1), width_px=10, attenuation=0.0)
    assert tilted[70, 90] == pytest.approx(0.0) and tilted[90, 70] == pytest.approx(0.8, abs=1e-3)
    with pytest.raises(ValueError):
        augment.acoustic_shadow(view, (50, 30), (0, 0), 10)


def test_missing_skull_arc_removes_the_outline_only_on_its_arc():
    view = head_view()
    edge = np.abs(np.diff(view, axis=1))
    out = augment.missing_skull_arc(view, HEAD, start_deg=-30, extent_deg=60, visibility=0.0)
    # the outline point at parametric angle 0 (end of the major axis) is in the arc: its edge goes
    x, y = ellipse_points(HEAD, 4)[0]
    r0, c0 = int(round(y)), int(round(x))
    patch = (slice(r0 - 2, r0 + 3), slice(c0 - 3, c0 + 3))
    assert np.abs(np.diff(out, axis=1))[patch].max() < 0.5 * edge[patch].max()
    # the opposite end (180 degrees) keeps its edge
    x, y = ellipse_points(HEAD, 4)[2]
    r1, c1 = int(round(y)), int(round(x))
    patch = (slice(r1 - 2, r1 + 3), slice(c1 - 3, c1 + 3))
    assert np.abs(np.diff(out, axis=1))[patch].max() == pytest.approx(edge[patch].max(), rel=0.05)
    faint = augment.missing_skull_arc(view, HEAD, -30, 60, visibility=0.5)
    assert np.abs(faint - view).max() < np.abs(out - view).max()


def test_sector_cut_blanks_one_side():
    view = np.full((50, 50), 0.7, np.float32)
    out = augment.sector_cut(view, (25, 25), (1, 0), softness_px=0.5)
    assert out[10, 40] == 0 and out[10, 10] == pytest.approx(0.7)


def test_reverberation_adds_fading_bands():
    view = np.zeros((100, 40), np.float32)
    out = augment.reverberation(view, (20, 10), (0, 1), spacing_px=15, count=3, amplitude=0.5)
    rows = out[:, 20]
    assert rows[25] == pytest.approx(0.5, abs=1e-3) and rows[40] == pytest.approx(0.3, abs=1e-3)
    assert rows[55] == pytest.approx(0.18, abs=1e-3) and rows[70] < 0.01


def test_random_scan_defects_is_seeded_and_keeps_range():
    view = head_view()
    a = augment.random_scan_defects(view, np.random.default_rng(4), HEAD, (0, 1), 1, 1, 1, 1)
    b = augment.random_scan_defects(view, np.random.default_rng(4), HEAD, (0, 1), 1, 1, 1, 1)
    assert np.array_equal(a, b) and a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1
    assert not np.array_equal(a, view)
    none = augment.random_scan_defects(view, np.random.default_rng(4), HEAD, (0, 1), 0, 0, 0, 0)
    assert np.array_equal(none, view)
