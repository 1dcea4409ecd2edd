"""Fetal head biometry: millimetres from an ellipse, gestational age, growth centiles.

Plain functions on numbers. Every clinical formula cites its source and states
its validity range; values outside the range raise :class:`OutOfRangeError`
(``fetalhead.measure`` catches it, leaves that figure out and says why).

Measurement conventions: the HC18 ellipse lies on the *outer* border of the
skull, so the BPD and OFD read off it are outer-to-outer. INTERGROWTH-21st
measured BPD and OFD outer-to-outer too (Papageorghiou et al. 2014); Hadlock
(1984) measured BPD outer-to-inner (leading edge to leading edge), so dating by
Hadlock's BPD from an outer-to-outer BPD would read old (by the skull thickness:
2.2, 4.0, 6.4 and 9.3 days at 30, 50, 70 and 90 mm). The BPD is therefore converted
to outer-to-inner with Wong et al.'s regression (2018) before Hadlock's equation
(:func:`ga_from_bpd_outer_outer`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from .geometry import Ellipse, ellipse_perimeter

__all__ = [
    "OutOfRangeError",
    "HeadBiometry",
    "head_biometry",
    "cephalic_index",
    "CEPHALIC_INDEX_NORMAL_RANGE",
    "ga_from_hc_hadlock1984",
    "ga_from_bpd_hadlock1984",
    "ga_from_bpd_outer_outer",
    "bpd_outer_inner_wong2018",
    "WONG_BPD_OI_FROM_OO",
    "ga_from_hc_intergrowth2016",
    "intergrowth_dating_days",
    "INTERGROWTH_DATING_WINDOW_DAYS",
    "intergrowth_mean_sd",
    "intergrowth_zscore",
    "intergrowth_centile",
    "intergrowth_value_at_centile",
    "normal_cdf",
    "normal_ppf",
    "invert_cdf",
    "FORMULAS",
    "WHO_FETAL_QUANTILES",
    "WHO_FETAL_COEFFICIENTS",
    "who_fetal_quantiles",
    "who_fetal_zscore",
    "who_fetal_centile",
    "who_fetal_value_at_centile",
    "CHARTS",
    "DEFAULT_CHART",
    "CHART_NAMES",
    "check_chart",
    "chart_measures",
    "chart_zscore",
    "chart_centile",
    "chart_value_at_centile",
]


class OutOfRangeError(ValueError):
    """A value lies outside the range in which a published formula is valid."""


# ---------------------------------------------------------------------------
# Millimetres from an ellipse


@dataclass(frozen=True)
class HeadBiometry:
    """Head measurements from one ellipse.

    ``unit`` is ``"mm"`` when a pixel spacing was given, else ``"px"``: then the
    lengths are in pixels and ``note`` says that no millimetres could be given.
    """

    head_circumference: float
    biparietal_diameter: float
    occipitofrontal_diameter: float
    cephalic_index: float
    unit: str
    pixel_spacing_mm: tuple[float, float] | None
    flags: tuple[str, ...] = field(default=())
    note: str = ""

    @property
    def head_circumference_mm(self) -> float | None:
        return self.head_circumference if self.unit == "mm" else None

    @property
    def biparietal_diameter_mm(self) -> float | None:
        return self.biparietal_diameter if self.unit == "mm" else None

    @property
    def occipitofrontal_diameter_mm(self) -> float | None:
        return self.occipitofrontal_diameter if self.unit == "mm" else None

    def as_dict(self) -> dict:
        return asdict(self)


#: Cephalic index range (%) within which dating by BPD is considered reliable.
#: Hadlock FP, Deter RL, Carpenter RJ, Park SK. "Estimating fetal age: effect of
#: head shape on BPD." AJR 1981;137:83-85: the normal CI is 78.3 +/- 4.4 (1 SD),
#: i.e. about 74-83 for +/- 1 SD; outside it HC should be used for dating.
CEPHALIC_INDEX_NORMAL_RANGE = (74.0, 83.0)


def cephalic_index(bpd: float, ofd: float) -> float:
    """Cephalic index BPD / OFD x 100 (%), both diameters in the same unit."""
    if not (bpd > 0 and ofd > 0):
        raise ValueError("diameters must be positive")
    return 100.0 * bpd / ofd


def _spacing_pair(pixel_spacing_mm) -> tuple[float, float] | None:
    if pixel_spacing_mm is None:
        return None
    if isinstance(pixel_spacing_mm, (int, float)):
        sx = sy = float(pixel_spacing_mm)
    else:
        sx, sy = (float(v) for v in pixel_spacing_mm)
    if not (math.isfinite(sx) and math.isfinite(sy) and sx > 0 and sy > 0):
        raise ValueError(f"pixel spacing must be positive and finite, got {pixel_spacing_mm!r}")
    return sx, sy


def head_biometry(ellipse: Ellipse, pixel_spacing_mm=None) -> HeadBiometry:
    """HC, BPD, OFD and cephalic index from the head ellipse.

    Parameters
    ----------
    ellipse : Ellipse
        Head outline in pixels, on the outer border of the skull.
    pixel_spacing_mm : float or (float, float) or None
        Pixel size in mm, isotropic or (x, y). With anisotropic spacing the
        ellipse is mapped to millimetres first (an affine map keeps it an
        ellipse) and measured there. ``None``: lengths are returned in pixels,
        ``unit="px"``, and ``note`` says so: millimetres are never guessed.

    Returns
    -------
    HeadBiometry
        HC by Ramanujan's perimeter; BPD = minor axis, OFD = major axis
        (outer-to-outer); CI = BPD/OFD x 100. ``flags`` holds
        ``"cephalic_index_out_of_range"`` when CI lies outside 74-83 %: dating by
        BPD is then unreliable and HC should be used.
    """
    spacing = _spacing_pair(pixel_spacing_mm)
    if spacing is None:
        e, unit = ellipse, "px"
        note = "no pixel spacing given: lengths are in pixels, not millimetres"
    else:
        e = ellipse.transformed([[spacing[0], 0.0, 0.0], [0.0, spacing[1], 0.0]])
        unit, note = "mm", ""
    hc = ellipse_perimeter(e.semi_major, e.semi_minor)
    bpd, ofd = 2.0 * e.semi_minor, 2.0 * e.semi_major
    ci = cephalic_index(bpd, ofd)
    flags = ()
    lo, hi = CEPHALIC_INDEX_NORMAL_RANGE
    if not lo <= ci <= hi:
        flags = ("cephalic_index_out_of_range",)
        note = (note + "; " if note else "") + (
            f"cephalic index {ci:.1f}% outside {lo:.0f}-{hi:.0f}%: dating by BPD is unreliable, use HC")
    return HeadBiometry(hc, bpd, ofd, ci, unit, spacing, flags, note)


# ---------------------------------------------------------------------------
# Gestational age


def _check_range(name: str, value: float, lo: float, hi: float, unit: str, source: str) -> None:
    if not (math.isfinite(value) and lo <= value <= hi):
        raise OutOfRangeError(
            f"{name} {value:.4g} {unit} is outside the range {lo:g}-{hi:g} {unit} "
            f"for which {source} is valid")


#: Hadlock 1984 was derived from fetuses of 14-42 weeks; the input ranges below
#: are the HC and BPD that its own equations give at 14 and 42 weeks.
HADLOCK_GA_RANGE_WEEKS = (14.0, 42.0)
HADLOCK_HC_RANGE_MM = (89.0, 358.0)
HADLOCK_BPD_RANGE_MM = (23.5, 102.0)


def ga_from_hc_hadlock1984(hc_mm: float) -> float:
    """Gestational age (weeks) from head circumference, Hadlock 1984.

    GA = 8.96 + 0.540 HC + 0.0003 HC^3, HC in cm.

    Hadlock FP, Deter RL, Harrist RB, Park SK. "Estimating fetal age:
    computer-assisted analysis of multiple fetal growth parameters."
    Radiology 1984;152:497-501, Table 3 (HC). Derived from 361 fetuses of
    14-42 weeks; valid here for HC 89-358 mm (14-42 weeks).
    Published checks: HC 100 mm -> 14.66 wk; HC 250 mm -> 27.15 wk.
    """
    _check_range("HC", hc_mm, *HADLOCK_HC_RANGE_MM, "mm", "Hadlock 1984")
    hc_cm = hc_mm / 10.0
    return 8.96 + 0.540 * hc_cm + 0.0003 * hc_cm ** 3


def ga_from_bpd_hadlock1984(bpd_mm: float) -> float:
    """Gestational age (weeks) from biparietal diameter, Hadlock 1984.

    GA = 9.54 + 1.482 BPD + 0.1676 BPD^2, BPD in cm.

    Hadlock FP, Deter RL, Harrist RB, Park SK. Radiology 1984;152:497-501,
    Table 3 (BPD). Hadlock measured BPD outer-to-inner; an outer-to-outer BPD
    (as from the HC18 ellipse) reads slightly old. Valid for BPD 23.5-102 mm
    (14-42 weeks).
    """
    _check_range("BPD", bpd_mm, *HADLOCK_BPD_RANGE_MM, "mm", "Hadlock 1984")
    bpd_cm = bpd_mm / 10.0
    return 9.54 + 1.482 * bpd_cm + 0.1676 * bpd_cm ** 2


#: Wong et al.'s regression of the outer-to-inner BPD on the outer-to-outer BPD (mm): intercept and slope
#: (543 fetuses at 14-40 weeks, 40 sonographers; Australas J Ultrasound Med 2018;21(3):161-168, Results).
WONG_BPD_OI_FROM_OO = (-0.403458, 0.9714153)


def bpd_outer_inner_wong2018(bpd_outer_outer_mm: float) -> float:
    """The outer-to-inner BPD (mm) that corresponds to an outer-to-outer one:
    BPDoi = -0.403458 + 0.9714153 BPDoo (Wong L et al., Australas J Ultrasound Med 2018;21:161-168)."""
    a, b = WONG_BPD_OI_FROM_OO
    return a + b * float(bpd_outer_outer_mm)


def ga_from_bpd_outer_outer(bpd_mm: float) -> float:
    """Gestational age (weeks) from an outer-to-outer BPD (the ellipse's minor axis, as fetalhead
    measures): converted to outer-to-inner (:func:`bpd_outer_inner_wong2018`), then Hadlock 1984's BPD
    equation, which was built on outer-to-inner BPDs (:func:`ga_from_bpd_hadlock1984`). Without the
    conversion the age reads 2-9 days old (30-90 mm)."""
    return ga_from_bpd_hadlock1984(bpd_outer_inner_wong2018(bpd_mm))


def intergrowth_dating_days(hc_mm: float) -> float:
    """The INTERGROWTH-21st HC dating equation itself (days), with no range check:
    ln(GA days) = 0.05970 (ln HC)^2 + 0.000000006409 HC^3 + 3.3258, HC in mm
    (Papageorghiou et al. 2016; see :func:`ga_from_hc_intergrowth2016`)."""
    ln_hc = math.log(hc_mm)
    return math.exp(0.05970 * ln_hc ** 2 + 0.000000006409 * hc_mm ** 3 + 3.3258)


def _hc_for_days(days: float) -> float:
    lo, hi = 1.0, 1000.0  # the equation increases with HC over this range
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if intergrowth_dating_days(mid) < days else (lo, mid)
    return round(0.5 * (lo + hi), 1)


#: INTERGROWTH-21st dates a pregnancy by HC only from scans at 14+0 to 25+6 weeks (98-181 days after
#: the last menstrual period): the window of the scans the equation was built for and recommended for
#: (Papageorghiou et al. 2016, pregnancies without first-trimester dating; the `gigs` R package
#: documents HC-based dating inputs from 98 to 181 days). Later, HC dates too poorly to be offered.
INTERGROWTH_DATING_WINDOW_DAYS = (98, 181)
#: The HC (mm) the equation gives at the window's ends (97.7 and 237.6 mm): the accepted inputs.
INTERGROWTH_DATING_HC_RANGE_MM = tuple(_hc_for_days(d) for d in INTERGROWTH_DATING_WINDOW_DAYS)


def ga_from_hc_intergrowth2016(hc_mm: float) -> float:
    """Gestational age (weeks) from head circumference, INTERGROWTH-21st.

    ln(GA days) = 0.05970 (ln HC)^2 + 0.000000006409 HC^3 + 3.3258, HC in mm.

    Papageorghiou AT, Kemp B, Stones W, et al. "Ultrasound-based
    gestational-age estimation in late pregnancy." Ultrasound Obstet Gynecol
    2016;48:719-726, doi:10.1002/uog.15894 (equation for HC alone). For
    pregnancies without first-trimester dating, from scans at 14+0 to 25+6
    weeks (:data:`INTERGROWTH_DATING_WINDOW_DAYS`): HC 97.7-237.6 mm; a larger
    HC is refused (:class:`OutOfRangeError`), since the source offers no HC
    dating later in pregnancy. Published check of the equation: HC 250 mm ->
    about 27.1 weeks (:func:`intergrowth_dating_days`).
    """
    _check_range("HC", hc_mm, *INTERGROWTH_DATING_HC_RANGE_MM, "mm",
                 "INTERGROWTH-21st dating (2016; scans at 14+0 to 25+6 weeks)")
    return intergrowth_dating_days(hc_mm) / 7.0


# ---------------------------------------------------------------------------
# INTERGROWTH-21st fetal growth standard

#: Gestational ages (weeks) for which the INTERGROWTH-21st fetal growth
#: standard is defined (Papageorghiou et al. 2014).
INTERGROWTH_GA_RANGE_WEEKS = (14.0, 40.0)


def _ig_hc(ga: float) -> tuple[float, float]:
    ln = math.log(ga)
    mean = -28.2849 + 1.69267 * ga ** 2 - 0.397485 * ga ** 2 * ln
    sd = (1.98735 + 0.0136772 * ga ** 3 - 0.00726264 * ga ** 3 * ln
          + 0.000976253 * ga ** 3 * ln ** 2)
    return mean, sd


def _ig_bpd(ga: float) -> tuple[float, float]:
    ln = math.log(ga)
    mean = 5.60878 + 0.158369 * ga ** 2 - 0.00256379 * ga ** 3
    sd = math.exp(0.101242 + 0.00150557 * ga ** 3 - 0.000771535 * ga ** 3 * ln
                  + 0.0000999638 * ga ** 3 * ln ** 2)
    return mean, sd


def _ig_ofd(ga: float) -> tuple[float, float]:
    ln = math.log(ga)
    mean = -12.4097 + 0.626342 * ga ** 2 - 0.148075 * ga ** 2 * ln
    sd = math.exp(-0.880034 + 0.0631165 * ga ** 2 - 0.0317136 * ga ** 2 * ln
                  + 0.00408302 * ga ** 2 * ln ** 2)
    return mean, sd


_INTERGROWTH = {"hc": _ig_hc, "bpd": _ig_bpd, "ofd": _ig_ofd}


def intergrowth_mean_sd(measure: str, ga_weeks: float) -> tuple[float, float]:
    """Expected mean and SD (mm) of a head measure at a gestational age.

    INTERGROWTH-21st international fetal growth standard: Papageorghiou AT,
    Ohuma EO, Altman DG, et al. "International standards for fetal growth based
    on serial ultrasound measurements: the Fetal Growth Longitudinal Study of
    the INTERGROWTH-21st Project." Lancet 2014;384:869-879, Table 3 (equations
    for the fitted mean and SD; GA in exact weeks, measures in mm; HC
    by ellipse, BPD and OFD outer-to-outer). Defined for 14-40 weeks.
    Published checks: HC at 20 weeks mean 172.5 SD 7.4; at 40 weeks mean 333.9,
    SD 12.9. Every value of the Project's printed HC, BPD and OFD centile and
    z-score tables ("International Fetal Growth Standards", © University of
    Oxford, citing this paper; 14-40 weeks, printed to 0.1 mm) is reproduced
    within 0.08 mm (``tests/clinical/test_intergrowth_tables.py``).

    Parameters
    ----------
    measure : {"hc", "bpd", "ofd"}
    ga_weeks : float
        Gestational age in exact weeks, 14-40.
    """
    try:
        fn = _INTERGROWTH[measure.lower()]
    except KeyError:
        raise ValueError(f"measure must be one of {sorted(_INTERGROWTH)}, got {measure!r}") from None
    _check_range("gestational age", ga_weeks, *INTERGROWTH_GA_RANGE_WEEKS, "weeks",
                 "the INTERGROWTH-21st fetal growth standard (2014)")
    return fn(float(ga_weeks))


def intergrowth_zscore(measure: str, value_mm: float, ga_weeks: float) -> float:
    """z-score of a measurement against the INTERGROWTH-21st standard (see :func:`intergrowth_mean_sd`)."""
    mean, sd = intergrowth_mean_sd(measure, ga_weeks)
    return (float(value_mm) - mean) / sd


def intergrowth_centile(measure: str, value_mm: float, ga_weeks: float) -> float:
    """Centile (0-100) of a measurement; the standard's measures are normal at each GA."""
    return 100.0 * normal_cdf(intergrowth_zscore(measure, value_mm, ga_weeks))


