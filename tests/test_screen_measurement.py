"""The screen's depth scale in the one way in (issue 22): DICOM calibration, else a pixel size given,
else the screen's scale, else none; a given pixel size that the screen contradicts is flagged."""

import csv

import cv2
import numpy as np
import pytest

import fetalhead
from fetalhead import measurement
from fetalhead.measurement import decide_spacing, screen_disagreement
from fetalhead.scans.screen_scale import ScreenScale
from tests.screen_fixtures import render_screen


def on_screen(grey, mm):
    """``grey`` (uint8) laid 1:1 on a scanner screen whose depth scale says ``mm`` per pixel (BGR, as files read)."""
    h, w = grey.shape
    rgb = render_screen(grey, mm_per_px=mm, marks="ticks", image_box=(100, 80, w, h), size=(w + 200, h + 180))
    return np.ascontiguousarray(rgb[..., ::-1])


@pytest.fixture(scope="module")
def hc18_scan(hc18):
    sizes = {r["filename"]: float(r["pixel size(mm)"])
             for r in csv.DictReader(open(hc18 / "training_set_pixel_size_and_HC.csv"))}
    name = "300_HC.png"  # 540 px at 0.117 mm: a 6 cm scale, 7 marks
    return cv2.imread(str(hc18 / "images" / name), cv2.IMREAD_GRAYSCALE), sizes[name]


def test_hc18_scan_on_a_screen_is_measured_in_mm_from_the_screens_scale(hc18_scan):
    grey, px = hc18_scan
    screen = fetalhead.measure(on_screen(grey, px), source="screen.png")
    truth = fetalhead.measure(grey, px, source="scan.png")
    assert screen.spacing_source == "screen:depth-scale"
    assert screen.pixel_spacing_mm == pytest.approx((px, px), rel=0.01)
    assert screen.head_circumference_mm == pytest.approx(truth.head_circumference_mm, rel=0.01)
    assert "pixel size read from the screen" in screen.note_message and not screen.message  # information, no warning
    d = screen.to_dict()
    assert d["spacing_source"] == "screen:depth-scale" and d["screen_mm_per_px"] == pytest.approx([px, px], rel=0.01)


def test_a_typed_pixel_size_the_screen_contradicts_is_flagged_with_both_values(hc18_scan):
    grey, px = hc18_scan
    wrong = fetalhead.measure(on_screen(grey, px), px * 1.07, source="screen.png")
    assert wrong.spacing_source == "given" and wrong.pixel_spacing_mm == pytest.approx((px * 1.07,) * 2)
    assert "pixel_size_disagrees_with_screen" in wrong.flags and wrong.status == "flagged"
    assert f"{px * 1.07:.4f} mm" in wrong.message and f"{px:.4f} mm" in wrong.message
    close = fetalhead.measure(on_screen(grey, px), px * 1.01, source="screen.png")
    assert "pixel_size_disagrees_with_screen" not in close.flags
    # the flag and its message survive an ellipse adjusted by hand and a JSON round trip
    again = measurement.Measurement.from_dict(wrong.to_dict())
    assert "pixel_size_disagrees_with_screen" in again.flags
    assert "pixel_size_disagrees_with_screen" in wrong.with_ellipse(ga_weeks=22).flags


def test_no_scale_and_no_pixel_size_gives_pixels_only(hc18_scan):
    grey, _ = hc18_scan
    m = fetalhead.measure(grey, source="scan.png")
    assert m.spacing_source == "none" and m.head_circumference_mm is None and m.screen_mm_per_px is None


def test_the_order_of_the_sources():
    read = ScreenScale((0.2, 0.2), 0.9, "11 ticks", how="depth-scale")
    none = ScreenScale(None, 0.0, "no scale")
    assert decide_spacing(None, "given", None, None, read)[:2] == ((0.2, 0.2), "screen:depth-scale")
    assert decide_spacing(0.3, "given", None, None, read)[:2] == ((0.3, 0.3), "given")
    assert decide_spacing(None, "given", None, None, none)[:2] == (None, "none")
    assert decide_spacing(None, "given", None, None, None)[:2] == (None, "none")


