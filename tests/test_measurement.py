"""The Python API and the shipped model (golden cases, robustness, bad input)."""

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import fetalhead
from fetalhead.biometry import ga_from_hc_hadlock1984
from fetalhead.geometry import ellipse_perimeter
from fetalhead.imageio import read_scan
from fetalhead.model import HeadModel, ModelError, default_model_path, load_model


def reference(samples_dir):
    rows = csv.DictReader(open(samples_dir / "pixel_size_and_HC.csv"))
    return {r["filename"]: (float(r["pixel size(mm)"]), float(r["head circumference (mm)"])) for r in rows}


# Golden cases: bundled validation scans (never trained on) and their reference HC.
GOLDEN = ["192_HC.png", "358_HC.png", "495_4HC.png", "590_HC.png", "785_HC.png", "011_HC.png"]


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_sample_hc(samples_dir, name):
    ps, hc_ref = reference(samples_dir)[name]
    m = fetalhead.measure(samples_dir / name, pixel_spacing_mm=ps)
    assert m.status in ("ok", "flagged"), m.message
    # 3 % of HC: about 1.5x the inter-observer variability of HC (Sarris et al. 2012)
    assert m.head_circumference_mm == pytest.approx(hc_ref, rel=0.03)


def test_measurement_fields(samples_dir):
    ps, hc_ref = reference(samples_dir)["358_HC.png"]
    m = fetalhead.measure(samples_dir / "358_HC.png", pixel_spacing_mm=ps, ga_weeks=20.0)
    e = m.ellipse
    assert m.head_circumference_mm == pytest.approx(ellipse_perimeter(e.semi_major, e.semi_minor) * ps)
    assert m.biparietal_diameter_mm == pytest.approx(2 * e.semi_minor * ps)
    assert m.occipitofrontal_diameter_mm == pytest.approx(2 * e.semi_major * ps)
    assert m.cephalic_index == pytest.approx(100 * e.semi_minor / e.semi_major)
    assert m.ga_hc_hadlock_weeks == pytest.approx(ga_from_hc_hadlock1984(m.head_circumference_mm))
    assert 15 < m.ga_hc_intergrowth_weeks < 25
    assert 0 <= m.hc_centile <= 100 and math.isfinite(m.hc_zscore)
    assert 0 <= m.quality <= 1
    assert set(m.landmarks) == {"ofd_1", "ofd_2", "bpd_1", "bpd_2"}
    assert m.spacing_source == "given" and m.model_version
    row = m.to_row()
    assert row["filename"] == "358_HC.png" and float(row["hc_mm"]) == pytest.approx(m.head_circumference_mm, abs=0.01)
    d = m.to_dict()
    assert d["unit"] == "mm" and isinstance(d["flags"], list)


def test_without_spacing_no_mm_is_given(samples_dir):
    m = fetalhead.measure(samples_dir / "358_HC.png")
    assert m.status == "ok"
    assert m.head_circumference_mm is None and m.biparietal_diameter_mm is None
    assert m.head_circumference_px > 0 and m.ga_hc_hadlock_weeks is None
    assert "no_pixel_spacing" in m.flags and "pixel" in m.message
    assert m.to_dict()["unit"] == "px"


def test_array_input_and_colour_and_16_bit_agree(samples_dir):
    ps, _ = reference(samples_dir)["590_HC.png"]
    base = fetalhead.measure(samples_dir / "590_HC.png", ps)
    grey8 = cv2.imread(str(samples_dir / "590_HC.png"), cv2.IMREAD_GRAYSCALE)
    colour = cv2.cvtColor(grey8, cv2.COLOR_GRAY2BGR)
    m_col = fetalhead.measure(colour, ps)
    m_16 = fetalhead.measure(grey8.astype(np.uint16) * 257, ps)
    for m in (m_col, m_16):
        assert m.head_circumference_mm == pytest.approx(base.head_circumference_mm, abs=0.05)


@pytest.mark.parametrize("name", ["358_HC.png", "785_HC.png"])
def test_mirrored_and_rotated_scans_give_the_same_hc(samples_dir, name):
    ps, _ = reference(samples_dir)[name]
    img = read_scan(samples_dir / name)
    base = fetalhead.measure(img, ps).head_circumference_mm
    mirrored = fetalhead.measure(np.ascontiguousarray(img[:, ::-1]), ps).head_circumference_mm
    rotated = fetalhead.measure(np.ascontiguousarray(np.rot90(img)), ps).head_circumference_mm
    assert mirrored == pytest.approx(base, rel=0.015)
    assert rotated == pytest.approx(base, rel=0.015)


def test_anisotropic_spacing_is_honoured(samples_dir):
    m = fetalhead.measure(samples_dir / "358_HC.png", (0.1, 0.2))
    iso = fetalhead.measure(samples_dir / "358_HC.png", 0.1)
    assert m.pixel_spacing_mm == (0.1, 0.2)
    assert m.head_circumference_mm > iso.head_circumference_mm


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"not an image at all"), "not a readable image"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: cv2.imwrite(str(p), np.full((300, 400), 90, np.uint8)), "single grey level"),
    (lambda p: cv2.imwrite(str(p), np.zeros((300, 400), np.uint8)), "single grey level"),
    (lambda p: cv2.imwrite(str(p), np.full((20, 30), 9, np.uint8) + np.eye(20, 30, dtype=np.uint8)), "too small"),
    (lambda p: cv2.imwrite(str(p), np.tile(np.arange(256, dtype=np.uint8), (80, 36))), "too large"),
    (lambda p: p.write_bytes((Path(__file__).parent.parent / "samples" / "358_HC.png").read_bytes()[:9000]),
     "truncated"),
])
def test_bad_input_fails_with_a_message(tmp_path, make, match):
    p = tmp_path / "bad.png"
    make(p)
    m = fetalhead.measure(p, 0.1)
    assert m.status == "failed" and not m.ok
    assert match in m.message and str(p) in m.message
    assert m.to_row()["status"] == "failed"


def test_image_without_a_head_is_not_reported_as_a_trustworthy_head():
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.uniform(0, 1, (540, 800)).astype(np.float32), (0, 0), 3)
    gradient = np.tile(np.linspace(0, 1, 800, dtype=np.float32), (540, 1))
    for img in (noise, gradient):
        m = fetalhead.measure(img, 0.1)
        assert m.status in ("failed", "flagged"), (m.status, m.quality)
        if m.status == "failed":
            assert "no head" in m.message


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

    from fetalhead.pipeline import segment_head

    model = load_model()
    img = read_scan(samples_dir / "590_HC.png")
    base = segment_head(img, model.predict, model.pipeline_config)
    four = segment_head(img, model.predict, dataclasses.replace(model.pipeline_config, vertical_flip_tta=True))
    assert four.ellipse.perimeter_px == pytest.approx(base.ellipse.perimeter_px, rel=0.01)
    assert four.ellipse.center_x == pytest.approx(base.ellipse.center_x, abs=1.0)
