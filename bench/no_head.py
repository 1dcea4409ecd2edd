"""No fetal head: how often images without one are refused, and that no real head is.

The rule (:func:`fetalhead.clinical.limits.no_fetal_head`): the network's mean head probability over
the region it calls head, in the whole-image view and in the head-centred view, is low in either or
middling in both. This script measures it with the shipped model:

(a) images with no fetal head: for every labelled HC18 image, the strips beside the head's box
    (left, right, above, below; at least 64 px), two random rectangles clear of the head's box, and
    the corner farthest from the head enlarged to the scan's size (``fetalhead.studies.variations``'s
    ``no_head_crop``); synthetic speckle, a ramp and a bright disc, white and dark noise; pydicom's
    example images of other anatomy (CT, MR, other ultrasound);
(b) real heads: the 807 labelled HC18 images clean, HC18's 335 official test images, and (with
    ``--variations``) every fifth labelled image under each damage of ``bench/robustness.py``.

For (a): the share failed (no figures), and how many still got an HC (flagged or ok); for (b): the
share the rule fails among the scans measured today (the rule off), which must be 0 on the clean
labelled images.

    python bench/no_head.py [--data ../shared/data/hc18] [--limit N] [--crops-every K] [--variations] [--angles]

``--crops-every K`` takes the crops of (a) from every K-th labelled image only (the clean images of
(b) are all measured whatever K).

``--angles`` also prints, on the clean labelled images, the share of outline angles that are
doubtful by each cause (:func:`fetalhead.model.uncertainty.angle_causes`).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from fetalhead.clinical.geometry import ellipse_points
from fetalhead.clinical.limits import NO_HEAD_CONFIDENCE, NO_HEAD_DOUBTFUL_CONFIDENCE
from fetalhead.measurement import assess
from fetalhead.model.pipeline import HeadNotFoundError, segment_head
from fetalhead.model.runtime import load_model
from fetalhead.model.uncertainty import angle_causes
from fetalhead.scans.datasets import load_dataset
from fetalhead.scans.imageio import read_scan, to_grey_float
from fetalhead.studies.variations import NON_HEAD, VARIATIONS, no_head_crop

ROOT = Path(__file__).resolve().parents[1]
MIN_SIDE = 64


def judge(img: np.ndarray, spacing, model) -> dict:
    """What the measurement decides on ``img`` (``status``), and what it would decide with the
    no-head rule off (``today``), with the segmentation's per-angle outline."""
    img = np.ascontiguousarray(img, np.float32)
    try:
        seg = segment_head(img, model.predict, model.pipeline_config)
    except HeadNotFoundError:
        return {"status": "failed", "today": "failed", "rule": False}
    size = (img.shape[1], img.shape[0])
    v = assess(seg, spacing, size, model.calibration)
    off = dataclasses.replace(seg, components=dict(seg.components, coarse_confidence=1.0, head_confidence=1.0))
    w = assess(off, spacing, size, model.calibration)
    status = lambda a: "failed" if a.fail_code else ("flagged" if a.flags else "ok")  # noqa: E731
    return {"status": status(v), "today": status(w), "rule": v.fail_code == "no_head_found",
            "outline": seg.outline}


def strips_and_boxes(img: np.ndarray, e, rng) -> list[np.ndarray]:
    """Parts of ``img`` clear of the head's box: the four strips beside it and two random rectangles."""
    h, w = img.shape
    pts = ellipse_points(e, 360)
    x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 2
    out = [img[:, : max(x0, 0)], img[:, max(x1, 0):], img[: max(y0, 0)], img[max(y1, 0):]]
    for _ in range(2):
        for _ in range(50):
            bw, bh = int(rng.uniform(0.25, 0.6) * w), int(rng.uniform(0.3, 0.7) * h)
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            if x + bw < x0 or x > x1 or y + bh < y0 or y > y1:
                out.append(img[y:y + bh, x:x + bw])
                break
    return [c for c in out if min(c.shape) >= MIN_SIDE]


def other_anatomy() -> list[tuple[str, np.ndarray]]:
    """pydicom's example images (other anatomy: ultrasound, CT, MR), as pictures (nothing downloaded)."""
    try:
        from pydicom import dcmread
        from pydicom.data import get_testdata_file
    except ImportError:
        return []
    out = []
    for name in ("examples_palette.dcm", "examples_jpeg2k.dcm", "examples_rgb_color.dcm", "examples_ybr_color.dcm",
                 "CT_small.dcm", "MR_small.dcm", "US1_J2KR.dcm", "US1_UNCR.dcm", "emri_small.dcm"):
        try:
            arr = dcmread(get_testdata_file(name, download=False)).pixel_array
        except Exception:
            continue
        arr = arr[0] if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) else arr
        a = arr.astype(np.float32)
        a = (a - a.min()) / max(float(np.ptp(a)), 1e-6)
        a = a.mean(axis=2) if a.ndim == 3 else a
        if min(a.shape) >= MIN_SIDE:
            out.append((name, to_grey_float(a)))
    return out


