"""Printable reports (PDF and HTML) of one measurement, in English, Hindi or Telugu.

The report holds the scan with the overlay, the measurements with units and
conventions, gestational age with the formula used, the INTERGROWTH-21st HC
centile chart (with this fetus when the gestational age by dates is known), the
quality flag, the model version, and a plain statement that the measurement
needs a clinician's review. Numbers and units stay in the international form.

PDF needs the ``web`` extra (fpdf2, uharfbuzz for Indic text shaping); the Noto
fonts it uses ship in the package (SIL Open Font License).
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
from pathlib import Path

import cv2
import numpy as np

from ..assets import FONTS_DIR, WEB_FONTS_DIR
from ..clinical.biometry import CHART_NAMES, DEFAULT_CHART, FORMULAS, chart_value_at_centile, check_chart
from .display import centile_band, distance_cm_text, english_ordinal_suffix, format_weeks_days
from ..clinical.limits import CHART_GA_RANGE_WEEKS, chart_hc_range_mm
from .._version import SOFTWARE_NAME
from .results import PAGE_SPACING_SOURCE, TWO_POINTS_SOURCE
from .wording import LANGUAGES, fill, mm_text, note_lines, review_lines, status_text, translations

__all__ = ["LANGUAGES", "translations", "growth_curves", "growth_chart_svg", "report_html", "report_pdf", "new_pdf",
           "report_rows", "display_values", "TABLE_ROWS", "chart_label", "CENTILES", "fill", "centile_text", "withheld_text", "spacing_text", "formula_lines",
           "scale_line"]

CENTILES = (3, 10, 50, 90, 97)
_FONTS = FONTS_DIR


def growth_curves(measure: str = "hc", step_weeks: float = 0.5, chart: str = DEFAULT_CHART) -> dict:
    """Centile curves (mm) of ``chart`` (INTERGROWTH-21st or WHO) over the chart's weeks:
    ``{"chart": ..., "weeks": [...], "3": [...], ...}``."""
    lo, hi = CHART_GA_RANGE_WEEKS
    weeks = np.arange(lo, hi + 1e-9, step_weeks)
    out = {"measure": measure, "chart": check_chart(chart), "weeks": [float(w) for w in weeks]}
    for c in CENTILES:
        out[str(c)] = [round(chart_value_at_centile(chart, measure, c, float(w)), 2) for w in weeks]
    return out


def chart_label(key: str, chart: str, t: dict) -> str:
    """A label that names the growth chart ("HC centile (WHO fetal growth charts)"); chart names stay
    as published, in every language."""
    return f"{t[key]} ({CHART_NAMES[chart]})"


def _fmt(v, nd=1, unit=""):
    return "—" if v is None else f"{v:.{nd}f}{(' ' + unit) if unit else ''}"


def withheld_text(m, column: str, t: dict) -> str:
    """"not available: <why>" for a figure left out, in the language of ``t``."""
    code = (m.withheld or {}).get(column)
    lo, hi = CHART_GA_RANGE_WEEKS
    why = fill(t[f"withheld_{code}"], lo=f"{lo:g}", hi=f"{hi:g}") if f"withheld_{code}" in t else ""
    return f"{t['not_available']}: {why}" if why else t["not_available"]


def centile_text(m, t: dict) -> str:
    """The HC centile as written on the page and in the report: "37 (z -0.33; GA by dates 20w 3d)",
    "above the 99th (z +13.40; ...)", or why it is not given."""
    band = centile_band(m.hc_centile)
    if band is None:
        return withheld_text(m, "hc_centile", t)
    kind, n = band
    head = fill(t["centile_nth"], n=n, en_suffix=english_ordinal_suffix(n)) if kind == "at" else t[f"centile_{kind}"]
    return f"{head} (z {m.hc_zscore:+.2f}; {t['ga_by_dates_short']} {format_weeks_days(m.ga_by_dates_weeks)})"


def spacing_text(source: str, t: dict) -> str:
    """Where the pixel size came from, in words of ``t`` (a DICOM attribute keeps its name)."""
    if source == PAGE_SPACING_SOURCE:
        return t["spacing_page"]
    if source == "none":
        return t["spacing_none"]
    if source.startswith("dicom:"):
        return f"{t['spacing_dicom']} ({source[len('dicom:'):]})"
    if source.startswith("screen:"):  # the scanner's depth scale read off the picture (issue 22)
        return t["spacing_screen"]
    if source.startswith(TWO_POINTS_SOURCE):  # a scale set by hand on the picture (issue 22)
        return t["spacing_two_points"]
    return source


def spacing_value_text(spacing, source: str, t: dict, distance_cm: float | None = None) -> str:
    """The pixel size used (mm, x and y when they differ) and where it came from: the value printed, so
    that a wrong one can be traced (issue 25). ``distance_cm``: a scale set by two points, their distance."""
    where = spacing_text(source, t)
    if not spacing:
        return where
    y = float(spacing[1]) if isinstance(spacing, (tuple, list)) else float(spacing)
    if source.startswith("screen:"):  # the scale as the screen shows it, to check against the picture
        where = f"{where}: 1 cm = {10 / y:.0f} px"
    elif source.startswith(TWO_POINTS_SOURCE) and distance_cm:
        where = fill(t["spacing_two_points_apart"], cm=distance_cm_text(distance_cm), px=f"{10 / y:.1f}")
    return f"{mm_text(spacing)} ({where})"


def scale_line(m, t: dict) -> str:
    """The picture's scale in one line, as the page shows it over the picture (issue 22): read from the
    screen ("Scale read from the screen: 1 cm = 42 px"), set by two points, from the pixel size entered,
    none found, or ``""`` for a DICOM file's own calibration (nothing to set)."""
    source = m.spacing_source or "none"
    if source.startswith("dicom:"):
        return ""
    screen = getattr(m, "screen_mm_per_px", None)
    if source.startswith(TWO_POINTS_SOURCE) and m.pixel_spacing_mm:
        line = fill(t["scale_two_points"], cm=distance_cm_text(m.scale_distance_cm or 0), px=f"{10 / m.pixel_spacing_mm[1]:.1f}")
        if screen:
            line += " " + fill(t["scale_screen_also"], px=f"{10 / screen[1]:.0f}")
        return line
    if screen:
        line = fill(t["scale_screen"], px=f"{10 / screen[1]:.0f}")
        # another pixel size was used (entered, or a CSV's): say so; with none (nothing measured), just the scale read
        used_other = not source.startswith("screen:") and m.pixel_spacing_mm
        return f"{line} ({t['scale_screen_not_used']})" if used_other else line
    if m.pixel_spacing_mm:  # typed (or from a CSV): what 1 cm is on this picture, to check against its marks
        return fill(t["scale_entered"], px=f"{10 / m.pixel_spacing_mm[1]:.1f}")
    return t["scale_none"]