def intergrowth_value_at_centile(measure: str, centile: float, ga_weeks: float) -> float:
    """The measurement (mm) at a given centile (0-100, exclusive) and gestational age."""
    if not 0 < centile < 100:
        raise ValueError("centile must lie strictly between 0 and 100")
    mean, sd = intergrowth_mean_sd(measure, ga_weeks)
    return mean + sd * normal_ppf(centile / 100.0)


# ---------------------------------------------------------------------------
# WHO fetal growth charts (Kiserud et al. 2017)

#: Kiserud T, Piaggio G, Carroli G, et al. "The World Health Organization fetal growth charts: a
#: multinational longitudinal study of ultrasound biometric measurements and estimated fetal weight."
#: PLoS Med 2017;14(1):e1002220, doi:10.1371/journal.pmed.1002220 (ten countries, India among them).
#: Each quantile p of a measure is ln(y) = b0 + b1 GA + b2 GA^2 + b3 GA^3 (y in mm, GA in exact weeks,
#: 14-40), fitted by quantile regression. The coefficients are those of the paper's supplementary
#: tables for all fetuses (sexes together), as the WHO distributes them ("coefficientsGlobalV3");
#: transcribed here from the copy in the whoFetalStandards R package (data-raw/coeffs), and checked
#: against the values the paper prints (HC median about 173 mm at 20 weeks, about 342 mm at 40).
WHO_FETAL_QUANTILES = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 0.99)
WHO_FETAL_COEFFICIENTS = {  # measure -> one (b0, b1, b2, b3) per quantile of WHO_FETAL_QUANTILES
    "hc": ((1.51782795874402, 0.299296859125438, -7.52376152126206e-3, 6.7179373384666e-5),
           (1.59317517131532, 0.29459800552433, -7.3860372566707e-3, 6.56951770216148e-5),
           (1.74883945698398, 0.278405280785763, -6.77990950687641e-3, 5.83587774721548e-5),
           (1.83059537388222, 0.27244251174974, -6.59546864496838e-3, 5.63957469365128e-5),
           (1.94181945227701, 0.26584757167445, -6.44544904011178e-3, 5.54517813431795e-5),
           (2.09924879247164, 0.253373656106037, -6.05647816678282e-3, 5.14256072059917e-5),
           (2.20777451923048, 0.245212320927953, -5.78557948587613e-3, 4.83972618799514e-5),
           (2.31776999721364, 0.236651510200538, -5.50781288608926e-3, 4.53975879344267e-5),
           (2.39550106176494, 0.229586666082063, -5.25318141633775e-3, 4.23738937924844e-5),
           (2.50074069629423, 0.220067854715719, -4.93623111462443e-3, 3.89066000946519e-5),
           (2.50189533265806, 0.223785148311865, -5.14245402239348e-3, 4.20117020605557e-5)),
    "bpd": ((0.591008401542612, 0.251833515513537, -5.82602136865785e-3, 4.85842528593502e-5),
            (0.58340478243682, 0.257706867351367, -6.08380366281251e-3, 5.16940376186165e-5),
            (0.640086541374477, 0.25352855332296, -5.91651627062447e-3, 4.94614232987744e-5),
            (0.67586050811029, 0.25343383445191, -5.95606903884204e-3, 5.03055604381436e-5),
            (0.769315103415485, 0.249927024175735, -5.92399444708251e-3, 5.076548429269e-5),
            (0.872984231314326, 0.243385003540798, -5.71172523683453e-3, 4.82880035733658e-5),
            (0.983298265402666, 0.236071116567572, -5.48348083012818e-3, 4.58419655773418e-5),
            (1.01351909208103, 0.237088857953509, -5.5421492813894e-3, 4.65258350076297e-5),
            (1.11401192681678, 0.228258457814188, -5.24271052970102e-3, 4.31665697359201e-5),
            (1.17917438634649, 0.224245686901115, -5.13638678692311e-3, 4.21401138788865e-5),
            (1.18876528083144, 0.22624188722951, -5.22504825833189e-3, 4.31577122241698e-5)),
}
#: Gestational ages (weeks) the WHO fetal growth charts cover (Kiserud et al. 2017).
WHO_FETAL_GA_RANGE_WEEKS = (14.0, 40.0)


