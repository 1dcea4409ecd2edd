"""The clinical validation kit: fetalhead against a hospital's own sonographers' calipers.

``fetalhead validate SCANS --manual manual.csv --out report.html`` (or ``report.pdf``) measures every
scan named in ``manual.csv`` and writes, beside the report, ``report.json`` (the figures, per
measurement: ``bias_mm``, ``loa_low_mm``, ``loa_high_mm``, ``icc``, ``mad_mm``, ``n``, and every
comparison in full), ``agreement_summary.csv`` (the report's table, one row per measure and
comparison) and ``agreement.csv`` (one row per scan, for the paper's own analysis).
``fetalhead evaluate PRED GT --plots DIR`` draws the same plots for a results CSV against an
HC18-layout reference.

What is computed (:mod:`fetalhead.clinical.agreement` holds the statistics and their sources):

* per measurement (HC, BPD, OFD) and comparison (fetalhead vs observer 1, vs observer 2, observer 1
  vs observer 2): Bland-Altman bias and 95 % limits of agreement with their 95 % confidence
  intervals, in mm and in % of the pair's mean; ICC(2,1) (two-way random effects, absolute
  agreement, one rater; Shrout and Fleiss 1979: the two methods are a sample of the ways a head is
  measured, and a constant offset counts against agreement); the mean absolute difference overall
  and per trimester (the GA by dates when given, else the GA that Hadlock 1984 gives for the first
  observer's HC); the share within +/-3 % of the observer;
* the gestational-age difference in days (Hadlock 1984 from fetalhead's HC minus from the
  observer's HC);
* every flagged or failed scan, with a thumbnail of what was measured and the reason.

Scans that fetalhead failed on have no figure to compare: they are listed, and left out of the
agreement (the report says how many).

Plots use matplotlib (the ``validate`` extra); the HTML report embeds them, nothing is fetched
when it is viewed.
"""

from __future__ import annotations

import base64
import csv
import datetime as _dt
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..clinical.agreement import (CLINICAL_TOLERANCE_PERCENT, bland_altman, icc_2_1, trimester, within_percent)
from ..clinical.biometry import OutOfRangeError, ga_from_hc_hadlock1984
from ..clinical.limits import (GA_BY_DATES_RANGE_WEEKS, PIXEL_SIZE_RANGE_MM, PLAUSIBLE_DIAMETER_RANGE_MM,
                     PLAUSIBLE_HC_RANGE_MM)

__all__ = ["ManualRow", "ManualCsvError", "read_manual", "compare", "plot_bland_altman", "write_report",
           "validate", "MEASURES", "evaluation_plots"]

#: The measurements compared: (name, result attribute of fetalhead.measurement.Measurement).
MEASURES = {"hc": "head_circumference_mm", "bpd": "biparietal_diameter_mm", "ofd": "occipitofrontal_diameter_mm"}
MEASURE_NAMES = {"hc": "HC", "bpd": "BPD", "ofd": "OFD"}
_RANGES = {"hc": PLAUSIBLE_HC_RANGE_MM, "bpd": PLAUSIBLE_DIAMETER_RANGE_MM, "ofd": PLAUSIBLE_DIAMETER_RANGE_MM,
           "ga_weeks": GA_BY_DATES_RANGE_WEEKS, "pixel_size_mm": PIXEL_SIZE_RANGE_MM}
_UNITS = {"ga_weeks": "weeks", "pixel_size_mm": "mm"}


class ManualCsvError(ValueError):
    """``manual.csv`` cannot be used: the message names the file, the line and the problem."""


@dataclass
class ManualRow:
    """One scan's manual measurements (mm); ``None`` where not given."""

    filename: str
    line: int
    observer_1: dict = field(default_factory=dict)  # "hc" -> mm
    observer_2: dict = field(default_factory=dict)
    ga_weeks: float | None = None
    pixel_size_mm: float | None = None


