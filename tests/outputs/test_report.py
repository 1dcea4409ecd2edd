"""Printable reports (HTML and PDF) of one measurement, in three languages."""

import html
import re

import numpy as np
import pytest

import fetalhead
import fetalhead.outputs.report
from fetalhead.clinical.geometry import Ellipse
from fetalhead.clinical.limits import CHART_GA_RANGE_WEEKS
from fetalhead.measurement import Measurement, _fill
from fetalhead.outputs.report import chart_label, growth_chart_svg, report_html, report_rows, translations

PS = 0.134737677


def measured(ga=22.0, spacing=0.15):
    m = Measurement("a.png", "ok", quality=0.93, model_version="t", image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 190, 150, 10), spacing, "given", ga)
    return m


def test_rows_show_the_measurement_figures():
    m = measured(ga=19.0)
    rows = dict(report_rows(m, translations("en")))
    t = translations("en")
    assert rows[t["hc"]] == f"{m.head_circumference_mm:.1f} mm"
    assert rows[t["bpd"]] == f"{m.biparietal_diameter_mm:.1f} mm"
    n = round(m.hc_centile)  # as an ordinal: 53rd (the visit's mean says it so too)
    nth = f"{n}{'th' if 11 <= n % 100 <= 13 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"
    assert rows[chart_label("hc_centile", "intergrowth", t)] == f"{nth} (z {m.hc_zscore:+.2f}; GA by dates 19w 0d)"
    assert 1 <= m.hc_centile <= 99
    w, d = fetalhead.outputs.display.weeks_days(m.ga_hc_hadlock_weeks)
    assert rows[t["ga_hadlock"]].startswith(f"{w}w {d}d (90 % range") or rows[t["ga_hadlock"]] == f"{w}w {d}d"
    px_rows = dict(report_rows(measured(spacing=None), t))
    assert "px" in px_rows[t["hc"]] and px_rows[t["bpd"]] == f"{t['not_available']}: {t['withheld_no_pixel_spacing']}"
    assert px_rows[t["ga_hadlock"]] == px_rows[chart_label("hc_centile", "intergrowth", t)] == px_rows[t["bpd"]]


def test_centiles_beyond_the_1st_and_99th_say_so_with_z_and_the_ga_they_refer_to():
    t = translations("en")
    big = dict(report_rows(measured(ga=15.0), t))[chart_label("hc_centile", "intergrowth", t)]  # a 35-week head at 15 weeks
    assert big.startswith("above the 99th (z +") and big.endswith("GA by dates 15w 0d)")
    small = dict(report_rows(measured(ga=39 + 6 / 7, spacing=0.05), t))[chart_label("hc_centile", "intergrowth", t)]
    assert small.startswith("below the 1st (z -") and "39w 6d" in small
    assert "100" not in big and not small.startswith("0")


def test_a_figure_left_out_says_why_in_each_language():
    lo, hi = CHART_GA_RANGE_WEEKS
    for lang in ("en", "hi", "te"):
        t = translations(lang)
        late = measured(ga=41.0)
        row = dict(report_rows(late, t))[chart_label("hc_centile", "intergrowth", t)]
        assert row == f"{t['not_available']}: " + t["withheld_ga_outside_standard"].replace(
            "{lo}", f"{lo:g}").replace("{hi}", f"{hi:g}")
        assert fetalhead.outputs.report.chart_note(late, t) == row  # the chart does not ask for a GA that was given
        assert fetalhead.outputs.report.chart_note(measured(ga=None), t) == t["chart_needs_ga"]
        assert fetalhead.outputs.report.chart_note(measured(), t) == ""


def test_a_hand_adjusted_report_says_so_and_does_not_claim_the_software_checked_it():
    m = measured()
    adj = m.with_ellipse(Ellipse(400, 270, 200, 150, 10))
    assert adj.status == "adjusted"
    for lang in ("en", "hi", "te"):
        t = translations(lang)
        page = report_html(adj, np.full((540, 800), 0.3, np.float32), lang)
        assert html.escape(t["status_adjusted"]) in page  # once: no second "Adjusted by hand" line
        assert html.escape(t["status_ok"]) not in page
        assert t["quality_not_of_outline"] in dict(report_rows(adj, t))[t["quality"]]