def who_fetal_quantiles(measure: str, ga_weeks: float) -> list[float]:
    """The WHO chart's quantiles (mm) of ``measure`` ("hc" or "bpd") at ``ga_weeks``, in the order of
    :data:`WHO_FETAL_QUANTILES` (Kiserud et al. 2017; see :data:`WHO_FETAL_COEFFICIENTS`)."""
    try:
        rows = WHO_FETAL_COEFFICIENTS[measure.lower()]
    except KeyError:
        raise ValueError(f"the WHO fetal growth charts have {sorted(WHO_FETAL_COEFFICIENTS)}, not {measure!r}") from None
    _check_range("gestational age", ga_weeks, *WHO_FETAL_GA_RANGE_WEEKS, "weeks",
                 "the WHO fetal growth charts (2017)")
    t = float(ga_weeks)
    return [math.exp(b0 + b1 * t + b2 * t * t + b3 * t ** 3) for b0, b1, b2, b3 in rows]


def who_fetal_zscore(measure: str, value_mm: float, ga_weeks: float) -> float:
    """The z-score of a measurement on the WHO chart: between two quantiles, linear interpolation of
    their normal scores against ln(value); beyond the 1st or 99th quantile, the outermost segment
    extended (so an extreme value gets an extreme z, shown as "below the 1st" / "above the 99th")."""
    qs = who_fetal_quantiles(measure, ga_weeks)
    zs = [normal_ppf(p) for p in WHO_FETAL_QUANTILES]
    ln = [math.log(q) for q in qs]
    x = math.log(float(value_mm))
    i = 0
    while i < len(ln) - 2 and x > ln[i + 1]:
        i += 1
    return zs[i] + (x - ln[i]) * (zs[i + 1] - zs[i]) / (ln[i + 1] - ln[i])


