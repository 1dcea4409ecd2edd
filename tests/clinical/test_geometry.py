import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fetalhead.clinical.geometry import (Ellipse, dice_coefficient, ellipse_coverage, ellipse_landmarks, ellipse_perimeter,
                                ellipse_points, ellipse_to_mask, fit_ellipse_to_mask, fit_ellipse_to_outline,
                                fit_ellipse_to_points, hausdorff_distance, threshold_crossings)

ellipses = st.builds(
    lambda cx, cy, a, ratio, ang: Ellipse.from_axes(cx, cy, a, a * ratio, ang),
    st.floats(50, 750), st.floats(50, 500), st.floats(20, 300), st.floats(0.5, 1.0), st.floats(0, 179.99))


def angle_diff(a, b):
    d = abs(a - b) % 180
    return min(d, 180 - d)


def numeric_perimeter(a, b, n=200_000):
    s = np.linspace(0, 2 * np.pi, n + 1)
    x, y = a * np.cos(s), b * np.sin(s)
    return float(np.hypot(np.diff(x), np.diff(y)).sum())


@settings(max_examples=60, deadline=None)
@given(ellipses)
def test_fit_recovers_ellipse_from_its_points(e):
    pts = ellipse_points(e, 200)
    f = fit_ellipse_to_points(pts)
    assert f.center_x == pytest.approx(e.center_x, abs=1e-6 * e.semi_major + 1e-6)
    assert f.center_y == pytest.approx(e.center_y, abs=1e-6 * e.semi_major + 1e-6)
    assert f.semi_major == pytest.approx(e.semi_major, rel=1e-6)
    assert f.semi_minor == pytest.approx(e.semi_minor, rel=1e-6)
    if e.semi_minor / e.semi_major < 0.999:  # a circle has no axis direction
        assert angle_diff(f.angle_deg, e.angle_deg) < 1e-3


@settings(max_examples=40, deadline=None)
@given(ellipses)
def test_perimeter_matches_numerical_integral(e):
    assert e.perimeter_px == pytest.approx(numeric_perimeter(e.semi_major, e.semi_minor), rel=1e-7)


@settings(max_examples=60, deadline=None)
@given(ellipses)
def test_landmarks_lie_on_ellipse_and_pairs_are_perpendicular(e):
    lm = ellipse_landmarks(e)
    for p in lm.values():
        assert e.implicit(np.array(p[0]), np.array(p[1])) == pytest.approx(1.0, abs=1e-9)
    ofd = np.subtract(lm["ofd_2"], lm["ofd_1"])
    bpd = np.subtract(lm["bpd_2"], lm["bpd_1"])
    assert abs(np.dot(ofd, bpd)) < 1e-6 * np.linalg.norm(ofd) * np.linalg.norm(bpd)
    assert np.linalg.norm(ofd) == pytest.approx(2 * e.semi_major)
    assert np.linalg.norm(bpd) == pytest.approx(2 * e.semi_minor)
    # both diameters cross at the centre
    assert np.allclose(np.add(lm["ofd_1"], lm["ofd_2"]) / 2, e.center)
    assert np.allclose(np.add(lm["bpd_1"], lm["bpd_2"]) / 2, e.center)


def test_perimeter_of_circle_and_degenerate():
    assert ellipse_perimeter(10, 10) == pytest.approx(2 * math.pi * 10)
    assert ellipse_perimeter(10, 0) == pytest.approx(40.0, rel=1e-3)  # flat ellipse: 4a
    with pytest.raises(ValueError):
        ellipse_perimeter(-1, 2)


def test_ellipse_validation_and_normalisation():
    with pytest.raises(ValueError):
        Ellipse(0, 0, 1, 2, 0)
    with pytest.raises(ValueError):
        Ellipse(0, 0, 0, 0, 0)
    with pytest.raises(ValueError):
        Ellipse(float("nan"), 0, 2, 1, 0)
    e = Ellipse.from_axes(0, 0, 10, 20, 30)
    assert (e.semi_major, e.semi_minor, e.angle_deg) == (20, 10, 120)
    assert Ellipse.from_axes(0, 0, 20, 10, -30).angle_deg == pytest.approx(150)


def test_landmarks_follow_ellipses_csv_order(hc18):
    import csv
    row = next(csv.DictReader(open(hc18 / "ellipses.csv")))
    e = Ellipse(*(float(row[k]) for k in ("center_x_px", "center_y_px", "semi_major_px", "semi_minor_px", "angle_deg")))
    lm = ellipse_landmarks(e)
    for k in ("ofd_1", "ofd_2", "bpd_1", "bpd_2"):
        assert lm[k][0] == pytest.approx(float(row[f"{k}_x"]), abs=1e-3)
        assert lm[k][1] == pytest.approx(float(row[f"{k}_y"]), abs=1e-3)


