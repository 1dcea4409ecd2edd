"""Normalised split conformal intervals and the review flag, on synthetic numbers."""

import json

import numpy as np
import pytest

from fetalhead.model.uncertainty import (FEATURES, OFF_HC_SHARE, Calibration, FlagTargets, choose_flag_half_width,
                                         flag_line_table, conformal_quantile,
                                   feature_vector, fit_calibration, fit_difficulty, neighbour_difficulty,
                                   relative_interval)


def test_conformal_quantile_is_the_finite_sample_rank():
    s = np.arange(1, 20)  # 19 scores: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(s, 0.1) == 18
    assert conformal_quantile([1, 2, 3], 0.1) == float("inf")  # too few for 90 %


def test_difficulty_fit_recovers_a_known_law():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    scale = np.exp(-2 + 0.8 * x[:, 0])
    err = scale * np.abs(rng.normal(size=4000))
    w, b = fit_difficulty(x, err, ridge=0.0)
    assert w[0] == pytest.approx(0.8, abs=0.1) and abs(w[1]) < 0.1 and abs(w[2]) < 0.1


@pytest.mark.parametrize("method", ["neighbours", "linear"])
def test_calibrated_intervals_cover_90_percent_and_adapt(method):
    rng = np.random.default_rng(1)
    n = 6000
    feats = np.stack([feature_vector({"outline_seen": v}) for v in rng.uniform(0.2, 1.0, n)])
    seen = 1 - feats[:, FEATURES.index("outline_seen")]
    sigma = 0.004 + 0.05 * (1 - seen)  # errors grow as less of the skull is seen
    err = sigma * rng.normal(size=n)
    fit = rng.uniform(size=n) < 0.5
    cal = fit_calibration(feats[: n // 2], err[: n // 2], err[: n // 2] * 1.2, err[: n // 2], fit[: n // 2],
                          method=method)
    assert cal.method == method
    test_f, test_e = feats[n // 2:], err[n // 2:]
    hw = np.array([cal.half_widths_of(f)["hc"] for f in test_f])
    cover = np.mean(np.abs(test_e) <= hw)
    assert 0.87 <= cover <= 0.93
    clear, hidden = hw[test_f[:, FEATURES.index("outline_seen")] < 0.2], hw[test_f[:, FEATURES.index("outline_seen")] > 0.6]
    assert clear.mean() < 0.5 * hidden.mean()  # narrow where the skull is clear
    # the flag line keeps the share of unflagged results that are off near its target on new scans
    off = np.abs(test_e) > OFF_HC_SHARE
    ok = hw <= cal.flag_half_width
    # (its 4 % target for damaged scans, chosen on 1500 scans, plus their sampling error), well below
    # the share off among all scans
    assert off[ok].mean() <= 0.06 and off[ok].mean() < 0.5 * off.mean()
    round_trip = Calibration.from_dict(cal.to_dict())
    assert round_trip.half_widths_of(test_f[0]) == cal.half_widths_of(test_f[0])


def test_flag_line_and_quality():
    hw = np.array([0.01, 0.02, 0.03, 0.04, 0.05])
    err = np.array([0.0, -0.01, 0.035, 0.0, 0.06])  # the third is off (> 3 %), the last wrong (> 5 %)
    clean = np.array([True] * 5)
    none_off = FlagTargets(off_clean=0.0, flagged_clean=1.0)
    assert choose_flag_half_width(hw, err, clean, none_off) == 0.02  # every off result flagged
    one_in_three = FlagTargets(off_clean=0.34, flagged_clean=1.0)  # 1 off in the 4 narrowest is 25 %: allowed
    assert choose_flag_half_width(hw, err, clean, one_in_three) == 0.04
    assert choose_flag_half_width(hw, err, clean, FlagTargets(off_clean=0.4, flagged_clean=1.0)) == 0.04  # none wrong
    assert choose_flag_half_width(hw, err, clean, FlagTargets(off_clean=0.4, wrong_clean=0.2, flagged_clean=1.0)) == 0.05
    # raised so that at most a quarter of the clean scans are flagged, though an off result then passes
    quarter = FlagTargets(off_clean=0.0, flagged_clean=0.25, flagged_clean_margin=0.0)
    assert choose_flag_half_width(hw, err, clean, quarter) == 0.04
    # ... aiming under the cap by the margin, so that new scans stay within it
    many = np.linspace(0.01, 0.05, 101)
    aimed = FlagTargets(off_clean=0.0, flagged_clean=0.25, flagged_clean_margin=0.05)
    assert choose_flag_half_width(many, np.full(101, 0.04), np.ones(101, bool), aimed) == pytest.approx(0.042)
    # damaged scans are held to their own limits
    damaged = np.array([False] * 5)
    assert choose_flag_half_width(hw, err, damaged, FlagTargets(off_damaged=0.0)) == 0.02
    assert choose_flag_half_width(hw, err, damaged, FlagTargets(off_damaged=0.34, wrong_damaged=0.0)) == 0.04
    table = flag_line_table(hw, err, clean, [0.02])[0]
    assert table["flagged_clean"] == 0.6 and table["off_clean"] == 0.0
    assert table["precision_clean"] == pytest.approx(2 / 3) and table["recall_clean"] == 1.0
    cal = Calibration([0.0] * len(FEATURES), 0.0, 1, 1, 1, flag_half_width=0.02)
    assert cal.quality(0.0) == 1 and cal.quality(0.02) == 0.5 and cal.quality(0.1) == 0
    assert cal.quality(0.01) == pytest.approx(0.75) and cal.quality(0.06) == pytest.approx(0.25)
    assert cal.quality(0.5) == 0
    assert relative_interval(100.0, 0.05) == (95.0, 105.0)


def test_calibration_for_other_features_is_refused():
    d = Calibration([0.0] * len(FEATURES), 0.0, 1, 1, 1, 0.02).to_dict()
    d["features"] = ["something_else"]
    with pytest.raises(ValueError, match="fetalhead calibrate"):
        Calibration.from_dict(d)


def test_neighbour_difficulty_is_the_median_error_of_the_nearest_scans():
    # two groups of reference scans far apart in feature space, with errors 1 % and 5 %
    z = np.array([[0.0, 0.0]] * 5 + [[10.0, 0.0]] * 5)
    err = np.array([0.01] * 5 + [0.05] * 5)
    d = neighbour_difficulty(z, err, np.array([[0.5, 0.0], [9.0, 1.0]]), k=5)
    assert d.tolist() == pytest.approx([0.01, 0.05])
    # k larger than the reference: all of it
    assert neighbour_difficulty(z, err, np.array([[0.0, 0.0]]), k=50)[0] == pytest.approx(0.03)


def test_neighbour_calibration_follows_a_law_that_is_not_log_linear():
    # the error scale is large at both ends of a feature (e.g. tiny and huge heads), small between:
    # one straight law in the feature cannot follow it; the nearest scans can
    rng = np.random.default_rng(3)
    n = 8000
    feats = np.zeros((n, len(FEATURES)))
    u = rng.uniform(-1, 1, n)
    feats[:, FEATURES.index("hc_mm")] = u
    err = (0.003 + 0.04 * u ** 2) * rng.normal(size=n)
    fit = np.arange(n) % 2 == 0
    half = n // 2
    test_f, test_e = feats[half:], err[half:]
    widths = {}
    for method in ("neighbours", "linear"):
        cal = fit_calibration(feats[:half], err[:half], err[:half], err[:half], fit[:half], method=method)
        hw = cal.q_hc * cal.difficulties(test_f)
        assert 0.87 <= np.mean(np.abs(test_e) <= hw) <= 0.93
        widths[method] = hw.mean()
    assert widths["neighbours"] < 0.8 * widths["linear"]


def test_neighbour_calibration_round_trip_and_refusal():
    rng = np.random.default_rng(4)
    feats = rng.normal(size=(400, len(FEATURES)))
    err = 0.01 * np.exp(feats[:, 0]) * rng.normal(size=400)
    cal = fit_calibration(feats, err, err, err, np.arange(400) % 2 == 0)
    d = cal.to_dict()
    assert d["method"] == "neighbours" and d["neighbours"]["n"] == 200 and d["neighbours"]["k"] == 40
    back = Calibration.from_dict(json.loads(json.dumps(d)))
    assert back.half_widths_of(feats[1]) == cal.half_widths_of(feats[1])
    broken = dict(d, neighbours={k: v for k, v in d["neighbours"].items() if k != "z"})
    with pytest.raises(ValueError, match="fetalhead calibrate"):
        Calibration.from_dict(broken)
    with pytest.raises(ValueError, match="unknown calibration method"):
        Calibration.from_dict(dict(d, method="magic"))


def test_quantile_level_above_the_interval_level_widens_and_is_recorded():
    # a calibration pool unlike a user's mix may take its conformal quantile above the intervals'
    # 90 %: on exchangeable scans the ranges then cover about that share, and say so in the metadata
    rng = np.random.default_rng(5)
    n = 8000
    feats = rng.normal(size=(n, len(FEATURES)))
    err = 0.01 * rng.normal(size=n)
    fit = np.arange(n) % 2 == 0
    half = n // 2
    plain = fit_calibration(feats[:half], err[:half], err[:half], err[:half], fit[:half])
    wide = fit_calibration(feats[:half], err[:half], err[:half], err[:half], fit[:half], quantile_level=0.95)
    assert wide.level == plain.level == 0.9 and wide.quantile_level == 0.95 and plain.quantile_level is None
    assert wide.q_hc > plain.q_hc
    test_f, test_e = feats[half:], err[half:]
    covered = np.abs(test_e) <= wide.q_hc * wide.difficulties(test_f)
    assert 0.93 <= covered.mean() <= 0.97
    d = wide.to_dict()
    assert d["quantile_level"] == 0.95 and "quantile_level" not in plain.to_dict()
    assert Calibration.from_dict(json.loads(json.dumps(d))).quantile_level == 0.95
    with pytest.raises(ValueError, match="quantile_level"):
        fit_calibration(feats[:half], err[:half], err[:half], err[:half], fit[:half], quantile_level=0.8)


# --- where on the outline the doubt lies -----------------------------------------------------------


def _outline(n=72, center=(100.0, 80.0), radius=50.0, **bad):
    """A circle's per-angle evidence (clockwise on the image from +x), all clear but ``bad``: cause ->
    indices of angles with that cause."""
    t = 2 * np.pi * np.arange(n) / n
    pts = np.stack([center[0] + radius * np.cos(t), center[1] + radius * np.sin(t)], axis=1)
    o = {"echo": np.ones(n, bool), "sharpness": np.ones(n), "in_field": np.ones(n, bool),
         "mirror_diff": np.zeros(n), "points": pts}
    for k in bad.get("faint_echo", []):
        o["echo"][k] = False
    for k in bad.get("unsure_outline", []):
        o["sharpness"][k] = 0.2
    for k in bad.get("no_echo", []):
        o["in_field"][k] = False
    return o


def test_a_clear_outline_has_no_doubtful_stretch_and_speckle_is_not_one():
    from fetalhead.model.uncertainty import doubtful_arcs

    assert doubtful_arcs(_outline(), (100, 80)) == []
    assert doubtful_arcs(_outline(faint_echo=[3, 20, 40], unsure_outline=[10, 55]), (100, 80)) == []
    assert doubtful_arcs({}, (0, 0)) == []


def test_a_doubtful_stretch_is_named_by_its_cause_and_where_it_lies_on_the_image():
    from fetalhead.model.uncertainty import doubtful_arcs

    # angles 27-45 (135-225 degrees clockwise from +x): the left of the head; one clear angle inside
    left = doubtful_arcs(_outline(faint_echo=[k for k in range(27, 46) if k != 36]), (100, 80))
    assert len(left) == 1 and left[0]["cause"] == "faint_echo" and left[0]["where"] == "left"
    assert left[0]["from_deg"] == pytest.approx(135) and left[0]["to_deg"] == pytest.approx(225)
    assert left[0]["share"] == pytest.approx(19 / 72, abs=1e-3)
    # y grows downwards: 90 degrees is the bottom of the image; a stretch across 0 degrees wraps
    bottom = doubtful_arcs(_outline(unsure_outline=range(15, 22)), (100, 80))
    assert bottom[0]["where"] == "bottom" and bottom[0]["cause"] == "unsure_outline"
    right = doubtful_arcs(_outline(no_echo=[68, 69, 70, 71, 0, 1, 2, 3]), (100, 80))
    assert len(right) == 1 and right[0]["where"] == "right" and right[0]["cause"] == "no_echo"
    assert right[0]["from_deg"] == pytest.approx(340) and right[0]["to_deg"] == pytest.approx(15)
    # the longest first; the most common cause names a mixed stretch
    two = doubtful_arcs(_outline(faint_echo=range(45, 51), no_echo=range(20, 30), unsure_outline=[30, 31]), (100, 80))
    assert [a["cause"] for a in two] == ["no_echo", "faint_echo"] and two[1]["where"] == "top_left"
    assert doubtful_arcs(_outline(faint_echo=range(72)), (100, 80))[0]["where"] == "all_round"
