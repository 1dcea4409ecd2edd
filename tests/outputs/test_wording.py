"""The words of a result (fetalhead.outputs.wording): notes say what was left out and why, with the range
a formula is valid for."""

import pytest

from fetalhead.clinical.biometry import HADLOCK_BPD_RANGE_MM, HADLOCK_HC_RANGE_MM
from fetalhead.clinical.geometry import Ellipse
from fetalhead.measurement import Measurement, _fill
from fetalhead.outputs.wording import LANGUAGES, note_lines, translations


def small_head():
    """HC about 57 mm: below both Hadlock formulas' ranges."""
    m = Measurement("a.png", "ok", quality=0.95, image_size=(800, 540))
    _fill(m, Ellipse(400, 270, 100, 80, 0), 0.1, "given", None)
    return m


def test_a_figure_outside_its_formula_names_the_range_it_is_valid_for():
    m = small_head()
    assert m.withheld.get("ga_hc_hadlock_weeks") == "outside_formula_range"
    m.notes = sorted(set(m.notes) | {"outside_formula_range"})
    t = translations("en")
    lines = note_lines(m, t)
    hadlock = next(x for x in lines if x.startswith(t["ga_hadlock"] + ":"))
    lo, hi = HADLOCK_HC_RANGE_MM
    assert hadlock.endswith(f"(valid for HC {lo:g} to {hi:g} mm)"), hadlock
    bpd = next(x for x in lines if x.startswith(t["ga_bpd"] + ":"))
    assert f"BPD {HADLOCK_BPD_RANGE_MM[0]:g} to {HADLOCK_BPD_RANGE_MM[1]:g} mm" in bpd


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_range_is_written_in_every_language(lang):
    m = small_head()
    m.notes = sorted(set(m.notes) | {"outside_formula_range"})
    t = translations(lang)
    lo, hi = HADLOCK_HC_RANGE_MM
    line = next(x for x in note_lines(m, t) if x.startswith(t["ga_hadlock"] + ":"))
    assert t["withheld_outside_formula_range"] in line and f"{lo:g}" in line and f"{hi:g}" in line


def test_an_ok_result_in_pixels_claims_no_head_size_check(samples_dir):
    """Sonographer review: without a pixel size the banner said the software "checked ... the head size", which
    it cannot do in pixels; the report says what it checked, as the page does."""
    import html

    import numpy as np

    import fetalhead
    from fetalhead.outputs.report import report_html
    from fetalhead.outputs.wording import status_text

    px = fetalhead.measure(samples_dir / "358_HC.png")
    mm = fetalhead.measure(samples_dir / "358_HC.png", 0.134737677)
    assert px.status == mm.status == "ok" and px.head_circumference_mm is None
    for lang in LANGUAGES:
        t = translations(lang)
        assert status_text(px, t) == t["status_ok_px"] != t["status_ok"] == status_text(mm, t)
    from fetalhead.outputs.report import display_values

    assert display_values(px, translations("te"))["status"] == translations("te")["status_ok_px"]  # the page's words
    page = report_html(px, np.full((540, 800), 0.3, np.float32), "en")
    assert html.escape(translations("en")["status_ok_px"]) in page
