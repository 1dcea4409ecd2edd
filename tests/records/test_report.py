"""The visit's report: one A4 page in en/hi/te, the patient, every formula named, the visits on the chart."""
import re
import shutil
import subprocess

import pytest

from fetalhead.outputs.report import translations
from fetalhead.records.report import centile_text, visit_chart_svg, visit_report_html, visit_report_pdf, visit_report_rows
from fetalhead.records.visit import visit_summary

pytest.importorskip("fpdf")

PATIENT = {"patient_id": "KGH-0042", "name": "Lakshmi Devi", "age_years": 26}


def _rows(*hcs):
    return [{"id": i, "status": "ok", "hc_mm": h, "bpd_mm": h * 0.27, "ofd_mm": h * 0.35, "saved_at": "2024-05-20T10:00",
             "saved_by": "anu", "has_picture": False, "measurement": {"model_version": "0.3.0"}} for i, h in enumerate(hcs)]


@pytest.fixture()
def history():
    prev = {"id": 1, "patient_id": "KGH-0042", "exam_date": "2024-04-22", "lmp": "2023-12-04", "ac_mm": 190.0,
            "fl_mm": 40.0, "sonographer": "Dr Rao", "notes": None}
    now = {"id": 2, "patient_id": "KGH-0042", "exam_date": "2024-05-20", "lmp": "2023-12-04", "ac_mm": 230.0,
           "fl_mm": 46.0, "sonographer": "Dr Rao", "notes": "placenta anterior"}
    before = visit_summary(prev, _rows(205.0, 207.0))
    after = visit_summary(now, _rows(232.0, 233.0, 240.0), prev, _rows(205.0, 207.0))
    return [after, before]


def test_rows_name_the_patient_figures_and_growth(history):
    t = translations("en")
    rows = dict(visit_report_rows(history[0], PATIENT, t))
    assert rows["Patient ID"] == "KGH-0042" and rows["Name"] == "Lakshmi Devi" and rows["Sonographer"] == "Dr Rao"
    assert rows["GA by LMP"] == "24w 0d" and rows["Notes"] == "placenta anterior"
    assert rows["Estimated fetal weight (EFW)"].index("Hadlock 1985") < rows["Estimated fetal weight (EFW)"].index("INTERGROWTH")
    assert "mm per week" in rows["Growth since the previous visit"]
    assert centile_text(0.2, t) == "below the 1st centile" and centile_text(99.7, t) == "above the 99th centile"
    hi = translations("hi")  # the word "centile" is said in every language (a mean's centile stands alone)
    assert "सेंटाइल" in centile_text(0.2, hi) and "सेंटाइल" in centile_text(99.7, hi)
    assert centile_text(42.4, t) == "42nd centile"
    assert [centile_text(c, t) for c in (1, 2, 3, 4, 11, 12, 13, 21, 23, 97)] == [
        "1st centile", "2nd centile", "3rd centile", "4th centile", "11th centile", "12th centile", "13th centile",
        "21st centile", "23rd centile", "97th centile"]
    assert centile_text(2.2, hi) == "2वाँ सेंटाइल" and centile_text(2.2, translations("te")) == "2వ సెంటైల్"


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_pdf_is_one_page(history, lang):
    pdf = visit_report_pdf(history[0], PATIENT, history, [], lang)
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type /Page\b", pdf)) == 1


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler's pdftotext is not installed")
def test_pdf_text_names_patient_and_formulas(history, tmp_path):
    (tmp_path / "r.pdf").write_bytes(visit_report_pdf(history[0], PATIENT, history, [], "en"))
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True).stdout
    for word in ("KGH-0042", "Lakshmi Devi", "Dr Rao", "Hadlock", "Stirnemann", "Naegele", "Papageorghiou", "Sarris",
                 "fetalhead", "0.3.0", "clinician"):
        assert word in text, word


def test_html_report_and_chart(history):
    page = visit_report_html(history[0], PATIENT, history, [], "te")
    assert "Lakshmi Devi" in page and "Stirnemann" in page and 'lang="te"' in page
    svg = visit_chart_svg(history, translations("en"))
    assert svg.count('class="visit-point"') == 2 and "2024-04-22" in svg and "2024-05-20" in svg
    spread = history[0]["hc_spread_percent"]
    assert spread > 3 and f"{spread:.1f} %" in visit_report_html(history[0], PATIENT, history, [], "en")


