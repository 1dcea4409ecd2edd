"""The depth scale read off a screen picture (issue 22): real scanner screens against their own region
calibration, synthetic screens for the edge cases (right, or refused: never a guess)."""

import numpy as np
import pytest

from fetalhead.scans.screen_scale import read_screen_scale
from tests.screen_fixtures import (REAL_SCREENS, colour_bar, jpeg, pydicom_data_root, render_dicom_screen,
                                   render_screen, resize)

ROOT = pydicom_data_root()
needs_data = pytest.mark.skipif(ROOT is None, reason="the pydicom-data wheel (test extra) is not installed")


def rel_error(scale, truth_mm):
    assert scale.mm_per_px is not None, scale.reason
    return max(abs(v / truth_mm - 1) for v in scale.mm_per_px)


@needs_data
@pytest.mark.parametrize("maker", sorted(REAL_SCREENS))
@pytest.mark.parametrize("variant, tolerance", [("plain", 0.01), ("jpeg60", 0.02), ("resized80", 0.02)])
def test_real_screens_read_within_their_region_calibration(maker, variant, tolerance):
    rgb, truth = render_dicom_screen(ROOT / REAL_SCREENS[maker])
    if variant == "jpeg60":
        rgb = jpeg(rgb, 60)
    elif variant == "resized80":
        rgb, truth = resize(rgb, 0.8), truth / 0.8
    s = read_screen_scale(rgb)
    assert rel_error(s, truth) <= tolerance, (s.mm_per_px, truth, s.reason)
    assert s.confidence >= 0.5 and len(s.marks) >= 5 and s.how in ("depth-scale", "sector-scale")


@needs_data
def test_a_grey_copy_of_a_screen_reads_the_same():
    rgb, truth = render_dicom_screen(ROOT / REAL_SCREENS["ALOKA SSD-4000"])  # green ticks
    grey = rgb.mean(axis=2).astype(np.uint8)
    assert rel_error(read_screen_scale(grey), truth) <= 0.01


@pytest.mark.parametrize("mm", [0.1, 0.2, 0.35])
@pytest.mark.parametrize("case", [
    dict(marks="ticks"), dict(marks="ticks", side="left"), dict(marks="dots", major=False),
    dict(marks="dots"), dict(marks="ticks", half=True), dict(marks="dots", side="sector"),
    dict(marks="ticks", colour=(80, 180, 255)), dict(marks="ticks", label=False)],
    ids=["ticks", "left", "dots-only", "dots-5cm", "half-cm", "sector", "coloured", "no-label"])
def test_synthetic_screens_are_read_right(case, mm):
    s = read_screen_scale(render_screen(mm_per_px=mm, **case))
    assert rel_error(s, mm) <= 0.01, s.reason


def test_half_centimetre_marks_are_not_taken_for_centimetres():
    s = read_screen_scale(render_screen(mm_per_px=0.2, marks="ticks", half=True))
    assert "0.5 cm" in s.reason and rel_error(s, 0.2) <= 0.01
    assert len(s.marks) >= 19  # the half-cm marks are the scale's marks too


@pytest.mark.parametrize("screen, why", [
    (lambda: render_screen(marks=None), "no row"),  # a label alone gives no pixel size
    (lambda: render_screen(marks=None, label=False), "no row"),
    (lambda: colour_bar(render_screen(marks=None)), "no row"),
    (lambda: np.zeros((480, 640, 3), np.uint8), "no row"),
], ids=["label-only", "no-scale", "colour-bar", "black"])
def test_screens_without_a_scale_are_refused(screen, why):
    s = read_screen_scale(screen())
    assert s.mm_per_px is None and s.reason.startswith("no scale") and s.confidence == 0


def test_a_colour_bar_beside_a_real_scale_does_not_disturb_it():
    s = read_screen_scale(colour_bar(render_screen(mm_per_px=0.2, marks="ticks")))
    assert rel_error(s, 0.2) <= 0.01


def test_two_scales_that_disagree_are_refused():
    a = render_screen(mm_per_px=0.2, marks="ticks", size=(720, 640), image_box=(40, 80, 600, 520))
    b = render_screen(mm_per_px=0.3, marks="ticks", size=(720, 640), image_box=(40, 80, 600, 520), seed=1)
    s = read_screen_scale(np.hstack([a, b]))
    assert s.mm_per_px is None and "disagree" in s.reason


def test_two_scales_that_agree_are_one():
    a = render_screen(mm_per_px=0.25, marks="ticks", size=(720, 640), image_box=(40, 80, 600, 520))
    b = render_screen(mm_per_px=0.25, marks="ticks", size=(720, 640), image_box=(40, 80, 600, 520), seed=1)
    s = read_screen_scale(np.hstack([a, b]))
    assert rel_error(s, 0.25) <= 0.01


def test_hc18_scans_carry_no_scale_and_none_is_invented(hc18_images):
    for img in hc18_images:
        assert read_screen_scale(img).mm_per_px is None


@pytest.fixture
def hc18_images():
    from pathlib import Path

    import cv2

    folder = Path("/work/shared/data/hc18/images")
    files = sorted(folder.glob("*_HC.png"))[::97][:6] if folder.is_dir() else []
    if not files:
        pytest.skip("HC18 images not on this machine")
    return [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in files]


def test_result_as_a_dict_names_the_fields_the_cli_writes():
    d = read_screen_scale(render_screen(mm_per_px=0.2)).to_dict()
    assert set(d) >= {"mm_per_px", "marks", "label", "confidence", "reason"}
    assert d["mm_per_px"] == pytest.approx([0.2, 0.2], rel=0.01)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        read_screen_scale(np.zeros((4, 4, 4, 4)))


@needs_data
@pytest.mark.parametrize("maker", sorted(REAL_SCREENS))
def test_real_screens_jpeg_and_resized_together_are_right_or_refused(maker):
    rgb, truth = render_dicom_screen(ROOT / REAL_SCREENS[maker])
    s = read_screen_scale(jpeg(resize(rgb, 0.8), 60))
    assert s.mm_per_px is None or rel_error(s, truth / 0.8) <= 0.02, s.reason


@pytest.mark.parametrize("tilt", [0.03, 0.06, 0.12])
def test_a_slanted_photo_of_a_screen_is_refused_never_more_than_3_percent_off(tilt):
    import cv2

    img = render_screen(mm_per_px=0.2, marks="ticks")
    h, w = img.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dst = np.float32([[w * tilt, 0], [w * (1 - tilt), 0], [w, h], [0, h]])  # the top further from the phone
    s = read_screen_scale(cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (w, h)))
    assert s.mm_per_px is None or rel_error(s, 0.2) <= 0.03, s.reason


def test_steps_that_grow_along_the_row_are_refused():
    from fetalhead.scans.screen_scale import MAX_STEP_TREND

    img = np.zeros((700, 300, 3), np.uint8)
    y = 20.0
    for k in range(12):  # steps from 50 px growing by 0.6 px each: 13 % end to end
        img[int(round(y)), 100:108] = 230
        y += 50 + 0.6 * k
    assert MAX_STEP_TREND < 0.13
    assert read_screen_scale(img).mm_per_px is None
