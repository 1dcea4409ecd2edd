"""The ``fetalhead measure`` command on good and bad files."""

import csv
import os
from pathlib import Path
import json
import shutil

import cv2
import numpy as np
import pytest

from fetalhead.cli import main
from fetalhead.measurement import HC18_COLUMNS, RESULT_COLUMNS


@pytest.fixture()
def scan_dir(tmp_path, samples_dir):
    d = tmp_path / "scans"
    d.mkdir()
    for n in ("358_HC.png", "590_HC.png"):
        shutil.copy(samples_dir / n, d / n)
    # an annotation file lying beside them is skipped
    cv2.imwrite(str(d / "358_HC_Annotation.png"), np.zeros((540, 800), np.uint8))
    return d


def read_rows(path):
    return list(csv.DictReader(open(path)))


def test_measure_folder_with_pixel_size_csv(scan_dir, samples_dir, tmp_path, capsys):
    out, ov, js = tmp_path / "r.csv", tmp_path / "ov", tmp_path / "r.json"
    rc = main(["measure", str(scan_dir), "--pixel-size-csv", str(samples_dir / "pixel_size_and_HC.csv"),
               "--out", str(out), "--overlay", str(ov), "--json", str(js), "--print-rows", "--no-progress"])
    assert rc == 0
    rows = read_rows(out)
    assert [r["filename"] for r in rows] == ["358_HC.png", "590_HC.png"]
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert all(r["status"] in ("ok", "flagged") and float(r["hc_mm"]) > 100 for r in rows)
    assert rows[0]["spacing_source"].startswith("csv:")
    assert len(list(ov.iterdir())) == 2
    assert all(Path(r["overlay"]).parent == ov and Path(r["overlay"]).name.startswith(r["filename"].split(".")[0])
               for r in rows)  # each row names its own overlay
    pic = cv2.imread(rows[0]["overlay"])
    assert pic.shape == (540, 800, 3)
    assert np.any(np.all(pic == (255, 255, 0), axis=2))  # cyan landmark dots
    assert len(json.loads(js.read_text())) == 2
    text = capsys.readouterr().out
    assert "reference HC" in text


