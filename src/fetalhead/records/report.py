"""A visit's printable report (HTML, PDF; en, hi, te): the patient, the sonographer, the saved
measurements and their mean, dating, AC/FL, both fetal weights (the setting's first), growth since the
previous visit, the visits on the HC growth chart, the software and model version, every formula named.

Built with :mod:`fetalhead.outputs.report`'s machinery (translations, fonts, the growth chart, the PDF's
fonts and shaping). The report holds the patient's fields because a user asked for it; nothing here is
logged or written to a file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html

from ..clinical.biometry import CHART_NAMES, DEFAULT_CHART
from ..clinical.growth import INTERGROWTH_EFW_GA_RANGE_WEEKS, intergrowth_efw_value_at_centile
from ..clinical.limits import CHART_GA_RANGE_WEEKS, chart_hc_range_mm
from ..outputs.display import centile_band, english_ordinal_suffix, format_weeks_days
from ..outputs.report import fill, growth_chart_svg, new_pdf, spacing_value_text, translations
from .._version import SOFTWARE_NAME

__all__ = ["centile_text", "visit_report_rows", "visit_report_html", "visit_report_pdf", "visit_chart_svg",
           "efw_curves", "EFW_CHART_RANGE_G"]

#: The EFW chart's axis (g): 0 to above the INTERGROWTH-21st 97th centile at 40 weeks (about 4.2 kg).
EFW_CHART_RANGE_G = (0.0, 4500.0)


def _n(v, nd=1, unit=""):
    return "—" if v is None else f"{float(v):.{nd}f}{(' ' + unit) if unit else ''}"


def _model_versions(summary: dict) -> str:
    return ", ".join(sorted({str(m.get("model_version") or "") for m in summary.get("measurements", [])} - {""}))


def centile_text(centile: float, t: dict) -> str:
    """"23rd centile", "below the 1st centile", "above the 99th centile" (never a bare 0 or 100;
    :func:`centile_band`), the ordinal as the language writes it (``centile_nth``: 23rd, 23वाँ, 23వ): the
    word "centile" always said, as a mean's centile stands alone in the visit."""
    where, n = centile_band(centile)
    if where != "at":
        return t[f"centile_{where}_named"]
    return fill(t["centile_n_named"], nth=fill(t["centile_nth"], n=n, en_suffix=english_ordinal_suffix(n)))


