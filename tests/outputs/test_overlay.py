"""Overlay pictures: ellipse, calipers and figures drawn on the scan."""

import cv2
import numpy as np

from fetalhead.clinical.geometry import Ellipse
from fetalhead.measurement import Measurement, _fill
from fetalhead.outputs.overlay import draw_overlay, write_overlay

CYAN = (255, 255, 0)


def test_overlay_draws_the_calipers_where_the_landmarks_are(tmp_path):
    grey = np.full((540, 800), 0.3, np.float32)
    m = Measurement("a.png", "ok", quality=0.95, image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 150, 110, 0), 0.15, "given", None)
    pic = draw_overlay(grey, m, with_text=False)
    assert pic.shape == (540, 800, 3) and pic.dtype == np.uint8
    for x, y in m.landmarks.values():
        assert tuple(pic[int(round(y)), int(round(x))]) == CYAN
    assert tuple(pic[10, 10]) == (77, 77, 77)  # the scan itself is left alone far from the drawing
    p = write_overlay(tmp_path / "sub" / "a_overlay.png", grey, m)
    assert cv2.imread(str(p)).shape == (540, 800, 3)


def test_failed_measurement_overlay_says_why():
    grey = np.full((540, 800), 0.3, np.float32)
    m = Measurement("a.png", "failed", messages=["a.png: no head found in the image"])
    pic = draw_overlay(grey, m)
    assert pic.shape == (540, 800, 3) and not np.all(pic == pic[0, 0])  # the text is written


def test_the_outline_colour_follows_the_status():
    from fetalhead.clinical.geometry import ellipse_points
    from fetalhead.outputs.overlay import AMBER, GREEN, RED

    grey = np.full((540, 800), 0.3, np.float32)
    m = Measurement("a.png", "ok", quality=0.95, image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 150, 110, 0), 0.15, "given", None)
    x, y = ellipse_points(m.ellipse, 8)[1]  # on the outline, away from the calipers and their lines
    colours = {}
    for status in ("ok", "adjusted", "flagged"):
        m.status = status
        colours[status] = tuple(int(v) for v in draw_overlay(grey, m, with_text=False)[int(round(y)), int(round(x))])
    for status, expected in (("ok", GREEN), ("adjusted", AMBER), ("flagged", RED)):  # anti-aliased lines
        assert np.allclose(colours[status], expected, atol=40), (status, colours[status])


def test_the_part_of_the_outline_to_check_is_marked():
    """A flagged result's doubtful stretch (the left of the head) is drawn thick in magenta; the rest of
    the outline is not."""
    from fetalhead.clinical.geometry import ellipse_points
    from fetalhead.outputs.overlay import MAGENTA

    grey = np.full((540, 800), 0.3, np.float32)
    m = Measurement("a.png", "flagged", quality=0.3, image_size=(800, 540), flags=["low_quality"],
                    uncertain_arcs=[{"from_deg": 150.0, "to_deg": 210.0, "share": 0.17, "cause": "faint_echo",
                                     "where": "left"}])
    _fill(m, Ellipse(400, 270, 150, 110, 0), 0.15, "given", None)
    m.status = "flagged"
    pic = draw_overlay(grey, m, with_text=False)
    left, right = (400 - 150, 270), (400 + 150, 270)
    assert tuple(pic[left[1] - 20, left[0] + 2]) == MAGENTA or tuple(pic[left[1] - 20, left[0] + 1]) == MAGENTA
    assert MAGENTA not in [tuple(p) for p in pic[right[1] - 25:right[1] - 15, right[0] - 3:right[0] + 3].reshape(-1, 3)]
    m.uncertain_arcs = []
    assert MAGENTA not in [tuple(p) for p in draw_overlay(grey, m, with_text=False).reshape(-1, 3)[::7]]
