"""A visit's figures from what the record holds: the mean of the saved head measurements (each listed),
a note when they spread beyond one sonographer's repeatability, GA by dates (by LMP when given, else
typed) and by the mean HC, the typed AC and FL with their centiles, the estimated fetal weight (two
formulas, one shown first by a setting) with its centile, and the growth since the previous visit.

Pure: dicts in, a dict out (the formulas are :mod:`fetalhead.clinical`'s).
"""

from __future__ import annotations

import datetime as _dt

from ..clinical.biometry import (OutOfRangeError, ga_from_hc_hadlock1984, ga_from_hc_intergrowth2016,
                                 intergrowth_centile, intergrowth_zscore)
from ..clinical.limits import HC_FAR_FROM_GA_Z
from ..clinical.growth import (DEFAULT_EFW_METHOD, EFW_METHODS, GROWTH_FORMULAS, REPEATABILITY_SPREAD_PERCENT,
                               due_date_naegele, efw_hadlock1985, efw_intergrowth2017, ga_days_by_lmp, ga_weeks_by_lmp,
                               growth_per_week, intergrowth_body_centile, intergrowth_efw_centile, spread_percent)
from ..clinical.biometry import FORMULAS

__all__ = ["visit_figures", "visit_summary", "visit_dating", "HEAD_MEASURES"]

#: (measurement row column, summary key, INTERGROWTH-21st measure)
HEAD_MEASURES = (("hc_mm", "hc", "hc"), ("bpd_mm", "bpd", "bpd"), ("ofd_mm", "ofd", "ofd"))


def _try(fn, *args):
    """A formula's value, or None outside its validity range (the summary then says nothing of it)."""
    try:
        return fn(*args)
    except (OutOfRangeError, ValueError):
        return None


def _round(v, nd=2):
    return None if v is None else round(float(v), nd)


def visit_figures(visit: dict, measurements: list[dict], efw_method: str = DEFAULT_EFW_METHOD) -> dict:
    """The figures of one visit (see the module docstring). ``measurements``: the record's rows (with
    ``hc_mm``, ``bpd_mm``, ``ofd_mm``, ``status``); failed ones and those without millimetres are listed
    but not averaged."""
    if efw_method not in EFW_METHODS:
        raise ValueError(f"efw_method must be one of {', '.join(EFW_METHODS)}")
    used = [m for m in measurements if m.get("status") != "failed" and m.get("hc_mm") is not None]
    out: dict = {"n_measurements": len(measurements), "n_averaged": len(used)}
    for col, key, _ in HEAD_MEASURES:
        vals = [float(m[col]) for m in used if m.get(col) is not None]
        out[f"mean_{key}_mm"] = _round(sum(vals) / len(vals)) if vals else None
    spread = spread_percent([m["hc_mm"] for m in used])
    out["hc_spread_percent"] = _round(spread)
    out["review_notes"] = []
    if spread is not None and spread > REPEATABILITY_SPREAD_PERCENT:
        out["review_notes"].append({"code": "hc_spread",
                             "message": f"the saved HCs spread {spread:.1f} % of their mean, more than "
                                        f"{REPEATABILITY_SPREAD_PERCENT:g} % (one sonographer's repeatability, "
                                        "Sarris et al. 2012): measure again"})
    # dating
    ga_lmp = _try(ga_weeks_by_lmp, visit.get("lmp"), visit["exam_date"]) if visit.get("lmp") else None
    out["ga_by_lmp_weeks"] = _round(ga_lmp, 3)
    out["due_date"] = due_date_naegele(visit["lmp"]).isoformat() if visit.get("lmp") else None
    ga_dates = ga_lmp if ga_lmp is not None else visit.get("ga_by_dates_weeks")
    out["ga_by_dates_weeks"] = _round(ga_dates, 3)
    out["ga_by_dates_source"] = "lmp" if ga_lmp is not None else ("typed" if ga_dates is not None else None)
    hc = out["mean_hc_mm"]
    out["ga_by_hc_hadlock_weeks"] = _round(_try(ga_from_hc_hadlock1984, hc), 3) if hc else None
    out["ga_by_hc_intergrowth_weeks"] = _round(_try(ga_from_hc_intergrowth2016, hc), 3) if hc else None
    # centiles at the GA by dates (INTERGROWTH-21st)
    centiles = {}
    if ga_dates is not None:
        for _, key, measure in HEAD_MEASURES:
            v = out[f"mean_{key}_mm"]
            centiles[key] = _round(_try(intergrowth_centile, measure, v, ga_dates), 1) if v else None
        for key in ("ac", "fl"):
            v = visit.get(f"{key}_mm")
            centiles[key] = _round(_try(intergrowth_body_centile, key, v, ga_dates), 1) if v else None
        z = _try(intergrowth_zscore, "hc", hc, ga_dates) if hc else None
        out["hc_zscore"] = _round(z)
        if z is not None and abs(z) >= HC_FAR_FROM_GA_Z:  # as a measurement's hc_far_from_ga, at the visit's own date
            out["review_notes"].append({"code": "hc_far_from_ga",
                                        "message": f"the mean HC is {z:+.1f} SD from the mean for the GA by dates: "
                                                   "check the pixel size or scale of each measurement, and the dates"})
    out["ac_mm"], out["fl_mm"] = visit.get("ac_mm"), visit.get("fl_mm")
    # fetal weight
    ac, fl = visit.get("ac_mm"), visit.get("fl_mm")
    efw = {"hadlock1985": _try(efw_hadlock1985, hc, ac, fl) if hc and ac and fl else None,
           "intergrowth2017": _try(efw_intergrowth2017, hc, ac) if hc and ac else None}
    out["efw_hadlock1985_g"] = _round(efw["hadlock1985"], 0)
    out["efw_intergrowth2017_g"] = _round(efw["intergrowth2017"], 0)
    out["efw_method"] = efw_method
    out["efw_g"] = out[f"efw_{efw_method}_g"]
    centiles["efw"] = (_round(_try(intergrowth_efw_centile, out["efw_g"], ga_dates), 1)
                       if out["efw_g"] and ga_dates is not None else None)
    out["centiles"] = centiles
    return out