def test_centile_labels_never_overlap():
    ys = [100.0, 103.0, 104.0, 150.0, 151.0]
    out = fetalhead.outputs.report.spread_labels(ys, 11.0)
    assert all(b - a >= 11.0 - 1e-9 for a, b in zip(sorted(out), sorted(out)[1:]))
    assert sorted(range(5), key=lambda i: out[i]) == sorted(range(5), key=lambda i: ys[i])
    assert fetalhead.outputs.report.spread_labels([10.0, 50.0], 11.0) == [10.0, 50.0]


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_html_report_in_each_language(lang):
    m = measured()
    page = report_html(m, np.full((540, 800), 0.3, np.float32), lang)
    t = translations(lang)
    assert html.escape(t["review_statement"]) in page and f"{m.head_circumference_mm:.1f} mm" in page
    assert "fetus-point" in page and "<script" not in page.lower()
    assert f'alt="{html.escape(t["canvas_label"])}"' in page  # the picture has a name for screen readers
    assert "Hadlock et al., Radiology 1984" in page  # the formulas beside the figures


def test_chart_marks_the_fetus_only_inside_the_chart_weeks():
    t = translations("en")
    lo, hi = CHART_GA_RANGE_WEEKS
    assert "fetus-point" in growth_chart_svg(200.0, (lo + hi) / 2, t)
    assert "fetus-point" not in growth_chart_svg(200.0, hi + 1, t)
    assert "fetus-point" not in growth_chart_svg(None, 20, t)


def test_pdf_report():
    pytest.importorskip("fpdf")
    from fetalhead.outputs.report import report_pdf

    data = report_pdf(measured(), np.full((540, 800), 0.3, np.float32), "hi")
    assert data.startswith(b"%PDF") and len(data) > 5000


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_a_flagged_pdf_stays_on_one_page(lang):
    """A flagged result has the most lines (every flag with where to check, the notes, the review line
    last); all stay on page 1."""
    pytest.importorskip("fpdf")
    import re

    from fetalhead.outputs.report import report_pdf

    m = measured(ga=41.0)
    m.flags += ["low_quality", "skull_not_seen", "head_cut_by_image_border", "head_cut_by_sector_edge",
                "implausible_head_size"]
    m.notes += ["cephalic_index_out_of_range", "outside_formula_range"]
    m.withheld.update(ga_hc_intergrowth_weeks="outside_formula_range", ga_bpd_hadlock_weeks="outside_formula_range")
    m.uncertain_arcs = [{"from_deg": a, "to_deg": a + 40, "share": 0.11, "cause": c, "where": w}
                        for a, c, w in ((160, "faint_echo", "left"), (300, "unsure_outline", "top_right"),
                                        (60, "no_echo", "bottom"))]
    m.status = "flagged"
    data = report_pdf(m, np.full((800, 800), 0.3, np.float32), lang)  # a square scan: the tallest picture
    assert len(re.findall(rb"/Type /Page\b(?!s)", data)) == 1


def test_report_command(samples_dir, tmp_path, capsys):
    pytest.importorskip("fpdf")
    from fetalhead.cli import main

    pdf = tmp_path / "r.pdf"
    assert main(["report", str(samples_dir / "358_HC.png"), "--out", str(pdf), "--pixel-size", str(PS),
                 "--ga-weeks", "20.5", "--lang", "te"]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")
    page = tmp_path / "r.html"
    assert main(["report", str(samples_dir / "358_HC.png"), "--out", str(page), "--lang", "hi"]) == 0
    text = page.read_text()
    assert html.escape(fetalhead.outputs.report.translations("hi")["review_statement"]) in text
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["report", str(bad), "--out", str(tmp_path / "x.pdf")]) == 1
    assert "not a readable image" in capsys.readouterr().err


def test_a_failed_report_says_why_in_each_language():
    m = fetalhead.measure(b"junk", 0.1)
    for lang in ("en", "hi", "te"):
        t = translations(lang)
        page = report_html(m, np.full((540, 800), 0.3, np.float32), lang)
        assert html.escape(t["status_failed"]) in page and html.escape(t["failure_unreadable_scan"]) in page
    # every failure code has its words in every language
    for lang in ("en", "hi", "te"):
        assert {f"failure_{c}" for c in fetalhead.measurement.FAILURES} <= set(translations(lang))