def test_disagreement_is_judged_only_for_a_given_pixel_size():
    assert screen_disagreement((0.21, 0.21), "given", (0.2, 0.2)).startswith("the pixel size given (0.2100 mm")
    assert screen_disagreement((0.203, 0.203), "given", (0.2, 0.2)) == ""  # within 2 %
    assert screen_disagreement((0.3, 0.3), "dicom:SequenceOfUltrasoundRegions", (0.2, 0.2)) == ""
    assert screen_disagreement((0.3, 0.3), "given", None) == ""


def test_dicom_calibration_wins_over_the_screen(tmp_path):
    from tests.dicom_fixtures import region, write_us_dicom

    grey = render_screen(mm_per_px=0.2, marks="ticks")[..., 0]
    path = tmp_path / "us.dcm"
    h, w = grey.shape
    write_us_dicom(path, grey, regions=[region(0, 0, w - 1, h - 1, 0.025)])  # 0.25 mm, the screen says 0.2
    scan = measurement.load_scan(path)
    assert measurement.read_screen(scan) is None  # not even read
    spacing, source, _ = decide_spacing(None, "given", scan.dicom, None,
                                        ScreenScale((0.2, 0.2), 0.9, "x", how="depth-scale"))
    assert source.startswith("dicom:") and spacing == pytest.approx((0.25, 0.25))


def test_a_dicom_file_without_calibration_takes_the_screens_scale(tmp_path):
    from tests.dicom_fixtures import write_us_dicom

    grey = render_screen(mm_per_px=0.2, marks="ticks")[..., 0]
    path = tmp_path / "us.dcm"
    write_us_dicom(path, grey)
    scan = measurement.load_scan(path)
    s = measurement.read_screen(scan)
    assert s is not None and s.mm_per_px == pytest.approx((0.2, 0.2), rel=0.01)
    spacing, source, _ = decide_spacing(None, "given", scan.dicom, None, s)
    assert source == "screen:depth-scale" and spacing == pytest.approx((0.2, 0.2), rel=0.01)


def test_a_loop_reads_the_screen_once_and_checks_it_on_two_more_frames(tmp_path, monkeypatch):
    from tests.dicom_fixtures import write_us_dicom

    calls = []
    real = measurement.read_picture_scale
    monkeypatch.setattr(measurement, "read_picture_scale", lambda img: calls.append(1) or real(img))
    grey = render_screen(mm_per_px=0.2, marks="ticks")[..., 0]
    path = tmp_path / "loop.dcm"
    write_us_dicom(path, grey, frames=6)
    ms = fetalhead.measurement.measure_loop(path, frames="all")
    assert len(ms) == 6 and len(calls) == 3  # the first frame, then the middle and the last
    assert all(m.screen_mm_per_px == pytest.approx((0.2, 0.2), rel=0.01) for m in ms)


def test_the_report_gives_the_screens_pixel_size_and_its_source_in_every_language():
    from fetalhead.outputs.report import spacing_value_text, translations

    for lang in ("en", "hi", "te"):
        t = translations(lang)
        text = spacing_value_text((0.2, 0.2), "screen:depth-scale", t)
        assert text.startswith("0.2000 mm") and t["spacing_screen"] in text and "1 cm = 50 px" in text, lang
        assert t["flag_pixel_size_disagrees_with_screen"], lang


def test_a_loop_whose_scale_changes_stops_using_it(tmp_path):
    from tests.dicom_fixtures import write_us_dicom

    frames = np.stack([render_screen(mm_per_px=0.2 if k < 2 else 0.3, marks="ticks")[..., 0] for k in range(4)])
    path = tmp_path / "loop.dcm"
    write_us_dicom(path, frames)
    ms = fetalhead.measurement.measure_loop(path, frames="all")
    assert len(ms) == 4
    assert all(m.screen_mm_per_px == pytest.approx((0.2, 0.2), rel=0.01) for m in ms[:2])
    assert "changed within the loop" in ms[2].message and ms[3].screen_mm_per_px is None