#: The figures of the table, in order: (label key in the translations, result column).
TABLE_ROWS = (("hc", "hc_mm"), ("bpd", "bpd_mm"), ("ofd", "ofd_mm"), ("ci", "cephalic_index"),
              ("ga_hadlock", "ga_hc_hadlock_weeks"), ("ga_intergrowth", "ga_hc_intergrowth_weeks"),
              ("ga_bpd", "ga_bpd_hadlock_weeks"), ("hc_centile", "hc_centile"), ("quality", "quality"),
              ("spacing_source", "spacing_source"))


def display_values(m, t: dict) -> dict:
    """Each figure as written for people in the language of ``t`` (result column -> text), with ``status``
    (:func:`fetalhead.outputs.wording.status_text`), ``chart_note``, ``review`` (the review flags' lines, :func:`fetalhead.outputs.wording.review_lines`)
    and ``notes`` (information, :func:`fetalhead.outputs.wording.note_lines`): the one place that writes figures for the page (``display`` in the API's answers),
    the HTML report and the PDF."""
    out = {}
    lengths = (("hc_mm", m.head_circumference_mm), ("bpd_mm", m.biparietal_diameter_mm),
               ("ofd_mm", m.occipitofrontal_diameter_mm))
    for column, value in lengths:
        lo_hi = (m.intervals or {}).get(column)
        if value is None:
            out[column] = withheld_text(m, column, t)
        else:
            out[column] = _fmt(value, 1, "mm") + (f" ({t['range_90']} {lo_hi[0]:.1f}–{lo_hi[1]:.1f} mm)"
                                                  if lo_hi else "")
    if m.head_circumference_mm is None and m.head_circumference_px is not None:
        out["hc_mm"] = _fmt(m.head_circumference_px, 1, "px") + f" ({t['flag_no_pixel_spacing']})"
    out["cephalic_index"] = _fmt(m.cephalic_index, 1, "%")
    for column in ("ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks", "ga_bpd_hadlock_weeks"):
        val, lo_hi = getattr(m, column), (m.intervals or {}).get(column)
        text = format_weeks_days(val) if val is not None else withheld_text(m, column, t)
        if val is not None and lo_hi:
            text += f" ({t['range_90']} {format_weeks_days(lo_hi[0])}–{format_weeks_days(lo_hi[1])})"
        if val is not None and column == "ga_bpd_hadlock_weeks" and "cephalic_index_out_of_range" in m.notes:
            text += f" ({t['ga_bpd_unreliable']})"  # the page greys it: HC dates this head, not BPD
        out[column] = text
    out["hc_centile"] = centile_text(m, t)
    quality = _fmt(m.quality, 2)
    if m.status == "adjusted" and m.quality is not None:
        quality += f" ({t['quality_not_of_outline']})"
    out["quality"] = quality
    out["status"] = status_text(m, t)  # the banner's words (an ok result in pixels claims no head-size check)
    out["spacing_source"] = spacing_value_text(m.pixel_spacing_mm, m.spacing_source, t,
                                               getattr(m, "scale_distance_cm", None))
    out["scale"] = scale_line(m, t)  # over the picture: the scale read, set by hand, or none (issue 22)
    out["chart_note"] = chart_note(m, t)
    out["review"] = review_lines(m, t)  # under the status: what is wrong, where, what to do
    out["notes"] = note_lines(m, t)  # information, shown apart from the warnings
    if (m.n_frames or 1) > 1:  # a cine loop: which frame was measured, and whether the software chose it
        out["frame"] = fill(t["loop_frame"], n=m.frame + 1, total=m.n_frames) + (
            f" ({t['loop_best']})" if m.hc_trace else f" ({t['loop_chosen_by_hand']})")
    return out