def _pdf_pages(pdf: bytes, tmp_path, dpi: int = 60):
    """The PDF's pages as RGB arrays, rendered by poppler's pdftoppm (as printed)."""
    import shutil
    import subprocess

    import cv2

    if not shutil.which("pdftoppm"):
        pytest.skip("poppler's pdftoppm is not installed (make system-deps)")
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(tmp_path / "r.pdf"), str(tmp_path / "page")], check=True)
    return [cv2.imread(str(p))[:, :, ::-1] for p in sorted(tmp_path.glob("page*.png"))]


def _pdf_text(pdf: bytes, tmp_path) -> str:
    import shutil
    import subprocess

    if not shutil.which("pdftotext"):
        pytest.skip("poppler's pdftotext is not installed (make system-deps)")
    (tmp_path / "t.pdf").write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(tmp_path / "t.pdf"), "-"], check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_the_pdf_table_is_not_printed_red_when_a_ga_by_dates_is_given(tmp_path, lang):
    # issue 25 #1: the chart's red "this fetus" dot left its fill on the table of figures
    pytest.importorskip("fpdf")
    from fetalhead.outputs.report import report_pdf

    m = measured(ga=22.0)
    (page,) = _pdf_pages(report_pdf(m, np.full((540, 800), 0.4, np.float32), lang), tmp_path)
    r, g, b = (page[..., k].astype(int) for k in range(3))
    red = (r > 150) & (g < 90) & (b < 90)
    assert red.mean() < 0.01, f"{100 * red.mean():.1f} % of the page is red"
    dark = (r + g + b) / 3 < 60
    assert dark.mean() < 0.2, "the page prints mostly dark"


def test_the_report_prints_the_pixel_size_used_not_only_its_source(tmp_path):
    # issue 25 #9: "pixel size source: entered on this page" without the value could not be traced
    pytest.importorskip("fpdf")
    from fetalhead.measurement import PAGE_SPACING_SOURCE
    from fetalhead.outputs.report import report_pdf

    m = Measurement("a.png", "ok", quality=0.93, model_version="t", image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 190, 150, 10), 0.1347377, PAGE_SPACING_SOURCE, None)
    t = translations("en")
    assert dict(report_rows(m, t))[t["spacing_source"]] == "0.1347 mm (entered on this page)"
    assert "0.1347 mm (entered on this page)" in report_html(m, np.full((540, 800), 0.4, np.float32), "en")
    assert "0.1347 mm" in _pdf_text(report_pdf(m, np.full((540, 800), 0.4, np.float32), "en"), tmp_path)
    _fill(m, Ellipse(400, 270, 190, 150, 10), (0.1347, 0.1360), "dicom:SequenceOfUltrasoundRegions", None)
    assert dict(report_rows(m, t))[t["spacing_source"]].startswith("0.1347 x 0.1360 mm (from the DICOM file")


def test_every_output_names_the_software_and_its_version(tmp_path):
    # issue 25 #2: reports said "Model version 0.3.0+seed0+int8" but never "fetalhead" and its version
    pytest.importorskip("fpdf")
    from fetalhead._version import SOFTWARE_NAME, __version__
    from fetalhead.hospital.fhir import fhir_bundle
    from fetalhead.outputs.overlay import _text_lines
    from fetalhead.outputs.report import report_pdf

    assert SOFTWARE_NAME == f"fetalhead {__version__}"
    m = measured()
    grey = np.full((540, 800), 0.4, np.float32)
    assert SOFTWARE_NAME in report_html(m, grey, "hi")
    assert SOFTWARE_NAME in _pdf_text(report_pdf(m, grey, "te"), tmp_path)
    assert any(SOFTWARE_NAME in line for line in _text_lines(m))
    device = fhir_bundle(m, model_version="0.3.0+seed0")["entry"][0]["resource"]
    assert {"type": {"text": "software"}, "value": __version__} in device["version"]


def test_adjusted_by_hand_is_said_once():
    # issue 25 #6: "Adjusted by hand" was printed twice (the status line and the flag)
    m = measured()
    adjusted = m.with_ellipse(Ellipse(400, 270, 200, 150, 10))
    assert adjusted.status == "adjusted" and "adjusted_by_hand" in adjusted.flags
    t = translations("en")
    text = report_html(adjusted, np.full((540, 800), 0.4, np.float32), "en")
    assert html.escape(t["status_adjusted"]) in text and text.count(html.escape(t["flag_adjusted_by_hand"])) == 0


