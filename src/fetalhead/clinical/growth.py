"""A visit's clinical figures beyond the head: dating by the last menstrual period, the abdominal
circumference (AC) and femur length (FL) on the INTERGROWTH-21st standard, the estimated fetal weight
(EFW: Hadlock 1985 and INTERGROWTH-21st 2017) and its centile, the spread of repeated measurements.

Plain functions on numbers and dates; every formula cites its source; a value outside the range in which
its formula is valid raises :class:`fetalhead.clinical.biometry.OutOfRangeError` (a ``ValueError``).

Where the coefficients come from: the INTERGROWTH-21st AC, FL and EFW coefficients are those of the
papers as the ``gigs`` R package (LSHTM, rOpenSci-reviewed; ``ig_fet`` functions) transcribes them, and
they reproduce every value of the INTERGROWTH-21st Project's printed centile tables ("International Fetal
Growth Standards", © University of Oxford: AC and FL at 14-40 weeks citing Papageorghiou et al. 2014; EFW
at 22-40 weeks citing Stirnemann et al. 2017) within the tables' rounding (0.1 mm, 1 g):
``tests/clinical/test_intergrowth_tables.py``. The INTERGROWTH-21st EFW equation reproduces the paper's
worked example (AC 260 mm, HC 290 mm -> 1499 g). The Hadlock 1985 equation is the one the paper is
universally quoted with (checked against independent transcriptions); no value computed with it and
printed in the paper was found to test against, so its test checks the arithmetic.
"""

from __future__ import annotations

import datetime as _dt
import math

from .biometry import _check_range, normal_cdf
from .limits import PLAUSIBLE_HC_RANGE_MM

__all__ = [
    "NAEGELE_PREGNANCY_DAYS",
    "ga_days_by_lmp",
    "ga_weeks_by_lmp",
    "due_date_naegele",
    "check_lmp",
    "LMP_GA_RANGE_DAYS",
    "intergrowth_body_mean_sd",
    "intergrowth_body_centile",
    "intergrowth_body_value_at_centile",
    "AC_RANGE_MM",
    "FL_RANGE_MM",
    "check_ac_mm",
    "check_fl_mm",
    "efw_hadlock1985",
    "efw_intergrowth2017",
    "intergrowth_efw_lms",
    "intergrowth_efw_zscore",
    "intergrowth_efw_centile",
    "intergrowth_efw_value_at_centile",
    "INTERGROWTH_EFW_GA_RANGE_WEEKS",
    "EFW_METHODS",
    "DEFAULT_EFW_METHOD",
    "REPEATABILITY_SPREAD_PERCENT",
    "spread_percent",
    "growth_per_week",
    "GROWTH_FORMULAS",
]

# ---------------------------------------------------------------------------
# Dating by the last menstrual period

#: Naegele's rule: the expected date of delivery is 280 days (40 weeks) after the first day of the last
#: menstrual period (Naegele FC, Lehrbuch der Geburtshülfe, 1830; "add 7 days and 9 months" for a
#: 28-day cycle; the 280-day form is the one ACOG Committee Opinion 700 (2017) uses for dating).
NAEGELE_PREGNANCY_DAYS = 280

#: GA by LMP accepted (days): from 0 to 44 weeks + 6 days after the LMP. Later, the LMP typed is almost
#: certainly wrong (a post-term pregnancy is induced by 42 weeks).
LMP_GA_RANGE_DAYS = (0, 44 * 7 + 6)


def _date(value) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        return _dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def ga_days_by_lmp(lmp, exam_date) -> int:
    """Days from the first day of the last menstrual period to the exam (the GA by dates, in days).

    Raises ``ValueError`` when the LMP lies after the exam, :class:`OutOfRangeError` when it lies more
    than :data:`LMP_GA_RANGE_DAYS` before it."""
    days = (_date(exam_date) - _date(lmp)).days
    if days < 0:
        raise ValueError(f"the LMP {_date(lmp).isoformat()} lies after the exam date {_date(exam_date).isoformat()}")
    _check_range("GA by LMP", days, *LMP_GA_RANGE_DAYS, "days", "dating by the last menstrual period")
    return days


