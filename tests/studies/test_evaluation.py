import csv
import json
import math

import pytest

from fetalhead.cli import main
from fetalhead.studies.evaluation import ellipse_errors, evaluate_files, landmark_radial_errors
from fetalhead.clinical.geometry import Ellipse, ellipse_landmarks


def write_rows(path, rows, fieldnames):
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fieldnames)
        w.writeheader()
        w.writerows(rows)


def test_reference_against_itself_is_zero(hc18, tmp_path, capsys):
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(hc18 / "ellipses.csv"), str(hc18), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    o = res["overall"]
    assert o["n"] == 807 and o["n_failed"] == 0
    assert o["hc_abs_mm"] == pytest.approx(0, abs=1e-3)  # the CSV rounds HC to 0.01 mm
    assert o["dice"] == pytest.approx(100.0)
    assert o["hausdorff_mm"] == pytest.approx(0, abs=1e-6)
    assert o["landmark_radial_mm"] == pytest.approx(0, abs=1e-6)
    assert sum(b["n"] for b in res["bands"].values()) == 807
    assert "ADF" in capsys.readouterr().out


def test_known_perturbation_gives_expected_error(hc18, tmp_path):
    rows = list(csv.DictReader(open(hc18 / "ellipses.csv")))[:40]
    fields = list(rows[0])
    pert = []
    for r in rows:
        r = dict(r)
        # grow both semi-axes by 2 px: HC grows by 2*pi*2 px exactly (perimeter is linear in a common offset
        # only for circles, so compute the expected value from the formula), Hausdorff is 2 px.
        r["semi_major_px"] = str(float(r["semi_major_px"]) + 2)
        r["semi_minor_px"] = str(float(r["semi_minor_px"]) + 2)
        for k in ("ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y", "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y"):
            r[k] = ""
        pert.append(r)
    pert = pert[:-5]  # five images without prediction: failures
    write_rows(tmp_path / "pred.csv", pert, fields)
    res = evaluate_files(tmp_path / "pred.csv", hc18)
    o = res["overall"]
    assert o["n_failed"] == 807 - 35
    assert len(res["failed"]) == 807 - 35
    per = {p["filename"]: p for p in res["per_image"]}
    for r in rows[:35]:
        e = Ellipse(*(float(r[k]) for k in ("center_x_px", "center_y_px", "semi_major_px", "semi_minor_px", "angle_deg")))
        grown = Ellipse(e.center_x, e.center_y, e.semi_major + 2, e.semi_minor + 2, e.angle_deg)
        px = per[r["filename"]]["hc_pred_mm"] / grown.perimeter_px
        p = per[r["filename"]]
        assert p["hc_diff_mm"] == pytest.approx((grown.perimeter_px - e.perimeter_px) * px, abs=1e-3)
        assert p["hausdorff_mm"] == pytest.approx(2 * px, rel=1e-3)
        assert p["bpd_abs_mm"] == pytest.approx(4 * px, rel=1e-6)
        assert p["landmark_radial_mm"] == pytest.approx(2 * px, rel=1e-4)


def test_landmark_pairs_are_matched_order_free():
    e = Ellipse(100, 100, 50, 30, 10)
    lm = ellipse_landmarks(e)
    swapped = {"ofd_1": lm["ofd_2"], "ofd_2": lm["ofd_1"], "bpd_1": lm["bpd_2"], "bpd_2": lm["bpd_1"]}
    assert landmark_radial_errors(swapped, lm) == pytest.approx([0, 0, 0, 0])


def test_ellipse_errors_requires_pixel_size():
    e = Ellipse(100, 100, 50, 30, 10)
    with pytest.raises(ValueError):
        ellipse_errors(e, e, None)
    err = ellipse_errors(Ellipse(103, 100, 50, 30, 10), e, 0.1)
    assert err["hc_abs_mm"] == pytest.approx(0, abs=1e-9)
    assert err["hausdorff_mm"] == pytest.approx(0.3, abs=1e-3)
    assert 0 < err["dice"] < 100 and math.isfinite(err["landmark_radial_mm"])


def test_evaluate_bad_prediction_file(tmp_path, hc18, capsys):
    (tmp_path / "p.csv").write_text("nothing,here\n1,2\n")
    assert main(["evaluate", str(tmp_path / "p.csv"), str(hc18)]) == 1
    assert "filename" in capsys.readouterr().err