def report_rows(m, t: dict) -> list[tuple[str, str]]:
    """(label, value) pairs of the report's measurement table."""
    values = display_values(m, t)
    rows = [(chart_label(key, m.chart, t) if key == "hc_centile" else t[key], values[column])
            for key, column in TABLE_ROWS]
    if "frame" in values:
        rows.insert(0, (t["loop_slider"], values["frame"]))
    return rows


def formula_lines(m) -> list[str]:
    """The formulas (with their sources) of the figures given, as the report lists them."""
    if m.head_circumference_mm is None:
        return [FORMULAS["hc_mm"]]
    out = [FORMULAS[k] for k in ("hc_mm", "ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks", "ga_bpd_hadlock_weeks")
           if k == "hc_mm" or getattr(m, k) is not None]
    if m.hc_centile is not None:
        out.append(FORMULAS["hc_centile_who" if m.chart == "who" else "hc_centile"])
    return out


def chart_note(m, t: dict) -> str:
    """Why this fetus is not on the chart ("" when it is): no GA by dates, or the reason the centile
    is withheld (GA outside the standard's weeks, no pixel size)."""
    if m.head_circumference_mm is not None and m.hc_centile is not None:
        return ""
    if m.ga_by_dates_weeks is None:
        return t["chart_needs_ga"]
    return withheld_text(m, "hc_centile", t)


#: Line styles of the centile curves (SVG dash pattern, PDF dash length mm): solid median, dashed
#: 10th/90th, dotted 3rd/97th, so the curves are told apart without colour.
CENTILE_DASH = {50: ("", 0.0), 10: ("6 3", 1.5), 90: ("6 3", 1.5), 3: ("1.5 2.5", 0.5), 97: ("1.5 2.5", 0.5)}