def synthetic(rng, shape=(540, 800)) -> list[tuple[str, np.ndarray]]:
    import cv2

    blank = np.zeros(shape, np.float32)
    out = [(fn.__name__, fn(blank, None, rng)) for fn in NON_HEAD if fn is not no_head_crop]
    out.append(("white_noise", rng.uniform(0, 1, shape).astype(np.float32)))
    out.append(("dark_noise", (0.05 * rng.uniform(0, 1, shape)).astype(np.float32)))
    out.append(("smooth_noise", cv2.GaussianBlur(rng.uniform(0, 1, shape).astype(np.float32), (0, 0), 3)))
    return out


class Tally:
    def __init__(self):
        self.rows: dict[str, list[dict]] = {}

    def add(self, kind: str, r: dict) -> None:
        self.rows.setdefault(kind, []).append(r)

    def print_no_head(self) -> None:
        print(f"{'no fetal head':<24}{'n':>6}{'failed':>9}{'ok':>5}{'flagged':>9}{'by rule':>9}{'HC today':>10}")
        total = {"n": 0, "failed": 0, "ok": 0, "flagged": 0, "rule": 0, "today": 0}
        for kind, rows in self.rows.items():
            c = {"n": len(rows), "failed": sum(r["status"] == "failed" for r in rows),
                 "ok": sum(r["status"] == "ok" for r in rows), "flagged": sum(r["status"] == "flagged" for r in rows),
                 "rule": sum(r["rule"] for r in rows), "today": sum(r["today"] != "failed" for r in rows)}
            for k in total:
                total[k] += c[k]
            self._line(kind, c)
        self._line("all", total)

    @staticmethod
    def _line(kind, c):
        print(f"{kind:<24}{c['n']:>6}{100 * c['failed'] / max(c['n'], 1):>8.1f}%{c['ok']:>5}{c['flagged']:>9}"
              f"{c['rule']:>9}{c['today']:>10}")

    def print_heads(self) -> None:
        print(f"\n{'real fetal heads':<24}{'n':>6}{'measured today':>16}{'failed by rule':>16}")
        for kind, rows in self.rows.items():
            today = [r for r in rows if r["today"] != "failed"]
            bad = sum(r["rule"] for r in today)
            print(f"{kind:<24}{len(rows):>6}{len(today):>16}{bad:>9} ({100 * bad / max(len(today), 1):.2f} %)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    ap.add_argument("--limit", type=int, default=0, help="at most N labelled images (0: all)")
    ap.add_argument("--crops-every", type=int, default=1, help="crops from every K-th labelled image (default 1)")
    ap.add_argument("--variations", action="store_true", help="also every fifth image under each damage")
    ap.add_argument("--angles", action="store_true", help="the share of doubtful outline angles, clean")
    args = ap.parse_args(argv)
    model = load_model()
    samples = [s for s in load_dataset(args.data) if s.ellipse is not None]
    if args.limit:
        samples = samples[: args.limit]
    print(f"model {model.version}; rule: either confidence < {NO_HEAD_CONFIDENCE}, or whole-image < "
          f"{NO_HEAD_DOUBTFUL_CONFIDENCE[0]} and head-centred < {NO_HEAD_DOUBTFUL_CONFIDENCE[1]}")
    rng = np.random.default_rng(0)
    started = time.time()
    non, heads = Tally(), Tally()
    causes = []
    for i, s in enumerate(samples):
        img = read_scan(s.image_path)
        r = judge(img, s.pixel_size_mm, model)
        heads.add("HC18 labelled, clean", r)
        if args.angles and r.get("outline"):
            causes.append(angle_causes(r["outline"]))
        if i % max(args.crops_every, 1):
            continue
        for crop in strips_and_boxes(img, s.ellipse, rng):
            non.add("HC18 crop beside head", judge(crop, s.pixel_size_mm, model))
        non.add("HC18 far corner x2.2", judge(no_head_crop(img, s.ellipse, rng), s.pixel_size_mm, model))
    for name, img in synthetic(rng):
        non.add("synthetic (6 kinds)", judge(img, 0.15, model))
    for name, img in other_anatomy():
        non.add("other anatomy (DICOM)", judge(img, 0.2, model))
    test_dir = Path(args.data) / "test_set"
    for p in sorted(test_dir.glob("*.png"))[: args.limit or None]:
        heads.add("HC18 official test set", judge(read_scan(p), 0.15, model))
    if args.variations:
        for s in samples[::5]:
            img = read_scan(s.image_path)
            for fn in VARIATIONS[1:]:
                im, _, ps = fn(img, s.ellipse, s.pixel_size_mm, rng)
                heads.add("HC18 damaged (17 kinds)", judge(im, ps, model))
    non.print_no_head()
    heads.print_heads()
    if causes:
        c = np.concatenate(causes)
        print("\noutline angles of the clean labelled images: "
              + ", ".join(f"{k or 'clear'} {100 * np.mean(c == k):.1f} %"
                          for k in ("", "no_echo", "faint_echo", "unsure_outline")))
    print(f"\n{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
