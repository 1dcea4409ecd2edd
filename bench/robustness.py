"""Accuracy of the shipped model under scanner-like changes of the validation images.

Each variation is applied to every image of the fixed validation split (the
reference ellipse moved with the image where the geometry changes), and the HC
figures are printed per variation:

    python bench/robustness.py [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fetalhead.datasets import load_dataset, subject_split
from fetalhead.evaluation import ellipse_errors
from fetalhead.imageio import read_scan
from fetalhead.measurement import measure
from fetalhead.model import load_model

ROOT = Path(__file__).resolve().parents[1]


def _affine(img, e, m, shape=None):
    h, w = shape or img.shape
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return out, e.transformed(m), 1.0


def v_identity(img, e, ps, rng):
    return img, e, ps


def v_gain_low(img, e, ps, rng):
    return np.clip(img * 0.5, 0, 1), e, ps


def v_gain_high(img, e, ps, rng):
    return np.clip(img * 1.8, 0, 1), e, ps


def v_contrast(img, e, ps, rng):
    return np.power(img, 1.8).astype(np.float32), e, ps


def v_speckle(img, e, ps, rng):
    n = cv2.GaussianBlur(rng.standard_normal(img.shape).astype(np.float32), (0, 0), 0.8)
    n /= n.std()
    return np.clip(img * (1 + 0.3 * n), 0, 1).astype(np.float32), e, ps


def v_half_resolution(img, e, ps, rng):
    h, w = img.shape
    small = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    m = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25]])  # pixel-centre convention of a 2x reduction
    return small, e.transformed(m), ps * 2


def v_rotate_30(img, e, ps, rng):
    h, w = img.shape
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), 30, 1.0)
    out, e2, _ = _affine(img, e, m)
    return out, e2, ps


def v_rotate_90(img, e, ps, rng):
    h, w = img.shape
    out = np.ascontiguousarray(np.rot90(img))  # counter-clockwise: (x, y) -> (y, w - 1 - x)
    m = np.array([[0, 1, 0], [-1, 0, w - 1]], float)
    return out, e.transformed(m), ps


def v_off_centre(img, e, ps, rng):
    h, w = img.shape
    m = np.array([[1, 0, 0.2 * w], [0, 1, -0.1 * h]], float)
    out, e2, _ = _affine(img, e, m)
    return out, e2, ps


def v_jpeg_q30(img, e, ps, rng):
    ok, buf = cv2.imencode(".jpg", (img * 255 + 0.5).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255, e, ps


VARIATIONS = [v_identity, v_gain_low, v_gain_high, v_contrast, v_speckle, v_half_resolution, v_rotate_30,
              v_rotate_90, v_off_centre, v_jpeg_q30]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N validation images")
    args = ap.parse_args(argv)
    _, val = subject_split(load_dataset(args.data), 0.2, seed=0)
    if args.limit:
        val = val[: args.limit]
    model = load_model()
    images = [read_scan(s.image_path) for s in val]
    print(f"model {model.version}; {len(val)} validation images; HC errors in mm")
    print(f"{'variation':<20} {'failed':>6} {'flagged':>7} {'ADF':>6} {'DF':>6} {'max':>6} {'Dice%':>6}")
    for fn in VARIATIONS:
        rng = np.random.default_rng(0)
        t0 = time.time()
        errs, fails, flagged = [], 0, 0
        for s, img in zip(val, images):
            vimg, ve, vps = fn(img, s.ellipse, s.pixel_size_mm, rng)
            m = measure(vimg, vps, model=model, source=s.filename)
            if m.status == "failed":
                fails += 1
                continue
            flagged += m.status == "flagged"
            errs.append(ellipse_errors(m.ellipse, ve, vps))
        a = np.array([e["hc_abs_mm"] for e in errs])
        d = np.array([e["hc_diff_mm"] for e in errs])
        dice = np.mean([e["dice"] for e in errs])
        print(f"{fn.__name__[2:]:<20} {fails:>6} {flagged:>7} {a.mean():>6.2f} {d.mean():>+6.2f} {a.max():>6.1f}"
              f" {dice:>6.2f}   ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
