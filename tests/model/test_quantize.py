"""The INT8 copy of the shipped model: it belongs to the float model, and measures the same."""

import csv
import json

import numpy as np
import pytest

import fetalhead
from fetalhead.model.runtime import HeadModel, ModelError, default_model_path, load_model

INT8 = default_model_path("int8")


@pytest.fixture(scope="module")
def models():
    if not INT8.is_file():
        pytest.fail(f"{INT8} is not shipped: run fetalhead quantize --data ../shared/data/hc18")
    return HeadModel(default_model_path("fp32")), HeadModel(INT8)


def test_int8_belongs_to_the_shipped_float_model(models):
    fp32, int8 = models
    assert int8.metadata["quantization"]["float_model_sha256"] == fp32.metadata["sha256"]
    assert int8.version == fp32.version + "+int8"
    assert INT8.stat().st_size < 0.5 * default_model_path("fp32").stat().st_size


def test_int8_and_float_outputs_agree(models, samples_dir):
    from fetalhead.model.transforms import letterbox_affine, standardize, warp_to_view
    from fetalhead.scans.imageio import read_scan

    fp32, int8 = models
    views = []
    for p in sorted(samples_dir.glob("*.png")):
        img = read_scan(p)
        views.append(standardize(warp_to_view(img, letterbox_affine(img.shape, 160), 160)))
    x = np.stack(views)[:, None].astype(np.float32)
    pa = 1 / (1 + np.exp(-fp32.predict(x)))
    pb = 1 / (1 + np.exp(-int8.predict(x)))
    assert np.mean(np.abs(pa - pb)) < 0.01
    assert np.mean((pa > 0.5) != (pb > 0.5)) < 0.005


def test_int8_measures_the_samples_as_the_float_model(models, samples_dir):
    fp32, int8 = models
    rows = csv.DictReader(open(samples_dir / "pixel_size_and_HC.csv"))
    for r in rows:
        ps = float(r["pixel size(mm)"])
        a = fetalhead.measure(samples_dir / r["filename"], ps, model=fp32)
        b = fetalhead.measure(samples_dir / r["filename"], ps, model=int8)
        assert b.head_circumference_mm == pytest.approx(a.head_circumference_mm, rel=0.005)
        assert b.status == a.status or "low_quality" in a.flags + b.flags


def test_precision_choice():
    assert load_model(precision="int8").path == INT8
    with pytest.raises(ModelError, match="precision"):
        load_model(precision="fp16")


@pytest.mark.slow
def test_quantize_command(hc18, tmp_path, monkeypatch):
    from fetalhead.cli import main

    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    out = tmp_path / "m_int8.onnx"
    assert main(["quantize", "--data", str(hc18), "--images", "3", "--out", str(out)]) == 0
    assert list(work.iterdir()) == []  # no temporary file of ONNX Runtime left where it was run
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["quantization"]["precision"] == "int8" and HeadModel(out).predict(
        np.zeros((1, 1, 160, 160), np.float32)).shape == (1, 1, 160, 160)


def test_calibration_views_follow_the_models_pipeline_settings(hc18):
    """The INT8 copy is calibrated on the views the model's own pipeline makes: its view size and
    the fine view's crop factor come from the model's settings, not from constants."""
    from fetalhead.model.pipeline import PipelineConfig
    from fetalhead.model.quantize import calibration_views

    base = calibration_views(hc18, n_images=2)
    assert base.shape == (6, 1, 160, 160)  # coarse, fine and mirrored fine per image
    small = calibration_views(hc18, n_images=2, config=PipelineConfig(input_size=96))
    assert small.shape == (6, 1, 96, 96)
    wide = calibration_views(hc18, n_images=2, config=PipelineConfig(crop_side_factor=3.5))
    assert np.array_equal(wide[0::3], base[0::3])  # the coarse views do not depend on the crop
    assert not np.allclose(wide[1::3], base[1::3])  # the fine views do
    assert np.allclose(wide[2::3], wide[1::3][..., ::-1], atol=1e-5)  # the mirror is the fine view mirrored
