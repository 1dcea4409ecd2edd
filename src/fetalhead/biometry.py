"""Fetal head biometry: millimetres from an ellipse, gestational age, growth centiles.

Plain functions on numbers. Every clinical formula cites its source and states
its validity range; values outside the range raise :class:`OutOfRangeError`
(``fetalhead.measure`` catches it, leaves that figure out and says why).

Measurement conventions: the HC18 ellipse lies on the *outer* border of the
skull, so the BPD and OFD read off it are outer-to-outer. INTERGROWTH-21st
measured BPD and OFD outer-to-outer too (Papageorghiou et al. 2014); Hadlock
(1984) measured BPD outer-to-inner (leading edge to leading edge), so dating by
Hadlock's BPD from an outer-to-outer BPD reads slightly old (by the skull
thickness, about 1-3 mm, i.e. up to about half a week).
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
    "ga_from_hc_intergrowth2016",
    "intergrowth_mean_sd",
    "intergrowth_zscore",
    "intergrowth_centile",
    "intergrowth_value_at_centile",
    "normal_cdf",
    "normal_ppf",
    "FORMULAS",
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


#: INTERGROWTH-21st dating by HC was built for 14-40 weeks (Papageorghiou 2016);
#: its equation gives these HC at 14 and 40 weeks.
INTERGROWTH_DATING_HC_RANGE_MM = (97.5, 347.0)


def ga_from_hc_intergrowth2016(hc_mm: float) -> float:
    """Gestational age (weeks) from head circumference, INTERGROWTH-21st.

    ln(GA days) = 0.05970 (ln HC)^2 + 0.000000006409 HC^3 + 3.3258, HC in mm.

    Papageorghiou AT, Kemp B, Stones W, et al. "Ultrasound-based
    gestational-age estimation in late pregnancy." Ultrasound Obstet Gynecol
    2016;48:719-726, doi:10.1002/uog.15894 (equation for HC alone). For
    pregnancies without first-trimester dating; valid for HC 97.5-347 mm
    (14-40 weeks). Published check: HC 250 mm -> about 27.1 weeks.
    """
    _check_range("HC", hc_mm, *INTERGROWTH_DATING_HC_RANGE_MM, "mm", "INTERGROWTH-21st dating (2016)")
    ln_hc = math.log(hc_mm)
    days = math.exp(0.05970 * ln_hc ** 2 + 0.000000006409 * hc_mm ** 3 + 3.3258)
    return days / 7.0


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
    SD 12.9.

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
# Standard normal helpers (no scipy)


def normal_cdf(z: float) -> float:
    """Standard normal cumulative distribution."""
    return 0.5 * math.erfc(-float(z) / math.sqrt(2.0))


def normal_ppf(p: float) -> float:
    """Inverse standard normal CDF, by bisection on :func:`normal_cdf` (to 1e-12)."""
    if not 0 < p < 1:
        raise ValueError("p must lie strictly between 0 and 1")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
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
                            "Hadlock et al., Radiology 1984;152:497-501, Table 3",
    "hc_centile": "INTERGROWTH-21st fetal growth standard: HC mean and SD by GA; "
                  "Papageorghiou et al., Lancet 2014;384:869-879, Table 3",
}
