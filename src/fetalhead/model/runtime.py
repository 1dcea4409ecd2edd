"""The shipped head segmentation network, run with ONNX Runtime on the CPU (no PyTorch)."""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .pipeline import PipelineConfig

__all__ = ["HeadModel", "ModelError", "default_model_path", "load_model", "PRECISIONS", "DEFAULT_PRECISION"]

#: The precisions a model can run in: the float model, or its INT8 copy (``fetalhead quantize``).
PRECISIONS = ("fp32", "int8")
#: What runs when nothing is asked: INT8 only once its validation HC error is within 0.05 mm of the
#: float model's (BENCHMARKS.md, "Speed").
DEFAULT_PRECISION = "int8"

_MODEL_DIR = Path(__file__).resolve().parent / "weights"
_MODEL_NAME = "fetalhead_unet.onnx"


class ModelError(RuntimeError):
    """The model file is missing, damaged or does not match its metadata."""


def default_model_path(precision: str | None = None) -> Path:
    """The ONNX file shipped inside the package (override with ``FETALHEAD_MODEL``); for
    ``precision="int8"`` its INT8 copy beside it (``<stem>_int8.onnx``)."""
    env = os.environ.get("FETALHEAD_MODEL")
    path = Path(env) if env else _MODEL_DIR / _MODEL_NAME
    return model_path_for(path, precision)


def model_path_for(path: str | Path, precision: str | None = None) -> Path:
    """``path`` itself for fp32, its INT8 copy for int8 (raises ValueError for another precision)."""
    precision = precision or DEFAULT_PRECISION
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    path = Path(path)
    if precision == "int8" and not path.stem.endswith("_int8"):
        return path.with_name(path.stem + "_int8.onnx")
    return path


class HeadModel:
    """An ONNX head segmentation model with its metadata.

    Parameters
    ----------
    path : path to the ``.onnx`` file; its metadata is the ``.json`` beside it.
    threads : ONNX Runtime intra-op threads (default: ``FETALHEAD_THREADS`` or 1).
    verify : check the file's sha256 against the metadata.
    """

    def __init__(self, path: str | Path | None = None, threads: int | None = None, verify: bool = True):
        # ONNX Runtime's own telemetry would otherwise look up an outside host and keep a device id
        # under ~/.cache: a medical tool sends nothing anywhere. Must be set before the import.
        os.environ["ORT_DISABLE_TELEMETRY"] = "1"
        import onnxruntime as ort

        self.path = Path(path) if path else default_model_path()
        if not self.path.is_file():
            raise ModelError(f"{self.path}: model file not found (reinstall fetalhead, or set FETALHEAD_MODEL)")
        meta_path = self.path.with_suffix(".json")
        self.metadata = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        data = self.path.read_bytes()
        if verify and self.metadata.get("sha256"):
            digest = hashlib.sha256(data).hexdigest()
            if digest != self.metadata["sha256"]:
                raise ModelError(f"{self.path}: sha256 {digest[:12]}... does not match its metadata "
                                 f"({self.metadata['sha256'][:12]}...): the file is damaged or was replaced")
        if threads is None:
            threads = int(os.environ.get("FETALHEAD_THREADS", "1"))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, int(threads))
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path}: not a loadable ONNX model ({exc})") from None
        self.input_name = self.session.get_inputs()[0].name
        self.pipeline_config = PipelineConfig.from_dict(self.metadata.get("pipeline", {}))
        self.calibration = None
        if self.metadata.get("calibration"):
            from .uncertainty import Calibration

            try:
                self.calibration = Calibration.from_dict(self.metadata["calibration"])
            except (TypeError, ValueError) as exc:
                raise ModelError(f"{meta_path}: {exc}") from None

    @property
    def version(self) -> str:
        return str(self.metadata.get("version", "unknown"))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Logits for a float32 batch ``(N, 1, S, S)`` of standardised views."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    __call__ = predict


@lru_cache(maxsize=4)
def _cached(path: str, threads: int | None) -> HeadModel:
    return HeadModel(path, threads)


def load_model(path: str | Path | None = None, threads: int | None = None, precision: str | None = None) -> HeadModel:
    """A :class:`HeadModel`, loaded once per (path, threads) and reused; ``precision`` picks the
    float model or its INT8 copy (default :data:`DEFAULT_PRECISION`)."""
    try:
        chosen = model_path_for(path, precision) if path else default_model_path(precision)
    except ValueError as exc:
        raise ModelError(str(exc)) from None
    return _cached(str(chosen), threads)
