"""Make the page's web fonts: the shipped Noto TTFs subset to what the page writes, as WOFF2.

    python tools/subset_fonts.py        (needs fonttools with WOFF2 support, in the test extra)

Writes ``src/fetalhead/assets/fonts/web/`` (served at ``/static/fonts/``, embedded in HTML reports):

* ``NotoSans-Regular.woff2``, ``NotoSans-Bold.woff2``: Basic Latin, Latin-1 and the other Latin-script
  characters of the three translations (dashes, ellipsis, superscripts, ...);
* ``NotoSansDevanagari-Regular.woff2``, ``NotoSansTelugu-Regular.woff2``: the whole Devanagari or
  Telugu block (any Hindi or Telugu text, not only the translations), with every shaping rule the
  subset's glyphs need (GSUB/GPOS closure), so conjuncts shape as in the full font;
* ``LanguageNames-Devanagari.woff2``, ``LanguageNames-Telugu.woff2``: only the glyphs of "हिन्दी" and
  "తెలుగు", for the language chooser on an English page (a few KB instead of the whole script).

The style sheet loads a script's font only on a page in that language. The PDF report keeps using
the full TTFs in ``fetalhead/assets/fonts`` (SIL Open Font License, ``OFL.txt``).
The test ``tests/test_fonts.py`` checks that the subsets cover every character the page can show.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FONTS = ROOT / "src" / "fetalhead" / "assets" / "fonts"
I18N = ROOT / "src" / "fetalhead" / "assets" / "i18n"
OUT = ROOT / "src" / "fetalhead" / "assets" / "fonts" / "web"

DEVANAGARI = set(range(0x0900, 0x0980)) | {0x200C, 0x200D, 0x25CC, 0x0964, 0x0965}
TELUGU = set(range(0x0C00, 0x0C80)) | {0x200C, 0x200D, 0x25CC}
LATIN = set(range(0x20, 0x7F)) | set(range(0xA0, 0x100))
LANGUAGE_NAMES = {"Devanagari": "हिन्दी", "Telugu": "తెలుగు"}


def translation_characters() -> set[int]:
    chars: set[int] = set()
    for path in sorted(I18N.glob("*.json")):
        for text in json.loads(path.read_text(encoding="utf-8")).values():
            chars |= {ord(c) for c in str(text)}
    return chars


def subset(source: Path, unicodes: set[int], target: Path) -> int:
    from fontTools import subset as ft

    options = ft.Options()
    options.flavor = "woff2"
    options.layout_features = ["*"]  # every shaping feature: Indic conjuncts need them
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.hinting = False
    font = ft.load_font(str(source), options)
    cmap = font.getBestCmap()
    sub = ft.Subsetter(options)
    sub.populate(unicodes=sorted(u for u in unicodes if u in cmap))
    sub.subset(font)
    target.parent.mkdir(parents=True, exist_ok=True)
    ft.save_font(font, str(target), options)
    return target.stat().st_size


def main() -> int:
    words = translation_characters()
    latin = LATIN | {u for u in words if u not in DEVANAGARI and u not in TELUGU and u > 0x7F}
    latin |= {ord(c) for c in "—–…·±×°²³µ−‐"}
    plan = [("NotoSans-Regular.ttf", latin, "NotoSans-Regular.woff2"),
            ("NotoSans-Bold.ttf", latin, "NotoSans-Bold.woff2"),
            ("NotoSansDevanagari-Regular.ttf", DEVANAGARI, "NotoSansDevanagari-Regular.woff2"),
            ("NotoSansTelugu-Regular.ttf", TELUGU, "NotoSansTelugu-Regular.woff2")]
    for script, name in LANGUAGE_NAMES.items():
        plan.append((f"NotoSans{script}-Regular.ttf", {ord(c) for c in name} | {0x200C, 0x200D},
                     f"LanguageNames-{script}.woff2"))
    for source, unicodes, target in plan:
        size = subset(FONTS / source, unicodes, OUT / target)
        print(f"{target:36s} {size / 1024:7.1f} KB  (from {source}, {(FONTS / source).stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
