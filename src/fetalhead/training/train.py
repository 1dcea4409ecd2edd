"""``fetalhead train``: train the head segmentation network on a CPU.

Seeded and reproducible (same seed, data and thread count give the same
weights), with a progress bar, validation figures per epoch (the full measuring
pipeline on the subject-grouped validation split), a checkpoint per epoch and
resume. The shipped model is the *last* epoch's weights (never chosen on the
validation split, so its validation figures stay honest).
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..model.augment import random_scan_defects, random_scanner_look
from ..scans.datasets import HeadSample, fold_split, load_dataset, subject_split
from ..clinical.geometry import Ellipse, ellipse_coverage
from ..scans.imageio import read_scan
from ..model.pipeline import HeadNotFoundError, PipelineConfig, segment_head
from ..model.transforms import view_affine, warp_to_view, standardize

__all__ = ["TrainConfig", "train", "sample_view", "blank_view", "probe_direction"]


@dataclass
class TrainConfig:
    data: str
    out: str
    epochs: int = 40
    steps_per_epoch: int = 250
    batch_size: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    input_size: int = 160
    channels: tuple = (16, 32, 48, 64, 96)
    stem_stride: int = 2
    val_fraction: float = 0.2
    split_seed: int = 0
    whole_view_prob: float = 0.35
    random_crop_prob: float = 0.07
    blank_view_prob: float = 0.02
    augment_prob: float = 0.5
    scan_defects: bool = True
    #: how often each scan defect is drawn, as a multiple of augment's defaults (shadow 0.3, missing arc
    #: 0.2, reverberation 0.1, sector cut 0.1 per view); 1.0 is model 0.3.0's recipe
    scan_defect_rate: float = 1.0
    threads: int = 2
    max_train_images: int = 0
    max_val_images: int = 0
    #: bfloat16 autocast: fast where the CPU has bfloat16 instructions (AVX512-BF16, AMX), about 8 x
    #: slower where it has not (measured on an AMD EPYC without them: 11 s against 1.3 s a step of 16
    #: views); None: on where the CPU has them (:func:`cpu_has_bf16`)
    bf16: bool | None = None
    n_folds: int = 0
    fold: int = -1
    val_every: int = 1
    #: start from these weights (a run's last.pt or a weights file of ``fetalhead export --weights``)
    #: instead of a random start: a second, fine-tuning phase of a recipe
    init: str = ""
    #: exponential moving average of the weights (and BatchNorm statistics) with this decay per step,
    #: saved beside the raw weights as ``ema.pt``; 0: none
    ema_decay: float = 0.0
    command: str = ""


def sample_view(image: np.ndarray, ellipse: Ellipse, rng: np.random.Generator, size: int,
                whole_view_prob: float = 0.35, random_crop_prob: float = 0.0
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random training view of a scan and its soft head-mask target.

    With probability ``whole_view_prob`` a whole-image view (as the coarse pass
    sees, zoomed 0.6-1.4x, shifted up to 15 %, some rotated); with probability
    ``random_crop_prob`` a view of a random part of the scan (0.15-0.5 of its
    size, anywhere: often no head at all, which teaches the network to say so);
    otherwise a head-centred view (as the fine pass sees) of side 2.1-3.1 x the
    semi-major axis, centre jittered, any rotation. Mirrored half of the time.

    Returns ``(view, target, matrix)``: float32 view in [0, 1], float32 target
    (pixel coverage of the head ellipse) and the 2x3 original->view matrix.
    """
    h, w = image.shape
    mode = rng.random()
    if mode < whole_view_prob:
        side = max(h, w) * rng.uniform(0.6, 1.4)
        centre = ((w - 1) / 2 + rng.uniform(-0.15, 0.15) * w, (h - 1) / 2 + rng.uniform(-0.15, 0.15) * h)
        angle = rng.uniform(-180, 180) if rng.random() < 0.3 else rng.uniform(-15, 15)
    elif mode < whole_view_prob + random_crop_prob:
        side = max(h, w) * rng.uniform(0.15, 0.5)
        centre = (rng.uniform(0, w - 1), rng.uniform(0, h - 1))
        angle = rng.uniform(-180, 180)
    else:
        a = ellipse.semi_major
        side = a * rng.uniform(2.1, 3.1)
        centre = (ellipse.center_x + rng.normal(0, 0.08 * a), ellipse.center_y + rng.normal(0, 0.08 * a))
        angle = rng.uniform(-180, 180)
    m = view_affine(centre, side, size, angle, mirror=bool(rng.random() < 0.5))
    view = warp_to_view(image, m, size)
    target = ellipse_coverage(ellipse.transformed(m), (size, size))
    return view, target, m


