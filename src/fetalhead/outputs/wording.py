"""The words of a result: review flags (what is wrong, where, what to do) and notes (information).

One place writes them, in every language, for every edge: the CSV ``message`` and ``note_message``
(English), the page (``display.review`` and ``display.notes`` of the API's answers), the HTML and
PDF reports, the DICOM SR comment and the FHIR notes. What is a flag and what is a note is decided
by :mod:`fetalhead.measurement` (``Measurement.flags`` and ``Measurement.notes``); this module only
writes them out from the translations (``assets/i18n/<lang>.json``):

* a review flag (``flag_<code>``, filled with its numbers), followed, where the software can tell,
  by where on the outline the doubt lies (``doubt_<cause>`` with ``where_<direction>``, from
  ``Measurement.uncertain_arcs``) and what to do there;
* a note: the cephalic index outside Hadlock's +/-1 SD (``note_cephalic_index_out_of_range``), no
  pixel size (``note_no_pixel_spacing``), a figure left out and why (``<figure>: withheld_<code>``).
"""

from __future__ import annotations

import json
from functools import lru_cache

from ..assets import I18N_DIR
from ..clinical.biometry import HADLOCK_BPD_RANGE_MM, HADLOCK_HC_RANGE_MM, INTERGROWTH_DATING_HC_RANGE_MM
from ..clinical.limits import CHART_GA_RANGE_WEEKS, PLAUSIBLE_HC_RANGE_MM

__all__ = ["LANGUAGES", "translations", "fill", "mm_text", "review_lines", "note_lines", "arc_line", "FIGURE_LABELS",
           "status_text"]

LANGUAGES = ("en", "hi", "te")

#: The label (translation key) of each figure that can be left out, as the page's table names it.
FIGURE_LABELS = {"ga_hc_hadlock_weeks": "ga_hadlock", "ga_hc_intergrowth_weeks": "ga_intergrowth",
                 "ga_bpd_hadlock_weeks": "ga_bpd", "hc_centile": "hc_centile", "hc_zscore": "hc_centile"}
#: The measure and range (mm) for which each dating formula is valid, named in the note of a figure left out
#: as ``outside_formula_range`` (the ranges :mod:`fetalhead.clinical.biometry` checks).
FORMULA_RANGES = {"ga_hc_hadlock_weeks": ("HC", HADLOCK_HC_RANGE_MM), "ga_bpd_hadlock_weeks": ("BPD", HADLOCK_BPD_RANGE_MM),
                  "ga_hc_intergrowth_weeks": ("HC", INTERGROWTH_DATING_HC_RANGE_MM)}
#: Which stretches of the outline a flag points to: the causes of doubt (``fetalhead.model.uncertainty``)
#: that explain it (None: any).
_FLAG_CAUSES = {"low_quality": None, "skull_not_seen": ("faint_echo",),
                "head_cut_by_image_border": ("no_echo",), "head_cut_by_sector_edge": ("no_echo",)}


@lru_cache(maxsize=8)
def translations(lang: str = "en") -> dict:
    """The labels of one language (``en``, ``hi``, ``te``) from ``assets/i18n/<lang>.json``."""
    if lang not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {lang!r}")
    return json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))


def fill(template: str, **values) -> str:
    """A translation with its ``{name}`` places filled (the page does the same)."""
    for k, v in values.items():
        template = template.replace("{" + k + "}", str(v))
    return template


def status_text(m, t: dict) -> str:
    """The status in words; an ``ok`` result in pixels says that the head size was not checked (it needs the
    pixel size), so that "no automatic warnings" claims no check it did not make."""
    if m.status == "ok" and m.head_circumference_mm is None:
        return t["status_ok_px"]
    return t[f"status_{m.status}"]


def arc_line(arc: dict, t: dict) -> str:
    """Where one doubtful stretch of the outline lies, why, and what to do there."""
    return fill(t[f"doubt_{arc['cause']}"], where=t[f"where_{arc['where']}"])


