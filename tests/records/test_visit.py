"""A visit's figures: means, spread note, dating, AC/FL/EFW centiles, growth since the previous visit."""
import pytest

from fetalhead.clinical.biometry import intergrowth_centile, intergrowth_mean_sd
from fetalhead.clinical.growth import efw_hadlock1985, efw_intergrowth2017, intergrowth_body_mean_sd
from fetalhead.records.visit import visit_figures, visit_summary


def _row(i, hc, status="ok"):
    return {"id": i, "status": status, "hc_mm": hc, "bpd_mm": None if hc is None else hc * 0.27,
            "ofd_mm": None if hc is None else hc * 0.35, "saved_at": "t", "saved_by": "local", "has_picture": True}


def test_means_and_spread_note():
    visit = {"id": 1, "exam_date": "2024-05-20", "lmp": "2024-01-01"}  # 20+0 weeks by LMP
    rows = [_row(1, 170.0), _row(2, 172.0), _row(3, None, "failed")]
    f = visit_figures(visit, rows)
    assert f["n_measurements"] == 3 and f["n_averaged"] == 2
    assert f["mean_hc_mm"] == 171.0 and f["mean_bpd_mm"] == pytest.approx(171 * 0.27, abs=0.01)
    assert f["review_notes"] == []
    assert f["ga_by_lmp_weeks"] == 20.0 and f["due_date"] == "2024-10-07" and f["ga_by_dates_source"] == "lmp"
    assert f["centiles"]["hc"] == pytest.approx(intergrowth_centile("hc", 171.0, 20.0), abs=0.05)
    wide = visit_figures(visit, [_row(1, 170.0), _row(2, 176.0)])  # 3.5 % spread
    assert [n["code"] for n in wide["review_notes"]] == ["hc_spread"]


def test_efw_with_typed_ac_fl_and_method_setting():
    ga = 32.0
    hc, ac, fl = (intergrowth_mean_sd("hc", ga)[0], intergrowth_body_mean_sd("ac", ga)[0],
                  intergrowth_body_mean_sd("fl", ga)[0])
    visit = {"id": 1, "exam_date": "2024-05-20", "ga_by_dates_weeks": ga, "ac_mm": ac, "fl_mm": fl}
    f = visit_figures(visit, [_row(1, hc)])
    assert f["ga_by_dates_source"] == "typed"
    assert f["efw_g"] == round(efw_hadlock1985(hc, ac, fl)) and f["efw_method"] == "hadlock1985"
    assert f["efw_intergrowth2017_g"] == round(efw_intergrowth2017(hc, ac))
    assert f["centiles"]["ac"] == pytest.approx(50, abs=0.1) and f["centiles"]["fl"] == pytest.approx(50, abs=0.1)
    assert 20 < f["centiles"]["efw"] < 80
    g = visit_figures(visit, [_row(1, hc)], efw_method="intergrowth2017")
    assert g["efw_g"] == g["efw_intergrowth2017_g"]
    with pytest.raises(ValueError):
        visit_figures(visit, [], efw_method="shepard")


def test_no_dates_no_centiles_no_measurements():
    f = visit_figures({"id": 1, "exam_date": "2024-05-20"}, [])
    assert f["mean_hc_mm"] is None and f["centiles"] == {"efw": None} and f["efw_g"] is None


def test_growth_since_previous_visit():
    prev = {"id": 1, "exam_date": "2024-04-22", "lmp": "2024-01-01", "ac_mm": 130.0}
    now = {"id": 2, "exam_date": "2024-05-20", "lmp": "2024-01-01", "ac_mm": 150.0}
    s = visit_summary(now, [_row(5, 180.0)], prev, [_row(1, 150.0)])
    assert s["previous"]["mean_hc_mm"] == 150.0 and s["previous"]["exam_date"] == "2024-04-22"
    assert s["growth"]["days"] == 28
    assert s["growth"]["hc_mm_per_week"] == 7.5 and s["growth"]["ac_mm_per_week"] == 5.0
    ch = s["centiles"]["hc"] - s["previous"]["centiles"]["hc"]
    assert s["growth"]["centile_change"]["hc"] == pytest.approx(ch, abs=0.11)
    assert "efw_hadlock1985" in s["formulas"] and s["measurements"][0]["id"] == 5


def test_a_visits_dating_for_the_hand_off_on_the_studys_day():
    # the SR's summary and the FHIR dating: GA by LMP in days on the study's day, the EDD by Naegele
    import datetime as dt

    from fetalhead.records.visit import visit_dating

    d = visit_dating({"exam_date": "2024-05-20", "lmp": "2024-01-01"})
    assert (d.lmp, d.edd, d.ga_days, d.ga_from_lmp) == (dt.date(2024, 1, 1), dt.date(2024, 10, 7), 140.0, True)
    assert visit_dating({"exam_date": "2024-05-20", "lmp": "2024-01-01"}, "2024-05-22").ga_days == 142
    # typed GA by dates (no LMP) moves with the days between the exam and the study
    d = visit_dating({"exam_date": "2024-05-20", "ga_by_dates_weeks": 20.0}, dt.date(2024, 5, 17))
    assert (d.lmp, d.edd, d.ga_days, d.ga_from_lmp) == (None, None, 137.0, False)
    assert visit_dating({"exam_date": "2024-05-20"}) is None
    assert visit_dating({"exam_date": "2024-05-20", "ga_by_dates_weeks": 20.0}, "2020-01-01") is None
    # a study before the LMP: the dates, no GA
    d = visit_dating({"exam_date": "2024-05-20", "lmp": "2024-01-01"}, "2023-12-01")
    assert d.lmp == dt.date(2024, 1, 1) and d.ga_days is None and not d.ga_from_lmp


def test_a_mean_hc_far_from_the_visits_date_is_a_review_note():
    """Hostile review: a measurement saved without a date (or re-dated by hand) to a visit dated 30 weeks read
    "below the 1st centile" with no review note. The visit's own date judges its mean, as HC_FAR_FROM_GA_Z does a
    measurement's; in the reports' words too."""
    from fetalhead.clinical.limits import HC_FAR_FROM_GA_Z
    from fetalhead.outputs.report import translations
    from fetalhead.records.report import visit_report_html

    visit = {"id": 1, "patient_id": "P", "exam_date": "2024-07-29", "lmp": "2024-01-01"}  # 30+0 weeks by LMP
    f = visit_figures(visit, [_row(1, 170.0)])
    assert f["hc_zscore"] <= -HC_FAR_FROM_GA_Z and [n["code"] for n in f["review_notes"]] == ["hc_far_from_ga"]
    summary = visit_summary(visit, [_row(1, 170.0)])
    page = visit_report_html(summary, {"patient_id": "P"}, [summary], [], "en")
    assert f"{f['hc_zscore']:+.1f} SD" in page and "30w 0d" in page
    fine = visit_figures({**visit, "exam_date": "2024-05-20"}, [_row(1, 170.0)])  # 20+0 weeks
    assert abs(fine["hc_zscore"]) < 1 and fine["review_notes"] == []