def test_bad_files_get_rows_and_exit_code(scan_dir, tmp_path, samples_dir, capsys):
    (scan_dir / "notes.png").write_text("hello")
    data = (samples_dir / "011_HC.png").read_bytes()
    (scan_dir / "cut.png").write_bytes(data[: len(data) // 3])
    cv2.imwrite(str(scan_dir / "blank.png"), np.zeros((540, 800), np.uint8))
    cv2.imwrite(str(scan_dir / "tiny.png"), np.arange(200, dtype=np.uint8).reshape(10, 20))
    out = tmp_path / "r.csv"
    rc = main(["measure", str(scan_dir), "--pixel-size", "0.13", "--out", str(out), "--no-progress"])
    assert rc == 1
    rows = {r["filename"]: r for r in read_rows(out)}
    assert rows["358_HC.png"]["status"] in ("ok", "flagged")
    assert rows["590_HC.png"]["status"] in ("ok", "flagged")
    for name, why in (("notes.png", "not a readable image"), ("cut.png", "truncated"),
                      ("blank.png", "single grey level"), ("tiny.png", "too small")):
        assert rows[name]["status"] == "failed" and why in rows[name]["message"]
    err = capsys.readouterr().err
    assert "4 failed" in err and "cut.png" in err and "Traceback" not in err


def test_without_pixel_size_says_so(scan_dir, tmp_path, capsys):
    out = tmp_path / "r.csv"
    assert main(["measure", str(scan_dir / "358_HC.png"), "--out", str(out), "--no-progress"]) == 0
    row = read_rows(out)[0]
    assert row["hc_mm"] == "" and float(row["hc_px"]) > 0 and "no_pixel_spacing" in row["notes"] and not row["flags"]
    assert "no usable pixel spacing" in capsys.readouterr().err


def test_hc18_format(scan_dir, samples_dir, tmp_path):
    out = tmp_path / "sub.csv"
    main(["measure", str(scan_dir), "--pixel-size-csv", str(samples_dir / "pixel_size_and_HC.csv"),
          "--out", str(out), "--format", "hc18", "--no-progress"])
    rows = read_rows(out)
    assert list(rows[0]) == list(HC18_COLUMNS)
    assert float(rows[0]["semi_axes_a_mm"]) >= float(rows[0]["semi_axes_b_mm"]) > 0


def test_results_round_trip_through_evaluate(samples_dir, hc18, tmp_path, capsys):
    out = tmp_path / "r.csv"
    main(["measure", str(samples_dir), "--pixel-size-csv", str(samples_dir / "pixel_size_and_HC.csv"),
          "--out", str(out), "--no-progress"])
    names = {p.name for p in samples_dir.glob("*.png")}
    rows = [r for r in csv.DictReader(open(hc18 / "ellipses.csv")) if r["filename"] in names]
    ref = tmp_path / "ref.csv"
    with open(ref, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    js = tmp_path / "e.json"
    assert main(["evaluate", str(out), str(ref), "--json", str(js)]) == 0
    res = json.loads(js.read_text())["overall"]
    assert res["n"] == 6 and res["n_failed"] == 0
    assert res["hc_abs_mm"] < 4.0 and res["dice"] > 95


def test_usage_errors(tmp_path, capsys):
    assert main(["measure", str(tmp_path / "missing.png"), "--no-progress"]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["measure", str(tmp_path), "--pixel-size", "-1"]) == 2
    with pytest.raises(SystemExit):
        main(["measure"])


def test_result_columns_start_with_those_of_ellipses_csv(hc18):
    header = open(hc18 / "ellipses.csv").readline().strip().split(",")
    assert list(RESULT_COLUMNS[: len(header)]) == header


def test_overlays_of_scans_with_the_same_name_do_not_overwrite(samples_dir, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "x.png").write_bytes((samples_dir / "358_HC.png").read_bytes())
    cv2.imwrite(str(tmp_path / "a" / "x.jpg"), cv2.imread(str(samples_dir / "590_HC.png")))
    out, ov = tmp_path / "r.csv", tmp_path / "ov"
    assert main(["measure", str(tmp_path / "a"), str(tmp_path / "b"), "--pixel-size", "0.13", "--out", str(out),
                 "--overlay", str(ov), "--no-progress"]) == 0
    rows = read_rows(out)
    assert len(rows) == 3 and len({r["overlay"] for r in rows}) == 3 and len(list(ov.iterdir())) == 3


def test_hc18_format_maps_the_ellipse_to_mm_with_anisotropic_spacing():
    """An ellipse (100, 100, 100, 50, 90 deg) at (0.1, 0.2) mm is 20 x 5 mm, as head_biometry says."""
    from fetalhead.clinical.biometry import head_biometry
    from fetalhead.clinical.geometry import Ellipse
    from fetalhead.measurement import Measurement
    from fetalhead.outputs.results import hc18_row

    e = Ellipse(100, 100, 100, 50, 90)
    m = Measurement("x.png", "ok", ellipse=e, pixel_spacing_mm=(0.1, 0.2))
    row = hc18_row(m)
    bio = head_biometry(e, (0.1, 0.2))
    assert 2 * row["semi_axes_a_mm"] == pytest.approx(bio.occipitofrontal_diameter)
    assert 2 * row["semi_axes_b_mm"] == pytest.approx(bio.biparietal_diameter)
    assert (row["semi_axes_a_mm"], row["semi_axes_b_mm"]) == pytest.approx((20.0, 5.0))
    assert row["center_x_mm"] == pytest.approx(10.0) and row["center_y_mm"] == pytest.approx(20.0)
    assert row["angle_rad"] == pytest.approx(np.pi / 2) or row["angle_rad"] == pytest.approx(-np.pi / 2)


def test_parquet_without_pyarrow_is_refused_before_measuring(scan_dir, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    import fetalhead.batch as batch

    calls = []
    monkeypatch.setattr(batch, "measure_one", lambda *a, **k: calls.append(a))
    rc = main(["measure", str(scan_dir), "--pixel-size", "0.13", "--out", str(tmp_path / "r.parquet"),
               "--no-progress"])
    assert rc == 2 and not calls
    assert "pyarrow" in capsys.readouterr().err


def test_evaluate_names_the_row_of_a_bad_pixel_size(tmp_path, capsys):
    ref = tmp_path / "ref.csv"
    ref.write_text("filename,pixel_size_mm,hc_mm,center_x_px,center_y_px,semi_major_px,semi_minor_px,angle_deg\n"
                   "a.png,0.1,100,50,50,40,30,0\nb.png,abc,100,50,50,40,30,0\n")
    pred = tmp_path / "pred.csv"
    pred.write_text("filename,center_x_px,center_y_px,semi_major_px,semi_minor_px,angle_deg\na.png,50,50,40,30,0\n")
    assert main(["evaluate", str(pred), str(ref)]) == 1
    err = capsys.readouterr().err
    assert "ref.csv line 3" in err and "pixel size" in err and "Traceback" not in err


def test_clumsy_commands_get_one_line_errors(scan_dir, tmp_path, capsys, samples_dir):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root can write anywhere: use a path that cannot exist
        ro = Path("/proc/nope")
    assert main(["report", str(samples_dir / "358_HC.png"), "--out", str(ro / "r.pdf")]) == 2
    assert main(["measure", str(scan_dir), "--out", str(tmp_path / "r.csv"),
                 "--scheduler", "tcp://127.0.0.1:9", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "Dask scheduler" in err and "r.pdf" in err


def test_ga_by_dates_as_weeks_plus_days(samples_dir, tmp_path, capsys):
    js = tmp_path / "r.json"
    assert main(["measure", str(samples_dir / "358_HC.png"), "--pixel-size", "0.13", "--ga-weeks", "20+3",
                 "--json", str(js), "--no-progress"]) == 0
    assert json.loads(js.read_text())[0]["ga_by_dates_weeks"] == pytest.approx(20 + 3 / 7)
    with pytest.raises(SystemExit):
        main(["measure", str(samples_dir / "358_HC.png"), "--ga-weeks", "20+9"])
    assert "weeks+days, e.g. 20+3" in capsys.readouterr().err


def _subcommands():
    import argparse

    from fetalhead.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in _subcommands()])
def test_every_help_prints_without_a_traceback(argv, capsys):
    # argparse %-formats help strings: a bare "90 %" once crashed `fetalhead --help` (issue 26)
    from fetalhead.cli import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "usage: fetalhead" in out and len(out) > 100
