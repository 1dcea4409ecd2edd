"""A scale set by hand (issue 22, "Set the scale"): two points of the picture and their distance give the
pixel size, decided by fetalhead.measurement alone, checked against the screen's own depth scale."""

import cv2
import numpy as np
import pytest

import fetalhead
from fetalhead.clinical.limits import MIN_SCALE_POINTS_PX, SCALE_DISTANCE_RANGE_CM
from fetalhead.measurement import (SCALE_ERRORS, TWO_POINTS_SOURCE, Measurement, ScaleError, two_point_scale)
from fetalhead.outputs.report import display_values, report_html, translations
from tests.screen_fixtures import render_screen

PS = 0.134737677  # 358_HC.png's pixel size (HC18)


@pytest.fixture(scope="module")
def sample(samples_dir):
    return samples_dir / "358_HC.png"


@pytest.fixture(scope="module")
def unscaled(sample):
    return fetalhead.measure(sample)


def test_two_points_give_mm_per_pixel():
    s = two_point_scale([[100, 50], [100, 218]], 4.0, (800, 540))
    assert s.distance_px == pytest.approx(168.0)
    assert s.mm_per_px == pytest.approx((40 / 168, 40 / 168))
    assert s.px_per_cm == pytest.approx(42.0)
    assert s.note == "pixel size set by two points 4.0 cm apart (1 cm = 42.0 px)"
    # four numbers, as a list or as the form's "x1,y1,x2,y2", and any direction (3-4-5: 50 px)
    assert two_point_scale("100,50,100,218", 4.0).mm_per_px == s.mm_per_px
    assert two_point_scale((10, 10, 40, 50), 0.5).mm_per_px == pytest.approx((0.1, 0.1))
    assert two_point_scale([[10, 10], [40, 50]], "0.5").points == ((10.0, 10.0), (40.0, 50.0))


@pytest.mark.parametrize("points, cm, code", [
    ("1,2,3", 4, "invalid_scale_points"),
    ([[1, 2], [3, float("nan")]], 4, "invalid_scale_points"),
    ("a,b,c,d", 4, "invalid_scale_points"),
    (None, 4, "invalid_scale_points"),
    ([[100, 100], [100, 100]], 4, "scale_points_too_close"),
    ([[100, 100], [100, 100 + MIN_SCALE_POINTS_PX - 1]], 1, "scale_points_too_close"),
    ([[100, 100], [100, 600]], 4, "scale_point_outside_image"),
    ([[-5, 100], [100, 200]], 4, "scale_point_outside_image"),
    ("100,100,100,268", SCALE_DISTANCE_RANGE_CM[0] / 2, "invalid_scale_distance_cm"),
    ("100,100,100,268", SCALE_DISTANCE_RANGE_CM[1] + 1, "invalid_scale_distance_cm"),
    ("100,100,100,268", None, "invalid_scale_distance_cm"),
    ("100,100,100,268", "four", "invalid_scale_distance_cm"),
    ("100,100,100,130", 25, "scale_pixel_size_out_of_range"),  # 250 mm over 30 px: 8.3 mm/px
    ("0,0,800,0", 0.1, "scale_pixel_size_out_of_range"),  # 1 mm over 800 px: 0.00125 mm/px
])
def test_two_points_that_give_no_scale_are_refused_with_a_code(points, cm, code):
    with pytest.raises(ScaleError) as err:
        two_point_scale(points, cm, (800, 540))
    assert err.value.code == code and code in SCALE_ERRORS
    assert isinstance(err.value, ValueError) and str(err.value)


def test_the_limits_are_accepted_at_their_ends():
    lo, hi = SCALE_DISTANCE_RANGE_CM
    assert two_point_scale([[0, 0], [0, 50]], lo, (800, 540)).mm_per_px[0] == pytest.approx(0.02)
    assert two_point_scale([[0, 0], [800, 0]], hi / 2, (800, 540)).mm_per_px[0] == pytest.approx(150 / 800)
    assert two_point_scale([[0, 0], [800, 540]], 4, (800, 540))  # the picture's corners are inside