def spread_labels(ys, min_gap: float) -> list[float]:
    """Label positions (same units as ``ys``) moved apart by at least ``min_gap``, each as near its curve
    as that allows (the centile labels at the chart's right edge would overlap otherwise)."""
    order = sorted(range(len(ys)), key=lambda i: ys[i])
    out = [float(y) for y in ys]
    placed = []
    for i in order:
        y = out[i] if not placed else max(out[i], placed[-1] + min_gap)
        placed.append(y)
        out[i] = y
    shift = (sum(out) - sum(float(y) for y in ys)) / len(ys)  # centre the moved block on the curves
    return [y - shift for y in out]


def _status_lines(m, t: dict) -> list[str]:
    """The status and, under it, what is wrong: the review flags' lines or why nothing was measured."""
    lines = [status_text(m, t)]
    if m.status == "failed" and f"failure_{m.failure}" in t:
        lines.append(t[f"failure_{m.failure}"])
    return lines + (review_lines(m, t) if m.status != "failed" else [])


def _overlay_png(grey: np.ndarray, m) -> bytes:
    from .overlay import draw_overlay

    ok, buf = cv2.imencode(".png", draw_overlay(grey, m, with_text=False))
    if not ok:
        raise RuntimeError("could not encode the overlay")
    return buf.tobytes()


def growth_chart_svg(hc_mm: float | None, ga_weeks: float | None, t: dict, width=440, height=300,
                     chart: str = DEFAULT_CHART) -> str:
    """The HC centile chart as an inline SVG string (labels escaped): the page and the report draw it."""
    curves = growth_curves("hc", chart=chart)
    x0, y0, x1, y1 = 48, 12, width - 40, height - 36
    (wmin, wmax), (hmin, hmax) = CHART_GA_RANGE_WEEKS, chart_hc_range_mm()

    def px(w, h):
        return x0 + (w - wmin) / (wmax - wmin) * (x1 - x0), y1 - (h - hmin) / (hmax - hmin) * (y1 - y0)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img" '
             f'aria-label="{html.escape(chart_label("growth_chart", chart, t))}">',
             f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#888"/>']
    for w in range(int(wmin), int(wmax) + 1, 2):
        x, _ = px(w, hmin)
        parts.append(f'<line x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y1 + 4}" stroke="#888"/>'
                     f'<text x="{x:.1f}" y="{y1 + 16}" font-size="10" text-anchor="middle">{w}</text>')
    for h in range(int(hmin), int(hmax) + 1, 50):
        _, y = px(wmin, h)
        parts.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="#888"/>'
                     f'<text x="{x0 - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{h}</text>')
    label_ys = spread_labels([px(wmax, curves[str(c)][-1])[1] for c in CENTILES], 13.0)  # 9 px text: 12.3 high
    for c, ly in zip(CENTILES, label_ys):
        pts = " ".join("%.1f,%.1f" % px(w, h) for w, h in zip(curves["weeks"], curves[str(c)]))
        dash = CENTILE_DASH[c][0]
        style = ('stroke="#1f6f43" stroke-width="2"' if c == 50 else
                 f'stroke="#3d6b53" stroke-width="1.2" stroke-dasharray="{dash}"')
        parts.append(f'<polyline points="{pts}" fill="none" {style} data-centile="{c}"/>')
        parts.append(f'<text x="{x1 + 3:.1f}" y="{ly + 3:.1f}" font-size="9" class="centile-label">'
                     f'{html.escape(t[f"centile_{c}"])}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
                 f'GA ({html.escape(t["weeks"])})</text>')
    parts.append(f'<text x="12" y="{(y0 + y1) / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(y0 + y1) / 2})">HC (mm)</text>')
    if hc_mm is not None and ga_weeks is not None and wmin <= ga_weeks <= wmax:
        x, y = px(ga_weeks, min(max(hc_mm, hmin), hmax))
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#d62728" class="fetus-point"/>'
                     f'<text x="{x + 8:.1f}" y="{y - 6:.1f}" font-size="10" fill="#d62728">'
                     f'{html.escape(t["this_fetus"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def report_html(m, grey: np.ndarray, lang: str = "en") -> str:
    """A self-contained, printable HTML report (the overlay image is embedded)."""
    t = translations(lang)
    e = html.escape
    img64 = base64.b64encode(_overlay_png(grey, m)).decode() if m.ellipse is not None else ""
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in report_rows(m, t)) \
        if m.status != "failed" else ""
    status = "".join(f"<p class='status {e(m.status)}'>{e(s)}</p>" for s in _status_lines(m, t))
    note_items = note_lines(m, t) if m.status != "failed" else []
    notes = (f"<div class='notes'><h2>{e(t['notes'])}</h2><ul>" + "".join(f"<li>{e(x)}</li>" for x in note_items)
             + "</ul></div>") if note_items else ""
    chart = growth_chart_svg(m.head_circumference_mm, m.ga_by_dates_weeks, t, chart=m.chart)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    font_face = ""
    script_font = {"hi": ("Noto Sans Devanagari", "NotoSansDevanagari-Regular.woff2"),
                   "te": ("Noto Sans Telugu", "NotoSansTelugu-Regular.woff2")}.get(lang)
    if script_font:  # embedded (the page's WOFF2 subset), so the report shows the script without the font
        b64 = base64.b64encode((WEB_FONTS_DIR / script_font[1]).read_bytes()).decode()
        font_face = (f'@font-face{{font-family:"{script_font[0]}";'
                     f'src:url(data:font/woff2;base64,{b64}) format("woff2")}}')
    return f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(t['report_title'])}</title>
