"""``fetalhead scale``: the depth scale read off screen pictures, from the command line (issue 22)."""

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
