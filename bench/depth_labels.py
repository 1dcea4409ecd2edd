"""Depth labels in fonts the reader has no template of (issue 22): share read right, read wrong, not read.

Each label ("16cm", "4.0cm", "12 cm", ...) is written bright on a dark screen in Pillow's own Aileron and in
the upright sans and monospaced TrueType fonts this machine has (Liberation, DejaVu, Droid; Debian's), at cap
heights of about 9 to 23 pixels, and read with :func:`fetalhead.scans.depth_label.read_depth_labels`. A
wrong label is the one that matters: the reader must say nothing rather than another number (its labels are
a cross-check of the scale's marks; one that does not fit makes a scale refused, never a pixel size).

    python bench/depth_labels.py [--margins 0,0.05,0.08]     (needs Pillow: the dicom extra)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import fetalhead.scans.depth_label as depth_label  # noqa: E402

LABELS = ("16cm", "4.0cm", "12 cm", "9cm", "18cm", "7.5cm", "20cm", "13cm", "6cm", "25cm", "3.5cm", "8cm", "10cm",
          "14cm", "17cm", "13.5cm")
SIZES = (10, 12, 14, 16, 20, 26, 32, 34)
FONT_DIRS = (Path("/usr/share/fonts/truetype"),)
UPRIGHT = ("Sans-Regular", "Sans-Bold", "Sans.ttf", "Sans-Bold.ttf", "Mono-Regular", "Mono-Bold", "SansMono.ttf",
           "SansMono-Bold", "DroidSans.ttf", "DroidSans-Bold", "Serif.ttf", "Serif-Bold", "SerifCondensed.ttf",
           "Serif-Regular")


def fonts():
    """(name, loader(size)) for Pillow's Aileron and the machine's upright sans and mono fonts."""
    from PIL import ImageFont

    out = [("Aileron (Pillow)", lambda size: ImageFont.load_default(size=size))]
    for d in FONT_DIRS:
        for path in sorted(d.rglob("*.ttf")) if d.is_dir() else []:
            if any(path.name.endswith(u) or u in path.name for u in UPRIGHT) and "Noto" not in path.name \
                    and "Oblique" not in path.name and "Italic" not in path.name:
                out.append((path.stem, lambda size, p=str(path): ImageFont.truetype(p, size)))
    return out


def picture(text: str, font) -> np.ndarray:
    from PIL import Image, ImageDraw

    img = Image.new("L", (400, 100), 0)
    ImageDraw.Draw(img).text((20, 20), text, fill=230, font=font)
    return np.asarray(img)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--margins", default=str(getattr(depth_label, "MIN_MARGIN", 0)),
                    help="values of depth_label.MIN_MARGIN to try, comma-separated (default: the shipped one)")
    args = ap.parse_args(argv)
    cases = [(name, load(size), size, text) for name, load in fonts() for size in SIZES for text in LABELS]
    print(f"{len(cases)} labels: {len(fonts())} fonts x {len(SIZES)} sizes x {len(LABELS)} labels")
    print("| MIN_MARGIN | right | wrong | not read | wrong ones |")
    print("|---|---|---|---|---|")
    shipped = getattr(depth_label, "MIN_MARGIN", 0)
    for margin in (float(m) for m in args.margins.split(",")):
        depth_label.MIN_MARGIN = margin
        right = wrong = none = 0
        wrongs = []
        for name, font, size, text in cases:
            read = [d.text for d in depth_label.read_depth_labels(picture(text, font))]
            if text.replace(" ", "") in read:
                right += 1
            elif read:
                wrong += 1
                wrongs.append(f"{name} {size}: {text} -> {read[0]}")
            else:
                none += 1
        n = len(cases)
        print(f"| {margin:g}{' (shipped)' if margin == shipped else ''} | {100 * right / n:.1f} % | "
              f"{100 * wrong / n:.1f} % ({wrong}) | {100 * none / n:.1f} % | {'; '.join(wrongs[:6])} |")
    depth_label.MIN_MARGIN = shipped
    return 0


if __name__ == "__main__":
    sys.exit(main())
