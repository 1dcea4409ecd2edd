"""The Python API and the shipped model (golden cases, robustness, bad input)."""

import csv
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

import fetalhead
from fetalhead.clinical.biometry import ga_from_hc_hadlock1984
from fetalhead.clinical.geometry import ellipse_perimeter
from fetalhead.scans.imageio import read_scan
from fetalhead.model.runtime import HeadModel, ModelError, default_model_path, load_model
from fetalhead.model.uncertainty import WRONG_HC_SHARE


def reference(samples_dir):
    rows = csv.DictReader(open(samples_dir / "pixel_size_and_HC.csv"))
    return {r["filename"]: (float(r["pixel size(mm)"]), float(r["head circumference (mm)"])) for r in rows}


# Golden cases: bundled validation scans (never trained on) and their reference HC.
GOLDEN = ["192_HC.png", "358_HC.png", "495_4HC.png", "590_HC.png", "785_HC.png", "011_HC.png"]


@pytest.mark.parametrize("name", GOLDEN)
def test_golden_sample_hc(samples_dir, name):
    ps, hc_ref = reference(samples_dir)[name]
    m = fetalhead.measure(samples_dir / name, pixel_spacing_mm=ps)
    assert m.status in ("ok", "flagged"), m.message
    lo, hi = m.intervals["hc_mm"]
    assert lo < m.head_circumference_mm < hi
    if m.status == "ok":  # never *wrong* (issue 21: more than 5 % off, beyond two sonographers' disagreement);
        # up to 3 % is one sonographer's own repeatability, and the flag line, which may flag at most 10 % of
        # clean scans, lets a few results a little beyond it through (192_HC.png: +3.1 %, its range +/-3.1 %)
        assert m.head_circumference_mm == pytest.approx(hc_ref, rel=WRONG_HC_SHARE)
    else:  # flagged, with the reasons: it may be further off (the flag says check it), but not wildly;
        # whether 90 % intervals hold 90 % of references is a property of many scans (bench/trust.py,
        # test_uncertainty), not of one: 192_HC.png's reference lies 0.2 mm below its range
        assert m.flags and m.message
        assert m.head_circumference_mm == pytest.approx(hc_ref, rel=0.05)


def test_measurement_fields(samples_dir):
    ps, hc_ref = reference(samples_dir)["358_HC.png"]
    m = fetalhead.measure(samples_dir / "358_HC.png", pixel_spacing_mm=ps, ga_weeks=20.0)
    e = m.ellipse
    assert m.head_circumference_mm == pytest.approx(ellipse_perimeter(e.semi_major, e.semi_minor) * ps)
    assert m.biparietal_diameter_mm == pytest.approx(2 * e.semi_minor * ps)
    assert m.occipitofrontal_diameter_mm == pytest.approx(2 * e.semi_major * ps)
    assert m.cephalic_index == pytest.approx(100 * e.semi_minor / e.semi_major)
    assert m.ga_hc_hadlock_weeks == pytest.approx(ga_from_hc_hadlock1984(m.head_circumference_mm))
    assert 15 < m.ga_hc_intergrowth_weeks < 25
    assert 0 <= m.hc_centile <= 100 and math.isfinite(m.hc_zscore)
    assert 0 <= m.quality <= 1
    assert set(m.landmarks) == {"ofd_1", "ofd_2", "bpd_1", "bpd_2"}
    assert m.spacing_source == "given" and m.model_version
    row = m.to_row()
    assert row["filename"] == "358_HC.png" and float(row["hc_mm"]) == pytest.approx(m.head_circumference_mm, abs=0.01)
    d = m.to_dict()
    assert d["unit"] == "mm" and isinstance(d["flags"], list)


def test_without_spacing_no_mm_is_given(samples_dir):
    m = fetalhead.measure(samples_dir / "358_HC.png")
    assert m.status == "ok"
    assert m.head_circumference_mm is None and m.biparietal_diameter_mm is None
    assert m.head_circumference_px > 0 and m.ga_hc_hadlock_weeks is None
    assert "no_pixel_spacing" in m.notes and not m.flags and "pixel" in m.note_message and not m.message
    assert m.to_dict()["unit"] == "px"