def visit_report_rows(summary: dict, patient: dict, t: dict) -> list[tuple[str, str]]:
    """(label, value) rows of the report, in the report's language (numbers and units international)."""
    cent = summary.get("centiles") or {}

    def with_c(value: str, key: str) -> str:
        c = cent.get(key)
        return value if c is None or value == "—" else f"{value} ({centile_text(c, t)})"

    rows = [(t["patient_id"], patient["patient_id"])]
    if patient.get("name"):
        rows.append((t["patient_name"], patient["name"]))
    if patient.get("age_years") is not None:
        rows.append((t["patient_age"], _n(patient["age_years"], 0)))
    rows += [(t["exam_date"], summary["exam_date"]), (t["sonographer"], summary.get("sonographer") or "—")]
    if summary.get("lmp"):
        rows += [(t["lmp"], summary["lmp"]), (t["ga_by_lmp"], format_weeks_days(summary["ga_by_lmp_weeks"])),
                 (t["due_date"], summary["due_date"] or "—")]
    elif summary.get("ga_by_dates_weeks") is not None:
        rows.append((t["ga_by_dates_typed"], format_weeks_days(summary["ga_by_dates_weeks"])))
    ga_hc = [f"{format_weeks_days(summary.get('ga_by_hc_hadlock_weeks'))} (Hadlock 1984)"]
    if summary.get("ga_by_hc_intergrowth_weeks") is not None:
        ga_hc.append(f"{format_weeks_days(summary['ga_by_hc_intergrowth_weeks'])} (INTERGROWTH-21st 2016)")
    rows.append((t["ga_by_mean_hc"], "; ".join(ga_hc)))
    rows += [(f"{t['mean']}: {t['hc']}", with_c(_n(summary.get("mean_hc_mm"), 1, "mm"), "hc")),
             (f"{t['mean']}: {t['bpd']}", with_c(_n(summary.get("mean_bpd_mm"), 1, "mm"), "bpd")),
             (f"{t['mean']}: {t['ofd']}", with_c(_n(summary.get("mean_ofd_mm"), 1, "mm"), "ofd")),
             (t["ac"], with_c(_n(summary.get("ac_mm"), 1, "mm"), "ac")),
             (t["fl"], with_c(_n(summary.get("fl_mm"), 1, "mm"), "fl"))]
    efws = [("hadlock1985", "Hadlock 1985"), ("intergrowth2017", "INTERGROWTH-21st 2017")]
    efws.sort(key=lambda e: e[0] != summary.get("efw_method"))
    rows.append((t["efw"], "; ".join(f"{_n(summary.get(f'efw_{k}_g'), 0, 'g')} ({name})" for k, name in efws)))
    if cent.get("efw") is not None:
        rows.append((t["efw_centile"], centile_text(cent["efw"], t)))
    prev, growth = summary.get("previous"), summary.get("growth")
    if prev:
        rows.append((t["previous_visit"], f"{prev['exam_date']}: HC {_n(prev.get('mean_hc_mm'), 1, 'mm')}, "
                                          f"AC {_n(prev.get('ac_mm'), 1, 'mm')}, EFW {_n(prev.get('efw_g'), 0, 'g')}"))
        parts = []
        for key, label, unit in (("hc_mm_per_week", "HC", "mm"), ("ac_mm_per_week", "AC", "mm"),
                                 ("fl_mm_per_week", "FL", "mm"), ("efw_g_per_week", "EFW", "g")):
            if growth.get(key) is not None:
                change = growth["centile_change"].get(label.lower())
                extra = f", {t['centile_change']} {change:+.0f}" if change is not None else ""
                parts.append(f"{label} {growth[key]:+.1f} {unit} {t['per_week']}{extra}")
        rows.append((t["growth_since"], "; ".join(parts) or "—"))
    if summary.get("notes"):
        rows.append((t["visit_notes"], summary["notes"]))
    return rows


def _measurement_head(t: dict) -> tuple[str, ...]:
    return ("#", "", "HC (mm)", "BPD (mm)", "OFD (mm)", t["spacing_source"], "")


def _measurement_rows(summary: dict, t: dict) -> list[tuple[str, ...]]:
    """Each saved measurement: when, HC/BPD/OFD (mm), the pixel size it was measured with and its source
    (a wrong one can be traced in the patient's file), and its status in the report's language."""
    def status(m):
        word = t.get(f"status_word_{m.get('status')}", str(m.get("status", "")))
        return f"{word}; {t['saved_other_patient_id']}" if m.get("saved_with_other_patient_id") else word

    def spacing(m):
        source = m.get("spacing_source") or "none"
        return spacing_value_text(m.get("pixel_spacing_mm"), source, t) if source != "none" else "—"

    return [(str(i + 1), (m.get("saved_at") or "")[:16].replace("T", " "), _n(m.get("hc_mm"), 1),
             _n(m.get("bpd_mm"), 1), _n(m.get("ofd_mm"), 1), spacing(m), status(m))
            for i, m in enumerate(summary.get("measurements", []))]


def _spread_line(summary: dict, t: dict) -> str:
    codes = {n.get("code") for n in summary.get("review_notes") or []}
    lines = []
    if "hc_spread" in codes:
        lines.append(fill(t["hc_spread_note"], spread=f"{summary['hc_spread_percent']:.1f}"))
    if "hc_far_from_ga" in codes and summary.get("hc_zscore") is not None:
        lines.append(fill(t["visit_hc_far_from_ga"], z=f"{summary['hc_zscore']:+.1f}",
                          ga=format_weeks_days(summary["ga_by_dates_weeks"])))
    return " ".join(lines)