def ga_weeks_by_lmp(lmp, exam_date) -> float:
    """GA by LMP in exact weeks (days / 7), see :func:`ga_days_by_lmp`."""
    return ga_days_by_lmp(lmp, exam_date) / 7.0


def due_date_naegele(lmp) -> _dt.date:
    """Estimated date of delivery by Naegele's rule: the LMP + 280 days (:data:`NAEGELE_PREGNANCY_DAYS`)."""
    return _date(lmp) + _dt.timedelta(days=NAEGELE_PREGNANCY_DAYS)


def check_lmp(lmp, today) -> _dt.date:
    """The LMP as a date; ``ValueError`` when it lies in the future (after ``today``)."""
    d = _date(lmp)
    if d > _date(today):
        raise ValueError(f"the LMP {d.isoformat()} lies in the future")
    return d


# ---------------------------------------------------------------------------
# INTERGROWTH-21st fetal growth standard: abdominal circumference and femur length


def _ig_ac(ga: float) -> tuple[float, float]:
    ln = math.log(ga)
    mean = -81.3243 + 11.6772 * ga - 0.000561865 * ga ** 3
    sd = -4.36302 + 0.121445 * ga ** 2 - 0.0130256 * ga ** 3 + 0.00282143 * ga ** 3 * ln
    return mean, sd


def _ig_fl(ga: float) -> tuple[float, float]:
    mean = -39.9616 + 4.32298 * ga - 0.0380156 * ga ** 2
    sd = math.exp(0.605843 - 42.0014 * ga ** -2 + 0.00000917972 * ga ** 3)
    return mean, sd


_IG_BODY = {"ac": _ig_ac, "fl": _ig_fl}
#: Gestational ages (weeks) of the INTERGROWTH-21st fetal growth standard (Papageorghiou et al. 2014).
INTERGROWTH_BODY_GA_RANGE_WEEKS = (14.0, 40.0)


def intergrowth_body_mean_sd(measure: str, ga_weeks: float) -> tuple[float, float]:
    """Expected mean and SD (mm) of the AC or the FL at a gestational age (exact weeks, 14-40).

    INTERGROWTH-21st fetal growth standard: Papageorghiou AT, Ohuma EO, Altman DG, et al. Lancet
    2014;384:869-879, Table 3 (the same table as the head measures in
    :func:`fetalhead.clinical.biometry.intergrowth_mean_sd`):

    * AC mean = -81.3243 + 11.6772 GA - 0.000561865 GA³;
      SD = -4.36302 + 0.121445 GA² - 0.0130256 GA³ + 0.00282143 GA³ ln GA
    * FL mean = -39.9616 + 4.32298 GA - 0.0380156 GA²;
      SD = exp(0.605843 - 42.0014 GA⁻² + 0.00000917972 GA³)

    Coefficients as the ``gigs`` R package transcribes them. Checked against the standard's printed
    tables: "International Fetal Growth Standards: Abdominal Circumference (mm)" and "... Femur Length
    (mm)", centiles (3rd-97th) and z-scores (-3 to +3) at 14-40 exact weeks (INTERGROWTH-21st, © University
    of Oxford, 2017, citing Papageorghiou et al. Lancet 2014;384:869-79): every printed value within 0.08 mm
    (printed to 0.1 mm). E.g. AC at 28 weeks: 3rd 212.1, 50th 233.3, 97th 254.5 mm; FL at 28 weeks: 47.3,
    51.3, 55.3 mm.
    """
    try:
        fn = _IG_BODY[measure.lower()]
    except KeyError:
        raise ValueError(f"measure must be one of {sorted(_IG_BODY)}, got {measure!r}") from None
    _check_range("gestational age", ga_weeks, *INTERGROWTH_BODY_GA_RANGE_WEEKS, "weeks",
                 "the INTERGROWTH-21st fetal growth standard (2014)")
    return fn(float(ga_weeks))