def test_array_input_and_colour_and_16_bit_agree(samples_dir):
    ps, _ = reference(samples_dir)["590_HC.png"]
    base = fetalhead.measure(samples_dir / "590_HC.png", ps)
    grey8 = cv2.imread(str(samples_dir / "590_HC.png"), cv2.IMREAD_GRAYSCALE)
    colour = cv2.cvtColor(grey8, cv2.COLOR_GRAY2BGR)
    m_col = fetalhead.measure(colour, ps)
    m_16 = fetalhead.measure(grey8.astype(np.uint16) * 257, ps)
    for m in (m_col, m_16):
        assert m.head_circumference_mm == pytest.approx(base.head_circumference_mm, abs=0.05)


@pytest.mark.parametrize("name", ["358_HC.png", "785_HC.png"])
def test_mirrored_and_rotated_scans_give_the_same_hc(samples_dir, name):
    ps, _ = reference(samples_dir)[name]
    img = read_scan(samples_dir / name)
    m = fetalhead.measure(img, ps)
    base = m.head_circumference_mm
    mirrored = fetalhead.measure(np.ascontiguousarray(img[:, ::-1]), ps).head_circumference_mm
    rotated = fetalhead.measure(np.ascontiguousarray(np.rot90(img)), ps).head_circumference_mm
    if m.status == "ok":
        assert mirrored == pytest.approx(base, rel=0.015)
        assert rotated == pytest.approx(base, rel=0.015)
    else:  # a flagged (uncertain) head: the other views stay inside its 90 % interval
        lo, hi = m.intervals["hc_mm"]
        assert lo <= mirrored <= hi and lo <= rotated <= hi


def test_anisotropic_spacing_is_honoured(samples_dir):
    m = fetalhead.measure(samples_dir / "358_HC.png", (0.1, 0.2))
    iso = fetalhead.measure(samples_dir / "358_HC.png", 0.1)
    assert m.pixel_spacing_mm == (0.1, 0.2)
    assert m.head_circumference_mm > iso.head_circumference_mm


@pytest.mark.parametrize("make, match", [
    (lambda p: p.write_bytes(b"not an image at all"), "not a readable image"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: cv2.imwrite(str(p), np.full((300, 400), 90, np.uint8)), "single grey level"),
    (lambda p: cv2.imwrite(str(p), np.zeros((300, 400), np.uint8)), "single grey level"),
    (lambda p: cv2.imwrite(str(p), np.full((20, 30), 9, np.uint8) + np.eye(20, 30, dtype=np.uint8)), "too small"),
    (lambda p: cv2.imwrite(str(p), np.tile(np.arange(256, dtype=np.uint8), (80, 36))), "too large"),
    (lambda p: p.write_bytes((Path(__file__).parent.parent / "samples" / "358_HC.png").read_bytes()[:9000]),
     "truncated"),
])
def test_bad_input_fails_with_a_message(tmp_path, make, match):
    p = tmp_path / "bad.png"
    make(p)
    m = fetalhead.measure(p, 0.1)
    assert m.status == "failed" and not m.ok
    assert match in m.message and str(p) in m.message
    assert m.to_row()["status"] == "failed" and m.failure == "unreadable_scan"
    assert m.to_dict()["failure"] == "unreadable_scan"


def _no_figures(m):
    return all(getattr(m, a) is None for a in ("head_circumference_mm", "head_circumference_px",
                                               "ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks", "hc_centile"))


def test_image_without_a_head_is_failed_with_no_figures():
    rng = np.random.default_rng(0)
    noise = cv2.GaussianBlur(rng.uniform(0, 1, (540, 800)).astype(np.float32), (0, 0), 3)
    gradient = np.tile(np.linspace(0, 1, 800, dtype=np.float32), (540, 1))
    white = rng.uniform(0, 1, (540, 800)).astype(np.float32)
    for img in (noise, gradient, white, 0.05 * white):
        m = fetalhead.measure(img, 0.1, ga_weeks=20)
        assert m.status == "failed" and m.failure == "no_head_found" and _no_figures(m), (m.status, m.quality)
        assert "no fetal head found" in m.message