def test_efw_chart_with_the_visits(history):
    from fetalhead.clinical.growth import intergrowth_efw_value_at_centile
    from fetalhead.records.report import efw_chart_svg, efw_curves

    curves = efw_curves()
    assert curves["weeks"][0] == 22 and curves["weeks"][-1] == 40
    assert curves["50"][-1] == pytest.approx(intergrowth_efw_value_at_centile(50, 40))
    svg = efw_chart_svg(history, translations("en"))
    # the earlier visit lies at 20 weeks, before the EFW standard's 22: on the HC chart only
    assert svg.count('class="visit-point"') == 1 and svg.count("<polyline") == 5 and "2024-05-20" in svg
    page = visit_report_html(history[0], PATIENT, history, [], "en")
    assert page.count('class="visit-point"') == 3  # two on the HC chart, one on the EFW chart
    no_efw = [{**v, "efw_g": None} for v in history]
    assert "EFW (g)" not in visit_report_html(no_efw[0], PATIENT, no_efw, [], "en")


def test_saved_measurements_give_their_pixel_size_and_a_status_in_the_reports_language(tmp_path):
    """Each saved measurement in the visit's report names the pixel size it was measured with and its source
    (a wrong one can be traced in the patient's file), and its status in the report's language, not "ok"."""
    visit = {"id": 3, "patient_id": "KGH-0042", "exam_date": "2024-05-20", "lmp": "2023-12-04"}
    rows = _rows(232.0, 236.0)
    rows[0]["measurement"].update(pixel_spacing_mm=[0.1347, 0.1347], spacing_source="entered on the page")
    rows[1]["measurement"].update(pixel_spacing_mm=[0.2, 0.2], spacing_source="two_points", scale_distance_cm=4.0)
    rows[1]["status"] = "flagged"
    summary = visit_summary(visit, rows)
    for lang in ("en", "hi", "te"):
        t = translations(lang)
        page = visit_report_html(summary, PATIENT, [summary], [], lang)
        cells = re.findall(r"<td>([^<]*)</td>", page)
        assert f"0.1347 mm ({t['spacing_page']})" in cells and f"0.2000 mm ({t['spacing_two_points']})" in cells
        assert t["status_word_ok"] in cells and t["status_word_flagged"] in cells
        assert "ok" not in cells and "flagged" not in cells
    if shutil.which("pdftotext"):
        def text(lang):
            (tmp_path / f"{lang}.pdf").write_bytes(visit_report_pdf(summary, PATIENT, [summary], [], lang))
            return subprocess.run(["pdftotext", str(tmp_path / f"{lang}.pdf"), "-"], capture_output=True,
                                  text=True).stdout
        en, hi = text("en"), text("hi")
        assert "0.1347 mm" in hi and "0.2000 mm" in en and "no warning" in en and "to check" in en
        # the charts' GA axis is in the report's language (the formula lines stay English in every language)
        assert hi.count("GA (weeks)") == en.count("GA (weeks)") - 1


@pytest.mark.parametrize("chart", ["efw", "hc"])
def test_a_visits_date_stays_inside_the_chart(chart):
    """An early visit (22 weeks: the EFW chart's left edge) had its date drawn over the axis's "1000"; a late
    heavy one over the top edge. Each date now lies inside the plot."""
    import re

    from fetalhead.records.report import DATE_CHAR_EM, DATE_FONT_PX, efw_chart_svg

    visits = [{"ga_by_dates_weeks": 22.1, "efw_g": 480.0, "mean_hc_mm": 190.0, "exam_date": "2024-01-02"},
              {"ga_by_dates_weeks": 39.8, "efw_g": 5200.0, "mean_hc_mm": 380.0, "exam_date": "2024-06-30"},
              {"ga_by_dates_weeks": 30.0, "efw_g": 1500.0, "mean_hc_mm": 280.0, "exam_date": "2024-04-01"}]
    svg = (efw_chart_svg if chart == "efw" else visit_chart_svg)(visits, translations("en"))
    x0, y0, w, h = (float(v) for v in re.search(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"',
                                                svg).groups())
    dates = re.findall(r'<text x="([\d.]+)" y="([\d.]+)" font-size="\d+" text-anchor="(\w+)"[^>]*class="visit-date">'
                       r'([^<]+)</text>', svg)
    assert len(dates) == 3
    for x, y, anchor, text in dates:
        width = len(text) * DATE_FONT_PX * DATE_CHAR_EM
        left, right = (float(x) - width, float(x)) if anchor == "end" else (float(x), float(x) + width)
        assert x0 < left and right < x0 + w and y0 + DATE_FONT_PX <= float(y) <= y0 + h, (text, x, y, anchor)
