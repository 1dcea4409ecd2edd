"""Make the depth-label reader's sans-serif glyph templates: "0-9", "c" and "m" of the shipped Noto Sans
(regular and bold), rendered large and thresholded as the reader thresholds a screen.

    python tools/glyph_templates.py        (needs Pillow: the dicom extra has it)

Writes ``src/fetalhead/assets/glyphs/noto_sans_glyphs.npz``: one binary crop (uint8 0/1) per character and
weight, keyed ``"<char>_<weight>"``. The reader (:mod:`fetalhead.scans.depth_label`) loads them beside the
templates it renders from OpenCV's Hershey fonts: scanners write their labels in bold sans fonts (the Philips
EPIQ 7C's "16cm"), which no Hershey font resembles. Noto Sans: SIL Open Font License
(``src/fetalhead/assets/fonts/OFL.txt``). ``tests/scans/test_depth_label.py`` checks that the shipped file is
what this script makes.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FONTS = ROOT / "src" / "fetalhead" / "assets" / "fonts"
OUT = ROOT / "src" / "fetalhead" / "assets" / "glyphs" / "noto_sans_glyphs.npz"
WEIGHTS = {"regular": "NotoSans-Regular.ttf", "bold": "NotoSans-Bold.ttf"}
#: Rendering size (pixels): large enough that the reader's normalisation, not the rendering, sets the detail.
SIZE_PX = 64


def glyph_crops() -> dict[str, np.ndarray]:
    """Each character's binary crop (uint8 0/1) per weight, thresholded at the reader's text level."""
    from PIL import Image, ImageDraw, ImageFont

    sys.path.insert(0, str(ROOT / "src"))
    from fetalhead.scans.depth_label import DIGITS, LOWER, TEXT_LEVEL

    out = {}
    for weight, name in WEIGHTS.items():
        font = ImageFont.truetype(str(FONTS / name), SIZE_PX)
        for ch in DIGITS + LOWER:
            img = Image.new("L", (2 * SIZE_PX, 2 * SIZE_PX), 0)
            ImageDraw.Draw(img).text((SIZE_PX // 3, SIZE_PX // 6), ch, fill=255, font=font)
            a = np.asarray(img) >= TEXT_LEVEL
            ys, xs = np.nonzero(a)
            out[f"{ch}_{weight}"] = a[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)
    return out


def npz_bytes(crops: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **crops)
    return buf.getvalue()


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(npz_bytes(glyph_crops()))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