def intergrowth_body_centile(measure: str, value_mm: float, ga_weeks: float) -> float:
    """Centile (0-100) of an AC or FL on the INTERGROWTH-21st standard (normal at each GA)."""
    mean, sd = intergrowth_body_mean_sd(measure, ga_weeks)
    return 100.0 * normal_cdf((float(value_mm) - mean) / sd)


def intergrowth_body_value_at_centile(measure: str, centile: float, ga_weeks: float) -> float:
    """The AC or FL (mm) at a centile (0-100, exclusive) and gestational age."""
    from .biometry import normal_ppf

    if not 0 < centile < 100:
        raise ValueError("centile must lie strictly between 0 and 100")
    mean, sd = intergrowth_body_mean_sd(measure, ga_weeks)
    return mean + sd * normal_ppf(centile / 100.0)


def _span(measure: str) -> tuple[float, float]:
    lo_mean, lo_sd = _IG_BODY[measure](INTERGROWTH_BODY_GA_RANGE_WEEKS[0])
    hi_mean, hi_sd = _IG_BODY[measure](INTERGROWTH_BODY_GA_RANGE_WEEKS[1])
    return math.floor(lo_mean - 4 * lo_sd), math.ceil(hi_mean + 4 * hi_sd)


#: AC (mm) accepted when typed: the INTERGROWTH-21st mean - 4 SD at 14 weeks to the mean + 4 SD at 40
#: weeks (Papageorghiou et al. 2014; 64-440 mm). Outside it the value is a typing error (cm for mm).
AC_RANGE_MM = _span("ac")
#: FL (mm) accepted when typed, the same way (7-85 mm).
FL_RANGE_MM = _span("fl")


def check_ac_mm(ac_mm: float) -> float:
    _check_range("AC", float(ac_mm), *AC_RANGE_MM, "mm", "the INTERGROWTH-21st standard (14-40 weeks, +/- 4 SD)")
    return float(ac_mm)


def check_fl_mm(fl_mm: float) -> float:
    _check_range("FL", float(fl_mm), *FL_RANGE_MM, "mm", "the INTERGROWTH-21st standard (14-40 weeks, +/- 4 SD)")
    return float(fl_mm)


# ---------------------------------------------------------------------------
# Estimated fetal weight


def efw_hadlock1985(hc_mm: float, ac_mm: float, fl_mm: float) -> float:
    """Estimated fetal weight (g) from HC, AC and FL, Hadlock et al. 1985:

    log10 EFW = 1.326 - 0.00326 AC FL + 0.0107 HC + 0.0438 AC + 0.158 FL, lengths in cm.

    Hadlock FP, Harrist RB, Sharman RS, Deter RL, Park SK. "Estimation of fetal weight with the use of
    head, body, and femur measurements - a prospective study." Am J Obstet Gynecol 1985;151:333-337
    (the HC-AC-FL model of its table of equations; the same coefficients in every independent
    transcription checked (open-source fetal calculators); no EFW value printed in the paper could be
    found to test against). The inputs are checked against the typed ranges
    (:data:`AC_RANGE_MM`, :data:`FL_RANGE_MM`) and the plausible HC
    (:data:`fetalhead.clinical.limits.PLAUSIBLE_HC_RANGE_MM`).
    """
    _check_range("HC", float(hc_mm), *PLAUSIBLE_HC_RANGE_MM, "mm", "Hadlock 1985")
    hc, ac, fl = hc_mm / 10.0, check_ac_mm(ac_mm) / 10.0, check_fl_mm(fl_mm) / 10.0
    return 10.0 ** (1.326 - 0.00326 * ac * fl + 0.0107 * hc + 0.0438 * ac + 0.158 * fl)