def test_ga_by_bpd_says_it_is_unreliable_when_the_head_shape_is_atypical():
    # issue 25 #7: 785_HC.png: 38w1d by BPD against 34w5d by HC, shown as plainly as GA by HC
    round_head = Measurement("a.png", "ok", quality=0.9, model_version="t", image_size=(800, 540))
    _fill(round_head, Ellipse(400, 270, 190, 175, 10), 0.15, "given", None)  # CI 92 %
    assert "cephalic_index_out_of_range" in round_head.notes and not round_head.flags  # information, no warning
    t = translations("en")
    assert dict(report_rows(round_head, t))[t["ga_bpd"]].endswith(f"({t['ga_bpd_unreliable']})")
    assert t["ga_bpd_unreliable"] not in dict(report_rows(measured(), t))[t["ga_bpd"]]  # a typical head: plain


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_notes_are_apart_from_the_warnings_in_the_report(lang):
    """Issue 21: information (a cephalic index outside Hadlock's +/-1 SD, a figure left out) is a note,
    never under the status; a review flag is under the status with where to check."""
    import re

    from fetalhead.outputs.wording import note_lines, review_lines

    t = translations(lang)
    round_head = Measurement("a.png", "ok", quality=0.9, model_version="t", image_size=(800, 540))
    _fill(round_head, Ellipse(400, 270, 190, 175, 10), 0.15, "given", 41.0)  # CI 92 %; GA beyond the chart
    assert round_head.status == "ok" and not round_head.flags
    notes = note_lines(round_head, t)
    assert len(notes) == 2 and t["ga_hadlock"] not in " ".join(notes)
    page = report_html(round_head, np.full((540, 800), 0.3, np.float32), lang)
    status = " ".join(re.findall(r"<p class='status [a-z]+'>(.*?)</p>", page))
    box = re.search(r"<div class='notes'>(.*?)</div>", page).group(1)
    assert html.escape(t["notes"]) in box and all(html.escape(n) in box for n in notes)
    assert not any(html.escape(n) in status for n in notes) and status == html.escape(t["status_ok"])
    flagged = Measurement("a.png", "ok", quality=0.3, model_version="t", image_size=(800, 540),
                          interval_half_widths={"hc": 0.05, "bpd": 0.06, "ofd": 0.06},
                          uncertain_arcs=[{"from_deg": 150.0, "to_deg": 210.0, "share": 0.17, "cause": "faint_echo",
                                           "where": "left"}])
    flagged.flags = ["low_quality"]
    _fill(flagged, Ellipse(400, 270, 190, 175, 10), 0.15, "given", None)
    flagged.status = "flagged"
    page = report_html(flagged, np.full((540, 800), 0.3, np.float32), lang)
    status = " ".join(re.findall(r"<p class='status [a-z]+'>(.*?)</p>", page))
    (line,) = review_lines(flagged, t)
    assert html.escape(line) in status and t["where_left"] in line and "5.0" in line
    assert html.escape(t["flag_low_quality_score"].split("(")[0]) not in status
    box = re.search(r"<div class='notes'>(.*?)</div>", page).group(1)
    assert html.escape(note_lines(flagged, t)[0]) in box and html.escape(note_lines(flagged, t)[0]) not in status


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_a_failure_the_sonographer_can_act_on_says_what_to_do(lang):
    """Issue 21, words that say what happened: a scan with no head, no head-shaped outline or too faint a skull
    says what is wrong and what to do next (choose another picture or frame), in every language."""
    t, en = translations(lang), translations("en")
    for code in ("no_head_found", "no_measurable_head", "too_uncertain"):
        words = en[f"failure_{code}"]
        assert "Choose" in words or "choose" in words, code
        said = t[f"failure_{code}"]
        assert said and (lang == "en" or said != words)
        assert len(re.split(r"[.:।]\s", said.rstrip(".।"))) >= 2, (code, said)  # what is wrong, then what to do
    # and so do the review flags whose cause the sonographer can remove (a new picture, a check of the outline)
    for flag in ("head_cut_by_image_border", "head_cut_by_sector_edge", "skull_not_seen"):
        words = en[f"flag_{flag}"]
        assert "take a picture" in words or "check" in words or "keep" in words, flag
        said = t[f"flag_{flag}"]
        assert len(re.split(r"[:।]\s", said.rstrip(".।"))) >= 2, (flag, said)