def _formula_lines(summary: dict) -> list[str]:
    f = summary.get("formulas") or {}
    keys = ("ga_lmp", "ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks", "hc_centile", "ac_centile", "fl_centile",
            "efw_hadlock1985", "efw_intergrowth2017", "efw_centile", "hc_spread")
    return [f[k] for k in keys if k in f]


def _points(history: list[dict]) -> list[tuple[float, float, str]]:
    return [(v["ga_by_dates_weeks"], v["mean_hc_mm"], v["exam_date"]) for v in history
            if v.get("ga_by_dates_weeks") is not None and v.get("mean_hc_mm") is not None]


def efw_curves(step_weeks: float = 0.5) -> dict:
    """The INTERGROWTH-21st EFW standard's centile curves (g), 22-40 weeks (Stirnemann et al. 2017)."""
    from ..outputs.report import CENTILES

    lo, hi = INTERGROWTH_EFW_GA_RANGE_WEEKS
    weeks = [lo + i * step_weeks for i in range(int(round((hi - lo) / step_weeks)) + 1)]
    out = {"weeks": weeks}
    for c in CENTILES:
        out[str(c)] = [intergrowth_efw_value_at_centile(c, w) for w in weeks]
    return out


def _efw_points(history: list[dict]) -> list[tuple[float, float, str]]:
    lo, hi = INTERGROWTH_EFW_GA_RANGE_WEEKS
    return [(v["ga_by_dates_weeks"], v["efw_g"], v["exam_date"]) for v in history
            if v.get("ga_by_dates_weeks") is not None and v.get("efw_g") and lo <= v["ga_by_dates_weeks"] <= hi]


#: A visit's date label on a chart: font size (px) and the width of one of its characters (digits and dashes of
#: a sans-serif font are about 0.6 em), to keep the label inside the plot.
DATE_FONT_PX, DATE_CHAR_EM = 9, 0.6


def _visit_mark(x: float, y: float, date: str, plot: tuple[float, float, float, float]) -> str:
    """A visit's point with its date beside it, on the side where the date stays inside the plot ``plot``
    = (x0, y0, x1, y1): left of the point, or right of it near the chart's left edge (where it covered the
    axis's figures), below it near the top."""
    x0, y0, x1, _ = plot
    width = len(date) * DATE_FONT_PX * DATE_CHAR_EM
    left = x - 6 - width >= x0 + 2 or x + 6 + width > x1
    tx, anchor = (x - 6, "end") if left else (x + 6, "start")
    ty = y - 7 if y - 7 - DATE_FONT_PX >= y0 else y + 7 + DATE_FONT_PX
    return (f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4.5" fill="#d62728" class="visit-point"/>'
            f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="{DATE_FONT_PX}" text-anchor="{anchor}" fill="#d62728" '
            f'class="visit-date">{html.escape(date)}</text>')


