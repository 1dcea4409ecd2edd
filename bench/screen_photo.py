"""Phone photos of scanner screens (issue 22: "a photo of a screen ... rectified or refused; never more than
3 % off"): what the screen's scale reader gives on them, before and after the slanted-photo check.

Screens: the real ultrasound screens of the pydicom-data wheel (truth: their region calibration; the
region's box is where a head can be) and HC18 scans laid on drawn screens at their own pixel size (box:
the scan). Each is photographed (tests/photo_fixtures.py: a pinhole phone camera, 65 degrees across, the
screen filling 80 % of the frame, a bezel and a wall around it) square (tilt 0) and tilted by 3, 6, 10,
15 degrees about its horizontal (x: the top leans away) or vertical axis (y), as: plain (a slight
blur and sensor noise), blur, JPEG 70, a glare blob, a moire pattern, all of these with a 4 degree roll,
and crop (framed inside the screen: no bezel).

The truth of a slanted photo is no single pixel size. A reading counts as within k % when it is within k %
of the true local pixel size at every point of the box and in every direction (so a head measured anywhere
in the image, at any orientation, is within k %); "wrong" is a reading more than 3 % off somewhere in
the box. "at marks" is the median error along the scale at its own marks (what the reader can see).

    python bench/screen_photo.py [--n 3] [--styles 2]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fetalhead.scans.screen_photo import check_screen_photo  # noqa: E402
from fetalhead.scans.screen_scale import read_screen_scale  # noqa: E402
from tests.photo_fixtures import PHOTO_VARIANTS, along_mm_per_px, make_photo, worst_error  # noqa: E402
from tests.screen_fixtures import REAL_SCREENS, pydicom_data_root, render_dicom_screen, render_screen  # noqa: E402

HC18 = ROOT.parent / "shared" / "data" / "hc18"
TILTS = [(0, "-")] + [(t, a) for t in (3, 6, 10, 15) for a in ("x", "y")]
STYLES = {"ticks, 5 cm marks": dict(marks="ticks"), "sector side, dots": dict(marks="dots", side="sector"),
          "dots only": dict(marks="dots", major=False)}


def screens(n: int, styles: int):
    """(source, rgb, mm per px, box (x0, y0, x1, y1) where a head can be)."""
    import pydicom

    root = pydicom_data_root()
    if root is not None:
        for maker, f in sorted(REAL_SCREENS.items()):
            rgb, mm = render_dicom_screen(root / f)
            r = pydicom.dcmread(root / f, stop_before_pixels=True).SequenceOfUltrasoundRegions[0]
            yield "real", rgb, mm, (r.RegionLocationMinX0, r.RegionLocationMinY0, r.RegionLocationMaxX1,
                                    r.RegionLocationMaxY1)
    if not (HC18 / "training_set_pixel_size_and_HC.csv").is_file():
        return
    rows = list(csv.DictReader(open(HC18 / "training_set_pixel_size_and_HC.csv")))[::53][:n]
    for style in list(STYLES)[:styles]:
        for r in rows:
            grey = cv2.imread(str(HC18 / "images" / r["filename"]), cv2.IMREAD_GRAYSCALE)
            mm = float(r["pixel size(mm)"])
            h, w = grey.shape
            yield "drawn", render_screen(grey, mm, image_box=(100, 80, w, h), size=(w + 200, h + 180),
                                         **STYLES[style]), mm, (100, 80, 100 + w, 80 + h)


def score(s, H, mm, box, cell):
    cell["n"] += 1
    if s.mm_per_px is None:
        cell["refused"] += 1
        return
    err = worst_error(s.mm_per_px[0], H, mm, box)
    for k in (1, 2, 3):
        cell[k] += err <= k / 100
    cell["wrong"] += err > 0.03
    if s.rows:
        p = np.asarray(s.marks, float).mean(axis=0)
        cell["marks"].append(abs(s.mm_per_px[0] / along_mm_per_px(H, mm, p, s.rows[0].direction) - 1))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="HC18 scans per drawn style")
    ap.add_argument("--styles", type=int, default=2, help="drawn screen styles (of 3)")
    args = ap.parse_args()
    table: dict = {}
    t0, reads = time.time(), 0
    for i, (source, rgb, mm, box) in enumerate(screens(args.n, args.styles)):
        for tilt, axis in TILTS:
            for variant in PHOTO_VARIANTS:
                photo, H = make_photo(rgb, tilt, axis if axis != "-" else "x", variant, seed=i)
                today = read_screen_scale(photo)
                checked = check_screen_photo(photo, today)
                reads += 1
                for when, s in (("today", today), ("checked", checked)):
                    cell = table.setdefault((tilt, axis, variant, when), {"n": 0, 1: 0, 2: 0, 3: 0, "refused": 0,
                                                                          "wrong": 0, "marks": []})
                    score(s, H, mm, box, cell)
    print("| tilt | variant | n | today: within 1 / 2 / 3 % | refused | wrong | at marks | "
          "checked: within 1 / 2 / 3 % | refused | wrong |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    tot = {"today": 0, "checked": 0}
    for tilt, axis in TILTS:
        for variant in PHOTO_VARIANTS:
            a, b = table[(tilt, axis, variant, "today")], table[(tilt, axis, variant, "checked")]
            tot["today"] += a["wrong"]
            tot["checked"] += b["wrong"]
            at = f"{100 * np.median(a['marks']):.1f} %" if a["marks"] else "-"
            print(f"| {tilt}{'' if axis == '-' else ' ' + axis} | {variant} | {a['n']} | {a[1]} / {a[2]} / {a[3]} | "
                  f"{a['refused']} | {a['wrong']} | {at} | {b[1]} / {b[2]} / {b[3]} | {b['refused']} | {b['wrong']} |")
    print(f"\nwrong (> 3 % off somewhere in the image): today {tot['today']}, checked {tot['checked']}; "
          f"{reads} photos in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
