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


@pytest.fixture(scope="module")
def real_scan(samples_dir):
    import cv2

    import fetalhead

    path = samples_dir / "358_HC.png"
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    return img, fetalhead.measure(path, 0.1347).ellipse


@pytest.mark.parametrize("fn", [f for f in V.VARIATIONS if f is not V.identity], ids=V.variation_names()[1:])
def test_every_damage_changes_what_the_network_sees(fn, real_scan):
    # each view is standardised (zero mean, unit variance): a plain factor such as the first gain_low
    # (img * 0.5) left a scan unchanged and its errors were those of the clean scans to the last digit
    from fetalhead.model.transforms import standardize

    img, head = real_scan
    out, _, _ = fn(img, head, 0.1, np.random.default_rng(0))
    if out.shape == img.shape:
        assert np.abs(standardize(out) - standardize(img)).mean() > 0.01


def test_low_gain_loses_the_weak_echoes_in_the_noise_floor_and_keeps_the_skull(real_scan):
    img = real_scan[0]
    out, e, ps = V.gain_low_12db(img, HEAD, 0.1, np.random.default_rng(0))
    assert e == HEAD and ps == 0.1 and out.dtype == np.float32
    assert np.array_equal(out * 255, np.round(out * 255))  # 8-bit again
    shift = V.GAIN_LOW_DB / V.DISPLAY_RANGE_DB
    weak, strong = (img > 0) & (img < shift), img > 0.6  # brain and soft tissue; the skull
    assert out[weak].mean() == pytest.approx(V.NOISE_FLOOR_MEAN, abs=0.005) and out[weak].std() > 0.01
    assert np.abs(out[strong] - (img[strong] - shift)).max() <= 0.5 / 255 + 1e-6
    assert np.all(out[img == 0] == 0)  # nothing outside the sector


def test_a_screen_export_holds_the_scan_its_calipers_and_text_and_moves_the_reference():
    from fetalhead.clinical.geometry import ellipse_landmarks

    img, e, ps = V.screen_export(scan(), HEAD, 0.1, np.random.default_rng(0))
    assert img.shape == V.SCREEN_SIZE[::-1] and img.dtype == np.float32 and 0 <= img.min() and img.max() <= 1
    assert ps == 0.1 and e.semi_major == pytest.approx(HEAD.semi_major) and e.angle_deg == pytest.approx(HEAD.angle_deg)
    # the scan lies where the moved reference says: its head fitted where the reference is
    x0, y0 = V.SCREEN_IMAGE_ORIGIN
    box = img[y0:y0 + 540, x0:x0 + 800]
    fitted = fit_ellipse_to_mask((box > 0.4) & (box < 0.8), threshold=0.5)
    assert fitted.center_x + x0 == pytest.approx(e.center_x, abs=1.5)
    assert fitted.center_y + y0 == pytest.approx(e.center_y, abs=1.5)
    # the sonographer's calipers lie near the reference's ends, drawn bright; the text outside the scan too
    for x, y in ellipse_landmarks(e).values():
        patch = img[int(y) - 8:int(y) + 9, int(x) - 8:int(x) + 9]
        assert (patch >= V.INK_GREY - 0.05).sum() >= 8
    assert img[:y0, :].max() >= V.INK_GREY - 0.05 and img[y0 - 40:y0 - 5, :].max() == 0  # the top line, then black
    again, _, _ = V.screen_export(scan(), HEAD, 0.1, np.random.default_rng(0))
    assert np.array_equal(img, again)  # the trace's scale drawn from the rng: reproducible