def efw_chart_svg(history: list[dict], t: dict, width=440, height=300) -> str:
    """The INTERGROWTH-21st EFW chart (3rd-97th centiles, 22-40 weeks) with each visit's EFW, dated."""
    from ..outputs.report import CENTILE_DASH, CENTILES

    curves = efw_curves()
    x0, y0, x1, y1 = 52, 12, width - 40, height - 36
    (wmin, wmax), (gmin, gmax) = INTERGROWTH_EFW_GA_RANGE_WEEKS, EFW_CHART_RANGE_G

    def px(w, g):
        return x0 + (w - wmin) / (wmax - wmin) * (x1 - x0), y1 - (min(max(g, gmin), gmax) - gmin) / (gmax - gmin) * (y1 - y0)

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" role="img" '
             f'aria-label="{e(t["efw"])} ({e(CHART_NAMES[DEFAULT_CHART])})">',
             f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#888"/>']
    for w in range(int(wmin), int(wmax) + 1, 2):
        x, _ = px(w, gmin)
        parts.append(f'<text x="{x:.1f}" y="{y1 + 16}" font-size="10" text-anchor="middle">{w}</text>')
    for g in range(int(gmin), int(gmax) + 1, 500):
        _, y = px(wmin, g)
        parts.append(f'<text x="{x0 - 6}" y="{y + 3:.1f}" font-size="10" text-anchor="end">{g}</text>')
    for c in CENTILES:
        pts = " ".join("%.1f,%.1f" % px(w, g) for w, g in zip(curves["weeks"], curves[str(c)]))
        style = ('stroke="#1f6f43" stroke-width="2"' if c == 50 else
                 f'stroke="#3d6b53" stroke-width="1.2" stroke-dasharray="{CENTILE_DASH[c][0]}"')
        parts.append(f'<polyline points="{pts}" fill="none" {style} data-centile="{c}"/>')
        parts.append(f'<text x="{x1 + 3:.1f}" y="{px(wmax, curves[str(c)][-1])[1] + 3:.1f}" font-size="9">'
                     f'{e(t[f"centile_{c}"])}</text>')
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{height - 4}" font-size="11" text-anchor="middle">'
                 f'GA ({e(t["weeks"])})</text>')
    parts.append(f'<text x="12" y="{(y0 + y1) / 2}" font-size="11" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(y0 + y1) / 2})">EFW (g)</text>')
    for ga, g, date in _efw_points(history):
        x, y = px(ga, g)
        parts.append(_visit_mark(x, y, date, (x0, y0, x1, y1)))
    parts.append("</svg>")
    return "".join(parts)


def visit_chart_svg(history: list[dict], t: dict, width=440, height=300) -> str:
    """The INTERGROWTH-21st HC chart with each visit's mean HC at its GA by dates, dated."""
    svg = growth_chart_svg(None, None, t, width, height, chart=DEFAULT_CHART)
    x0, y0, x1, y1 = 48, 12, width - 40, height - 36  # the axes growth_chart_svg draws
    (wmin, wmax), (hmin, hmax) = CHART_GA_RANGE_WEEKS, chart_hc_range_mm()
    marks = []
    for ga, hc, date in _points(history):
        if wmin <= ga <= wmax:
            x = x0 + (ga - wmin) / (wmax - wmin) * (x1 - x0)
            y = y1 - (min(max(hc, hmin), hmax) - hmin) / (hmax - hmin) * (y1 - y0)
            marks.append(_visit_mark(x, y, date, (x0, y0, x1, y1)))
    return svg.replace("</svg>", "".join(marks) + "</svg>")


