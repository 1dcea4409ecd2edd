"""Agreement between two ways of measuring the same scans: Bland-Altman limits, ICC, and the
figures a method-comparison study reports.

Plain functions on arrays of numbers (no scipy: the Student t quantile is computed here).

References
----------
* Bland JM, Altman DG. "Statistical methods for assessing agreement between two methods of clinical
  measurement." Lancet 1986;327:307-310 (bias and 95 % limits of agreement, bias +/- 1.96 SD).
* Bland JM, Altman DG. "Measuring agreement in method comparison studies." Stat Methods Med Res
  1999;8:135-160, section 2.4: confidence intervals of the bias (SE = s / sqrt(n)) and of each limit
  of agreement (SE ~ sqrt(3 s^2 / n)), with the t distribution on n - 1 degrees of freedom.
* Shrout PE, Fleiss JL. "Intraclass correlations: uses in assessing rater reliability."
  Psychol Bull 1979;86:420-428: ICC(2,1), two-way random effects, absolute agreement, one rater
  (McGraw and Wong 1996 call it ICC(A,1)); the worked example of their Table 1 gives
  ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71 (tested).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .biometry import invert_cdf

__all__ = ["BlandAltman", "bland_altman", "icc_2_1", "icc_3_1", "student_t_ppf", "within_percent",
           "CLINICAL_TOLERANCE_PERCENT", "trimester"]

#: A common clinical tolerance for fetal biometry: within +/-3 % of the reference.
CLINICAL_TOLERANCE_PERCENT = 3.0


@dataclass
class BlandAltman:
    """Bias (mean of a - b) and 95 % limits of agreement, each with its 95 % confidence interval."""

    n: int
    bias: float
    sd: float
    loa_low: float
    loa_high: float
    bias_ci: tuple[float, float]
    loa_low_ci: tuple[float, float]
    loa_high_ci: tuple[float, float]

    def to_dict(self) -> dict:
        return asdict(self)


def _pairs(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("expected two 1-d arrays of the same length")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]


def bland_altman(a, b) -> BlandAltman:
    """Bland-Altman agreement of ``a`` against ``b`` (same units), pairs with a missing value left out.

    Needs at least 3 pairs. Limits: bias +/- 1.96 SD of the differences; confidence intervals as in
    Bland and Altman (1999), t on n - 1 degrees of freedom.
    """
    a, b = _pairs(a, b)
    n = len(a)
    if n < 3:
        raise ValueError(f"Bland-Altman needs at least 3 pairs, got {n}")
    d = a - b
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    t = student_t_ppf(0.975, n - 1)
    se_bias, se_loa = sd / math.sqrt(n), math.sqrt(3.0 * sd * sd / n)
    lo, hi = bias - 1.96 * sd, bias + 1.96 * sd
    return BlandAltman(n, bias, sd, lo, hi, (bias - t * se_bias, bias + t * se_bias),
                       (lo - t * se_loa, lo + t * se_loa), (hi - t * se_loa, hi + t * se_loa))


def _anova(ratings) -> tuple[float, float, float, int, int]:
    """Two-way ANOVA mean squares of an n x k table (targets x raters): (MSR, MSC, MSE, n, k)."""
    y = np.asarray(ratings, float)
    y = y[np.isfinite(y).all(axis=1)]
    n, k = y.shape
    if n < 2 or k < 2:
        raise ValueError(f"an ICC needs at least 2 targets and 2 raters, got {n} x {k}")
    grand = y.mean()
    ss_rows = k * ((y.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((y.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((y - grand) ** 2).sum() - ss_rows - ss_cols
    return ss_rows / (n - 1), ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1)), n, k


def icc_2_1(ratings) -> float:
    """ICC(2,1) of an n x k table (targets x raters): two-way random effects, absolute agreement, one
    rater (Shrout and Fleiss 1979). Rows with a missing value are left out."""
    msr, msc, mse, n, k = _anova(ratings)
    return float((msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n))


def icc_3_1(ratings) -> float:
    """ICC(3,1): two-way mixed, consistency, one rater (Shrout and Fleiss 1979); for reference."""
    msr, _, mse, _, k = _anova(ratings)
    return float((msr - mse) / (msr + (k - 1) * mse))


def within_percent(a, b, percent: float = CLINICAL_TOLERANCE_PERCENT) -> float:
    """Share (0-1) of pairs where ``a`` lies within +/-``percent`` % of ``b``."""
    a, b = _pairs(a, b)
    if len(a) == 0:
        return float("nan")
    return float(np.mean(np.abs(a - b) <= percent / 100.0 * np.abs(b)))


def trimester(ga_weeks: float | None) -> str:
    """"second" (14+0 to 27+6 weeks), "third" (28+0 on), "first" (before 14), or "unknown"."""
    if ga_weeks is None or not math.isfinite(ga_weeks):
        return "unknown"
    return "first" if ga_weeks < 14 else "second" if ga_weeks < 28 else "third"


# --- the Student t quantile, without scipy -----------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def student_t_ppf(p: float, df: float) -> float:
    """Quantile of Student's t with ``df`` degrees of freedom (bisection on the CDF, to 1e-10)."""
    if not 0 < p < 1 or df <= 0:
        raise ValueError("p must lie in (0, 1) and df be positive")
    return invert_cdf(lambda t: student_t_cdf(t, df), p, -1e3, 1e3, 1e-10)
