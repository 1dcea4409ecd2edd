"""Damages for calibration and benchmarks: the reference moves with the image; shadows hide the skull."""

import numpy as np
import pytest

from fetalhead.studies import variations as V
from fetalhead.clinical.geometry import Ellipse, ellipse_coverage, fit_ellipse_to_mask

HEAD = Ellipse(400, 270, 150, 110, 20)


def scan():
    return (0.1 + 0.6 * ellipse_coverage(HEAD, (540, 800))).astype(np.float32)


@pytest.mark.parametrize("fn", V.VARIATIONS, ids=V.variation_names())
def test_every_variation_keeps_range_and_moves_the_reference(fn):
    img, e, ps = fn(scan(), HEAD, 0.1, np.random.default_rng(0))
    assert img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert ps in (0.1, 0.2)
    if fn in (V.rotate_30, V.rotate_90, V.half_resolution, V.off_centre, V.border_cut, V.identity):
        fitted = fit_ellipse_to_mask(img, threshold=0.4)  # the drawn head is where the reference says
        assert fitted.center_x == pytest.approx(e.center_x, abs=1.0)
        assert fitted.semi_major == pytest.approx(e.semi_major, abs=1.5)


def test_hard_variations_hide_part_of_the_head_but_keep_the_reference():
    for fn in V.HARD_VARIATIONS:
        img, e, _ = fn(scan(), HEAD, 0.1, np.random.default_rng(0))
        if fn is not V.border_cut:
            assert e == HEAD
        assert not np.array_equal(img, scan())


def test_border_cut_puts_part_of_the_head_outside():
    from fetalhead.measurement import _inside_fraction

    img, e, _ = V.border_cut(scan(), HEAD, 0.1, None)
    assert 0.6 < _inside_fraction(e, (img.shape[1], img.shape[0])) < 0.95


@pytest.mark.parametrize("fn", V.NON_HEAD)
def test_non_head_images(fn):
    img = fn(scan(), HEAD, np.random.default_rng(0))
    assert img.shape == (540, 800) and img.dtype == np.float32
