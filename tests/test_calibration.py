"""fetalhead calibrate: records, the subject split, and the calibration stored with the model."""

import json

import numpy as np
import pytest

from fetalhead.calibration import Record, calibrate_records, subject_half
from fetalhead.cli import main
from fetalhead.uncertainty import FEATURES, feature_vector


def fake_records(n=400, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        seen = rng.uniform(0.3, 1.0)
        err = (0.004 + 0.04 * (1 - seen)) * rng.normal()
        out.append(Record(i // 2, f"{i}.png", "identity", None, 0.1, (800, 540), None,
                          feature_vector({"outline_seen": seen}), err, err, err, abs(err) * 100))
    return out


def test_subject_half_is_stable_and_balanced():
    halves = [subject_half(s) for s in range(1000)]
    assert halves == [subject_half(s) for s in range(1000)] and 400 < sum(halves) < 600


def test_calibrate_records_learns_that_unseen_skull_is_hard():
    cal = calibrate_records(fake_records())
    assert cal.weights[FEATURES.index("outline_seen")] > 0  # less skull seen: wider
    assert 0 < cal.flag_half_width < 0.1 and cal.q_hc > 0
    with pytest.raises(ValueError, match="at least 40"):
        calibrate_records(fake_records(10))


@pytest.mark.slow
def test_calibrate_command_writes_the_model_metadata(hc18, tmp_path):
    out = tmp_path / "meta.json"
    assert main(["calibrate", "--data", str(hc18), "--limit", "4", "--out", str(out), "--no-progress"]) == 0
    cal = json.loads(out.read_text())["calibration"]
    assert cal["features"] == list(FEATURES) and cal["q_hc"] > 0 and "validation split" in cal["data"]
