"""How figures are written for people: gestational age in weeks+days, centiles with their bounds.

Plain functions on numbers and strings; the report (:mod:`fetalhead.outputs.report`), the command line
and the page (``web/static/app.js`` mirrors these rules, and the browser tests compare the two)
write a figure the same way.

Gestational age is written the way clinicians write it: completed weeks and days, ``20w 3d``
(typed as ``20+3``). A decimal such as ``18.1`` is refused on input: it reads as 18 weeks 1 day
to a clinician but means 18 weeks 0.7 days.
"""

from __future__ import annotations

import math
import re

__all__ = ["weeks_days", "format_weeks_days", "parse_gestational_age", "centile_band", "CENTILE_SHOWN_RANGE",
           "GestationalAgeFormatError", "distance_cm_text", "english_ordinal_suffix"]

#: Centiles are written as whole numbers from the 1st to the 99th; beyond them "<1st" and ">99th"
#: (a value of 0 or 100 would claim a precision the growth standard's tails do not have).
CENTILE_SHOWN_RANGE = (1, 99)

_WEEKS_DAYS = re.compile(r"^\s*(\d{1,2})\s*(?:(?:\+|w(?:eeks?)?\s*\+?)\s*(?:([0-6])\s*d?)?)?\s*$", re.IGNORECASE)


class GestationalAgeFormatError(ValueError):
    """A gestational age typed in a form this module does not read (the message says how to write it)."""


def weeks_days(ga_weeks: float) -> tuple[int, int]:
    """Completed weeks and days of ``ga_weeks`` (rounded to the nearest day).

    >>> weeks_days(20 + 3 / 7)
    (20, 3)
    """
    if ga_weeks is None or not math.isfinite(ga_weeks):
        raise ValueError(f"gestational age must be a finite number of weeks, got {ga_weeks!r}")
    days = int(round(ga_weeks * 7.0))
    return days // 7, days % 7


def format_weeks_days(ga_weeks: float | None, missing: str = "—") -> str:
    """``"20w 3d"`` for 20 weeks 3 days; ``missing`` for ``None``."""
    if ga_weeks is None:
        return missing
    w, d = weeks_days(ga_weeks)
    return f"{w}w {d}d"


def parse_gestational_age(text, decimal_weeks: bool = False) -> float | None:
    """Weeks (a float) from a gestational age typed as weeks+days.

    Accepted: ``"20+3"``, ``"20 + 3"``, ``"20w3d"``, ``"20w 3d"``, ``"20w"``, ``"20"`` (days 0-6).
    Empty text gives ``None``. A number (not text) is taken as weeks, as the API sends it, and so is
    decimal text (``"20.43"``) with ``decimal_weeks`` (the command line, where it was always weeks).

    Raises :class:`GestationalAgeFormatError` for anything else, decimals included by default.
    """
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    s = str(text).strip()
    if not s:
        return None
    if decimal_weeks:
        try:
            return float(s)  # the range is checked where the value is used (fetalhead.clinical.limits)
        except ValueError:
            pass
    m = _WEEKS_DAYS.match(s)
    if not m:
        raise GestationalAgeFormatError(
            f"gestational age {s!r}: write completed weeks+days, e.g. 20+3 (a decimal such as 18.1 is ambiguous)")
    return int(m.group(1)) + (int(m.group(2)) if m.group(2) else 0) / 7.0


def centile_band(centile: float | None) -> tuple[str, int] | None:
    """How a centile is written: ``("below", 1)`` for "<1st", ``("above", 99)`` for ">99th", else
    ``("at", n)`` with ``n`` the centile rounded to a whole number; ``None`` for ``None``."""
    if centile is None:
        return None
    lo, hi = CENTILE_SHOWN_RANGE
    if centile < lo - 0.5:
        return "below", lo
    if centile >= hi + 0.5:
        return "above", hi
    return "at", int(min(max(round(centile), lo), hi))


def distance_cm_text(cm: float) -> str:
    """A distance typed in cm as it was typed, to 0.01 cm (0.1 mm): "4.0", "2.5", "2.69" (a scale set by two
    points; rounded to "2.7" the record would not say the distance that set the pixel size)."""
    cm = float(cm)
    return f"{cm:.1f}" if round(cm, 1) == round(cm, 2) else f"{cm:.2f}"


def english_ordinal_suffix(n: int) -> str:
    """"st", "nd", "rd" or "th" for ``n`` (1st, 2nd, 3rd, 4th, 11th, 12th, 13th, 21st, 22nd, ...); the
    translations' ``centile_nth`` says where it goes (English only)."""
    if 11 <= n % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
