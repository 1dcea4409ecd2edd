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