def visit_report_html(summary: dict, patient: dict, history: list[dict], pictures: list[bytes],
                      lang: str = "en") -> str:
    """A self-contained, printable HTML report of the visit (its last saved picture embedded)."""
    t = translations(lang)
    e = html.escape
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in visit_report_rows(summary, patient, t))
    head = _measurement_head(t)
    meas = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in _measurement_rows(summary, t))
    pics = "".join(f'<img alt="scan" src="data:image/png;base64,{base64.b64encode(p).decode()}">' for p in pictures)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    spread = _spread_line(summary, t)
    efw_html = (f"<h2>{e(t['efw'])} ({e(CHART_NAMES[DEFAULT_CHART])}, Stirnemann 2017)</h2>{efw_chart_svg(history, t)}"
                if _efw_points(history) else "")
    return f"""<!doctype html>
<html lang="{e(lang)}"><head><meta charset="utf-8"><title>{e(t['visit_report_title'])}</title>
<style>body{{font-family:"Noto Sans","Noto Sans Devanagari","Noto Sans Telugu",sans-serif;margin:24px;color:#111}}
h1{{font-size:20px;margin:0 0 8px}} h2{{font-size:15px;margin:10px 0 4px}} table{{border-collapse:collapse}}
th,td{{text-align:left;padding:3px 10px;border-bottom:1px solid #ddd;font-size:13px}} .meta{{color:#555;font-size:12px}}
img{{max-width:48%;border:1px solid #ccc}} .chart{{width:420px;max-width:100%}} .warn{{color:#b00020;font-weight:bold}}
.review{{border:2px solid #b00020;padding:8px;font-weight:bold}} @page{{size:A4;margin:10mm}}</style></head><body>
<h1>{e(t['visit_report_title'])}</h1>
<p class="meta">{e(t['date_generated'])}: {e(now)} · {e(SOFTWARE_NAME)} · {e(t['model_version'])}: {e(_model_versions(summary) or '—')}</p>
<table>{rows}</table>
<h2>{e(t['saved_measurements'])}</h2>
<table><tr>{''.join(f'<th>{e(h)}</th>' for h in head)}</tr>{meas}</table>
{f'<p class="warn">{e(spread)}</p>' if spread else ''}
<h2>{e(t['visit_chart'])} ({e(CHART_NAMES[DEFAULT_CHART])})</h2>
{visit_chart_svg(history, t)}
{efw_html}
{pics}
<h2>{e(t['formulas_used'])}</h2>
<p class="meta">{'<br>'.join(e(x) for x in _formula_lines(summary))}</p>
<p class="review">{e(t['review_statement'])}</p>
</body></html>"""


