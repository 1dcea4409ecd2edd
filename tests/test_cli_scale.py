"""``fetalhead scale``: the depth scale read off screen pictures, from the command line (issue 22)."""

import json

import cv2
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
