"""The one result format: CSV rows, HC18 rows in mm, JSON with nulls, the writer and the resume key."""

import csv
import json
import math

import pytest

from fetalhead.clinical.geometry import Ellipse, ellipse_landmarks
from fetalhead.measurement import Measurement, _fill
from fetalhead.outputs.results import (HC18_COLUMNS, RESULT_COLUMNS, ResultWriter, csv_row, csv_safe, hc18_row, result_key,
                               to_json, write_json)


def measured(name="a.png", spacing=(0.1, 0.1), status="ok"):
    m = Measurement(name, status, quality=0.9, sha256="ab" * 32, model_version="t", image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 150, 110, 30), spacing, "given", 22.0)
    return m


def test_csv_row_has_every_column_and_numbers_as_numbers():
    row = csv_row(measured())
    assert list(row) == list(RESULT_COLUMNS)
    assert row["pixel_size_mm"] == 0.1 and isinstance(row["hc_mm"], float) and row["frame"] == 0
    assert row["subject_id"] == "" and row["overlay"] == ""
    aniso = csv_row(measured(spacing=(0.1, 0.2)))
    assert aniso["pixel_size_mm"] == "0.1x0.2"


def test_json_is_json_not_csv():
    d = to_json(measured(spacing=None))
    assert d["hc_mm"] is None and d["pixel_spacing_mm"] is None and d["unit"] == "px"
    assert isinstance(d["flags"], list) and isinstance(d["messages"], list)
    d = to_json(measured(spacing=(0.1, 0.2)))
    assert d["pixel_spacing_mm"] == [0.1, 0.2] and "pixel_size_mm" not in d
    assert d["ellipse"]["semi_major"] == 150 and d["landmarks"]["ofd_1"] == list(ellipse_landmarks(
        Ellipse(400, 270, 150, 110, 30))["ofd_1"])
    assert d["image_width"] == 800 and d["image_height"] == 540
    json.dumps(d, allow_nan=False)


def test_failed_rows_are_empty_not_zero():
    m = Measurement("x.png", "failed", messages=["x.png: not a readable image"])
    row, d = csv_row(m), to_json(m)
    assert row["hc_mm"] == "" and row["status"] == "failed" and row["message"].startswith("x.png")
    assert d["hc_mm"] is None and d["ellipse"] is None
    assert hc18_row(m) == {"filename": "x.png", **{c: "" for c in HC18_COLUMNS[1:]}}


@pytest.mark.parametrize("text", ["=HYPERLINK(\"x\")_HC.png", "+1.png", "-2.png", "@sum.png", "\tx.png"])
def test_formula_cells_are_neutralised_in_csv_but_not_in_json(text):
    m = measured(name=text)
    assert csv_row(m)["filename"] == "'" + text
    assert to_json(m)["filename"] == text
    assert csv_safe("plain.png") == "plain.png"
    assert csv_row(measured())["hc_mm"] > 0  # numbers are never prefixed


def test_hc18_row_in_mm_with_anisotropic_spacing():
    m = Measurement("x.png", "ok", ellipse=Ellipse(100, 100, 100, 50, 90), pixel_spacing_mm=(0.1, 0.2))
    row = hc18_row(m)
    assert (row["semi_axes_a_mm"], row["semi_axes_b_mm"]) == pytest.approx((20.0, 5.0))
    assert abs(math.cos(row["angle_rad"])) == pytest.approx(0.0, abs=1e-6)  # major axis along y in mm


def test_writer_resume_and_refusals(tmp_path):
    out = tmp_path / "r.csv"
    w = ResultWriter(out)
    w.write(measured())
    w.close()
    with open(out, "a") as fh:
        fh.write("torn,row")  # a killed run
    w = ResultWriter(out, resume=True)
    assert w.done == {result_key("ab" * 32, 0)}
    w.close()
    assert len(list(csv.DictReader(open(out)))) == 1
    with pytest.raises(ValueError, match="--resume cannot be used with --format hc18"):
        ResultWriter(tmp_path / "h.csv", "hc18", resume=True)
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="header"):
        ResultWriter(tmp_path / "other.csv", resume=True)
    with pytest.raises(ValueError, match="folder"):
        ResultWriter(tmp_path)


def test_write_json_round_trip(tmp_path):
    write_json(tmp_path / "r.json", [measured(), Measurement("b.png", "failed", messages=["why"])])
    data = json.loads((tmp_path / "r.json").read_text())
    assert [d["status"] for d in data] == ["ok", "failed"]
    back = Measurement.from_dict(data[0])
    assert back.head_circumference_mm == pytest.approx(measured().head_circumference_mm)


def test_a_header_torn_by_a_kill_starts_afresh(tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("filename,subject_id,pixel_si")  # killed while writing the header
    w = ResultWriter(out, resume=True)
    w.write(measured())
    w.close()
    rows = list(csv.DictReader(open(out)))
    assert len(rows) == 1 and list(rows[0]) == list(RESULT_COLUMNS)


@pytest.mark.parametrize("cut_after", ["the newline in the name", "half the name", "the whole row but its end"])
def test_a_row_torn_after_a_file_name_with_a_newline_is_cut_on_resume(tmp_path, cut_after):
    # issue 26 #12: a torn row after a file name holding a newline stayed malformed after --resume
    out = tmp_path / "r.csv"
    w = ResultWriter(out)
    w.write(measured())
    w.close()
    good = out.read_bytes()
    odd = measured()
    odd.source = "/scans/a\nb.png"
    w = ResultWriter(tmp_path / "odd.csv")
    w.write(odd)
    w.close()
    row = (tmp_path / "odd.csv").read_bytes().split(b"\n", 1)[1]  # the record after the header
    assert b'"a\nb.png"' in row
    at = {"the newline in the name": row.index(b"\n") + 1, "half the name": row.index(b"\n") - 1,
          "the whole row but its end": len(row) - 2}[cut_after]
    out.write_bytes(good + row[:at])  # killed while writing the second row
    w = ResultWriter(out, resume=True)
    w.write(odd)
    w.close()
    rows = list(csv.DictReader(open(out, newline="")))
    assert len(rows) == 2 and rows[1]["filename"] == "a\nb.png" and all(len(r) == len(RESULT_COLUMNS) for r in rows)
    assert None not in rows[1] and rows[1]["sha256"] == rows[0]["sha256"]
