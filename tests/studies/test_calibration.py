"""fetalhead calibrate: records, the subject split, and the calibration stored with the model."""

import json

import numpy as np
import pytest

from fetalhead.studies.calibration import POOLED_QUANTILE_LEVEL, Record, calibrate_records, subject_half
from fetalhead.cli import main
from fetalhead.model.uncertainty import FEATURES, feature_vector


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
    # the difficulty the intervals use (the neighbours') says the same
    assert cal.difficulty({"outline_seen": 0.35}) > 2 * cal.difficulty({"outline_seen": 0.95})
    assert 0 < cal.flag_half_width < 0.1 and cal.q_hc > 0
    # the pooled scores' quantile is taken at the level chosen out of fold (issue 21)
    assert cal.level == 0.9 and cal.quantile_level == POOLED_QUANTILE_LEVEL
    assert calibrate_records(fake_records(), quantile_level=0.95).q_hc > cal.q_hc
    with pytest.raises(ValueError, match="at least 40"):
        calibrate_records(fake_records(10))


@pytest.mark.slow
def test_calibrate_command_writes_the_model_metadata(hc18, tmp_path):
    out = tmp_path / "meta.json"
    assert main(["calibrate", "--data", str(hc18), "--limit", "4", "--out", str(out), "--no-progress"]) == 0
    cal = json.loads(out.read_text())["calibration"]
    assert cal["features"] == list(FEATURES) and cal["q_hc"] > 0 and "validation split" in cal["data"]
    meta = json.loads(out.read_text())
    assert 0.3 <= meta["pipeline"]["boundary_level"] <= 0.6 and "0.50" in meta["boundary_level_choice"]["levels"]


class _BlurredReader:
    """A synthetic network whose probability is 0.4 on the drawn outline (its 0.5 level lies inside it)."""

    def __init__(self):
        from fetalhead.model.pipeline import PipelineConfig

        self.pipeline_config = PipelineConfig()

    def predict(self, batch):
        import cv2

        out = np.empty_like(batch)
        for k, v in enumerate(batch[:, 0]):
            v = cv2.GaussianBlur(v, (0, 0), 2.0)
            lo, hi = float(v.min()), float(v.max())
            out[k, 0] = 6.0 * (v - (lo + hi) / 2) / max(hi - lo, 1e-6) + np.log(0.4 / 0.6)
        return out


def test_boundary_level_is_chosen_where_the_hc_has_no_bias(tmp_path):
    import cv2

    from fetalhead.studies.calibration import choose_boundary_level
    from fetalhead.scans.datasets import HeadSample
    from fetalhead.clinical.geometry import Ellipse, ellipse_coverage

    samples = []
    for i, (a, b, angle) in enumerate([(150, 110, 10), (120, 100, 70), (170, 120, 135), (90, 70, 40)]):
        e = Ellipse(400 + 10 * i, 270 - 5 * i, a, b, angle)
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), (255 * (0.15 + 0.6 * ellipse_coverage(e, (540, 800)))).astype(np.uint8))
        samples.append(HeadSample(path.name, path, i, 0.1, None, e))
    level, table = choose_boundary_level(samples, _BlurredReader(), n_images=4)
    assert 0.37 <= level <= 0.43
    assert table["0.50"]["median_rel_err_pct"] < -0.2  # the 0.5 level lies inside the outline
    assert abs(table["0.40"]["median_rel_err_pct"]) < abs(table["0.50"]["median_rel_err_pct"]) / 3
    assert table["0.40"]["n"] == 4


def test_zero_bias_level_is_interpolated_between_the_levels_tried():
    from fetalhead.studies.calibration import _zero_bias_level

    t = {"0.40": {"median_rel_err_pct": 0.11}, "0.45": {"median_rel_err_pct": -0.11},
         "0.50": {"median_rel_err_pct": -0.35}}
    assert _zero_bias_level(t) == pytest.approx(0.425)
    assert _zero_bias_level({"0.45": {"median_rel_err_pct": -0.2}, "0.50": {"median_rel_err_pct": -0.4}}) == 0.45


def test_out_of_fold_records_come_from_the_model_that_never_saw_the_subject(tmp_path):
    """collect_oof_records measures each image with the model of its subject's fold, under the calibrated
    model's settings but the fold model's own outline level."""
    import cv2

    from fetalhead.clinical.geometry import Ellipse, ellipse_coverage
    from fetalhead.model.pipeline import PipelineConfig
    from fetalhead.scans.datasets import HeadSample, fold_split
    from fetalhead.studies.calibration import collect_oof_records
    from fetalhead.studies.variations import identity

    samples = []
    for i in range(9):
        e = Ellipse(400 + 5 * i, 270, 150 - 5 * i, 110 - 3 * i, 10 * i)
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), (255 * (0.15 + 0.6 * ellipse_coverage(e, (540, 800)))).astype(np.uint8))
        samples.append(HeadSample(path.name, path, i, 0.1, None, e))

    class Counting(_BlurredReader):
        def __init__(self, level):
            super().__init__()
            self.pipeline_config = PipelineConfig(boundary_level=level)
            self.seen, self.configs = 0, set()

        def predict(self, batch):
            self.seen += 1
            self.configs.add(self.pipeline_config)
            return super().predict(batch)

    folds = [Counting(0.40), Counting(0.45), Counting(0.50)]
    records = collect_oof_records(samples, folds, pipeline=PipelineConfig(refine_passes=2), variations=[identity])
    assert sorted(r.filename for r in records) == sorted(s.filename for s in samples)
    for k, model in enumerate(folds):
        held = {s.filename for s in fold_split(samples, 3, k)[1]}
        assert (model.seen > 0) == bool(held)  # a fold model measures only its own held-out images
        assert all(c.refine_passes == 2 and c.boundary_level == [0.40, 0.45, 0.50][k] for c in model.configs)
        assert model.pipeline_config == PipelineConfig(boundary_level=[0.40, 0.45, 0.50][k])  # left as given
    assert all(r.variation == "identity" and r.seg is not None for r in records)