def efw_intergrowth2017(hc_mm: float, ac_mm: float) -> float:
    """Estimated fetal weight (g) from HC and AC, INTERGROWTH-21st:

    ln EFW = 5.084820 - 54.06633 (AC/100)³ - 95.80076 (AC/100)³ ln(AC/100) + 3.136370 (HC/100),
    AC and HC in cm.

    Stirnemann J, Villar J, Salomon LJ, et al. "International estimated fetal weight standards of the
    INTERGROWTH-21st Project." Ultrasound Obstet Gynecol 2017;49:478-486, doi:10.1002/uog.17347
    (the FL was left out of the model by its authors). The paper's worked example, AC 26 cm and HC 29 cm
    -> 1499 g, is reproduced (the ``gigs`` R package tests the same example, citing doi:10.1002/uog.17347).
    """
    _check_range("HC", float(hc_mm), *PLAUSIBLE_HC_RANGE_MM, "mm", "INTERGROWTH-21st EFW (2017)")
    ac = check_ac_mm(ac_mm) / 1000.0  # mm -> cm -> /100
    hc = float(hc_mm) / 1000.0
    return math.exp(5.084820 - 54.06633 * ac ** 3 - 95.80076 * ac ** 3 * math.log(ac) + 3.136370 * hc)


#: Gestational ages (weeks) of the INTERGROWTH-21st EFW standard: 22 to 40 weeks (154-280 days).
INTERGROWTH_EFW_GA_RANGE_WEEKS = (22.0, 40.0)


def intergrowth_efw_lms(ga_weeks: float) -> tuple[float, float, float]:
    """(lambda, mu, sigma) of ln(EFW) at a GA (exact weeks, 22-40), INTERGROWTH-21st EFW standard
    (Stirnemann et al. 2017, Ultrasound Obstet Gynecol 49:478-486, its supplementary equations, as
    transcribed in the ``gigs`` R package). Checked against the printed table "International Fetal Growth
    Standards: Estimated Fetal Weight (g)", centiles at 22-40 exact weeks (INTERGROWTH-21st, © University
    of Oxford, December 2017, citing Stirnemann et al.): every printed value within 0.6 g (printed to 1 g),
    e.g. 36 weeks: 3rd 1948, 50th 2594, 97th 3335 g. The Project's earlier z-score table (March 2017) prints
    the same medians but tails up to 1.5 % apart (40 weeks, -3 SD: 2085 g printed, 2116 g here).

    lambda = -4.257629 - 2162.234 GA⁻² + 0.0002301829 GA³;
    mu = 4.956737 + 0.0005019687 GA³ - 0.0001227065 GA³ ln GA;
    sigma = 1e-4 (-6.997171 + 0.057559 GA³ - 0.01493946 GA³ ln GA).
    """
    _check_range("gestational age", ga_weeks, *INTERGROWTH_EFW_GA_RANGE_WEEKS, "weeks",
                 "the INTERGROWTH-21st EFW standard (2017)")
    t = float(ga_weeks)
    ln = math.log(t)
    lam = -4.257629 - 2162.234 * t ** -2 + 0.0002301829 * t ** 3
    mu = 4.956737 + 0.0005019687 * t ** 3 - 0.0001227065 * t ** 3 * ln
    sigma = 1e-4 * (-6.997171 + 0.057559 * t ** 3 - 0.01493946 * t ** 3 * ln)
    return lam, mu, sigma


def intergrowth_efw_zscore(efw_g: float, ga_weeks: float) -> float:
    """z-score of an EFW (g) on the INTERGROWTH-21st EFW standard: the Box-Cox (LMS) transform of ln EFW."""
    if not efw_g > 0:
        raise ValueError("EFW must be positive")
    lam, mu, sigma = intergrowth_efw_lms(ga_weeks)
    y = math.log(float(efw_g))
    if abs(lam) < 1e-12:
        return math.log(y / mu) / sigma
    return ((y / mu) ** lam - 1.0) / (sigma * lam)