def test_measured_with_two_points_the_lengths_follow_the_scale(sample, unscaled):
    m = fetalhead.measure(sample, scale_points=[[100, 100], [100, 268]], scale_distance_cm=4.0)
    s = 40 / 168
    assert unscaled.spacing_source == "none" and unscaled.head_circumference_mm is None
    assert m.spacing_source == TWO_POINTS_SOURCE and m.pixel_spacing_mm == pytest.approx((s, s))
    assert m.head_circumference_px == pytest.approx(unscaled.head_circumference_px)
    assert m.head_circumference_mm == pytest.approx(unscaled.head_circumference_px * s, rel=1e-9)
    assert m.scale_points == [[100.0, 100.0], [100.0, 268.0]] and m.scale_distance_cm == 4.0
    assert "pixel size set by two points 4.0 cm apart (1 cm = 42.0 px)" in m.note_message
    assert "pixel_size_disagrees_with_screen" not in m.flags  # no scale on this picture to disagree with
    half = fetalhead.measure(sample, scale_points="100,100,100,268", scale_distance_cm=2.0)
    assert half.head_circumference_mm == pytest.approx(m.head_circumference_mm / 2, rel=1e-9)


def test_value_and_source_in_csv_json_and_report(sample):
    m = fetalhead.measure(sample, scale_points=[[100, 100], [100, 268]], scale_distance_cm=4.0, ga_weeks=22)
    row = m.to_row()
    assert row["spacing_source"] == "two_points" and row["pixel_size_mm"] == pytest.approx(40 / 168, abs=1e-8)
    assert "set by two points 4.0 cm apart (1 cm = 42.0 px)" in row["note_message"]
    d = m.to_dict()
    assert d["scale_points"] == [[100.0, 100.0], [100.0, 268.0]] and d["scale_distance_cm"] == 4.0
    assert d["spacing_source"] == "two_points" and d["pixel_spacing_mm"] == pytest.approx([40 / 168] * 2)
    for lang in ("en", "hi", "te"):
        t = translations(lang)
        shown = display_values(m, t)
        assert shown["spacing_source"].startswith("0.2381 mm (") and "1 cm = 42.0 px" in shown["spacing_source"]
        assert "4.0" in shown["spacing_source"] and shown["scale"].startswith(t["scale_two_points"].split("{")[0])
    page = report_html(m, cv2.imread(str(sample), cv2.IMREAD_GRAYSCALE), "en")
    assert "0.2381 mm (set by two points 4.0 cm apart: 1 cm = 42.0 px)" in page
    # a JSON round trip (the page sends it back) and a hand adjustment keep the scale and its source
    back = Measurement.from_dict(d)
    assert back.spacing_source == "two_points" and back.scale_points == d["scale_points"]
    assert back.head_circumference_mm == pytest.approx(m.head_circumference_mm)
    adjusted = m.with_ellipse(m.ellipse.transformed(np.array([[1.05, 0, 0], [0, 1.05, 0]])))
    assert adjusted.spacing_source == "two_points" and adjusted.scale_distance_cm == 4.0


def test_a_pixel_size_and_two_points_at_once_are_refused(sample):
    m = fetalhead.measure(sample, 0.1, scale_points="100,100,100,268", scale_distance_cm=4.0)
    assert m.status == "failed" and m.failure == "invalid_input" and "give one" in m.message
    bad = fetalhead.measure(sample, scale_points="100,100,100,105", scale_distance_cm=4.0)
    assert bad.status == "failed" and bad.failure == "invalid_input" and "20 px apart" in bad.message


@pytest.fixture(scope="module")
def screenshot(sample):
    """358_HC.png laid 1:1 on a scanner screen whose depth scale says PS mm per pixel (ticks right of it)."""
    grey = cv2.imread(str(sample), cv2.IMREAD_GRAYSCALE)
    h, w = grey.shape
    return np.ascontiguousarray(render_screen(grey, PS, image_box=(100, 80, w, h), size=(w + 200, h + 180))[..., ::-1])


