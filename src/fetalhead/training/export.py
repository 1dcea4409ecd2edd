"""Export a trained checkpoint to ONNX with its metadata (the model card the package ships)."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path

from ..scans.imageio import file_sha256

__all__ = ["export_onnx", "load_checkpoint_model", "save_weights"]


def load_checkpoint_model(checkpoint: str | Path):
    """The UNet of a training checkpoint (``last.pt``) or of a weights-only file, in eval mode."""
    import torch

    from .unet import UNet

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    channels = tuple(ck.get("config", {}).get("channels", (16, 32, 48, 64, 96)))
    model = UNet(channels, int(ck.get("config", {}).get("stem_stride", 1)))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def save_weights(checkpoint: str | Path, out: str | Path) -> Path:
    """The weights (and training config) of a checkpoint, without optimizer state: the torch
    twin of the shipped ONNX file, for fine-tuning and the torch-vs-ONNX parity test."""
    import torch

    ck = torch.load(checkpoint, map_location="cpu", weights_only=False)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": ck["model"], "config": ck.get("config", {}), "epoch": ck.get("epoch"),
                "history": ck.get("history", [])}, out)
    return out


def export_onnx(checkpoint: str | Path, out: str | Path, command: str = "", extra: dict | None = None) -> dict:
    """Write ``out`` (ONNX, opset 17, dynamic batch and size) and ``out`` with ``.json`` beside it.

    The JSON carries the model's name and version, input size and normalisation,
    the measuring pipeline's settings, the training data, command, seed and time,
    the last epoch's validation figures, and the ONNX file's sha256.
    """
    import torch

    from .._version import __version__
    from ..model.pipeline import PipelineConfig

    model, ck = load_checkpoint_model(checkpoint)
    cfg = ck.get("config", {})
    size = int(cfg.get("input_size", 160))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, size, size)
    torch.onnx.export(model, dummy, str(out), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"},
                                    "logits": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=17, dynamo=False)
    history = ck.get("history", [])
    last = history[-1] if history else {}
    meta = {
        "name": "fetalhead-unet",
        "version": f"{__version__}+seed{cfg.get('seed', 0)}",
        "fetalhead_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "architecture": {"type": "UNet", "channels": list(cfg.get("channels", (16, 32, 48, 64, 96))),
                         "stem_stride": int(cfg.get("stem_stride", 1)),
                         "parameters": int(sum(p.numel() for p in model.parameters()))},
        "input": {"name": "image", "layout": "NCHW", "channels": 1, "size_px": [size, size],
                  "dtype": "float32",
                  "normalisation": "grey levels in [0, 1], then per view (x - mean) / max(std, 1e-3)"},
        "output": {"name": "logits", "meaning": "logit of 'inside the head ellipse' (outer skull border)"},
        "pipeline": PipelineConfig(input_size=size).__dict__,
        "training": {
            "data": "HC18 (van den Heuvel et al. 2018, CC BY 4.0), training part of the fixed "
                    "subject-grouped split (fetalhead.scans.datasets.subject_split, val_fraction "
                    f"{cfg.get('val_fraction', 0.2)}, split_seed {cfg.get('split_seed', 0)})",
            "command": command or cfg.get("command", ""),
            "config": cfg,
            "epochs": last.get("epoch"),
            "train_minutes": round(last.get("elapsed_s", 0.0) / 60.0, 1),
            "torch_version": torch.__version__,
            "machine": f"{platform.machine()} {platform.processor()}".strip(),
        },
        "validation_last_epoch": {k[4:]: v for k, v in last.items() if k.startswith("val_")},
        "license": "Apache-2.0 (weights); training data CC BY 4.0",
    }
    if extra:
        meta.update(extra)
    meta["sha256"] = file_sha256(out)
    meta["size_bytes"] = out.stat().st_size
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return meta
