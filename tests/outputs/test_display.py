"""How figures are written: gestational age in weeks+days, centiles with their bounds."""

import pytest

from fetalhead.outputs.display import (CENTILE_SHOWN_RANGE, GestationalAgeFormatError, centile_band, format_weeks_days,
                               parse_gestational_age, weeks_days)


@pytest.mark.parametrize("text", ["20+3", "20 + 3", "20w3d", "20w 3d", "20W 3D", " 20+3d "])
def test_weeks_plus_days_as_clinicians_write_them(text):
    assert parse_gestational_age(text) == pytest.approx(20 + 3 / 7)


def test_whole_weeks_empty_and_numbers():
    assert parse_gestational_age("20") == 20.0 and parse_gestational_age("20w") == 20.0
    assert parse_gestational_age("") is None and parse_gestational_age(None) is None
    assert parse_gestational_age(20.5) == 20.5  # a number from the API is weeks


@pytest.mark.parametrize("text", ["18.1", "20+7", "20,3", "twenty", "+3", "20-3", "200+1"])
def test_ambiguous_or_malformed_ages_are_refused_with_how_to_write_them(text):
    with pytest.raises(GestationalAgeFormatError, match="weeks\\+days, e.g. 20\\+3"):
        parse_gestational_age(text)


def test_weeks_days_round_trip_and_rounding():
    for w in range(14, 43):
        for d in range(7):
            assert weeks_days(parse_gestational_age(f"{w}+{d}")) == (w, d)
            assert format_weeks_days(w + d / 7) == f"{w}w {d}d"
    assert weeks_days(20.5) == (20, 4)  # 143.5 days: the nearest day
    assert weeks_days(20.9999) == (21, 0)
    assert format_weeks_days(None) == "—"
    with pytest.raises(ValueError):
        weeks_days(float("nan"))


def test_centile_bands():
    lo, hi = CENTILE_SHOWN_RANGE
    assert centile_band(None) is None
    assert centile_band(0.0) == ("below", lo) and centile_band(0.49) == ("below", lo)
    assert centile_band(0.5) == ("at", 1) and centile_band(37.4) == ("at", 37)
    assert centile_band(99.49) == ("at", 99) and centile_band(99.5) == ("above", hi)
    assert centile_band(100.0) == ("above", hi)


def test_the_command_line_also_takes_weeks_as_a_number():
    assert parse_gestational_age("20.43", decimal_weeks=True) == 20.43
    assert parse_gestational_age("20+3", decimal_weeks=True) == pytest.approx(20 + 3 / 7)
    with pytest.raises(GestationalAgeFormatError):
        parse_gestational_age("20.43")
