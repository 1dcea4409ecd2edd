"""``fetalhead scale``: the depth scale read off screen pictures, from the command line (issue 22)."""

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fetalhead.cli import main
from tests.screen_fixtures import render_screen


@pytest.fixture
def screens(tmp_path):
    read = tmp_path / "screen.png"
    cv2.imwrite(str(read), render_screen(mm_per_px=0.2, marks="ticks")[..., ::-1])
    none = tmp_path / "plain.jpg"
    cv2.imwrite(str(none), render_screen(marks=None)[..., ::-1])
    return read, none


def test_a_screen_with_a_scale_is_read_and_written(screens, tmp_path, capsys):
    read, _ = screens
    out, ov = tmp_path / "scale.json", tmp_path / "ov"
    assert main(["scale", str(read), "--json", str(out), "--overlay", str(ov)]) == 0
    assert "1 cm = 50.0 px" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())
    assert set(row) >= {"file", "mm_per_px", "marks", "label", "confidence", "reason"}
    assert row["file"] == str(read) and row["mm_per_px"] == pytest.approx([0.2, 0.2], rel=0.01)
    assert len(row["marks"]) >= 5 and row["confidence"] >= 0.5
    assert (ov / "screen_scale.png").is_file()


def test_any_file_without_a_scale_or_unreadable_exits_1(screens, tmp_path, capsys):
    read, none = screens
    out = tmp_path / "scale.json"
    assert main(["scale", str(read), str(none), str(tmp_path / "missing.png"), "--json", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"{none}: no scale" in text and "missing.png: failed" in text
    rows = json.loads(out.read_text())
    assert [r["mm_per_px"] is None for r in rows] == [False, True, True]
    assert rows[1]["reason"].startswith("no scale")


def test_bad_options_exit_2(screens, tmp_path):
    read, _ = screens
    assert main(["scale", str(read), "--json", str(tmp_path)]) == 2  # a folder, not a file
    with pytest.raises(SystemExit) as exc:
        main(["scale"])
    assert exc.value.code == 2


def test_a_photo_of_the_screen_taken_at_an_angle_is_refused_as_when_measuring(tmp_path, capsys):
    """The command line reads a screen picture as a measurement does: a slanted phone photo gives no scale."""
    from tests.photo_fixtures import make_photo

    photo, _ = make_photo(render_screen(mm_per_px=0.2, marks="ticks"), 10, "y", "plain")
    path = tmp_path / "photo.png"
    cv2.imwrite(str(path), photo[..., ::-1])
    out = tmp_path / "scale.json"
    assert main(["scale", str(path), "--json", str(out)]) == 1
    (row,) = json.loads(out.read_text())
    assert row["mm_per_px"] is None and "photo of the screen" in row["reason"]
    assert "photo of the screen" in capsys.readouterr().out


# --- fetalhead measure with a scale set by two points (no pixel size known) --------------------------

PS_358 = 0.134737677  # 358_HC.png's pixel size (HC18)


def _measure_json(args, tmp_path, name="r.json"):
    js = tmp_path / name
    rc = main(["measure", *args, "--json", str(js), "--no-progress"])
    return rc, json.loads(js.read_text())


def test_measure_with_two_points_gives_the_pixel_size_they_set(samples_dir, tmp_path):
    """200 px set as 200 x the HC18 pixel size: the same millimetres as with the pixel size typed; the
    overlay draws the two points, and the result names them."""
    scan = str(samples_dir / "358_HC.png")
    cm = 200 * PS_358 / 10
    rc, (row,) = _measure_json([scan, "--scale-points", "100,50,100,250", "--scale-cm", str(cm),
                                "--overlay", str(tmp_path / "ov")], tmp_path)
    assert rc == 0 and row["spacing_source"] == "two_points"
    assert row["pixel_spacing_mm"] == pytest.approx([PS_358, PS_358], rel=1e-6)
    assert row["scale_points"] == [[100.0, 50.0], [100.0, 250.0]] and row["scale_distance_cm"] == pytest.approx(cm)
    _, (typed,) = _measure_json([scan, "--pixel-size", str(PS_358)], tmp_path, "typed.json")
    assert row["hc_mm"] == pytest.approx(typed["hc_mm"], abs=1e-6) and row["hc_mm"] > 100
    (ov,) = (tmp_path / "ov").glob("*.png")
    pic = cv2.imread(str(ov))
    assert np.allclose(pic[150, 100], (0, 215, 255), atol=40)  # the yellow line between the points, halfway


def test_two_points_in_the_pixel_size_csv(samples_dir, tmp_path):
    """Per-file scales in the CSV: one measured with it, one whose points lie outside its picture failed
    with the reason (the batch goes on, exit 1), one with a typed pixel size as before."""
    d = tmp_path / "scans"
    d.mkdir()
    for n in ("358_HC.png", "590_HC.png", "011_HC.png"):
        (d / n).write_bytes((samples_dir / n).read_bytes())
    table = tmp_path / "px.csv"
    cm = 200 * PS_358 / 10
    table.write_text("filename,pixel size(mm),scale_points,scale_distance_cm\n"
                     f"358_HC.png,,100;50;100;250,{cm}\n"
                     f"590_HC.png,,100;50;100;900,{cm}\n"
                     "011_HC.png,0.1,,\n")
    rc, rows = _measure_json([str(d), "--pixel-size-csv", str(table)], tmp_path)
    by = {Path(r["filename"]).name: r for r in rows}
    assert rc == 1
    assert by["358_HC.png"]["spacing_source"] == "two_points"
    assert by["358_HC.png"]["pixel_spacing_mm"] == pytest.approx([PS_358, PS_358], rel=1e-6)
    assert by["590_HC.png"]["status"] == "failed" and by["590_HC.png"]["failure"] == "invalid_input"
    assert "outside the picture" in by["590_HC.png"]["message"]
    assert by["011_HC.png"]["pixel_spacing_mm"] == [0.1, 0.1]


@pytest.mark.parametrize("extra, says", [
    (["--scale-points", "100,50,100,250"], "go together"),
    (["--scale-cm", "2"], "go together"),
    (["--scale-points", "100,50,100,250", "--scale-cm", "2", "--pixel-size", "0.1"], "not both"),
    (["--scale-points", "1,2,3", "--scale-cm", "2"], "four numbers"),
    (["--scale-points", "100,50,100,250", "--scale-cm", "0"], "cm is not a distance"),
])
def test_bad_scale_options_exit_2_before_measuring(samples_dir, extra, says, capsys):
    assert main(["measure", str(samples_dir / "358_HC.png"), "--no-progress", *extra]) == 2
    assert says in capsys.readouterr().err


def test_a_csv_row_with_both_a_pixel_size_and_points_is_refused(samples_dir, tmp_path, capsys):
    table = tmp_path / "px.csv"
    table.write_text("filename,pixel_size_mm,scale_points,scale_distance_cm\n358_HC.png,0.1,1;2;3;400,2\n")
    assert main(["measure", str(samples_dir / "358_HC.png"), "--pixel-size-csv", str(table), "--no-progress"]) == 2
    assert "line 2: give either a pixel size or scale points, not both" in capsys.readouterr().err


# --- found by a hostile review of the above ---------------------------------------------------------------


@pytest.mark.parametrize("table, says", [
    ("filename,scale_points,scale_distance_cm\n358_HC.png,100;50;100;250,2\n192_HC.png,,\n",
     "line 3: '192_HC.png' has neither a pixel size nor scale points"),
    ("filename,pixel size(mm),scale_points,scale_distance_cm\n358_HC.png,,,2.69\n",
     "line 2: scale_distance_cm without scale_points"),
    ("filename,scale_points,scale_distance_cm\n358_HC.png,100;50;100;250,2\n358_HC.png,100;50;100;260,2\n",
     "line 3: '358_HC.png' is on line 2 already"),
    ("filename,pixel_size_mm,scale_points,scale_distance_cm\n358_HC.png,0.1,,\n358_HC.png,,1;2;3;400,2\n",
     "line 3: '358_HC.png' is on line 2 already"),
])
def test_csv_rows_that_give_no_one_scale_are_refused_with_their_line(samples_dir, tmp_path, capsys, table, says):
    path = tmp_path / "px.csv"
    path.write_text(table)
    assert main(["measure", str(samples_dir / "358_HC.png"), "--pixel-size-csv", str(path), "--no-progress"]) == 2
    assert says in capsys.readouterr().err


def test_scale_headers_in_any_case_and_the_csv_output_keeps_the_points(samples_dir, tmp_path):
    """A header "Scale_Points" is the scale's column (the pixel size's was already read in any case); the
    results CSV gives the points and the distance as typed (2.69 cm, not 2.7), as the JSON does."""
    table = tmp_path / "px.csv"
    table.write_text("filename,Scale_Points,Scale Distance_cm\n358_HC.png,100;50;100;250,2.69\n")
    out = tmp_path / "r.csv"
    assert main(["measure", str(samples_dir / "358_HC.png"), "--pixel-size-csv", str(table), "--out", str(out),
                 "--no-progress"]) == 0
    (row,) = list(csv.DictReader(open(out)))
    assert row["spacing_source"] == "two_points" and row["scale_points"] == "100;50;100;250"
    assert float(row["scale_distance_cm"]) == 2.69 and "2.69 cm apart" in row["note_message"]


def test_a_leading_minus_is_a_point_not_an_option_and_typed_scales_do_not_mix_with_the_csv(samples_dir, tmp_path,
                                                                                           capsys):
    scan = str(samples_dir / "358_HC.png")
    assert main(["measure", scan, "--scale-points", "-10,100,300,100", "--scale-cm", "2", "--no-progress"]) == 1
    assert "(-10, 100) lies outside the picture" in capsys.readouterr().out
    table = tmp_path / "px.csv"
    table.write_text("filename,pixel size(mm)\n358_HC.png,0.1\n")
    assert main(["measure", scan, "--pixel-size-csv", str(table), "--scale-points", "100,50,100,250",
                 "--scale-cm", "2", "--no-progress"]) == 2
    assert "not both" in capsys.readouterr().err


def test_a_missing_distance_says_so(samples_dir, tmp_path):
    table = tmp_path / "px.csv"
    table.write_text("filename,scale_points,scale_distance_cm\n358_HC.png,100;50;100;250,\n")
    rc, (row,) = _measure_json([str(samples_dir / "358_HC.png"), "--pixel-size-csv", str(table)], tmp_path)
    assert rc == 1 and row["failure"] == "invalid_input" and "scale distance: none given" in row["message"]


def test_resume_says_which_skipped_scans_had_failed(samples_dir, tmp_path, capsys):
    """A scan failed for a scale typed wrong is done for --resume (as any failure), but the summary says so
    and how to measure it again (it said only "already in the output, skipped")."""
    scan, out = str(samples_dir / "358_HC.png"), str(tmp_path / "r.csv")
    assert main(["measure", scan, "--scale-points", "100,100,900,100", "--scale-cm", "2", "--out", out,
                 "--no-progress"]) == 1
    capsys.readouterr()
    assert main(["measure", scan, "--scale-points", "100,100,300,100", "--scale-cm", "2", "--out", out,
                 "--resume", "--no-progress"]) == 0
    assert "1 already in the output, skipped (1 of them had failed: to measure them again" in capsys.readouterr().err
