"""Named limits: derived from the formulas, checked the same way everywhere."""

import math

import pytest

from fetalhead.clinical.biometry import HADLOCK_GA_RANGE_WEEKS, INTERGROWTH_GA_RANGE_WEEKS, intergrowth_value_at_centile
from fetalhead.clinical.limits import (CHART_GA_RANGE_WEEKS, GA_BY_DATES_RANGE_WEEKS, PIXEL_SIZE_RANGE_MM, LimitError,
                              chart_hc_range_mm, check_ga_by_dates, check_pixel_spacing, form_limits)


def test_ranges_follow_the_formulas():
    assert CHART_GA_RANGE_WEEKS == INTERGROWTH_GA_RANGE_WEEKS
    assert GA_BY_DATES_RANGE_WEEKS == (14.0, HADLOCK_GA_RANGE_WEEKS[1])
    lo, hi = chart_hc_range_mm()
    assert lo <= intergrowth_value_at_centile("hc", 3, 14) and hi >= intergrowth_value_at_centile("hc", 97, 40)
    assert lo % 50 == 0 and hi % 50 == 0
    assert form_limits()["chart_hc_mm"] == [lo, hi]


@pytest.mark.parametrize("value", [0, -1, 1e300, float("nan"), float("inf"), 1.66, (0.1, 2.0), "abc", (0.1,)])
def test_implausible_pixel_sizes_are_refused(value):
    with pytest.raises(LimitError):
        check_pixel_spacing(value, "test")


def test_plausible_pixel_sizes_pass():
    assert check_pixel_spacing(0.13) == (0.13, 0.13)
    assert check_pixel_spacing([0.1, 0.12]) == (0.1, 0.12)
    assert check_pixel_spacing(None) is None
    assert PIXEL_SIZE_RANGE_MM[0] < 0.049 and PIXEL_SIZE_RANGE_MM[1] > 0.393  # all of HC18


@pytest.mark.parametrize("ga", [13.9, 42.1, float("nan"), "x"])
def test_ga_out_of_range(ga):
    with pytest.raises(LimitError):
        check_ga_by_dates(ga)
    assert check_ga_by_dates(20.43) == pytest.approx(20.43) and not math.isnan(check_ga_by_dates(42))
