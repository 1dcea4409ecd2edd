"""Does the skull echo's position against the fitted outline tell an off result? (issue 21, tried)

For every clean out-of-fold record of ``fetalhead calibrate --records-cache`` (each of the 807 labelled
HC18 images measured by the fold model that never saw its subject), the scan is sampled along 72 rays
from the fitted ellipse's centre at 0.80-1.20 of the outline's radius (grey smoothed, sigma 2 px);
where the brightest point (the skull echo) lies against the outline, per ray, gives four candidate
difficulty features: the median offset, its interquartile spread over the rays, and the amplitudes
of its first and second harmonics round the outline (an outline cut short on one side, as a network
that misses one side's skull echo makes it). Each is judged alone (AUROC, off = HC more than 3 % from
the reference) and added to the shipped difficulty features (``fetalhead.model.uncertainty.FEATURES``)
in a linear model of log |error|, 5-fold cross-validated.

    python bench/echo_position.py [--records out/calibration-records.pkl]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import cv2
import numpy as np

from fetalhead.model.uncertainty import OFF_HC_SHARE

from trust import auroc  # bench/trust.py, beside this script

ROOT = Path(__file__).resolve().parents[1]
RAYS = 72
RADII = np.linspace(0.80, 1.20, 41)
MIN_RIDGE_GREY = 20  # grey levels (0-255) above the lower end of the ray: a ray with an echo at all


def echo_offsets(grey: np.ndarray, ellipse) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per ray: the echo's radius relative to the outline's, minus 1; whether the ray holds an echo;
    the ray's ellipse parameter (radians)."""
    t = np.linspace(0, 2 * np.pi, RAYS, endpoint=False)
    th = np.radians(ellipse.angle_deg)
    x, y = ellipse.semi_major * np.cos(t), ellipse.semi_minor * np.sin(t)
    dx, dy = x * np.cos(th) - y * np.sin(th), x * np.sin(th) + y * np.cos(th)
    xs = (ellipse.center_x + dx[:, None] * RADII[None]).astype(np.float32)
    ys = (ellipse.center_y + dy[:, None] * RADII[None]).astype(np.float32)
    g = cv2.remap(grey, xs, ys, cv2.INTER_LINEAR, borderValue=0)
    ridge = g.max(axis=1) - np.minimum(g[:, 0], g[:, -1])
    return RADII[g.argmax(axis=1)] - 1.0, ridge > MIN_RIDGE_GREY, t


def candidate_features(off: np.ndarray, seen: np.ndarray, t: np.ndarray) -> list[float]:
    if seen.sum() < 10:
        return [np.nan] * 4
    o, tt = off[seen], t[seen]
    q75, q25 = np.percentile(o, [75, 25])
    return [float(np.median(o)), float(q75 - q25), float(2 * abs(np.mean(o * np.exp(-1j * tt)))),
            float(2 * abs(np.mean(o * np.exp(-2j * tt))))]


def cross_validated_scores(x: np.ndarray, err: np.ndarray, folds: int = 5, seed: int = 0) -> np.ndarray:
    """Out-of-fold predictions of log |error| by least squares on ``x``."""
    y = np.log(err + 1e-3)
    which = np.random.default_rng(seed).integers(0, folds, len(y))
    pred = np.zeros(len(y))
    for k in range(folds):
        fit = which != k
        a = np.c_[x[fit], np.ones(fit.sum())]
        w = np.linalg.lstsq(a, y[fit], rcond=None)[0]
        pred[~fit] = np.c_[x[~fit], np.ones((~fit).sum())] @ w
    return pred


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", default=str(ROOT / "out" / "calibration-records.pkl"))
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    args = ap.parse_args()
    records = [r for r in pickle.loads(Path(args.records).read_bytes())["records"]
               if r.variation == "identity" and r.seg is not None and r.features is not None
               and r.rel_err_hc is not None]
    err, base, new = [], [], []
    for r in records:
        grey = cv2.imread(str(Path(args.data) / "images" / r.filename), cv2.IMREAD_GRAYSCALE)
        grey = cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 2.0)
        err.append(abs(r.rel_err_hc))
        base.append(r.features)
        new.append(candidate_features(*echo_offsets(grey, r.seg.ellipse)))
    err, base, new = np.array(err), np.array(base, float), np.array(new, float)
    keep = ~np.isnan(new).any(axis=1)
    err, base, new = err[keep], base[keep], new[keep]
    off = err > OFF_HC_SHARE
    print(f"{len(err)} clean out-of-fold records, {off.sum()} off (> {100 * OFF_HC_SHARE:g} %)")
    print("| candidate | mean | AUROC alone (either direction) | AUROC of the difficulty with it (5-fold CV) |")
    print("|---|---|---|---|")
    pred = cross_validated_scores(base, err)
    ref = auroc(pred[~off], pred[off])
    print(f"| the shipped features alone | | | {ref:.3f} |")
    for k, name in enumerate(("median offset", "spread of the offset (IQR)", "first harmonic", "second harmonic")):
        alone = auroc(-new[~off, k], -new[off, k])  # auroc(wrong, right) counts a lower score for wrong
        alone = max(alone, 1 - alone)
        pred = cross_validated_scores(np.c_[base, new[:, k]], err)
        print(f"| {name} | {new[:, k].mean():+.4f} | {alone:.3f} | {auroc(pred[~off], pred[off]):.3f} |")
    pred = cross_validated_scores(np.c_[base, new], err)
    print(f"| all four | | | {auroc(pred[~off], pred[off]):.3f} |")


if __name__ == "__main__":
    main()