def who_fetal_centile(measure: str, value_mm: float, ga_weeks: float) -> float:
    """Centile (0-100) of a measurement on the WHO fetal growth chart, by interpolation between its
    published quantiles (:func:`who_fetal_zscore`)."""
    return 100.0 * normal_cdf(who_fetal_zscore(measure, value_mm, ga_weeks))


def who_fetal_value_at_centile(measure: str, centile: float, ga_weeks: float) -> float:
    """The measurement (mm) at a centile (1-99) of the WHO chart, interpolated as :func:`who_fetal_zscore`."""
    if not 1 <= centile <= 99:
        raise ValueError("the WHO charts' quantiles span the 1st to the 99th centile")
    qs = [math.log(q) for q in who_fetal_quantiles(measure, ga_weeks)]
    zs = [normal_ppf(p) for p in WHO_FETAL_QUANTILES]
    z = normal_ppf(centile / 100.0)
    i = 0
    while i < len(zs) - 2 and z > zs[i + 1]:
        i += 1
    return math.exp(qs[i] + (z - zs[i]) * (qs[i + 1] - qs[i]) / (zs[i + 1] - zs[i]))


# ---------------------------------------------------------------------------
# Growth charts by name: one way to ask for a centile, whichever chart is chosen

#: The growth charts a centile can be read on; INTERGROWTH-21st is the default.
CHARTS = ("intergrowth", "who")
DEFAULT_CHART = "intergrowth"
#: How each chart is named on the page and in the reports.
CHART_NAMES = {"intergrowth": "INTERGROWTH-21st", "who": "WHO fetal growth charts"}