def _flag_line(m, flag: str, t: dict) -> str:
    comps = m.quality_components or {}
    if flag == "low_quality":
        hw = (m.interval_half_widths or {}).get("hc")
        if hw is None:
            return fill(t["flag_low_quality_score"], q=f"{m.quality or 0.0:.2f}")
        return fill(t["flag_low_quality"], hw=f"{100 * hw:.1f}")
    if flag == "skull_not_seen":
        return fill(t["flag_skull_not_seen"], pct=f"{100 * float(comps.get('outline_seen', 0.0)):.0f}")
    if flag == "head_cut_by_sector_edge":
        return fill(t["flag_head_cut_by_sector_edge"],
                    pct=f"{100 * (1 - float(comps.get('outline_in_field', 0.0))):.0f}")
    if flag == "implausible_head_size":
        lo, hi = PLAUSIBLE_HC_RANGE_MM
        hc = m.head_circumference_mm
        return fill(t["flag_implausible_head_size"], hc="—" if hc is None else f"{hc:.0f}", lo=f"{lo:g}",
                    hi=f"{hi:g}")
    if flag == "hc_far_from_ga" and m.hc_zscore is not None and m.ga_by_dates_weeks is not None:
        from .display import format_weeks_days

        return fill(t["flag_hc_far_from_ga"], z=f"{m.hc_zscore:+.1f}", ga=format_weeks_days(m.ga_by_dates_weeks))
    if flag == "pixel_size_disagrees_with_screen" and m.pixel_spacing_mm and m.screen_mm_per_px:
        given, screen = m.pixel_spacing_mm, m.screen_mm_per_px
        worst = max(abs(float(a) / float(b) - 1) for a, b in zip(given, screen))
        key = ("flag_scale_points_disagree_with_screen" if str(m.spacing_source).startswith("two_points")
               else "flag_pixel_size_disagrees_with_screen")  # a scale set by two points: check the points
        return fill(t[key], given=mm_text(given), screen=mm_text(screen),
                    pct=f"{100 * worst:.1f}")
    return t.get(f"flag_{flag}", flag)


def mm_text(spacing) -> str:
    """A pixel size (mm: one number, or x and y) as words: one value when square, ``x x y`` when not."""
    x, y = (float(v) for v in spacing) if isinstance(spacing, (tuple, list)) else (float(spacing),) * 2
    return f"{x:.4f} mm" if abs(x - y) <= 1e-9 * max(x, y) else f"{x:.4f} x {y:.4f} mm"


def review_lines(m, t: dict) -> list[str]:
    """One line per flag of ``m`` (in the order of ``m.flags``), a review flag followed by where on the
    outline its cause lies when the software found it (the longest stretch of that cause not named
    yet); ``low_quality`` with no stretch to show says so (check the whole outline). In the language
    of ``t``; a code with no words in ``t`` (an output that could not be written) is given as is."""
    arcs = list(getattr(m, "uncertain_arcs", None) or [])
    named: set[int] = set()
    lines = []
    for flag in m.flags:
        if flag == "adjusted_by_hand" and m.status == "adjusted":
            continue  # the status line says it already
        line = _flag_line(m, flag, t)
        if flag in _FLAG_CAUSES:
            causes = _FLAG_CAUSES[flag]
            k = next((i for i, a in enumerate(arcs) if i not in named and (causes is None or a["cause"] in causes)),
                     None)
            if k is not None:
                named.add(k)
                line += " " + arc_line(arcs[k], t)
            elif flag == "low_quality" and not named:
                line += " " + t["doubt_unlocated"]
        lines.append(line)
    return lines


def note_lines(m, t: dict, figures: bool = True) -> list[str]:
    """One line per note of ``m`` (information, not a warning), in the language of ``t``: the cephalic
    index outside Hadlock's +/-1 SD, no pixel size, and (``figures``) each figure left out by its
    formula's or chart's range and why."""
    notes = list(getattr(m, "notes", None) or [])
    lines = []
    if "no_pixel_spacing" in notes:
        lines.append(t["note_no_pixel_spacing"])
    if "cephalic_index_out_of_range" in notes and m.cephalic_index is not None:
        lines.append(fill(t["note_cephalic_index_out_of_range"], ci=f"{m.cephalic_index:.1f}"))
    lo, hi = CHART_GA_RANGE_WEEKS
    seen = set()
    for column, code in (m.withheld or {}).items() if figures else ():
        if code not in notes or code == "no_pixel_spacing" or column not in FIGURE_LABELS:
            continue
        label = t[FIGURE_LABELS[column]]
        if label in seen:
            continue
        seen.add(label)
        line = f"{label}: " + fill(t[f"withheld_{code}"], lo=f"{lo:g}", hi=f"{hi:g}")
        if code == "outside_formula_range" and column in FORMULA_RANGES:  # say the range, not just that there is one
            what, (a, b) = FORMULA_RANGES[column]
            line += " (" + fill(t["formula_valid_range"], what=what, lo=f"{round(a, 1):g}", hi=f"{round(b, 1):g}") + ")"
        lines.append(line)
    return lines
