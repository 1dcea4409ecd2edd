"""Accuracy of the shipped model under scanner-like changes of the validation images.

Each variation of :data:`fetalhead.studies.variations.VARIATIONS` (scanner changes, acoustic
shadows of several widths and positions, missing skull arcs, sector and border cuts) is
applied to every image of the fixed validation split (the reference ellipse moved with
the image where the geometry changes), and the HC figures are printed per variation
(``bench/trust.py`` adds intervals, flags and images with no head):

    python bench/robustness.py [--limit N] [--variations identity,gain_low_12db]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fetalhead.scans.datasets import load_dataset, subject_split
from fetalhead.studies.evaluation import ellipse_errors
from fetalhead.scans.imageio import read_scan
from fetalhead.measurement import measure
from fetalhead.model.runtime import load_model
from fetalhead.studies.variations import EXTRA_VARIATIONS, VARIATIONS

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N validation images")
    ap.add_argument("--variations", default="", help="comma-separated names (default: all of VARIATIONS; also screen_export)")
    args = ap.parse_args(argv)
    by_name = {f.__name__: f for f in VARIATIONS + EXTRA_VARIATIONS}
    wanted = [v for v in args.variations.split(",") if v]
    unknown = [v for v in wanted if v not in by_name]
    if unknown:
        ap.error(f"unknown variation(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    variations = [by_name[v] for v in wanted] or VARIATIONS
    _, val = subject_split(load_dataset(args.data), 0.2, seed=0)
    if args.limit:
        val = val[: args.limit]
    model = load_model()
    images = [read_scan(s.image_path) for s in val]
    print(f"model {model.version}; {len(val)} validation images; HC errors in mm")
    print(f"{'variation':<22} {'failed':>6} {'flagged':>7} {'ADF':>6} {'DF':>6} {'max':>6} {'Dice%':>6}")
    for fn in variations:
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
        a = np.array([e["hc_abs_mm"] for e in errs] or [np.nan])
        d = np.array([e["hc_diff_mm"] for e in errs] or [np.nan])
        dice = np.mean([e["dice"] for e in errs] or [np.nan])
        print(f"{fn.__name__:<22} {fails:>6} {flagged:>7} {a.mean():>6.2f} {d.mean():>+6.2f} {a.max():>6.1f}"
              f" {dice:>6.2f}   ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
