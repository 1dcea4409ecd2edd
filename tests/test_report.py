"""Printable reports (HTML and PDF) of one measurement, in three languages."""

import html

import numpy as np
import pytest

import fetalhead
import fetalhead.report
from fetalhead.geometry import Ellipse
from fetalhead.limits import CHART_GA_RANGE_WEEKS
from fetalhead.measurement import Measurement, _fill
from fetalhead.report import growth_chart_svg, report_html, report_rows, translations

PS = 0.134737677


def measured(ga=22.0, spacing=0.15):
    m = Measurement("a.png", "ok", quality=0.93, model_version="t", image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 190, 150, 10), spacing, "given", ga)
    return m


def test_rows_show_the_measurement_figures():
    m = measured()
    rows = dict(report_rows(m, translations("en")))
    t = translations("en")
    assert rows[t["hc"]] == f"{m.head_circumference_mm:.1f} mm"
    assert rows[t["bpd"]] == f"{m.biparietal_diameter_mm:.1f} mm"
    assert rows[t["hc_centile"]].startswith(f"{m.hc_centile:.0f} (z {m.hc_zscore:+.2f}")
    px_rows = dict(report_rows(measured(spacing=None), t))
    assert "px" in px_rows[t["hc"]] and t["bpd"] not in px_rows


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_html_report_in_each_language(lang):
    m = measured()
    page = report_html(m, np.full((540, 800), 0.3, np.float32), lang)
    t = translations(lang)
    assert html.escape(t["review_statement"]) in page and f"{m.head_circumference_mm:.1f} mm" in page
    assert "fetus-point" in page and "<script" not in page.lower()


def test_chart_marks_the_fetus_only_inside_the_chart_weeks():
    t = translations("en")
    lo, hi = CHART_GA_RANGE_WEEKS
    assert "fetus-point" in growth_chart_svg(200.0, (lo + hi) / 2, t)
    assert "fetus-point" not in growth_chart_svg(200.0, hi + 1, t)
    assert "fetus-point" not in growth_chart_svg(None, 20, t)


def test_pdf_report():
    pytest.importorskip("fpdf")
    from fetalhead.report import report_pdf

    data = report_pdf(measured(), np.full((540, 800), 0.3, np.float32), "hi")
    assert data.startswith(b"%PDF") and len(data) > 5000


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
    assert html.escape(fetalhead.report.translations("hi")["review_statement"]) in text
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["report", str(bad), "--out", str(tmp_path / "x.pdf")]) == 1
    assert "not a readable image" in capsys.readouterr().err