<style>
{font_face}
body{{font-family:"Noto Sans","Noto Sans Devanagari","Noto Sans Telugu",sans-serif;margin:24px;color:#111}}
h1{{font-size:20px;margin:0 0 8px}} table{{border-collapse:collapse;margin:8px 0}}
th,td{{text-align:left;padding:3px 10px;border-bottom:1px solid #ddd;font-size:13px}}
img{{max-width:100%;border:1px solid #ccc}} .status.flagged,.status.failed{{color:#b00020;font-weight:bold}}
.review{{border:2px solid #b00020;padding:8px;font-weight:bold}}
.notes{{border-left:3px solid #3d6b53;padding:2px 8px;margin:6px 0;color:#223}} .notes ul{{margin:2px 0;padding-left:18px}} .meta{{color:#555;font-size:12px}}
.chart{{width:420px;max-width:100%}} .pics{{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}}
.pics>img{{flex:1 1 420px;min-width:0}} .pics>div{{flex:1 1 380px}} h2{{font-size:15px;margin:4px 0}}
@page{{size:A4;margin:10mm}}
@media print{{body{{margin:0;font-size:11px}} h1{{font-size:17px}} .pics{{flex-wrap:nowrap}}
.pics>img{{width:56%;flex:none}} .pics>div{{width:42%;flex:none}} .chart{{width:100%}}
th,td{{padding:1px 8px;font-size:11px}} .meta{{font-size:9.5px;margin:4px 0}} .status{{margin:3px 0}}
.review{{padding:5px;margin:6px 0 0}} table{{margin:4px 0}}}}
</style></head><body>
<h1>{e(t['report_title'])}</h1>
<p class="meta">{e(t['scan'])}: {e(Path(m.source).name)} · {e(t['date_generated'])}: {e(now)} ·
{e(SOFTWARE_NAME)} · {e(t['model_version'])}: {e(m.model_version)}</p>
{status}
{notes}
<div class="pics">
{f'<img alt="{e(t["canvas_label"])}" src="data:image/png;base64,{img64}">' if img64 else ''}
<div><h2>{e(chart_label('growth_chart', m.chart, t))}</h2>
{chart}
{f'<p class="meta">{e(chart_note(m, t))}</p>' if chart_note(m, t) else ''}</div>
</div>
<table>{rows}</table>
<p class="meta">{e(t['conventions'])} {e(t['conventions_bpd'])} {e(t['units_note'])}</p>
<p class="meta">{e(t['formula'])}: {'<br>'.join(e(x) for x in formula_lines(m))}</p>
<p class="review">{e(t['review_statement'])}</p>
</body></html>"""


def report_pdf(m, grey: np.ndarray, lang: str = "en") -> bytes:
    """The report as PDF bytes (A4, one page: the scan's picture shrinks until all fits).
    Needs fpdf2 and uharfbuzz (the ``web`` extra)."""
    try:
        import fpdf  # noqa: F401
    except ImportError:
        raise RuntimeError("PDF reports need the 'web' extra: pip install 'fetalhead[web]'") from None
    for image_width_mm in PDF_IMAGE_WIDTHS_MM:
        pdf = _pdf(m, grey, lang, image_width_mm)
        if pdf.page_no() == 1:
            break
    return bytes(pdf.output())


#: Widths (mm) tried for the scan's picture in the PDF, largest first, until the report fits on one A4 page.
PDF_IMAGE_WIDTHS_MM = (95.0, 80.0, 65.0, 50.0)


def new_pdf(lang: str):
    """An A4 PDF (fpdf2) with its first page, the bundled Noto fonts (Latin, Devanagari, Telugu, each the
    others' fallback) and text shaping; returns ``(pdf, main_font)``, the font of ``lang``'s script. The
    scan's report and the visit's report both start here."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_auto_page_break(True, margin=12)
    pdf.add_font("NotoSans", fname=str(_FONTS / "NotoSans-Regular.ttf"))
    pdf.add_font("NotoSans", style="B", fname=str(_FONTS / "NotoSans-Bold.ttf"))
    pdf.add_font("NotoDeva", fname=str(_FONTS / "NotoSansDevanagari-Regular.ttf"))
    pdf.add_font("NotoTelu", fname=str(_FONTS / "NotoSansTelugu-Regular.ttf"))
    main = {"en": "NotoSans", "hi": "NotoDeva", "te": "NotoTelu"}[lang]
    pdf.set_fallback_fonts(["NotoSans", "NotoDeva", "NotoTelu"], exact_match=False)
    try:
        pdf.set_text_shaping(True)
    except Exception:  # uharfbuzz missing: Indic scripts would not be shaped correctly
        if lang != "en":
            raise RuntimeError("Hindi and Telugu PDF reports need uharfbuzz: pip install 'fetalhead[web]'") from None
    pdf.add_page()
    return pdf, main


def _pdf(m, grey: np.ndarray, lang: str, image_width_mm: float):
    t = translations(lang)
    pdf, main = new_pdf(lang)
    pdf.set_font(main, size=16)
    pdf.cell(0, 9, t["report_title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(main, size=9)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    pdf.multi_cell(0, 5, f"{t['scan']}: {Path(m.source).name}   {t['date_generated']}: {now}   "
                         f"{SOFTWARE_NAME}   {t['model_version']}: {m.model_version}", new_x="LMARGIN",
                   new_y="NEXT")
    pdf.set_font(main, size=11)
    for line in _status_lines(m, t):
        pdf.set_text_color(176, 0, 32) if m.status != "ok" else pdf.set_text_color(20, 60, 100)
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    note_items = note_lines(m, t) if m.status != "failed" else []
    if note_items:  # information, apart from the warnings and not in their colour
        pdf.set_font(main, size=9)
        pdf.set_text_color(40, 60, 50)
        pdf.multi_cell(0, 4.5, t["notes"] + ": " + " · ".join(note_items), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
    # the scan (left) beside the chart (right), then the table under both
    y_top = pdf.get_y() + 1
    bottom = y_top
    if m.ellipse is not None:
        png = _overlay_png(grey, m)
        h, w = grey.shape
        pdf.image(png, x=pdf.l_margin, y=y_top, w=image_width_mm, h=image_width_mm * h / w)
        bottom = y_top + image_width_mm * h / w
    chart_x = pdf.l_margin + image_width_mm + 16
    chart_w = pdf.w - pdf.r_margin - chart_x - 14
    pdf.set_xy(chart_x - 14, y_top)
    pdf.set_font(main, size=9)
    pdf.multi_cell(chart_w + 28, 4.5, chart_label("growth_chart", m.chart, t), new_x="LMARGIN", new_y="NEXT")
    bottom = max(bottom, _pdf_chart(pdf, m, t, main, chart_x, pdf.get_y() + 3, chart_w, 55.0))
    pdf.set_y(bottom + 3)
    if m.status != "failed":
        pdf.set_font(main, size=10)
        with pdf.table(col_widths=(80, 110), text_align="LEFT", first_row_as_headings=False, line_height=5.5,
                       borders_layout="HORIZONTAL_LINES") as table:
            for label, value in report_rows(m, t):
                row = table.row()
                row.cell(label)
                row.cell(value)
    pdf.set_font(main, size=8)
    pdf.multi_cell(0, 4, f"{t['conventions']} {t['conventions_bpd']} {t['units_note']}", align="L",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("NotoSans", size=7)
    pdf.multi_cell(0, 3.5, "\n".join(formula_lines(m)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(main, size=11)
    pdf.set_draw_color(176, 0, 32)
    pdf.set_line_width(0.6)
    pdf.multi_cell(0, 7, t["review_statement"], border=1, new_x="LMARGIN", new_y="NEXT")
    return pdf


def _pdf_chart(pdf, m, t, font, x0: float, y_top: float, w: float, h: float) -> float:
    """The HC chart with its top-left corner at (x0, y_top) mm, w x h mm; returns the y below it and its note."""
    curves = growth_curves("hc", chart=m.chart)
    (wmin, wmax), (hmin, hmax) = CHART_GA_RANGE_WEEKS, chart_hc_range_mm()

    def px(wk, hc):
        return x0 + (wk - wmin) / (wmax - wmin) * w, y_top + h - (hc - hmin) / (hmax - hmin) * h

    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.2)
    pdf.rect(x0, y_top, w, h)
    pdf.set_font("NotoSans", size=7)
    for wk in range(int(wmin), int(wmax) + 1, 4):
        x, _ = px(wk, hmin)
        pdf.line(x, y_top + h, x, y_top + h + 1)
        pdf.text(x - 1.5, y_top + h + 4, str(wk))
    for hc in range(int(hmin), int(hmax) + 1, 50):
        _, y = px(wmin, hc)
        pdf.line(x0 - 1, y, x0, y)
        pdf.text(x0 - 8, y + 1, str(hc))
    pdf.text(x0 - 11, y_top - 1, "HC (mm)")
    pdf.set_font(font, size=7)
    pdf.set_xy(x0, y_top + h + 4.5)
    pdf.cell(w, 4, f"GA ({t['weeks']})", align="C")
    pdf.set_font(font, size=7)
    label_ys = spread_labels([px(wmax, curves[str(c)][-1])[1] for c in CENTILES], 3.0)
    for c, ly in zip(CENTILES, label_ys):
        pts = [px(wk, v) for wk, v in zip(curves["weeks"], curves[str(c)])]
        pdf.set_draw_color(31, 111, 67) if c == 50 else pdf.set_draw_color(61, 107, 83)
        pdf.set_line_width(0.5 if c == 50 else 0.3)
        dash = CENTILE_DASH[c][1]
        pdf.set_dash_pattern(dash=dash, gap=dash * 0.8 if dash else 0)
        pdf.polyline(pts)
        pdf.set_dash_pattern()
        label = t[f"centile_{c}"]
        pdf.set_font("NotoSans" if label.isascii() else font, size=7)  # text() has no font fallback
        pdf.text(x0 + w + 1.5, ly + 1, label)
    if m.head_circumference_mm is not None and m.ga_by_dates_weeks is not None and wmin <= m.ga_by_dates_weeks <= wmax:
        x, y = px(m.ga_by_dates_weeks, min(max(m.head_circumference_mm, hmin), hmax))
        pdf.set_fill_color(214, 39, 40)
        pdf.circle(x=x, y=y, radius=1.3, style="F")
        pdf.set_fill_color(255, 255, 255)  # the table drawn after must not inherit the dot's red
        pdf.set_font(font, size=7)
        pdf.set_xy(x + 2, y - 5)
        pdf.cell(30, 4, t["this_fetus"])
    note = chart_note(m, t)
    pdf.set_xy(x0 - 12, y_top + h + 9)
    if note:
        pdf.set_font(font, size=8)
        pdf.multi_cell(w + 24, 4, note, align="L", new_x="LMARGIN", new_y="NEXT")
    return pdf.get_y()