def test_the_screens_marks_are_carried_where_they_lie(screenshot):
    m = fetalhead.measure(screenshot, source="screen.png")
    assert m.spacing_source.startswith("screen:")
    marks = np.array(m.to_dict()["screen_marks"])
    assert len(marks) >= 5
    assert np.all((marks[:, 0] > 905) & (marks[:, 0] < 935))  # the ticks right of the image (x 900)
    steps = np.diff(np.sort(marks[:, 1]))
    assert np.median(steps) == pytest.approx(10 / PS, rel=0.02)  # 1 cm apart
    t = translations("en")
    assert display_values(m, t)["scale"] == f"Scale read from the screen: 1 cm = {10 / PS:.0f} px"
    assert Measurement.from_dict(m.to_dict()).screen_marks == [tuple(p) for p in marks.tolist()]
    assert display_values(fetalhead.measure(screenshot[80:620, 100:900]), t)["scale"] == t["scale_none"]


def test_two_points_the_screen_contradicts_are_flagged_with_both_values(screenshot):
    # two points 4 cm apart on the screen's own scale, the distance typed 7 % too long
    y0, cm_px = 80.0, 10 / PS
    pts = [[912.0, y0], [912.0, y0 + 4 * cm_px]]
    right = fetalhead.measure(screenshot, scale_points=pts, scale_distance_cm=4.0, source="screen.png")
    assert right.spacing_source == "two_points" and "pixel_size_disagrees_with_screen" not in right.flags
    assert right.pixel_spacing_mm == pytest.approx((PS, PS), rel=0.01)
    wrong = fetalhead.measure(screenshot, scale_points=pts, scale_distance_cm=4.28, source="screen.png")
    assert wrong.spacing_source == "two_points" and wrong.status == "flagged"
    assert "pixel_size_disagrees_with_screen" in wrong.flags
    s = wrong.pixel_spacing_mm[0]
    assert f"{s:.4f} mm" in wrong.message and f"{wrong.screen_mm_per_px[0]:.4f} mm" in wrong.message
    assert "two points" in wrong.message  # the words say which scale to check
    assert "pixel_size_disagrees_with_screen" in Measurement.from_dict(wrong.to_dict()).flags
    shown = display_values(wrong, translations("en"))
    assert "Scale set by two points 4.28 cm apart" in shown["scale"] and "screen's own scale" in shown["scale"]


def test_the_scale_line_for_a_pixel_size_entered_and_a_loop_takes_the_two_points(sample):
    from fetalhead.measurement import measure_loop

    t = translations("en")
    typed = fetalhead.measure(sample, PS)
    assert display_values(typed, t)["scale"] == f"Scale from the pixel size entered: 1 cm = {10 / PS:.1f} px"
    m = measure_loop(sample, scale_points="100,100,100,268", scale_distance_cm=4.0)[0]
    assert m.spacing_source == "two_points" and m.pixel_spacing_mm == pytest.approx((40 / 168,) * 2)


def test_the_scale_line_of_a_screen_read_says_entered_only_when_a_pixel_size_was_entered():
    """A screen whose scale was read but where nothing was measured (no head: no pixel size used) must not
    say that "the pixel size entered is used": none was entered."""
    t = translations("en")
    read = dict(source="screen.png", screen_mm_per_px=(0.25, 0.25), screen_marks=[[10, 10], [10, 50]])
    failed = Measurement(status="failed", spacing_source="none", **read)
    assert display_values(failed, t)["scale"] == "Scale read from the screen: 1 cm = 40 px"
    typed = Measurement(status="ok", spacing_source="given", pixel_spacing_mm=(0.2, 0.2), **read)
    assert display_values(typed, t)["scale"] == ("Scale read from the screen: 1 cm = 40 px (not used: the pixel size "
                                                 "entered is used)")