def _number(text: str, column: str, where: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ManualCsvError(f"{where}: {column} {text!r} is not a number") from None
    key = column if column in _RANGES else column.split("_mm")[0]
    lo, hi = _RANGES[key]
    if not (math.isfinite(value) and lo <= value <= hi):
        unit = _UNITS.get(key, "mm")
        raise ManualCsvError(f"{where}: {column} {value:g} is outside {lo:g}-{hi:g} {unit}")
    return value


def read_manual(path: str | Path) -> list[ManualRow]:
    """The rows of ``manual.csv``: ``filename``, any of ``hc_mm``, ``bpd_mm``, ``ofd_mm`` (a
    sonographer's calipers), optionally ``hc_mm_2``, ``bpd_mm_2``, ``ofd_mm_2`` (a second observer),
    ``ga_weeks`` (by dates) and ``pixel_size_mm`` (PNG/JPEG; DICOM brings its own).

    Raises :class:`ManualCsvError` naming the file and line of the first problem: a missing column,
    a repeated file, a value that is not a number or is out of range.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManualCsvError(f"{path}: cannot be read ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    if "filename" not in columns:
        raise ManualCsvError(f"{path}: no 'filename' column (the columns are: {', '.join(columns) or 'none'})")
    if not any(f"{m}_mm" in columns for m in MEASURES):
        raise ManualCsvError(f"{path}: no manual measurement: give at least one of hc_mm, bpd_mm, ofd_mm")
    known = {"filename", "ga_weeks", "pixel_size_mm"} | {f"{m}_mm" for m in MEASURES} | {f"{m}_mm_2" for m in MEASURES}
    unknown = [c for c in columns if c not in known]
    if unknown:
        raise ManualCsvError(f"{path}: unknown column(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    rows, seen = [], {}
    for line, raw in enumerate(reader, start=2):
        raw = {(k or "").strip(): (v or "") for k, v in raw.items()}
        where = f"{path} line {line}"
        name = Path(raw.get("filename", "").strip()).name
        if not name:
            raise ManualCsvError(f"{where}: empty filename")
        if name in seen:
            raise ManualCsvError(f"{where}: {name} is already on line {seen[name]}")
        seen[name] = line
        row = ManualRow(name, line, ga_weeks=_number(raw.get("ga_weeks", ""), "ga_weeks", where),
                        pixel_size_mm=_number(raw.get("pixel_size_mm", ""), "pixel_size_mm", where))
        for m in MEASURES:
            for column, target in ((f"{m}_mm", row.observer_1), (f"{m}_mm_2", row.observer_2)):
                value = _number(raw.get(column, ""), column, where)
                if value is not None:
                    target[m] = value
        if not row.observer_1 and not row.observer_2:
            raise ManualCsvError(f"{where}: {name} has no manual measurement")
        rows.append(row)
    if not rows:
        raise ManualCsvError(f"{path}: no rows")
    return rows


# --- the figures ---------------------------------------------------------------------------------


def _hadlock(hc):
    try:
        return ga_from_hc_hadlock1984(hc) if hc is not None else None
    except OutOfRangeError:
        return None


def _comparison(a: np.ndarray, b: np.ndarray, ga: np.ndarray) -> dict | None:
    keep = np.isfinite(a) & np.isfinite(b)
    a, b, ga = a[keep], b[keep], ga[keep]
    n = int(keep.sum())
    out = {"n": n}
    if n == 0:
        return None
    diff = a - b
    out["mad_mm"] = float(np.mean(np.abs(diff)))
    out["within_3_percent"] = within_percent(a, b, CLINICAL_TOLERANCE_PERCENT)
    out["mad_mm_by_trimester"] = {}
    for name in ("second", "third"):
        sel = np.array([trimester(g) == name for g in ga], bool)
        out["mad_mm_by_trimester"][name] = {"n": int(sel.sum()),
                                            "mad_mm": float(np.mean(np.abs(diff[sel]))) if sel.any() else None}
    if n >= 3:
        ba = bland_altman(a, b)
        pct = bland_altman(200.0 * (a - b) / (a + b), np.zeros(n))
        out.update(bias_mm=ba.bias, sd_mm=ba.sd, loa_low_mm=ba.loa_low, loa_high_mm=ba.loa_high,
                   bias_ci_mm=list(ba.bias_ci), loa_low_ci_mm=list(ba.loa_low_ci), loa_high_ci_mm=list(ba.loa_high_ci),
                   bias_percent=pct.bias, loa_low_percent=pct.loa_low, loa_high_percent=pct.loa_high,
                   icc=icc_2_1(np.column_stack([a, b])))
    else:
        out.update(bias_mm=float(diff.mean()), loa_low_mm=None, loa_high_mm=None, icc=None)
    return out


def _measured_rows(rows: list[ManualRow], measurements: dict) -> list[ManualRow]:
    """The manual rows whose scan fetalhead measured in mm (the ones compared)."""
    return [r for r in rows if measurements.get(r.filename) is not None
            and getattr(measurements[r.filename], "head_circumference_mm", None) is not None]


def _comparison_arrays(measured: list[ManualRow], measurements: dict, m: str) -> dict:
    """Each comparison's two arrays (mm, NaN where missing) of measure ``m`` over the rows ``measured``."""
    auto = np.array([getattr(measurements[r.filename], MEASURES[m]) for r in measured], float)
    o1 = np.array([r.observer_1.get(m, np.nan) for r in measured], float)
    o2 = np.array([r.observer_2.get(m, np.nan) for r in measured], float)
    return {"fetalhead_vs_observer_1": (auto, o1), "fetalhead_vs_observer_2": (auto, o2),
            "observer_1_vs_observer_2": (o1, o2)}


def compare(rows: list[ManualRow], measurements: dict) -> dict:
    """The agreement figures of fetalhead's ``measurements`` (file name -> Measurement) against the
    manual ``rows``; see the module's docstring. Pure: no file is read or written."""
    measured = _measured_rows(rows, measurements)
    ga = np.array([r.ga_weeks if r.ga_weeks is not None else (_hadlock(r.observer_1.get("hc")) or np.nan)
                   for r in measured], float)
    result = {"n_scans": len(rows), "n_compared": len(measured),
              "n_failed": sum(1 for r in rows if measurements.get(r.filename) is None
                              or measurements[r.filename].status == "failed"),
              "n_without_mm": sum(1 for r in rows if measurements.get(r.filename) is not None
                                  and measurements[r.filename].status != "failed"
                                  and measurements[r.filename].head_circumference_mm is None),
              "icc_model": "ICC(2,1): two-way random effects, absolute agreement, one rater (Shrout and Fleiss 1979)",
              "limits_of_agreement": "bias +/- 1.96 SD, 95 % confidence intervals as Bland and Altman 1999",
              "trimester_from": "GA by dates where given, else Hadlock 1984 GA of observer 1's HC",
              "measurements": {}}
    for m in MEASURES:
        comparisons = {}
        for name, (a, b) in _comparison_arrays(measured, measurements, m).items():
            c = _comparison(a, b, ga)
            if c is not None:
                comparisons[name] = c
        if not comparisons:
            continue
        main = comparisons.get("fetalhead_vs_observer_1") or next(iter(comparisons.values()))
        result["measurements"][m] = {k: main.get(k) for k in ("bias_mm", "loa_low_mm", "loa_high_mm", "icc",
                                                                 "mad_mm", "n")}
        result["measurements"][m]["comparisons"] = comparisons
    days = []
    for r in measured:
        a, b = _hadlock(measurements[r.filename].head_circumference_mm), _hadlock(r.observer_1.get("hc"))
        if a is not None and b is not None:
            days.append(7.0 * (a - b))
    if days:
        d = np.array(days)
        result["ga_difference_days"] = {"n": len(d), "mean": float(d.mean()), "sd": float(d.std(ddof=1)) if len(d) > 1
                                        else 0.0, "mean_absolute": float(np.abs(d).mean()),
                                        "min": float(d.min()), "max": float(d.max()),
                                        "method": "Hadlock 1984 GA from fetalhead's HC minus from observer 1's HC"}
    return result


# --- plots ---------------------------------------------------------------------------------------


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise RuntimeError("the validation plots need matplotlib: pip install 'fetalhead[validate]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bland_altman(a, b, title: str, unit: str = "mm", percent: bool = False) -> bytes:
    """A Bland-Altman plot (difference against mean, bias and 95 % limits with their confidence
    intervals shaded) as PNG bytes. ``percent``: differences in % of the pair's mean."""
    plt = _pyplot()
    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    mean = (a + b) / 2.0
    diff = 100.0 * (a - b) / mean if percent else a - b
    fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=110)
    ax.scatter(mean, diff, s=12, alpha=0.7, color="#1f6f43")
    if len(diff) >= 3:
        ba = bland_altman(diff, np.zeros(len(diff)))
        for value, ci, style, label in ((ba.bias, ba.bias_ci, "-", "bias"),
                                        (ba.loa_low, ba.loa_low_ci, "--", "95 % limits"),
                                        (ba.loa_high, ba.loa_high_ci, "--", None)):
            ax.axhline(value, color="#8a0015", linestyle=style, linewidth=1.2, label=label)
            ax.axhspan(ci[0], ci[1], color="#8a0015", alpha=0.08)
            ax.annotate(f"{value:+.2f}", (1.0, value), xycoords=("axes fraction", "data"), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=8, color="#8a0015")
        ax.legend(fontsize=7, loc="upper left")
    ax.axhline(0, color="#888", linewidth=0.6)
    ax.set_xlabel(f"mean of the two ({unit})")
    ax.set_ylabel("difference (%)" if percent else f"difference ({unit})")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


_COMPARISON_TITLES = {"fetalhead_vs_observer_1": "fetalhead - observer 1",
                      "fetalhead_vs_observer_2": "fetalhead - observer 2",
                      "observer_1_vs_observer_2": "observer 1 - observer 2"}


def _plots(rows, measurements, figures) -> list[tuple[str, bytes]]:
    out, measured = [], _measured_rows(rows, measurements)
    for m, fig in figures["measurements"].items():
        arrays = _comparison_arrays(measured, measurements, m)
        for name in fig["comparisons"]:
            a, b = arrays[name]
            for percent in (False, True):
                title = f"{MEASURE_NAMES[m]}: {_COMPARISON_TITLES[name]}" + (" (% of mean)" if percent else " (mm)")
                out.append((title, plot_bland_altman(a, b, title, percent=percent)))
    return out


def evaluation_plots(result: dict, out_dir: str | Path) -> list[Path]:
    """``fetalhead evaluate --plots DIR``: Bland-Altman plots (mm and %) of HC, BPD and OFD of a results
    CSV against the reference (:func:`fetalhead.studies.evaluation.evaluate_predictions`'s ``per_image``)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for m in MEASURES:
        a = np.array([r[f"{m}_pred_mm"] for r in result["per_image"]], float)
        b = np.array([r[f"{m}_ref_mm"] for r in result["per_image"]], float)
        if len(a) < 3:
            continue
        for percent in (False, True):
            title = f"{MEASURE_NAMES[m]}: results - reference" + (" (% of mean)" if percent else " (mm)")
            path = out_dir / f"bland_altman_{m}{'_percent' if percent else ''}.png"
            path.write_bytes(plot_bland_altman(a, b, title, percent=percent))
            written.append(path)
    return written


# --- the report ----------------------------------------------------------------------------------


def _fmt(v, nd=2, sign=False):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:+.{nd}f}" if sign else f"{v:.{nd}f}"


def _csv_number(v, nd=2):
    return "" if v is None else f"{v:.{nd}f}"


def _ci(pair):
    return "" if not pair else f" ({_fmt(pair[0], 2, True)} to {_fmt(pair[1], 2, True)})"


def _table_rows(figures) -> list[list[str]]:
    head = ["", "comparison", "n", "bias mm (95 % CI)", "lower limit mm (95 % CI)", "upper limit mm (95 % CI)",
            "bias % [limits %]", "ICC(2,1)", "MAD mm", "MAD 2nd / 3rd trimester mm",
            f"within ±{CLINICAL_TOLERANCE_PERCENT:g} %"]
    rows = [head]
    for m, fig in figures["measurements"].items():
        for name, c in fig["comparisons"].items():
            tri = c["mad_mm_by_trimester"]
            rows.append([MEASURE_NAMES[m], _COMPARISON_TITLES[name], str(c["n"]),
                         _fmt(c.get("bias_mm"), 2, True) + _ci(c.get("bias_ci_mm")),
                         _fmt(c.get("loa_low_mm"), 2, True) + _ci(c.get("loa_low_ci_mm")),
                         _fmt(c.get("loa_high_mm"), 2, True) + _ci(c.get("loa_high_ci_mm")),
                         f"{_fmt(c.get('bias_percent'), 2, True)} [{_fmt(c.get('loa_low_percent'), 1, True)}, "
                         f"{_fmt(c.get('loa_high_percent'), 1, True)}]",
                         _fmt(c.get("icc"), 3), _fmt(c["mad_mm"]),
                         f"{_fmt(tri['second']['mad_mm'])} (n {tri['second']['n']}) / "
                         f"{_fmt(tri['third']['mad_mm'])} (n {tri['third']['n']})",
                         f"{100 * c['within_3_percent']:.0f} %"])
    return rows


def _review_list(rows, measurements) -> list[dict]:
    out = []
    for r in rows:
        m = measurements.get(r.filename)
        if m is None or m.status in ("flagged", "failed"):
            out.append({"filename": r.filename, "status": "failed" if m is None else m.status,
                        "flags": [] if m is None else list(m.flags),
                        "reason": "not found among the scans" if m is None else m.message})
    return out


def _thumbnail_png(path: Path | None, m) -> bytes | None:
    if path is None or m is None:
        return None
    try:
        import cv2

        from ..measurement import load_scan
        from ..outputs.overlay import draw_overlay

        scan = load_scan(path, path.name, m.frame)
        pic = draw_overlay(scan.image, m, with_text=False) if m.ellipse is not None else \
            cv2.cvtColor(np.clip(scan.image * 255, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
        h, w = pic.shape[:2]
        pic = cv2.resize(pic, (160, max(1, int(160 * h / w))), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".png", pic)
        return buf.tobytes() if ok else None
    except Exception:  # a thumbnail is a help, never a reason to lose the report
        return None


def _html(figures, plots, review, thumbs, meta) -> str:
    e = html.escape
    table = _table_rows(figures)
    head = "".join(f"<th>{e(c)}</th>" for c in table[0])
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in table[1:])
    ga = figures.get("ga_difference_days")
    ga_text = (f"<p>Gestational-age difference ({e(ga['method'])}): mean {ga['mean']:+.1f} days, SD {ga['sd']:.1f}, "
               f"mean absolute {ga['mean_absolute']:.1f} days, range {ga['min']:+.1f} to {ga['max']:+.1f} "
               f"(n {ga['n']}).</p>") if ga else ""
    pics = "".join(f'<figure><img alt="{e(t)}" src="data:image/png;base64,{base64.b64encode(p).decode()}">'
                   f"<figcaption>{e(t)}</figcaption></figure>" for t, p in plots)
    items = []
    for item in review:
        thumb = thumbs.get(item["filename"])
        img = (f'<img alt="{e(item["filename"])}: what was measured" '
               f'src="data:image/png;base64,{base64.b64encode(thumb).decode()}">') if thumb else ""
        items.append(f"<tr><td>{img}</td><td>{e(item['filename'])}</td><td>{e(item['status'])}</td>"
                     f"<td>{e(', '.join(item['flags']))}</td><td>{e(item['reason'])}</td></tr>")
    review_html = ("<table><tr><th>scan</th><th>file</th><th>status</th><th>flags</th><th>reason</th></tr>"
                   + "".join(items) + "</table>") if items else "<p>None.</p>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fetalhead validation report</title>
<style>body{{font-family:sans-serif;margin:24px;color:#111}} table{{border-collapse:collapse;margin:8px 0}}
th,td{{border-bottom:1px solid #ddd;padding:3px 8px;font-size:12px;text-align:left;vertical-align:top}}
figure{{display:inline-block;margin:6px}} figcaption{{font-size:11px;color:#444}} .meta{{color:#555;font-size:12px}}
</style></head><body>
<h1>fetalhead validation report</h1>
<p class="meta">Generated {e(meta['date'])} · model {e(meta['model_version'])} · manual measurements:
{e(meta['manual'])}</p>
<p>{figures['n_scans']} scans in the manual file; {figures['n_compared']} compared; {figures['n_failed']} failed
(no figures; listed below, left out of the agreement){f"; {figures['n_without_mm']} without a pixel size (no mm)"
if figures['n_without_mm'] else ''}.</p>
<h2>Agreement</h2>
<table><tr>{head}</tr>{body}</table>
<p class="meta">{e(figures['icc_model'])}. Limits of agreement: {e(figures['limits_of_agreement'])}.
Trimester: {e(figures['trimester_from'])}; second 14+0 to 27+6 weeks, third from 28+0. MAD: mean absolute
difference. Flagged scans are included in the agreement (they were measured) and listed below.</p>
{ga_text}
<h2>Bland-Altman plots</h2>
{pics}
<h2>Flagged and failed scans</h2>
{review_html}
</body></html>"""


def _pdf(path: Path, figures, plots, review, thumbs, meta) -> None:
    plt = _pyplot()
    from matplotlib.backends.backend_pdf import PdfPages

    table = _table_rows(figures)
    with PdfPages(path) as pdf:
        fig = plt.figure(figsize=(11.69, 8.27))
        fig.text(0.03, 0.96, "fetalhead validation report", fontsize=16, weight="bold", va="top")
        fig.text(0.03, 0.91, f"Generated {meta['date']} · model {meta['model_version']} · manual: {meta['manual']}\n"
                             f"{figures['n_scans']} scans; {figures['n_compared']} compared; {figures['n_failed']} "
                             "failed (listed, left out of the agreement)", fontsize=9, va="top")
        ax = fig.add_axes([0.02, 0.2, 0.96, 0.62])
        ax.axis("off")
        t = ax.table(cellText=table[1:], colLabels=table[0], loc="upper center", cellLoc="left")
        t.auto_set_font_size(False)
        t.set_fontsize(6.5)
        t.scale(1, 1.4)
        ga = figures.get("ga_difference_days")
        notes = f"{figures['icc_model']}. Limits: {figures['limits_of_agreement']}. Trimester: {figures['trimester_from']}."
        if ga:
            notes += (f"\nGA difference ({ga['method']}): mean {ga['mean']:+.1f} d, SD {ga['sd']:.1f}, "
                      f"mean absolute {ga['mean_absolute']:.1f} d (n {ga['n']}).")
        fig.text(0.03, 0.12, notes, fontsize=8, va="top", wrap=True)
        pdf.savefig(fig)
        plt.close(fig)
        for i in range(0, len(plots), 4):
            fig = plt.figure(figsize=(11.69, 8.27))
            for j, (_, png) in enumerate(plots[i:i + 4]):
                ax = fig.add_subplot(2, 2, j + 1)
                ax.imshow(plt.imread(io.BytesIO(png)))
                ax.axis("off")
            fig.tight_layout()
            pdf.savefig(fig)
            plt.close(fig)
        for i in range(0, max(len(review), 1), 12):
            fig = plt.figure(figsize=(8.27, 11.69))
            fig.text(0.05, 0.97, "Flagged and failed scans" + ("" if review else ": none"), fontsize=13, va="top")
            for j, item in enumerate(review[i:i + 12]):
                y = 0.9 - j * 0.074
                thumb = thumbs.get(item["filename"])
                if thumb:
                    ax = fig.add_axes([0.05, y - 0.06, 0.12, 0.065])
                    ax.imshow(plt.imread(io.BytesIO(thumb)))
                    ax.axis("off")
                fig.text(0.2, y, f"{item['filename']}: {item['status']} {', '.join(item['flags'])}", fontsize=8,
                         va="top", weight="bold")
                fig.text(0.2, y - 0.015, item["reason"][:160], fontsize=7, va="top")
            pdf.savefig(fig)
            plt.close(fig)


def write_report(out: str | Path, rows, measurements, paths: dict, meta: dict) -> dict:
    """Write the report (``.html`` or ``.pdf``), ``report.json`` and ``agreement.csv`` beside it;
    return the figures."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".pdf"):
        raise ValueError(f"{out}: the report must end in .html or .pdf")
    figures = compare(rows, measurements)
    review = _review_list(rows, measurements)
    thumbs = {item["filename"]: _thumbnail_png(paths.get(item["filename"]), measurements.get(item["filename"]))
              for item in review}
    plots = _plots(rows, measurements, figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".pdf":
        _pdf(out, figures, plots, review, thumbs, meta)
    else:
        out.write_text(_html(figures, plots, review, thumbs, meta), encoding="utf-8")
    doc = {"generated": meta["date"], "model_version": meta["model_version"], "manual": meta["manual"],
           **{m: v for m, v in figures["measurements"].items()},
           **{k: v for k, v in figures.items() if k != "measurements"}, "flagged_or_failed": review}
    (out.parent / "report.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    with open(out.parent / "agreement_summary.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["measure", "comparison", "n", "bias_mm", "bias_ci_low_mm", "bias_ci_high_mm", "loa_low_mm",
                    "loa_high_mm", "bias_percent", "loa_low_percent", "loa_high_percent", "icc_2_1", "mad_mm",
                    "mad_mm_second_trimester", "mad_mm_third_trimester", "within_3_percent"])
        for m, fig in figures["measurements"].items():
            for name, c in fig["comparisons"].items():
                ci = c.get("bias_ci_mm") or [None, None]
                tri = c["mad_mm_by_trimester"]
                w.writerow([m, name, c["n"], *(_csv_number(v, 4) for v in (
                    c.get("bias_mm"), ci[0], ci[1], c.get("loa_low_mm"), c.get("loa_high_mm"), c.get("bias_percent"),
                    c.get("loa_low_percent"), c.get("loa_high_percent"), c.get("icc"), c["mad_mm"],
                    tri["second"]["mad_mm"], tri["third"]["mad_mm"], c["within_3_percent"]))])
    with open(out.parent / "agreement.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["filename", "status", "ga_weeks"] + [f"{m}_{who}" for m in MEASURES
                                                          for who in ("fetalhead_mm", "observer_1_mm", "observer_2_mm")])
        for r in rows:
            m = measurements.get(r.filename)
            vals = []
            for key, attr in MEASURES.items():
                auto = getattr(m, attr, None) if m is not None else None
                vals += [_csv_number(auto), _csv_number(r.observer_1.get(key)), _csv_number(r.observer_2.get(key))]
            w.writerow([r.filename, "failed" if m is None else m.status, _csv_number(r.ga_weeks, 3)] + vals)
    return figures


def validate(scans, manual: str | Path, out: str | Path, *, model=None, chart: str = "intergrowth") -> dict:
    """``fetalhead validate``: measure the scans named in ``manual`` and write the report.

    ``scans``: files and folders. Raises :class:`ManualCsvError` for an unusable manual file or a
    manual row naming a file that is not among the scans.
    """
    from ..scans.files import collect_scans
    from ..measurement import measure
    from ..model.runtime import load_model

    rows = read_manual(manual)
    found, problems = collect_scans([str(s) for s in scans])
    if problems:
        raise ManualCsvError("; ".join(problems))
    files = {Path(p).name: Path(p) for p in found}
    missing = [r for r in rows if r.filename not in files]
    if missing:
        r = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ManualCsvError(f"{manual} line {r.line}: {r.filename} is not among the scans given{more}")
    model = model or load_model()
    measurements = {}
    for r in rows:
        measurements[r.filename] = measure(files[r.filename], r.pixel_size_mm, ga_weeks=r.ga_weeks, model=model,
                                           spacing_source="manual.csv", chart=chart)
    meta = {"date": _dt.datetime.now().strftime("%Y-%m-%d %H:%M"), "model_version": model.version,
            "manual": Path(manual).name}
    return write_report(out, rows, measurements, {r.filename: files[r.filename] for r in rows}, meta)
