import numpy as np
import pytest

from fetalhead.clinical.geometry import Ellipse, ellipse_coverage, fit_ellipse_to_mask
from fetalhead.model.transforms import (invert_affine, letterbox_affine, standardize, view_affine,
                                  warp_to_view)


@pytest.mark.parametrize("angle, mirror", [(0, False), (37, False), (-120, True)])
def test_view_moves_the_ellipse_with_the_image(angle, mirror):
    e = Ellipse(260.0, 180.0, 90.0, 65.0, 25.0)
    image = ellipse_coverage(e, (400, 520))
    m = view_affine((250, 190), 300, 160, angle, mirror)
    view = warp_to_view(image, m, 160)
    fitted = fit_ellipse_to_mask(view).transformed(invert_affine(m))
    assert fitted.center_x == pytest.approx(e.center_x, abs=0.5)
    assert fitted.semi_major == pytest.approx(e.semi_major, abs=0.7)
    assert fitted.semi_minor == pytest.approx(e.semi_minor, abs=0.7)


def test_letterbox_and_pyramid_shrink_keep_geometry():
    e = Ellipse(400.0, 270.0, 200.0, 150.0, 0.0)
    image = ellipse_coverage(e, (540, 800))
    m = letterbox_affine(image.shape, 160)
    view = warp_to_view(image, m, 160)  # 5x shrink goes through two pyramid steps
    fitted = fit_ellipse_to_mask(view).transformed(invert_affine(m))
    assert fitted.semi_major == pytest.approx(200, rel=0.01)
    assert fitted.center_y == pytest.approx(270, abs=2)


def test_standardize():
    v = standardize(np.arange(16, dtype=np.float32).reshape(4, 4))
    assert v.mean() == pytest.approx(0, abs=1e-6) and v.std() == pytest.approx(1, abs=1e-5)
    assert np.all(standardize(np.ones((4, 4), np.float32)) == 0)


def test_views_of_one_image_share_its_pyramid():
    from fetalhead.model.transforms import letterbox_affine, view_affine, warp_to_view

    rng = np.random.default_rng(0)
    img = rng.random((540, 800)).astype(np.float32)
    pyramid = []
    views = [(letterbox_affine(img.shape, 160), 160), (view_affine((400, 270), 380, 160), 160),
             (view_affine((300, 200), 90, 160), 160)]
    for m, size in views:
        assert np.array_equal(warp_to_view(img, m, size, pyramid), warp_to_view(img, m, size))
    assert len(pyramid) == 2 and pyramid[0].shape == (270, 400) and pyramid[1].shape == (135, 200)
