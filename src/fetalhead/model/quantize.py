"""``fetalhead quantize``: an INT8 copy of the ONNX model (ONNX Runtime static quantization, QDQ).

Calibrated on views of *training* images made exactly as the measuring pipeline makes them (the
letterboxed whole scan of the coarse pass, the head-centred crop of the fine pass and its mirror),
never on the validation split that judges it. Weights are per-channel signed INT8, activations
unsigned INT8 (QDQ format, which ONNX Runtime's CPU provider runs with VNNI where the CPU has it).
The INT8 file's metadata is the float model's, with the quantization recorded and the file's own
sha256; the float model's uncertainty calibration is kept (re-run ``fetalhead calibrate --model`` on
the INT8 file to calibrate it on its own outputs).
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import numpy as np

from ..scans.datasets import load_dataset, subject_split
from ..scans.imageio import file_sha256, read_scan
from .pipeline import PipelineConfig
from .transforms import letterbox_affine, standardize, view_affine, warp_to_view

__all__ = ["calibration_views", "quantize_model", "int8_path"]


def int8_path(fp32_path: str | Path) -> Path:
    """Where the INT8 copy of a model lives: beside it, ``<stem>_int8.onnx``."""
    p = Path(fp32_path)
    return p.with_name(p.stem + "_int8.onnx")


def calibration_views(data: str | Path, n_images: int = 120, config: PipelineConfig | None = None,
                      seed: int = 0) -> np.ndarray:
    """Standardised views ``(N, 1, S, S)`` of training images, as the pipeline with ``config`` (the
    model's own settings: view size ``S`` and the fine view's crop factor) makes them."""
    cfg = config or PipelineConfig()
    size = cfg.input_size
    samples = [s for s in load_dataset(data) if s.ellipse is not None and s.image_path.is_file()]
    train, _ = subject_split(samples, 0.2, seed=0)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), size=min(n_images, len(train)), replace=False)
    views = []
    for i in pick:
        s = train[int(i)]
        img = read_scan(s.image_path)
        views.append(warp_to_view(img, letterbox_affine(img.shape, size), size))
        e = s.ellipse
        fine = warp_to_view(img, view_affine(e.center, cfg.crop_side_factor * e.semi_major, size), size)
        views += [fine, np.ascontiguousarray(fine[:, ::-1])]
    return np.stack([standardize(v) for v in views])[:, None].astype(np.float32)


class _Reader:
    def __init__(self, views: np.ndarray, input_name: str):
        self._it = iter([{input_name: views[k:k + 1]} for k in range(len(views))])

    def get_next(self):
        return next(self._it, None)


def quantize_model(fp32_path: str | Path, data: str | Path, out: str | Path | None = None,
                   n_images: int = 120) -> dict:
    """Write the INT8 model (default :func:`int8_path`) and its metadata JSON; return the metadata."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_path = Path(fp32_path)
    out = Path(out) if out else int8_path(fp32_path)
    meta = json.loads(fp32_path.with_suffix(".json").read_text())
    views = calibration_views(data, n_images, PipelineConfig.from_dict(meta.get("pipeline", {})))
    input_name = ort.InferenceSession(str(fp32_path), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    pre = out.with_name(out.stem + ".pre.onnx").resolve()
    source, target = str(fp32_path.resolve()), str(out.resolve())
    # ONNX Runtime leaves temporary files in the working directory: quantize in a temporary one
    with tempfile.TemporaryDirectory() as scratch, contextlib.chdir(scratch):
        quant_pre_process(source, str(pre), skip_symbolic_shape=True)
        try:
            quantize_static(str(pre), target, _Reader(views, input_name), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            calibrate_method=CalibrationMethod.MinMax)
        finally:
            pre.unlink(missing_ok=True)
    meta = dict(meta)
    meta["quantization"] = {
        "precision": "int8", "format": "QDQ (ONNX Runtime static quantization)",
        "weights": "per-channel signed INT8", "activations": "unsigned INT8, MinMax calibration",
        "calibration_views": f"{len(views)} views (coarse, fine, mirrored fine) of {len(views) // 3} training "
                             "images of the subject-grouped split (never the validation split)",
        "float_model_sha256": meta.get("sha256"), "command": f"fetalhead quantize {fp32_path.name} --data {data}"}
    meta["version"] = str(meta.get("version", "unknown")) + "+int8"
    meta["sha256"] = file_sha256(out)
    meta["size_bytes"] = out.stat().st_size
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return meta
