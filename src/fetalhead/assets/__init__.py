"""Files shared by the reports and the web page: translations (``i18n/<lang>.json``) and the
Noto fonts (``fonts/``, SIL Open Font License, see ``fonts/OFL.txt``)."""

from pathlib import Path

ASSETS = Path(__file__).resolve().parent
I18N_DIR = ASSETS / "i18n"
FONTS_DIR = ASSETS / "fonts"
#: The page's WOFF2 subsets of those fonts (made by ``tools/subset_fonts.py``).
WEB_FONTS_DIR = FONTS_DIR / "web"

__all__ = ["ASSETS", "I18N_DIR", "FONTS_DIR", "WEB_FONTS_DIR"]