def check_chart(chart: str) -> str:
    if chart not in CHARTS:
        raise ValueError(f"chart must be one of {', '.join(CHARTS)}, got {chart!r}")
    return chart


def chart_measures(chart: str) -> tuple[str, ...]:
    """The head measures a chart has centiles for (the WHO charts have no OFD)."""
    return tuple(_INTERGROWTH) if check_chart(chart) == "intergrowth" else tuple(WHO_FETAL_COEFFICIENTS)


def chart_zscore(chart: str, measure: str, value_mm: float, ga_weeks: float) -> float:
    """z-score of a measurement on ``chart`` ("intergrowth" or "who")."""
    if check_chart(chart) == "who":
        return who_fetal_zscore(measure, value_mm, ga_weeks)
    return intergrowth_zscore(measure, value_mm, ga_weeks)


def chart_centile(chart: str, measure: str, value_mm: float, ga_weeks: float) -> float:
    """Centile (0-100) of a measurement on ``chart``."""
    return 100.0 * normal_cdf(chart_zscore(chart, measure, value_mm, ga_weeks))


def chart_value_at_centile(chart: str, measure: str, centile: float, ga_weeks: float) -> float:
    """The measurement (mm) at ``centile`` on ``chart``, for the chart's curves."""
    if check_chart(chart) == "who":
        return who_fetal_value_at_centile(measure, centile, ga_weeks)
    return intergrowth_value_at_centile(measure, centile, ga_weeks)