def blank_view(rng: np.random.Generator, size: int) -> np.ndarray:
    """A view with no head at all: a constant, a smooth ramp or smoothed noise, in [0, 1]."""
    kind = int(rng.integers(3))
    if kind == 0:
        return np.full((size, size), rng.uniform(0, 1), np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if kind == 1:
        t = rng.uniform(0, 2 * np.pi)
        ramp = rng.uniform(0, 0.5) + rng.uniform(-0.5, 0.5) * (xx * np.cos(t) + yy * np.sin(t))
        return np.clip(ramp, 0, 1).astype(np.float32)
    noise = rng.standard_normal((size, size)).astype(np.float32)
    import cv2

    noise = cv2.GaussianBlur(noise, (0, 0), rng.uniform(0.5, 6.0))
    noise = (noise - noise.min()) / max(float(np.ptp(noise)), 1e-6)
    return (noise * rng.uniform(0.2, 1.0)).astype(np.float32)


def probe_direction(matrix: np.ndarray) -> np.ndarray:
    """Direction of the ultrasound beam in a view: the original image's +y (down, away from the
    probe at the top of an HC18 sector scan) through the 2x3 original->view ``matrix``."""
    d = np.asarray(matrix, dtype=np.float64)[:, :2] @ np.array([0.0, 1.0])
    return d / max(float(np.hypot(d[0], d[1])), 1e-12)


class _WeightAverage:
    """Exponential moving average of a network's parameters and buffers (BatchNorm statistics
    included), updated after each optimiser step: ``avg = decay * avg + (1 - decay) * current``."""

    def __init__(self, model, decay: float):
        self.decay = float(decay)
        self.avg = {k: v.detach().clone().float() if v.dtype.is_floating_point else v.detach().clone()
                    for k, v in model.state_dict().items()}

    def update(self, model) -> None:
        import torch

        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.dtype.is_floating_point:
                    self.avg[k].mul_(self.decay).add_(v.detach().float(), alpha=1.0 - self.decay)
                else:
                    self.avg[k].copy_(v)

    def state_dict(self) -> dict:
        return {k: v.clone() for k, v in self.avg.items()}

    def load_state_dict(self, state: dict) -> None:
        self.avg = {k: v.clone().float() if v.dtype.is_floating_point else v.clone() for k, v in state.items()}


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (the ``avx512_bf16`` or ``amx_bf16`` flag of Linux's
    /proc/cpuinfo); False where that cannot be read."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _set_seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _load_images(samples: list[HeadSample]) -> list[np.ndarray]:
    return [read_scan(s.image_path) for s in samples]


def validate(model, images, samples, pipeline_cfg: PipelineConfig) -> dict:
    """HC and geometry figures of the measuring pipeline with a torch model on labelled samples."""
    import torch

    from ..studies.evaluation import ellipse_errors

    model.eval()

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).float().numpy()

    rows, failures = [], 0
    for img, s in zip(images, samples):
        try:
            res = segment_head(img, predict, pipeline_cfg)
        except HeadNotFoundError:
            failures += 1
            continue
        rows.append(ellipse_errors(res.ellipse, s.ellipse, s.pixel_size_mm))
    model.train()
    out = {"n": len(samples), "failures": failures}
    if rows:
        for key in ("hc_abs_mm", "hc_diff_mm", "dice", "hausdorff_mm"):
            out[key] = float(np.mean([r[key] for r in rows]))
    return out