def visit_report_pdf(summary: dict, patient: dict, history: list[dict], pictures: list[bytes],
                     lang: str = "en") -> bytes:
    """The visit's report as PDF bytes (A4). Needs fpdf2 and uharfbuzz (the ``web`` extra)."""
    try:
        import fpdf  # noqa: F401
    except ImportError:
        raise RuntimeError("PDF reports need the 'web' extra: pip install 'fetalhead[web]'") from None
    t = translations(lang)
    pdf, main = new_pdf(lang)
    pdf.set_font(main, size=15)
    pdf.cell(0, 8, t["visit_report_title"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(main, size=8)
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    pdf.multi_cell(0, 4.5, f"{t['date_generated']}: {now}   {SOFTWARE_NAME}   {t['model_version']}: "
                           f"{_model_versions(summary) or '—'}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(main, size=9)
    with pdf.table(col_widths=(62, 128), text_align="LEFT", first_row_as_headings=False, line_height=4.8,
                   borders_layout="HORIZONTAL_LINES") as table:
        for label, value in visit_report_rows(summary, patient, t):
            row = table.row()
            row.cell(label)
            row.cell(value)
    pdf.ln(1)
    pdf.set_font(main, size=10)
    pdf.cell(0, 6, t["saved_measurements"], new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(main, size=7.5)
    from fpdf.fonts import FontFace

    # headings in bold Latin (no bold Devanagari or Telugu font is bundled: the fallback fonts write those)
    with pdf.table(col_widths=(6, 26, 17, 17, 17, 79, 28), text_align="LEFT", line_height=3.8,
                   headings_style=FontFace(family="NotoSans", emphasis="BOLD"),
                   borders_layout="HORIZONTAL_LINES") as table:
        head = table.row()
        for h in _measurement_head(t):
            head.cell(h)
        for r in _measurement_rows(summary, t):
            row = table.row()
            for c in r:
                row.cell(c)
    spread = _spread_line(summary, t)
    if spread:
        pdf.set_font(main, size=9)
        pdf.set_text_color(176, 0, 32)
        pdf.multi_cell(0, 5.5, spread, new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.ln(1)
    # the chart: each visit's mean HC on the INTERGROWTH-21st curves
    pdf.set_font(main, size=9)
    pdf.cell(0, 6, f"{t['visit_chart']} ({CHART_NAMES[DEFAULT_CHART]})", new_x="LMARGIN", new_y="NEXT")
    axis = (main, f"GA ({t['weeks']})")  # the GA axis in the report's language, as on the page's charts
    _pdf_visit_chart(pdf, history, pdf.l_margin + 10, pdf.get_y() + 4, 80.0, 45.0, axis=axis)
    if _efw_points(history):
        _pdf_visit_chart(pdf, history, pdf.l_margin + 108, pdf.get_y() + 4, 72.0, 45.0, efw=True, axis=axis)
    elif pictures:
        pdf.image(pictures[-1], x=pdf.l_margin + 110, y=pdf.get_y() + 1, w=70.0)
    pdf.set_y(pdf.get_y() + 56)
    pdf.set_font("NotoSans", size=6.5)
    pdf.multi_cell(0, 3.2, "\n".join(_formula_lines(summary)), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    pdf.set_font(main, size=9.5)
    pdf.set_draw_color(176, 0, 32)
    pdf.set_line_width(0.6)
    pdf.multi_cell(0, 6, t["review_statement"], border=1, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _pdf_visit_chart(pdf, history, x0, y_top, w, h, efw: bool = False, axis=("NotoSans", "GA (weeks)")) -> None:
    """The HC chart (or, with ``efw``, the EFW chart) with each visit's point, dated; ``axis``: the font and
    the words of the GA axis (the report's language)."""
    from ..outputs.report import CENTILES, growth_curves

    if efw:
        curves = efw_curves()
        (wmin, wmax), (vmin, vmax), step, label = INTERGROWTH_EFW_GA_RANGE_WEEKS, EFW_CHART_RANGE_G, 1000, "EFW (g)"
        points = _efw_points(history)
    else:
        curves = growth_curves("hc", chart=DEFAULT_CHART)
        (wmin, wmax), (vmin, vmax), step, label = CHART_GA_RANGE_WEEKS, chart_hc_range_mm(), 50, "HC (mm)"
        points = _points(history)

    def px(wk, v):
        return x0 + (wk - wmin) / (wmax - wmin) * w, y_top + h - (min(max(v, vmin), vmax) - vmin) / (vmax - vmin) * h

    pdf.set_draw_color(120, 120, 120)
    pdf.set_line_width(0.2)
    pdf.rect(x0, y_top, w, h)
    pdf.set_font("NotoSans", size=6)
    for wk in range(int(wmin), int(wmax) + 1, 4):
        x, _ = px(wk, vmin)
        pdf.text(x - 1.2, y_top + h + 3, str(wk))
    for v in range(int(vmin // step + 1) * step, int(vmax) + 1, step):
        _, y = px(wmin, v)
        pdf.text(x0 - 7, y + 0.8, str(v))
    pdf.text(x0 - 9, y_top - 2.5, label)
    pdf.set_font(axis[0], size=6)  # a cell, not text(): a cell writes the Latin "GA" with the fallback font
    here = (pdf.get_x(), pdf.get_y())  # the page's flow goes on where it was (the next chart sits beside)
    pdf.set_xy(x0, y_top + h + 3.6)
    pdf.cell(w, 3.4, axis[1], align="C")
    pdf.set_xy(*here)
    pdf.set_font("NotoSans", size=6)
    for c in CENTILES:
        pdf.set_draw_color(31, 111, 67) if c == 50 else pdf.set_draw_color(120, 160, 135)
        pts = [px(wk, v) for wk, v in zip(curves["weeks"], curves[str(c)])]
        for (xa, ya), (xb, yb) in zip(pts, pts[1:]):
            pdf.line(xa, ya, xb, yb)
    pdf.set_fill_color(214, 39, 40)
    for ga, v, date in points:
        if wmin <= ga <= wmax:
            x, y = px(ga, v)
            pdf.circle(x=x, y=y, radius=1.1, style="F")
            pdf.text(x - 14, y - 1.5, date)
