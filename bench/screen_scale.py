"""The screen's depth scale (issue 22): share read within 1 / 2 / 3 % of the truth, and share refused, per
source and variant.

Sources: the real ultrasound screens of the pydicom-data wheel (Philips EPIQ 7C and CX50, SonoSite, ALOKA;
truth: their SequenceOfUltrasoundRegions calibration), HC18 scans laid on drawn scanner screens at their own
pixel size (ticks, dots, half-centimetre ticks, dots along a sector's side), and HC18 scans as they are
(no scale on them: anything read is wrong). Variants: as is, JPEG quality 60, resized to 80 %, both.

    python bench/screen_scale.py [--n 10]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fetalhead.scans.screen_scale import read_screen_scale  # noqa: E402
from tests.screen_fixtures import REAL_SCREENS, jpeg, pydicom_data_root, render_dicom_screen, render_screen, resize  # noqa: E402

HC18 = ROOT.parent / "shared" / "data" / "hc18"
VARIANTS = {"as is": lambda a: (a, 1.0), "JPEG 60": lambda a: (jpeg(a, 60), 1.0),
            "resized 80 %": lambda a: (resize(a, 0.8), 0.8), "JPEG 60 + 80 %": lambda a: (jpeg(resize(a, 0.8), 60), 0.8)}
STYLES = {"ticks, 5 cm marks": dict(marks="ticks"), "dots only": dict(marks="dots", major=False),
          "half-cm ticks": dict(marks="ticks", half=True), "sector side, dots": dict(marks="dots", side="sector")}


def cases(n: int):
    root = pydicom_data_root()
    if root is not None:
        for maker, f in sorted(REAL_SCREENS.items()):
            rgb, mm = render_dicom_screen(root / f)
            yield "real DICOM screens", rgb, mm
    rows = list(csv.DictReader(open(HC18 / "training_set_pixel_size_and_HC.csv")))[::37][:n]
    for style, kw in STYLES.items():
        for r in rows:
            grey = cv2.imread(str(HC18 / "images" / r["filename"]), cv2.IMREAD_GRAYSCALE)
            mm = float(r["pixel size(mm)"])
            h, w = grey.shape
            yield f"HC18 on a drawn screen: {style}", render_screen(grey, mm, image_box=(100, 80, w, h),
                                                                   size=(w + 200, h + 180), **kw), mm
    for r in rows:
        yield "HC18 as is (no scale)", cv2.cvtColor(cv2.imread(str(HC18 / "images" / r["filename"])),
                                                    cv2.COLOR_BGR2RGB), None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10, help="HC18 scans per style")
    args = ap.parse_args()
    table: dict = {}
    t0, reads = time.time(), 0
    for source, rgb, mm in cases(args.n):
        for variant, fn in VARIANTS.items():
            img, f = fn(rgb)
            s = read_screen_scale(img)
            reads += 1
            cell = table.setdefault((source, variant), {"n": 0, "1": 0, "2": 0, "3": 0, "refused": 0, "wrong": 0})
            cell["n"] += 1
            if s.mm_per_px is None:
                cell["refused"] += 1
                continue
            if mm is None:
                cell["wrong"] += 1
                continue
            err = max(abs(v / (mm / f) - 1) for v in s.mm_per_px)
            for k in ("1", "2", "3"):
                cell[k] += err <= int(k) / 100
            cell["wrong"] += err > 0.03
    print("| source | variant | n | within 1 % | within 2 % | within 3 % | refused | wrong (> 3 % or a scale where none is) |")
    print("|---|---|---|---|---|---|---|---|")
    for (source, variant), c in table.items():
        pct = {k: f"{100 * c[k] / c['n']:.0f} %" for k in ("1", "2", "3", "refused")}
        print(f"| {source} | {variant} | {c['n']} | {pct['1']} | {pct['2']} | {pct['3']} | {pct['refused']} | {c['wrong']} |")
    print(f"\n{reads} pictures read in {time.time() - t0:.0f} s ({(time.time() - t0) / reads:.2f} s each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