def intergrowth_efw_centile(efw_g: float, ga_weeks: float) -> float:
    """Centile (0-100) of an EFW on the INTERGROWTH-21st EFW standard."""
    return 100.0 * normal_cdf(intergrowth_efw_zscore(efw_g, ga_weeks))


def intergrowth_efw_value_at_centile(centile: float, ga_weeks: float) -> float:
    """The EFW (g) at a centile (0-100, exclusive) of the INTERGROWTH-21st EFW standard."""
    from .biometry import normal_ppf

    if not 0 < centile < 100:
        raise ValueError("centile must lie strictly between 0 and 100")
    lam, mu, sigma = intergrowth_efw_lms(ga_weeks)
    z = normal_ppf(centile / 100.0)
    y = mu * math.exp(sigma * z) if abs(lam) < 1e-12 else mu * (z * sigma * lam + 1.0) ** (1.0 / lam)
    return math.exp(y)


#: The EFW formulas, by name; which one a visit shows first is a setting (both are named in the report).
EFW_METHODS = ("hadlock1985", "intergrowth2017")
DEFAULT_EFW_METHOD = "hadlock1985"

# ---------------------------------------------------------------------------
# Repeated measurements and growth

#: Repeated HC measurements of one visit that spread (max - min) by more than this share of their mean
#: (%) exceed one sonographer's own repeatability, taken as about 3 % of HC after Sarris I, Ioannou C,
#: Chamberlain P, et al. "Intra- and interobserver variability in fetal ultrasound measurements."
#: Ultrasound Obstet Gynecol 2012;39:266-273 (intra-observer 95 % limits of agreement; the 3 % is the
#: figure the issue and the page's repeatability axis use: the paper's exact limits were not re-read here).
REPEATABILITY_SPREAD_PERCENT = 3.0


def spread_percent(values) -> float | None:
    """(max - min) / mean x 100 of repeated measurements; None for fewer than two."""
    vals = [float(v) for v in values if v is not None]
    if len(vals) < 2:
        return None
    mean = sum(vals) / len(vals)
    return 100.0 * (max(vals) - min(vals)) / mean


def growth_per_week(before: float, after: float, days: int) -> float | None:
    """Growth between two visits (unit per week): (after - before) / (days / 7); None for the same day."""
    if days <= 0:
        return None
    return (float(after) - float(before)) * 7.0 / days


#: Each figure's formula and source, as the visit's report prints them.
GROWTH_FORMULAS = {
    "ga_lmp": "GA by dates = exam date - first day of the LMP; due date = LMP + 280 days (Naegele's rule)",
    "ac_centile": "INTERGROWTH-21st fetal growth standard: AC mean and SD by GA; Papageorghiou et al., "
                  "Lancet 2014;384:869-879, Table 3",
    "fl_centile": "INTERGROWTH-21st fetal growth standard: FL mean and SD by GA; Papageorghiou et al., "
                  "Lancet 2014;384:869-879, Table 3",
    "efw_hadlock1985": "log10 EFW = 1.326 - 0.00326 AC·FL + 0.0107 HC + 0.0438 AC + 0.158 FL (cm); "
                       "Hadlock et al., Am J Obstet Gynecol 1985;151:333-337",
    "efw_intergrowth2017": "ln EFW = 5.084820 - 54.06633 (AC/100)³ - 95.80076 (AC/100)³ ln(AC/100) + "
                           "3.136370 (HC/100) (cm); Stirnemann et al., Ultrasound Obstet Gynecol 2017;49:478-486",
    "efw_centile": "INTERGROWTH-21st EFW standard (22-40 weeks); Stirnemann et al., Ultrasound Obstet "
                   "Gynecol 2017;49:478-486",
    "hc_spread": "repeated HCs spread more than 3 % of their mean: beyond one sonographer's repeatability "
                 "(Sarris et al., Ultrasound Obstet Gynecol 2012;39:266-273)",
}