# ---------------------------------------------------------------------------
# Standard normal helpers (no scipy)


def normal_cdf(z: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * math.erfc(-float(z) / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """Inverse standard normal CDF, by bisection on :func:`normal_cdf` (to 1e-12)."""
    if not 0 < p < 1:
        raise ValueError("p must lie strictly between 0 and 1")
    return invert_cdf(normal_cdf, p, -40.0, 40.0, 1e-12)


def invert_cdf(cdf, p: float, lo: float, hi: float, tol: float) -> float:
    """The x in [lo, hi] where the increasing function ``cdf`` reaches ``p``, by bisection to ``tol``."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < tol:
            break
    return 0.5 * (lo + hi)


#: Each figure's formula and source, as the page and the report print them beside the figure
#: (result column -> text). The functions above are the formulas; these say what they compute.
FORMULAS = {
    "hc_mm": "HC = perimeter of the ellipse (Ramanujan 1914, second approximation)",
    "ga_hc_hadlock_weeks": "GA (weeks) = 8.96 + 0.540 HC + 0.0003 HC³, HC in cm; "
                           "Hadlock et al., Radiology 1984;152:497-501, Table 3",
    "ga_hc_intergrowth_weeks": "ln GA (days) = 0.05970 (ln HC)² + 0.000000006409 HC³ + 3.3258, HC in mm; "
                               "Papageorghiou et al., Ultrasound Obstet Gynecol 2016;48:719-726",
    "ga_bpd_hadlock_weeks": "GA (weeks) = 9.54 + 1.482 BPD + 0.1676 BPD², BPD in cm (outer-to-inner); "
                            "Hadlock et al., Radiology 1984;152:497-501, Table 3; the outer-to-outer BPD "
                            "converted first: BPDoi = 0.9714 BPDoo - 0.40 mm (Wong et al., Australas J "
                            "Ultrasound Med 2018;21:161-168)",
    "hc_centile": "INTERGROWTH-21st fetal growth standard: HC mean and SD by GA; "
                  "Papageorghiou et al., Lancet 2014;384:869-879, Table 3",
    "hc_centile_who": "WHO fetal growth charts: ln HC = b0 + b1 GA + b2 GA² + b3 GA³ per quantile, centile "
                      "interpolated between quantiles; Kiserud et al., PLoS Med 2017;14:e1002220",
}