def _days_between(a: str, b: str) -> int:
    return (_dt.date.fromisoformat(b) - _dt.date.fromisoformat(a)).days


def visit_summary(visit: dict, measurements: list[dict], previous: dict | None = None,
                  previous_measurements: list[dict] | None = None, efw_method: str = DEFAULT_EFW_METHOD) -> dict:
    """The visit, its measurements, its figures (:func:`visit_figures`) and, with the previous visit,
    that visit's figures and the growth since (per week; centile change in centile points)."""
    figures = visit_figures(visit, measurements, efw_method)
    listed = [{**{k: m.get(k) for k in ("id", "saved_at", "saved_by", "status", "hc_mm", "bpd_mm", "ofd_mm",
                                        "has_picture")},
               # the pixel size each one was measured with, and its source (issue 22: a wrong one can be traced)
               **{k: (m.get("measurement") or {}).get(k) for k in ("model_version", "pixel_spacing_mm",
                                                                     "spacing_source", "scale_distance_cm",
                                                                     "saved_with_other_patient_id")}}
              for m in measurements]
    out = {**visit, **figures, "measurements": listed, "previous": None, "growth": None}
    out["formulas"] = {**{k: FORMULAS[k] for k in ("ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks", "hc_centile")},
                       **GROWTH_FORMULAS}
    if previous is not None:
        before = visit_figures(previous, previous_measurements or [], efw_method)
        days = _days_between(previous["exam_date"], visit["exam_date"])
        out["previous"] = {"id": previous["id"], "exam_date": previous["exam_date"], **{
            k: before[k] for k in ("mean_hc_mm", "mean_bpd_mm", "mean_ofd_mm", "ac_mm", "fl_mm", "efw_g",
                                   "ga_by_dates_weeks", "centiles")}}
        growth = {"days": days}
        for key, a, b in (("hc_mm_per_week", before["mean_hc_mm"], figures["mean_hc_mm"]),
                          ("bpd_mm_per_week", before["mean_bpd_mm"], figures["mean_bpd_mm"]),
                          ("ac_mm_per_week", before["ac_mm"], figures["ac_mm"]),
                          ("fl_mm_per_week", before["fl_mm"], figures["fl_mm"]),
                          ("efw_g_per_week", before["efw_g"], figures["efw_g"])):
            growth[key] = _round(growth_per_week(a, b, days)) if a is not None and b is not None else None
        growth["centile_change"] = {
            k: (_round(figures["centiles"][k] - before["centiles"][k], 1)
                if figures["centiles"].get(k) is not None and before["centiles"].get(k) is not None else None)
            for k in ("hc", "bpd", "ofd", "ac", "fl", "efw")}
        out["growth"] = growth
    return out


def visit_dating(visit: dict, on=None):
    """The pregnancy's dating a visit gives (:class:`fetalhead.hospital.sr.PregnancyDating`), for its SR and
    FHIR hand-off, on the day ``on`` (the study's date; default the visit's exam date): the LMP, the EDD
    from it (Naegele) and the GA by LMP in days on that day; without an LMP, the GA by dates typed for
    the exam date, moved by the days between the exam and ``on``. ``None`` when the visit dates nothing
    (or its dates give no GA on that day and no LMP)."""
    from ..hospital.sr import PregnancyDating

    on = _dt.date.fromisoformat(str(on)) if on is not None and not isinstance(on, _dt.date) else on
    exam = _dt.date.fromisoformat(visit["exam_date"])
    on = on or exam
    if visit.get("lmp"):
        lmp = _dt.date.fromisoformat(visit["lmp"])
        ga = _try(ga_days_by_lmp, lmp, on)
        return PregnancyDating(lmp=lmp, edd=due_date_naegele(lmp), ga_days=None if ga is None else float(ga),
                               ga_from_lmp=ga is not None)
    if visit.get("ga_by_dates_weeks") is not None:
        days = float(visit["ga_by_dates_weeks"]) * 7 + (on - exam).days
        try:
            return PregnancyDating(ga_days=days)
        except ValueError:  # the study lies too far from the exam for the typed GA to date it
            return None
    return None