def _away_from_the_head(img, e):
    """Crops of ``img`` clear of the head ``e``: the strips beside its box (64 px or more) and the
    corner farthest from it (45 % of the short side), as is and enlarged to the scan's size."""
    from fetalhead.clinical.geometry import ellipse_points

    h, w = img.shape
    pts = ellipse_points(e, 360)
    (x0, y0), (x1, y1) = np.floor(pts.min(axis=0)).astype(int) - 2, np.ceil(pts.max(axis=0)).astype(int) + 2
    out = [img[:, : max(x0, 0)], img[:, max(x1, 0):], img[: max(y0, 0)], img[max(y1, 0):]]
    s = int(min(h, w) * 0.45)
    far = max([(0, 0), (w - s, 0), (0, h - s), (w - s, h - s)],
              key=lambda c: (c[0] + s / 2 - e.center_x) ** 2 + (c[1] + s / 2 - e.center_y) ** 2)
    corner = img[far[1]:far[1] + s, far[0]:far[0] + s]
    out += [corner, cv2.resize(corner, (w, h), interpolation=cv2.INTER_LINEAR)]
    return [np.ascontiguousarray(c) for c in out if min(c.shape) >= 64]


def test_crops_of_the_bundled_samples_away_from_the_head_are_failed_with_no_figures(samples_dir):
    """Tissue with no head (issue 21: a crop of maternal tissue got HC 267 mm and a centile): failed,
    "no fetal head found", no HC, GA or centile; the scans themselves are still measured."""
    from fetalhead.scans.imageio import read_scan

    by_confidence = 0
    for path in sorted(samples_dir.glob("*_HC.png")):
        img = read_scan(path)
        whole = fetalhead.measure(img, 0.15, ga_weeks=22)
        assert whole.status != "failed" and whole.head_circumference_mm is not None
        for crop in _away_from_the_head(img, whole.ellipse):
            m = fetalhead.measure(crop, 0.15, ga_weeks=22)
            assert m.status == "failed" and m.failure == "no_head_found" and _no_figures(m), (path.name, m.message)
            assert "no fetal head found" in m.message and not m.notes
            by_confidence += "coarse_confidence" in m.quality_components  # outlined, then refused by the rule
    assert by_confidence >= 1  # the network outlined "heads" in some of these: the confidence rule refused them


def test_the_no_head_rule_reads_both_views():
    from fetalhead.clinical.limits import NO_HEAD_CONFIDENCE, NO_HEAD_DOUBTFUL_CONFIDENCE, no_fetal_head

    whole, centred = NO_HEAD_DOUBTFUL_CONFIDENCE
    assert not no_fetal_head(0.98, 0.98)
    assert no_fetal_head(NO_HEAD_CONFIDENCE - 0.01, 0.99) and no_fetal_head(0.99, NO_HEAD_CONFIDENCE - 0.01)
    assert no_fetal_head(whole - 0.005, centred - 0.005)
    assert not no_fetal_head(whole - 0.005, centred + 0.005) and not no_fetal_head(whole + 0.005, centred - 0.005)


# --- the decisions, with a synthetic model (no network): exact and fast --------------------------


def skull_reader(batch: np.ndarray) -> np.ndarray:
    """Logits from the views: inside the head is anything brighter than the dark background."""
    out = np.empty_like(batch)
    for k, v in enumerate(batch[:, 0]):
        lo, hi = float(v.min()), float(v.max())
        out[k, 0] = 40.0 * (v - (lo + 0.25 * (hi - lo))) / max(hi - lo, 1e-6)
    return out


class SyntheticModel:
    """A stand-in for HeadModel whose predictor reads the rendered head (no network, no calibration)."""

    version = "synthetic"
    calibration = None

    def __init__(self, predict=None):
        from fetalhead.model.pipeline import PipelineConfig

        self.predict = predict or skull_reader
        self.pipeline_config = PipelineConfig()


def rendered(e, shape=(540, 800)):
    """A head: dark background, grey brain, a bright skull ring just inside the outer border."""
    from fetalhead.clinical.geometry import Ellipse, ellipse_coverage

    inner = Ellipse(e.center_x, e.center_y, e.semi_major * 0.94, e.semi_minor * 0.94, e.angle_deg)
    full, brain = ellipse_coverage(e, shape), ellipse_coverage(inner, shape)
    return (0.08 + 0.82 * (full - brain) + 0.3 * brain).astype(np.float32)


