import csv
import json
import shutil

import cv2
import numpy as np
import pytest

from fetalhead.cli import main
from fetalhead.studies.datacheck import check_dataset

NAMES = ["000_HC.png", "001_HC.png", "002_HC.png", "003_HC.png", "010_HC.png", "010_2HC.png"]


def make_copy(hc18, root):
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    rows = [r for r in csv.DictReader(open(hc18 / "ellipses.csv")) if r["filename"] in NAMES]
    for n in NAMES:
        shutil.copy(hc18 / "images" / n, root / "images" / n)
        shutil.copy(hc18 / "annotations" / n.replace(".png", "_Annotation.png"), root / "annotations")
    with open(root / "ellipses.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return rows


def test_clean_copy_is_clean(hc18, tmp_path):
    make_copy(hc18, tmp_path)
    rep = check_dataset(tmp_path)
    assert rep.errors == [], rep.text()
    assert rep.counts["images"] == 6 and rep.counts["subjects"] == 5


def test_damaged_copy_reports_each_problem(hc18, tmp_path, capsys):
    rows = make_copy(hc18, tmp_path)
    img = tmp_path / "images"
    ann = tmp_path / "annotations"
    # truncated PNG
    data = (img / "000_HC.png").read_bytes()
    (img / "000_HC.png").write_bytes(data[: len(data) // 2])
    # missing annotation
    (ann / "001_HC_Annotation.png").unlink()
    # wrong HC (+5 mm) in the CSV
    for r in rows:
        if r["filename"] == "002_HC.png":
            r["hc_mm"] = f"{float(r['hc_mm']) + 5:.2f}"
        if r["filename"] == "003_HC.png":
            r["pixel_size_mm"] = "5.0"
    with open(tmp_path / "ellipses.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    # an annotation that is not one closed ellipse: erase half of the outline
    a = cv2.imread(str(ann / "010_HC_Annotation.png"), cv2.IMREAD_GRAYSCALE)
    a[:, : a.shape[1] // 2] = 0
    cv2.imwrite(str(ann / "010_HC_Annotation.png"), a)
    # a duplicate image and an extra annotation
    shutil.copy(img / "010_2HC.png", img / "011_HC.png")
    with open(tmp_path / "ellipses.csv", "a", newline="") as fh:
        r = dict(rows[-1], filename="011_HC.png", subject_id="11")
        csv.DictWriter(fh, fieldnames=list(rows[0])).writerow(r)
    shutil.copy(ann / "010_2HC_Annotation.png", ann / "011_HC_Annotation.png")
    shutil.copy(ann / "010_2HC_Annotation.png", ann / "999_HC_Annotation.png")

    rep = check_dataset(tmp_path)
    found = {(f.check, f.file) for f in rep.errors}
    assert ("unreadable image", "000_HC.png") in found
    assert any("truncated" in f.message for f in rep.errors if f.file == "000_HC.png")
    assert ("missing annotation", "001_HC.png") in found
    assert ("HC disagrees with annotation", "002_HC.png") in found
    hc_msg = next(f.message for f in rep.errors if f.file == "002_HC.png" and f.check.startswith("HC disagrees w"))
    assert "-5.0" in hc_msg  # the mm difference is reported
    assert ("pixel size out of range", "003_HC.png") in found
    assert ("annotation not one closed ellipse", "010_HC.png") in found
    assert ("duplicate image", "011_HC.png") in found
    assert ("extra annotation", "999_HC_Annotation.png") in found

    out = tmp_path / "report.json"
    assert main(["check-data", str(tmp_path), "--json", str(out), "--no-progress"]) == 1
    text = capsys.readouterr().out
    assert "NOT CLEAN" in text and "000_HC.png" in text
    report = json.loads(out.read_text())
    assert report["n_errors"] == len(rep.errors)


def test_subject_id_mismatch(hc18, tmp_path):
    rows = make_copy(hc18, tmp_path)
    rows[0]["subject_id"] = "77"
    with open(tmp_path / "ellipses.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    rep = check_dataset(tmp_path)
    assert any(f.check == "subject id" for f in rep.errors)


def test_unknown_layout_is_an_error(tmp_path):
    rep = check_dataset(tmp_path)
    assert rep.errors and rep.errors[0].check == "layout"


@pytest.mark.slow
def test_shared_data_is_clean(hc18):
    rep = check_dataset(hc18)
    assert rep.errors == [], rep.text()
    assert rep.counts["images"] == 807
    assert abs(rep.hc_difference_mm["mean"]) < 0.2 and rep.hc_difference_mm["max_abs"] < 0.35