def train(cfg: TrainConfig, progress: bool = True, log=print) -> dict:
    """Train, checkpoint and return the final figures. See :class:`TrainConfig`."""
    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from .unet import UNet

    torch.set_num_threads(cfg.threads)
    if cfg.bf16 is None:
        cfg.bf16 = cpu_has_bf16()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = [s for s in load_dataset(cfg.data) if s.ellipse is not None and s.image_path.is_file()]
    if cfg.n_folds:
        # cross-validation: train on the other folds, validate on (and later predict) this one
        train_s, val_s = fold_split(samples, cfg.n_folds, cfg.fold, cfg.split_seed)
    else:
        train_s, val_s = subject_split(samples, cfg.val_fraction, cfg.split_seed)
    if cfg.max_train_images:
        train_s = train_s[:cfg.max_train_images]
    if cfg.max_val_images:
        val_s = val_s[:cfg.max_val_images]
    if not train_s:
        raise ValueError(f"{cfg.data}: no labelled training images")
    log(f"training on {len(train_s)} images ({len({s.subject_id for s in train_s})} subjects), "
        f"validating on {len(val_s)} images ({len({s.subject_id for s in val_s})} subjects)")
    t_load = time.time()
    train_imgs, val_imgs = _load_images(train_s), _load_images(val_s)
    log(f"images read in {time.time() - t_load:.1f} s")

    _set_seed(cfg.seed)
    model = UNet(cfg.channels, cfg.stem_stride).to(memory_format=torch.channels_last)
    if cfg.init:
        init = torch.load(cfg.init, map_location="cpu", weights_only=False)
        try:
            model.load_state_dict(init["model"] if "model" in init else init)
        except RuntimeError as exc:
            raise ValueError(f"{cfg.init}: not weights of this network ({exc})") from None
        log(f"starting from the weights of {cfg.init}")
    ema = _WeightAverage(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total_steps = cfg.epochs * cfg.steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total_steps,
                                                pct_start=0.1, anneal_strategy="cos")
    pipeline_cfg = PipelineConfig(input_size=cfg.input_size)
    history, start_epoch = [], 0
    ckpt_path = out / "last.pt"
    rng = np.random.default_rng(cfg.seed)
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        old = ck.get("config", {})
        changed = [k for k in ("epochs", "steps_per_epoch", "batch_size", "lr", "seed", "input_size", "channels",
                                "stem_stride", "scan_defects", "scan_defect_rate", "random_crop_prob", "blank_view_prob", "n_folds",
                                "fold", "split_seed", "val_fraction", "init", "ema_decay")
                   if k in old and json.dumps(old[k]) != json.dumps(getattr(cfg, k))]
        if changed:
            raise ValueError(f"{ckpt_path}: cannot resume with other settings ({', '.join(changed)} differ from "
                             "the interrupted run); use the same settings, or a new --out")
        model.load_state_dict(ck["model"])
        if ema is not None and "ema" in ck:
            ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        rng.bit_generator.state = ck["numpy_rng"]
        torch.set_rng_state(ck["torch_rng"])
        history, start_epoch = ck["history"], ck["epoch"]
        log(f"resumed from {ckpt_path} after epoch {start_epoch}")
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    t0 = time.time() - (history[-1]["elapsed_s"] if history else 0.0)
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        losses = []
        bar = tqdm(range(cfg.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   disable=not progress, leave=False, mininterval=2.0)
        for _ in bar:
            xs, ys = [], []
            for _ in range(cfg.batch_size):
                i = int(rng.integers(len(train_s)))
                view, target, m = sample_view(train_imgs[i], train_s[i].ellipse, rng, cfg.input_size,
                                              cfg.whole_view_prob, cfg.random_crop_prob)
                if rng.random() < cfg.blank_view_prob:
                    view, target = blank_view(rng, cfg.input_size), np.zeros_like(target)
                elif cfg.scan_defects:
                    r = cfg.scan_defect_rate
                    view = random_scan_defects(view, rng, train_s[i].ellipse.transformed(m), probe_direction(m),
                                               p_shadow=min(1.0, 0.3 * r), p_arc=min(1.0, 0.2 * r),
                                               p_reverb=min(1.0, 0.1 * r), p_cut=min(1.0, 0.1 * r))
                view = random_scanner_look(view, rng, cfg.augment_prob)
                xs.append(standardize(view))
                ys.append(target)
            x = torch.from_numpy(np.stack(xs)[:, None]).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(np.stack(ys)[:, None])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                logits = model(x)
            logits = logits.float()
            p = torch.sigmoid(logits)
            bce = F.binary_cross_entropy_with_logits(logits, y)
            inter = (p * y).sum(dim=(1, 2, 3))
            dice = 1 - (2 * inter + 1) / (p.sum(dim=(1, 2, 3)) + y.sum(dim=(1, 2, 3)) + 1)
            loss = bce + dice.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            if ema is not None:
                ema.update(model)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
        due = (epoch + 1) % max(cfg.val_every, 1) == 0 or epoch + 1 == cfg.epochs
        figures = validate(model, val_imgs, val_s, pipeline_cfg) if val_s and due else {}
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": float(sched.get_last_lr()[0]),
               "elapsed_s": time.time() - t0, **{f"val_{k}": v for k, v in figures.items()}}
        history.append(rec)
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(), "numpy_rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "history": history, "epoch": epoch + 1,
                    "config": asdict(cfg), **({"ema": ema.state_dict()} if ema is not None else {})},
                   out / "last.pt.tmp")
        os.replace(out / "last.pt.tmp", ckpt_path)
        if ema is not None:  # the averaged weights as a checkpoint of their own (fetalhead export reads it)
            torch.save({"model": ema.state_dict(), "history": history, "epoch": epoch + 1,
                        "config": {**asdict(cfg), "weights": "exponential moving average"}}, out / "ema.pt.tmp")
            os.replace(out / "ema.pt.tmp", out / "ema.pt")
        (out / "history.json").write_text(json.dumps(history, indent=2))
        log(json.dumps(rec))
    return {"history": history, "checkpoint": str(ckpt_path),
            "elapsed_s": history[-1]["elapsed_s"] if history else 0.0,
            "split": {"train_images": len(train_s), "val_images": len(val_s)}}
