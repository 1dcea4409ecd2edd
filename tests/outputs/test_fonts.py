"""The page's WOFF2 font subsets cover every character the page and the HTML report can show."""

import json

import pytest

from fetalhead.assets import FONTS_DIR, I18N_DIR, WEB_FONTS_DIR

pytest.importorskip("brotli")
TTFont = pytest.importorskip("fontTools.ttLib").TTFont

SCRIPT_FONT = {"hi": "NotoSansDevanagari-Regular.woff2", "te": "NotoSansTelugu-Regular.woff2"}


def cmap(name):
    return set(TTFont(str(WEB_FONTS_DIR / name)).getBestCmap())


def test_every_translated_character_has_a_glyph():
    latin = cmap("NotoSans-Regular.woff2")
    assert latin == cmap("NotoSans-Bold.woff2")
    for lang in ("en", "hi", "te"):
        text = "".join(str(v) for v in json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8")).values())
        fonts = latin | (cmap(SCRIPT_FONT[lang]) if lang in SCRIPT_FONT else set())
        missing = sorted({c for c in text if ord(c) not in fonts})
        assert not missing, (lang, missing)


def test_script_subsets_keep_the_whole_block_and_its_shaping_rules():
    for name, block, source in (("NotoSansDevanagari-Regular.woff2", range(0x0900, 0x0980), "NotoSansDevanagari-Regular.ttf"),
                                ("NotoSansTelugu-Regular.woff2", range(0x0C00, 0x0C80), "NotoSansTelugu-Regular.ttf")):
        full = set(TTFont(str(FONTS_DIR / source)).getBestCmap())
        assert {u for u in block if u in full} <= cmap(name)
        font = TTFont(str(WEB_FONTS_DIR / name))
        assert "GSUB" in font and "GPOS" in font  # conjuncts and mark positioning survive the subset
        assert (WEB_FONTS_DIR / name).stat().st_size < (FONTS_DIR / source).stat().st_size / 3


def test_language_names_fonts_hold_the_names_in_the_chooser():
    assert {ord(c) for c in "हिन्दी"} <= cmap("LanguageNames-Devanagari.woff2")
    assert {ord(c) for c in "తెలుగు"} <= cmap("LanguageNames-Telugu.woff2")
    assert (WEB_FONTS_DIR / "LanguageNames-Telugu.woff2").stat().st_size < 8_000