def test_robust_fit_ignores_stray_points():
    e = Ellipse(300, 250, 150, 110, 35)
    rng = np.random.default_rng(0)
    pts = ellipse_points(e, 400) + rng.normal(0, 0.3, (400, 2))
    stray = rng.uniform(0, 600, (20, 2))  # 5% outliers anywhere
    f = fit_ellipse_to_points(np.vstack([pts, stray]))
    assert f.perimeter_px == pytest.approx(e.perimeter_px, rel=0.003)
    plain = fit_ellipse_to_points(np.vstack([pts, stray]), robust=False)
    assert abs(plain.perimeter_px - e.perimeter_px) > abs(f.perimeter_px - e.perimeter_px)


def test_fit_needs_five_points():
    with pytest.raises(ValueError, match="at least 5"):
        fit_ellipse_to_points(np.zeros((4, 2)))
    with pytest.raises(ValueError):
        fit_ellipse_to_points(np.zeros((10, 3)))


@pytest.mark.parametrize("soft", [False, True])
def test_fit_to_mask_is_subpixel(soft):
    e = Ellipse(160.3, 120.7, 90.2, 70.4, 20.0)
    mask = ellipse_coverage(e, (240, 320)) if soft else ellipse_to_mask(e, (240, 320)).astype(float)
    f = fit_ellipse_to_mask(mask)
    tol = 0.05 if soft else 0.5
    assert f.center_x == pytest.approx(e.center_x, abs=tol)
    assert f.semi_major == pytest.approx(e.semi_major, abs=tol)
    assert f.semi_minor == pytest.approx(e.semi_minor, abs=tol)


def test_fit_to_mask_ignores_small_blob():
    e = Ellipse(160, 120, 90, 70, 0)
    mask = ellipse_coverage(e, (240, 320))
    mask[5:15, 5:15] = 1.0
    assert fit_ellipse_to_mask(mask).center_x == pytest.approx(160, abs=0.1)
    with pytest.raises(ValueError):
        fit_ellipse_to_mask(np.zeros((50, 50)))


def test_fit_to_outline_of_drawn_ellipse():
    import cv2
    img = np.zeros((300, 400), np.uint8)
    cv2.ellipse(img, (200, 150), (120, 80), 30, 0, 360, 255, 1)
    f = fit_ellipse_to_outline(img)
    assert f.center_x == pytest.approx(200, abs=0.3)
    assert f.semi_major == pytest.approx(120, abs=0.6)
    assert f.semi_minor == pytest.approx(80, abs=0.6)
    assert angle_diff(f.angle_deg, 30) < 1.0


def test_threshold_crossings_linear_interpolation():
    v = np.array([[0.0, 1.0], [0.0, 1.0]])
    pts = threshold_crossings(v, 0.25)
    assert np.allclose(pts, [[0.25, 0.0], [0.25, 1.0]])


def test_mask_rasterisation_area():
    e = Ellipse(200, 200, 100, 60, 45)
    assert ellipse_to_mask(e, (400, 400)).sum() == pytest.approx(e.area_px, rel=0.005)
    assert ellipse_coverage(e, (400, 400)).sum() == pytest.approx(e.area_px, rel=0.001)


def test_hausdorff_known_values():
    a = Ellipse(0, 0, 50, 50, 0)
    assert hausdorff_distance(a, Ellipse(0, 0, 53, 53, 0)) == pytest.approx(3.0, abs=1e-6)
    assert hausdorff_distance(a, Ellipse(4, 0, 50, 50, 0)) == pytest.approx(4.0, abs=1e-3)
    assert hausdorff_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # axes 100/60 vs 100/50: largest gap at the minor axis ends
    assert hausdorff_distance(Ellipse(0, 0, 100, 60, 0), Ellipse(0, 0, 100, 50, 0)) == pytest.approx(10.0, abs=1e-3)


def test_dice_known_values():
    a = Ellipse(100, 100, 50, 50, 0)
    assert dice_coefficient(a, a) == 1.0
    b = Ellipse(100, 100, 50 * math.sqrt(0.5), 50 * math.sqrt(0.5), 0)  # half the area, inside a
    assert dice_coefficient(a, b) == pytest.approx(2 * 0.5 / 1.5, abs=0.01)


@settings(max_examples=30, deadline=None)
@given(ellipses, st.floats(0.2, 3), st.floats(-180, 180), st.floats(-100, 100))
def test_transformed_matches_transformed_points(e, s, rot, shift):
    t = math.radians(rot)
    m = np.array([[s * math.cos(t), -s * math.sin(t), shift], [s * math.sin(t), s * math.cos(t), -shift]])
    pts = ellipse_points(e, 50) @ m[:, :2].T + m[:, 2]
    f = e.transformed(m)
    assert np.allclose(f.implicit(pts[:, 0], pts[:, 1]), 1.0, atol=1e-6)


def test_transformed_anisotropic_scaling():
    e = Ellipse(10, 10, 10, 10, 0)
    f = e.transformed([[2, 0, 0], [0, 1, 0]])
    assert (f.semi_major, f.semi_minor, f.angle_deg) == (pytest.approx(20), pytest.approx(10), pytest.approx(0))
