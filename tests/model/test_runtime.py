"""The shipped ONNX model: metadata, integrity, loading, test-time options."""

from pathlib import Path

import numpy as np
import pytest

import fetalhead
from fetalhead.scans.imageio import read_scan
from fetalhead.model.runtime import HeadModel, ModelError, default_model_path, load_model


def test_model_metadata_and_integrity(tmp_path):
    model = load_model()
    meta = model.metadata
    for key in ("version", "input", "pipeline", "training", "sha256", "validation_last_epoch"):
        assert key in meta
    assert meta["input"]["size_px"] == [model.pipeline_config.input_size] * 2
    assert default_model_path().stat().st_size < 20e6
    assert "fetalhead train" in meta["training"]["command"]
    damaged = tmp_path / "m.onnx"
    damaged.write_bytes(default_model_path().read_bytes()[:-10] + b"0123456789")
    (tmp_path / "m.json").write_text(default_model_path().with_suffix(".json").read_text())
    with pytest.raises(ModelError, match="sha256"):
        HeadModel(damaged)
    with pytest.raises(ModelError, match="not found"):
        HeadModel(tmp_path / "missing.onnx")
    m = fetalhead.measure(np.zeros((10, 10)), 0.1, model=None)
    assert m.status == "failed"


def test_vertical_flip_tta_agrees_with_default(samples_dir):
    import dataclasses

    from fetalhead.model.pipeline import segment_head

    model = load_model()
    img = read_scan(samples_dir / "590_HC.png")
    base = segment_head(img, model.predict, model.pipeline_config)
    four = segment_head(img, model.predict, dataclasses.replace(model.pipeline_config, vertical_flip_tta=True))
    assert four.ellipse.perimeter_px == pytest.approx(base.ellipse.perimeter_px, rel=0.01)
    assert four.ellipse.center_x == pytest.approx(base.ellipse.center_x, abs=1.0)


def test_predict_shape_and_cache():
    model = load_model()
    assert load_model() is model
    s = model.pipeline_config.input_size
    out = model.predict(np.zeros((3, 1, s, s), np.float32))
    assert out.shape == (3, 1, s, s) and out.dtype == np.float32


def test_model_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FETALHEAD_MODEL", str(tmp_path / "other.onnx"))
    assert default_model_path("fp32") == tmp_path / "other.onnx"
    assert default_model_path("int8") == tmp_path / "other_int8.onnx"
    with pytest.raises(ModelError, match="not found"):
        HeadModel()


def test_onnx_runtime_telemetry_is_off_before_it_loads():
    import os

    load_model()
    assert os.environ.get("ORT_DISABLE_TELEMETRY") == "1"
