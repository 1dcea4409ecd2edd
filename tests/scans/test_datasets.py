import csv
import shutil

import pytest

from fetalhead.scans.datasets import (DatasetError, detect_layout, ellipse_from_landmarks, fold_split,
                                is_validation_subject, load_dataset, read_landmark_csv, read_pixel_size_csv,
                                subject_fold, subject_id_from_filename, subject_split)
from fetalhead.clinical.geometry import Ellipse, ellipse_landmarks


def test_subject_id_from_filename():
    assert subject_id_from_filename("012_HC.png") == 12
    assert subject_id_from_filename("012_2HC.png") == 12
    assert subject_id_from_filename("path/to/700_3HC.png") == 700
    assert subject_id_from_filename("scan.png") is None


def test_shared_layout(hc18):
    samples = load_dataset(hc18)
    assert len(samples) == 807
    s = next(x for x in samples if x.filename == "000_HC.png")
    assert s.subject_id == 0 and s.ellipse is not None
    assert s.pixel_size_mm == pytest.approx(0.069135804)  # full precision from the official CSV
    assert s.image_path.is_file() and s.annotation_path.is_file()


def test_official_layout_on_a_copy(hc18, tmp_path):
    folder = tmp_path / "training_set"
    folder.mkdir()
    names = ["000_HC.png", "001_HC.png", "010_2HC.png"]
    rows = {r["filename"]: r for r in csv.DictReader(open(hc18 / "training_set_pixel_size_and_HC.csv"))}
    with open(tmp_path / "training_set_pixel_size_and_HC.csv", "w") as fh:
        fh.write("filename,pixel size(mm),head circumference (mm)\n")
        for n in names:
            shutil.copy(hc18 / "images" / n, folder / n)
            shutil.copy(hc18 / "annotations" / n.replace(".png", "_Annotation.png"), folder)
            fh.write(f"{n},{rows[n]['pixel size(mm)']},{rows[n]['head circumference (mm)']}\n")
    assert detect_layout(tmp_path) == "hc18"
    samples = load_dataset(tmp_path)
    assert [s.filename for s in samples] == names
    for s in samples:
        hc = s.ellipse.perimeter_px * s.pixel_size_mm
        assert hc == pytest.approx(s.hc_mm, abs=0.35)  # annotation fit vs official HC (README: within 0.3 mm)
    assert samples[2].subject_id == 10


def test_landmark_csv(hc18, tmp_path):
    rows = list(csv.DictReader(open(hc18 / "ellipses.csv")))[:5]
    cols = ["filename", "ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y", "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y"]
    with open(tmp_path / "landmarks.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    samples = read_landmark_csv(tmp_path / "landmarks.csv", image_dir=hc18 / "images")
    assert detect_layout(tmp_path / "landmarks.csv") == "landmarks"
    for s, r in zip(samples, rows):
        assert s.image_path.is_file()
        assert s.ellipse.semi_major == pytest.approx(float(r["semi_major_px"]), abs=1e-3)
        assert s.ellipse.semi_minor == pytest.approx(float(r["semi_minor_px"]), abs=1e-3)


def test_ellipse_from_landmarks_roundtrip():
    e = Ellipse(300, 200, 120, 90, 70)
    lm = ellipse_landmarks(e)
    f = ellipse_from_landmarks(lm["ofd_1"], lm["ofd_2"], lm["bpd_1"], lm["bpd_2"])
    assert f.as_tuple() == pytest.approx(e.as_tuple())


def test_split_is_by_subject_fixed_and_seeded(hc18):
    samples = load_dataset(hc18)
    train, val = subject_split(samples, 0.2, seed=0)
    assert len(train) + len(val) == len(samples)
    assert not ({s.subject_id for s in train} & {s.subject_id for s in val})
    assert 0.15 < len({s.subject_id for s in val}) / len({s.subject_id for s in samples}) < 0.25
    # fixed: the same with the samples shuffled or a subset
    _, val2 = subject_split(list(reversed(samples))[:400], 0.2, seed=0)
    assert {s.filename for s in val2} <= {s.filename for s in val}
    _, val3 = subject_split(samples, 0.2, seed=1)
    assert {s.filename for s in val3} != {s.filename for s in val}
    assert is_validation_subject(5, 1.0) and not is_validation_subject(5, 0.0)


def test_folds_partition_by_subject_and_are_fixed(hc18):
    samples = load_dataset(hc18)
    held = [fold_split(samples, 3, k)[1] for k in range(3)]
    names = [{s.filename for s in h} for h in held]
    # every image held out exactly once, a subject never in two folds, folds of similar size
    assert sum(len(n) for n in names) == len(samples) == len(set().union(*names))
    subjects = [{s.subject_id for s in h} for h in held]
    assert not (subjects[0] & subjects[1]) and not (subjects[0] & subjects[2]) and not (subjects[1] & subjects[2])
    assert all(0.25 < len(n) / len(samples) < 0.42 for n in names)
    train, held0 = fold_split(samples, 3, 0)
    assert not ({s.subject_id for s in train} & subjects[0]) and len(train) + len(held0) == len(samples)
    # fixed: a subset or reordering keeps each subject's fold; another seed moves them
    sub = fold_split(list(reversed(samples))[:300], 3, 0)[1]
    assert {s.filename for s in sub} <= names[0]
    assert {s.filename for s in fold_split(samples, 3, 0, seed=1)[1]} != names[0]
    assert all(subject_fold(s, 5) in range(5) for s in range(200))
    with pytest.raises(ValueError):
        subject_fold(1, 1)
    with pytest.raises(ValueError):
        fold_split(samples, 3, 3)


def test_bad_inputs(tmp_path):
    with pytest.raises(DatasetError, match="no such"):
        detect_layout(tmp_path / "nothing")
    (tmp_path / "x.csv").write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="columns"):
        read_pixel_size_csv(tmp_path / "x.csv")
    (tmp_path / "p.csv").write_text("filename,pixel size(mm)\na.png,abc\n")
    with pytest.raises(DatasetError, match="not a number"):
        read_pixel_size_csv(tmp_path / "p.csv")
    with pytest.raises(DatasetError, match="not a known"):
        detect_layout(tmp_path)