def test_status_follows_the_flags_in_one_place():
    from fetalhead.clinical.geometry import Ellipse
    from fetalhead.measurement import decide_status

    e = Ellipse(400, 270, 180, 145, 20)  # cephalic index 80.6 %, in the normal range
    ok = fetalhead.measure(rendered(e), 0.15, model=SyntheticModel())
    assert ok.status == "ok" == decide_status(ok) and ok.flags == []
    cut = fetalhead.measure(rendered(Ellipse(80, 270, 180, 130, 0)), 0.15, model=SyntheticModel())
    assert "head_cut_by_image_border" in cut.flags and cut.status == "flagged" == decide_status(cut)
    assert "image border" in cut.message
    px = fetalhead.measure(rendered(e), model=SyntheticModel())
    assert px.status == "ok" and "no_pixel_spacing" in px.notes and px.head_circumference_mm is None


def test_a_head_cut_by_the_sector_edge_is_flagged_once_with_the_reason():
    """Part of the outline where the scan holds no echo (outside the ultrasound sector) sends the
    result to review; when the image border cuts it, the border's flag alone says so."""
    from fetalhead.clinical.geometry import Ellipse
    from fetalhead.measurement import Measurement, from_segmentation
    from fetalhead.model.pipeline import SegmentationResult

    comps = {"mask_fit": 0.98, "inside_fraction": 1.0, "outline_seen": 0.9, "tta_hc_rel_diff": 0.001,
             "boundary_sharpness": 0.9, "outline_in_field": 0.97}

    def judged(e, **changes):
        seg = SegmentationResult(e, 0.95, dict(comps, **changes))
        return from_segmentation(Measurement("s.png", "failed", image_size=(800, 540)), seg, 0.15, "test")

    inside = Ellipse(400, 270, 180, 145, 0)
    assert judged(inside).status == "ok"
    cut = judged(inside, outline_in_field=0.75)
    assert cut.status == "flagged" and cut.flags == ["head_cut_by_sector_edge"]
    assert "25 % of the outline" in cut.message and "sector" in cut.message
    border = judged(Ellipse(80, 270, 180, 130, 0), outline_in_field=0.75)
    assert border.status == "flagged" and "head_cut_by_image_border" in border.flags
    assert "head_cut_by_sector_edge" not in border.flags


def test_every_review_flag_is_said_in_every_language():
    from fetalhead.measurement import REVIEW_FLAGS
    from fetalhead.outputs.report import translations

    for lang in ("en", "hi", "te"):
        t = translations(lang)
        assert all(t.get(f"flag_{f}") for f in REVIEW_FLAGS), lang


def test_implausible_head_size_is_flagged_with_the_reason():
    from fetalhead.clinical.geometry import Ellipse

    big = fetalhead.measure(rendered(Ellipse(400, 270, 250, 200, 0)), 0.9, model=SyntheticModel())  # HC ~ 1270 mm
    assert big.status == "flagged" and "implausible_head_size" in big.flags
    assert "plausible" in big.message and big.ga_hc_hadlock_weeks is None and big.ga_hc_intergrowth_weeks is None


@pytest.mark.parametrize("axes, cm", [((250, 200), 18.0), ((60, 50), 2.0)])  # HC ~1270 mm; ~35 mm
def test_an_implausible_head_with_a_measured_pixel_size_is_no_head(axes, cm):
    """Issue 21: with a pixel size measured on the scan (here two points of known distance: 200 px) a
    "head" outside any fetal head's size is no fetal head (failed, no figures); typed, the same pixel size
    gives a flagged HC (the typed number is the likelier mistake)."""
    from fetalhead.clinical.geometry import Ellipse

    img = rendered(Ellipse(400, 270, *axes, 0))
    m = fetalhead.measure(img, model=SyntheticModel(), scale_points="100,500,300,500", scale_distance_cm=cm)
    assert m.status == "failed" and m.failure == "no_head_found" and _no_figures(m), (m.status, m.flags)
    assert "no fetal head found" in m.message and "two_points" in m.message
    typed = fetalhead.measure(img, cm * 10 / 200, model=SyntheticModel())
    assert typed.status == "flagged" and "implausible_head_size" in typed.flags
    assert typed.head_circumference_mm is not None


def test_no_head_by_size_only_with_a_measured_pixel_size():
    from fetalhead.clinical.limits import PLAUSIBLE_HC_RANGE_MM, no_head_by_size

    lo, hi = PLAUSIBLE_HC_RANGE_MM
    for source in ("dicom:SequenceOfUltrasoundRegions[0]", "screen:depth-scale", "two_points"):
        assert no_head_by_size(hi + 1, source) and no_head_by_size(lo - 1, source)
        assert not no_head_by_size(hi - 1, source) and not no_head_by_size(lo + 1, source)
    for source in ("given", "csv", "page", "given (DICOM not usable: no region)", "none", None, ""):
        assert not no_head_by_size(hi + 100, source)
    assert not no_head_by_size(None, "two_points")


