"""Agreement statistics, against values printed in their sources."""

import math

import numpy as np
import pytest

from fetalhead.clinical.agreement import (bland_altman, icc_2_1, icc_3_1, student_t_ppf, trimester, within_percent)

# Shrout and Fleiss 1979, Table 1: 6 targets rated by 4 judges; Table 2 gives ICC(2,1) = .29, ICC(3,1) = .71
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]


def test_icc_as_printed_by_shrout_and_fleiss():
    assert icc_2_1(SHROUT_FLEISS) == pytest.approx(0.29, abs=0.005)
    assert icc_3_1(SHROUT_FLEISS) == pytest.approx(0.71, abs=0.005)


def test_icc_punishes_an_offset_that_consistency_ignores():
    a = np.linspace(100, 300, 20)
    assert icc_3_1(np.column_stack([a, a + 10])) == pytest.approx(1.0)
    assert icc_2_1(np.column_stack([a, a + 10])) < 0.99
    assert icc_2_1(np.column_stack([a, a])) == pytest.approx(1.0)


@pytest.mark.parametrize("df, t", [(1, 12.706), (4, 2.776), (9, 2.262), (29, 2.045), (120, 1.980)])
def test_student_t_quantiles_as_in_the_tables(df, t):
    assert student_t_ppf(0.975, df) == pytest.approx(t, abs=0.001)


def test_bland_altman_limits_and_their_confidence_intervals():
    """Differences 1..5: bias 3, SD sqrt(2.5); CIs with t(0.975, 4) = 2.776 (Bland and Altman 1999)."""
    b = np.array([10.0, 20, 30, 40, 50])
    ba = bland_altman(b + np.array([1, 2, 3, 4, 5]), b)
    sd = math.sqrt(2.5)
    assert ba.n == 5 and ba.bias == pytest.approx(3) and ba.sd == pytest.approx(sd)
    assert (ba.loa_low, ba.loa_high) == pytest.approx((3 - 1.96 * sd, 3 + 1.96 * sd))
    assert ba.bias_ci == pytest.approx((3 - 2.776 * sd / math.sqrt(5), 3 + 2.776 * sd / math.sqrt(5)), abs=1e-3)
    half = 2.776 * math.sqrt(3 * sd * sd / 5)
    assert ba.loa_high_ci == pytest.approx((ba.loa_high - half, ba.loa_high + half), abs=1e-3)
    with pytest.raises(ValueError, match="at least 3"):
        bland_altman([1, 2], [1, 2])
    # a missing value leaves its pair out
    assert bland_altman([1, 2, 3, np.nan], [1, 2, 3, 4]).n == 3


def test_within_percent_and_trimesters():
    assert within_percent([103, 104, 97, 96], [100, 100, 100, 100]) == 0.5
    assert trimester(13.9) == "first" and trimester(14) == "second" and trimester(27.99) == "second"
    assert trimester(28) == "third" and trimester(None) == "unknown"