def test_a_loop_whose_frames_mostly_show_no_head_has_no_head():
    from fetalhead.measurement import Measurement
    from fetalhead.scans.cine import LOOP_NO_HEAD_SHARE, loop_without_head

    def frames(n_head, n_none):
        return ([Measurement("x", "flagged") for _ in range(n_head)]
                + [Measurement("x", "failed", failure="no_head_found") for _ in range(n_none)])

    n = 20
    most = int(LOOP_NO_HEAD_SHARE * n) + 1
    assert "no fetal head found on" in loop_without_head(frames(n - most, most))
    assert loop_without_head(frames(n - most + 1, most - 1)) == ""
    assert loop_without_head(frames(n, 0)) == "" and loop_without_head([]) == ""


@pytest.mark.parametrize("spacing", [1e300, 0, -1, 1.66, float("nan"), 0.001, (0.1, 5.0)])
def test_pixel_sizes_outside_the_plausible_range_are_refused(spacing):
    from fetalhead.clinical.geometry import Ellipse

    m = fetalhead.measure(rendered(Ellipse(400, 270, 180, 130, 0)), spacing, model=SyntheticModel())
    assert m.status == "failed" and m.head_circumference_mm is None and "plausible range" in m.message
    assert m.failure == "invalid_input"


def test_quality_near_zero_prints_no_hc():
    """A predictor whose output is no ellipse (a thin cross) is failed: no HC, no gestational age."""
    from fetalhead.clinical.geometry import Ellipse

    def cross(batch):
        out = np.full_like(batch, -10.0)
        s = batch.shape[-1]
        out[:, :, s // 2 - 3: s // 2 + 3, :] = 10.0
        out[:, :, :, s // 2 - 3: s // 2 + 3] = 10.0
        return out

    m = fetalhead.measure(rendered(Ellipse(400, 270, 180, 130, 0)), 0.15, model=SyntheticModel(cross))
    assert m.status == "failed" and m.head_circumference_mm is None and m.ga_hc_hadlock_weeks is None
    assert m.quality is not None and m.quality < 0.2 and "no measurable head" in m.message
    assert m.failure == "no_measurable_head" and m.failure in fetalhead.measurement.FAILURES


def test_with_ellipse_recomputes_and_keeps_the_scan(samples_dir):
    from fetalhead.clinical.geometry import Ellipse

    base = fetalhead.measure(samples_dir / "358_HC.png", 0.13, ga_weeks=21)
    e = base.ellipse
    moved = base.with_ellipse(Ellipse(e.center_x, e.center_y, e.semi_major, e.semi_minor * 0.9, e.angle_deg))
    assert moved.biparietal_diameter_mm == pytest.approx(0.9 * base.biparietal_diameter_mm)
    assert moved.sha256 == base.sha256 and moved.quality == base.quality and moved.frame == base.frame
    assert moved.ga_by_dates_weeks == 21 and moved.hc_centile is not None
    # a hand-placed outline is "adjusted": the software's checks and interval are of its own outline
    assert base.status == "ok" and "adjusted_by_hand" in moved.flags and moved.status == "adjusted"
    assert moved.intervals == {} and base.intervals["hc_mm"]
    regaged = base.with_ellipse(ga_weeks=None)
    assert regaged.hc_centile is None and "adjusted_by_hand" not in regaged.flags and regaged.status == "ok"
    assert regaged.withheld["hc_centile"] == "no_ga_by_dates" and "hc_centile" not in base.withheld
    # the JSON form goes back to the same measurement (figures recomputed, not copied)
    back = fetalhead.measurement.Measurement.from_dict(moved.to_dict())
    assert back.head_circumference_mm == pytest.approx(moved.head_circumference_mm)
    assert back.flags == moved.flags and back.status == moved.status
    # every figure left out says why, as a code the page and the report translate
    late = base.with_ellipse(ga_weeks=41)
    assert late.hc_centile is None and late.withheld["hc_centile"] == "ga_outside_standard"
    assert late.to_dict()["withheld"]["hc_centile"] == "ga_outside_standard"
    px = fetalhead.measure(samples_dir / "358_HC.png")
    assert px.withheld["hc_mm"] == px.withheld["ga_hc_hadlock_weeks"] == "no_pixel_spacing"
    assert set(base.withheld.values()) | set(late.withheld.values()) | set(px.withheld.values()) <= set(
        fetalhead.measurement.WITHHELD_REASONS)
    failed = fetalhead.measure(b"junk", 0.1)
    with pytest.raises(ValueError, match="no ellipse"):
        failed.with_ellipse()


def test_bytes_path_and_array_agree_and_the_file_is_hashed_from_what_was_read(samples_dir):
    import hashlib

    data = (samples_dir / "590_HC.png").read_bytes()
    a = fetalhead.measure(samples_dir / "590_HC.png", 0.13)
    b = fetalhead.measure(data, 0.13, source="590_HC.png")
    assert a.head_circumference_mm == b.head_circumference_mm
    assert a.sha256 == b.sha256 == hashlib.sha256(data).hexdigest()
    assert fetalhead.measure(samples_dir / "590_HC.png", 0.13, sha256="abc").sha256 == "abc"  # not hashed again
    assert fetalhead.measure(data, 0.13, frame=2).status == "failed"


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    """A PNG header claiming 30000 x 30000 pixels is refused from the header, without decoding."""
    import struct
    import zlib

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    row = b"\0" + b"\0" * 30000
    idat = zlib.compress(row * 50, 9)  # a few rows only: decoding would still allocate 900 MB
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    m = fetalhead.measure(png, 0.1, source="bomb.png")
    assert m.status == "failed" and "too large" in m.message and "before decoding" in m.message


def test_a_bright_disc_without_a_skull_is_not_ok():
    from fetalhead.clinical.geometry import Ellipse

    from .model.test_pipeline import render

    m = fetalhead.measure(render(Ellipse(400, 270, 180, 140, 0)), 0.15, model=SyntheticModel())
    assert m.status == "flagged" and "skull_not_seen" in m.flags and "skull echo" in m.message


def test_calibrated_model_gives_intervals_that_widen_on_hidden_skull():
    """With a calibration, every measurement carries a 90 % interval; hiding part of the skull (a
    shadow band across the head) widens it, or flags the result."""
    from fetalhead.model.augment import acoustic_shadow
    from fetalhead.clinical.geometry import Ellipse
    from fetalhead.model.uncertainty import FEATURES, Calibration

    w = [0.0] * len(FEATURES)
    w[FEATURES.index("outline_seen")] = 3.0  # difficulty grows as less of the skull is seen
    model = SyntheticModel()
    model.calibration = Calibration(weights=w, bias=-5.0, q_hc=2.0, q_bpd=2.5, q_ofd=2.2, flag_half_width=0.03)
    e = Ellipse(400, 270, 180, 145, 0)
    clear = fetalhead.measure(rendered(e), 0.15, model=model, ga_weeks=24)
    lo, hi = clear.intervals["hc_mm"]
    assert lo < clear.head_circumference_mm < hi
    assert clear.intervals["bpd_mm"][0] < clear.biparietal_diameter_mm < clear.intervals["bpd_mm"][1]
    ga_lo, ga_hi = clear.intervals["ga_hc_hadlock_weeks"]
    assert ga_lo < clear.ga_hc_hadlock_weeks < ga_hi
    row = clear.to_row()
    assert row["hc_mm_low"] == pytest.approx(lo, abs=0.01) and row["hc_mm_high"] == pytest.approx(hi, abs=0.01)
    shadowed_img = acoustic_shadow(rendered(e), (470, 0), (0, 1), width_px=140, attenuation=0.1)
    shadowed = fetalhead.measure(shadowed_img, 0.15, model=model)
    hw_clear = clear.interval_half_widths["hc"]
    assert shadowed.status != "ok" or shadowed.interval_half_widths["hc"] > 1.5 * hw_clear, shadowed.quality_components
    assert shadowed.quality < clear.quality
    # px only: the interval is in pixels
    px = fetalhead.measure(rendered(e), model=model)
    assert "hc_mm" not in px.intervals and px.intervals["hc_px"][0] < px.head_circumference_px


# --- flags that say what happened (issue 21), on synthetic predictors ------------------------------


class CalibratedSynthetic(SyntheticModel):
    """The synthetic predictor judged with the shipped model's calibration (90 % ranges and flag line)."""

    def __init__(self, predict=None):
        from fetalhead.model.runtime import load_model

        super().__init__(predict)
        self.calibration = load_model().calibration


def hides_right_skull(batch):
    """A predictor that does not see the skull on the right half of each view (the head mask stops
    at the brain there): a network missing half the skull echo."""
    out = skull_reader(batch)
    for k, v in enumerate(batch[:, 0]):
        lo, hi = float(v.min()), float(v.max())
        skull = v > lo + 0.6 * (hi - lo)
        skull[:, : v.shape[1] // 2] = False
        out[k, 0][skull] = -40.0
    return out


def without_right_skull_echo(e, shape=(540, 800)):
    """:func:`rendered`, with the skull echo gone on the right half of the head (a shadow)."""
    from fetalhead.clinical.geometry import Ellipse, ellipse_coverage

    img = rendered(e, shape)
    inner = Ellipse(e.center_x, e.center_y, e.semi_major * 0.94, e.semi_minor * 0.94, e.angle_deg)
    ring = ellipse_coverage(e, shape) - ellipse_coverage(inner, shape)
    right = np.arange(shape[1])[None, :] > e.center_x
    return (img - (0.82 - 0.3) * ring * right).astype(np.float32)


def test_a_perfect_outline_is_not_flagged_and_half_a_skull_hidden_widens_the_range_or_flags_it():
    from fetalhead.clinical.geometry import Ellipse

    e = Ellipse(400, 270, 180, 145, 20)
    perfect = fetalhead.measure(rendered(e), 0.15, model=CalibratedSynthetic())
    assert perfect.status == "ok" and perfect.flags == [] and perfect.message == "" and not perfect.uncertain_arcs
    hw = perfect.interval_half_widths["hc"]
    for m in (fetalhead.measure(without_right_skull_echo(e), 0.15, model=CalibratedSynthetic()),
              fetalhead.measure(rendered(e), 0.15, model=CalibratedSynthetic(hides_right_skull))):
        assert m.status != "failed"
        # (with the out-of-fold calibration of issue 21 the range widens from +/-2.0 to +/-2.4 %; with the
        # validation-split one it was +/-1.8 to +/-3.1 %: the 807 images' neighbours with half a skull seen
        # were measured better than the 157's)
        assert m.status == "flagged" or m.interval_half_widths["hc"] > 1.15 * hw, (m.flags, m.interval_half_widths, hw)


def test_the_doubt_is_placed_where_the_skull_is_hidden():
    from fetalhead.clinical.geometry import Ellipse
    from fetalhead.measurement import assess
    from fetalhead.model.pipeline import PipelineConfig, segment_head

    e = Ellipse(400, 270, 180, 145, 20)
    seg = segment_head(without_right_skull_echo(e), skull_reader, PipelineConfig())
    arcs = assess(seg, 0.15, (800, 540)).arcs
    assert arcs and arcs[0]["cause"] == "faint_echo" and arcs[0]["where"] == "right"
    assert 0.4 <= arcs[0]["share"] <= 0.6
    assert assess(segment_head(rendered(e), skull_reader, PipelineConfig()), 0.15, (800, 540)).arcs == []


class _WideRange:
    """A calibration whose 90 % range of HC is +/-5 % whatever the scan (quality 0.3: flagged)."""

    def half_widths(self, comps):
        return {"hc": 0.05, "bpd": 0.06, "ofd": 0.06}

    def quality(self, hw):
        return 0.3


def test_each_flag_says_its_cause_where_and_what_to_check_in_every_language():
    """low_quality from a wide range says so (not "the outline does not fit"), names where the skull is
    hidden and what to check there; the overlay and the JSON carry that stretch; hi and te too."""
    from fetalhead.clinical.geometry import Ellipse
    from fetalhead.measurement import Measurement, from_segmentation
    from fetalhead.model.pipeline import PipelineConfig, segment_head
    from fetalhead.outputs.wording import review_lines, translations

    e = Ellipse(400, 270, 180, 145, 20)
    seg = segment_head(without_right_skull_echo(e), skull_reader, PipelineConfig())
    m = from_segmentation(Measurement("s.png", "failed", image_size=(800, 540)), seg, 0.15, "given",
                          calibration=_WideRange())
    assert m.status == "flagged" and m.flags == ["low_quality"] and m.uncertain_arcs[0]["where"] == "right"
    en = translations("en")
    assert m.message == ("Uncertain: the 90 % range of HC is ±5.0 %. The skull echo is faint or missing on the right "
                         "of the head: check the outline there.")
    assert "fit the skull" not in m.message and m.to_row()["message"] == m.message
    assert m.to_dict()["uncertain_arcs"] == m.uncertain_arcs
    for lang in ("hi", "te"):
        t = translations(lang)
        (line,) = review_lines(m, t)
        assert t["where_right"] in line and "5.0" in line and "{" not in line and line != review_lines(m, en)[0]
    # the same scan with a clear skull: the wide range is said with no place to blame
    clear = from_segmentation(Measurement("s.png", "failed", image_size=(800, 540)),
                              segment_head(rendered(e), skull_reader, PipelineConfig()), 0.15, "given",
                              calibration=_WideRange())
    assert clear.flags == ["low_quality"] and not clear.uncertain_arcs and en["doubt_unlocated"] in clear.message
    # sent back by the page (signed JSON) and with another GA: the stretch stays; adjusted by hand: it goes
    back = Measurement.from_dict(m.to_dict())
    assert back.uncertain_arcs == m.uncertain_arcs and back.message == m.message
    assert m.with_ellipse(ga_weeks=22).uncertain_arcs == m.uncertain_arcs
    moved = m.with_ellipse(Ellipse(e.center_x + 3, e.center_y, e.semi_major, e.semi_minor, e.angle_deg))
    assert moved.status == "flagged" and moved.uncertain_arcs == []  # the model's flag stays, its place does not


def test_information_is_a_note_never_a_flag():
    """A cephalic index outside Hadlock's +/-1 SD, no pixel size and a figure outside its formula's range
    are notes: the result stays `ok`, its message (the warnings) empty."""
    from fetalhead.clinical.geometry import Ellipse

    round_head = fetalhead.measure(rendered(Ellipse(400, 270, 180, 170, 0)), 0.15, model=SyntheticModel())
    assert round_head.status == "ok" and round_head.flags == [] and round_head.message == ""
    assert round_head.notes == ["cephalic_index_out_of_range"] and "Hadlock's ±1 SD" in round_head.note_message
    row = round_head.to_row()
    assert row["notes"] == "cephalic_index_out_of_range" and row["note_message"] == round_head.note_message
    late = fetalhead.measure(rendered(Ellipse(400, 270, 260, 215, 0)), 0.22, model=SyntheticModel())  # HC ~ 300 mm
    assert late.status == "ok" and late.message == "" and late.ga_hc_intergrowth_weeks is None
    assert "outside_dating_window" in late.notes and "INTERGROWTH" in late.note_message


def test_a_head_far_from_its_gestational_age_is_flagged_with_what_to_check(samples_dir):
    """Review of issue 22: a pixel size typed 2.2 times too large gave HC 379 mm at 36 weeks by dates (z +5.6,
    "above the 99th centile") with "No automatic warnings". Beyond HC_FAR_FROM_GA_Z SD it is a review flag
    naming the z-score and the date, in every language; within it, nothing."""
    from fetalhead.clinical.limits import HC_FAR_FROM_GA_Z
    from fetalhead.outputs.wording import LANGUAGES, review_lines, translations

    scan = samples_dir / "358_HC.png"
    far = fetalhead.measure(scan, 0.3, ga_weeks=36.0)
    assert far.hc_zscore >= HC_FAR_FROM_GA_Z and far.status == "flagged" and far.flags == ["hc_far_from_ga"]
    assert "+5.6 SD" in far.message and "36w 0d" in far.message and "pixel size" in far.message
    for lang in LANGUAGES:
        (line,) = review_lines(far, translations(lang))
        assert "+5.6" in line and "36w 0d" in line
    near = fetalhead.measure(scan, 0.134737677, ga_weeks=20.0)
    assert abs(near.hc_zscore) < 1 and "hc_far_from_ga" not in near.flags
    no_date = fetalhead.measure(scan, 0.3)
    assert "hc_far_from_ga" not in no_date.flags  # no GA by dates: nothing to compare with
    assert far.with_ellipse(far.ellipse, ga_weeks=20.0).flags.count("hc_far_from_ga") == 1  # still far at 20 weeks
