"""Every threshold that decides a result, named once with where it comes from.

The command line, the web app (its form limits and chart axes come from
:func:`form_limits`), reports and batches read these; none keeps a copy.
Formula validity ranges live beside their formulas in :mod:`fetalhead.clinical.biometry`;
the form and chart limits here are derived from them.
"""

from __future__ import annotations

import math

from .biometry import (CHART_NAMES, FORMULAS, HADLOCK_GA_RANGE_WEEKS, INTERGROWTH_GA_RANGE_WEEKS, intergrowth_value_at_centile)

__all__ = [
    "QUALITY_THRESHOLD",
    "CALIBRATED_QUALITY_THRESHOLD",
    "INSIDE_FRACTION_FLAG",
    "INSIDE_FRACTION_SCORE_RANGE",
    "TTA_HC_DISAGREEMENT_ZERO",
    "MIN_AXIS_RATIO",
    "NO_HEAD_MASK_FIT",
    "NO_HEAD_CONFIDENCE",
    "NO_HEAD_DOUBTFUL_CONFIDENCE",
    "no_fetal_head",
    "MEASURED_SPACING_SOURCES",
    "no_head_by_size",
    "TOO_UNCERTAIN_QUALITY",
    "SKULL_SEEN_MIN",
    "OUTLINE_IN_FIELD_MIN",
    "PLAUSIBLE_HC_RANGE_MM",
    "HC_FAR_FROM_GA_Z",
    "PLAUSIBLE_DIAMETER_RANGE_MM",
    "PIXEL_SIZE_RANGE_MM",
    "SCALE_DISTANCE_RANGE_CM",
    "MIN_SCALE_POINTS_PX",
    "LOOPBACK_HOSTS",
    "GA_BY_DATES_RANGE_WEEKS",
    "CHART_GA_RANGE_WEEKS",
    "chart_hc_range_mm",
    "check_pixel_spacing",
    "check_ga_by_dates",
    "form_limits",
    "LimitError",
]

#: A result whose quality score is below this is flagged ``low_quality``.
#: Chosen on the subject-grouped HC18 validation split (BENCHMARKS.md, "Accuracy").
QUALITY_THRESHOLD = 0.85

#: With a calibrated model (:mod:`fetalhead.model.uncertainty`) the quality score is 1 - half-width /
#: (2 x the flag line): below 0.5 the 90 % interval of HC is wider than the calibrated flag line.
CALIBRATED_QUALITY_THRESHOLD = 0.5

#: A "head" whose skull echo is seen on less than this share of its outline is flagged
#: ``skull_not_seen`` (a bright disc, tissue, or a head mostly hidden by shadows): on the HC18
#: validation split, clean heads show their skull on 39 % or more of the outline (median 83 %).
SKULL_SEEN_MIN = 0.3

#: Share of the outline where the scan holds any echo (``outline_in_field``: not the black outside the
#: ultrasound sector or the image) below which the head is flagged ``head_cut_by_sector_edge``: the
#: same tenth of the outline as :data:`INSIDE_FRACTION_FLAG`. On the HC18 validation split (INT8 model
#: 0.3.0) clean heads have 0.97 or more; a sector edge across a quarter of the head's width gives
#: 0.74-0.90 (99 % of them below 0.9); under gamma 1.8 contrast, which turns the darkest grey black,
#: 3 % of heads fall below it.
OUTLINE_IN_FIELD_MIN = 0.9

#: Share of the fitted ellipse's outline inside the image below which the head is
#: flagged ``head_cut_by_image_border`` (HC18 scans whose skull leaves the field of
#: view lose more than a tenth of the outline; see BENCHMARKS.md, off-centre shifts).
INSIDE_FRACTION_FLAG = 0.9

#: The ``inside`` part of the quality score goes linearly from 0 at the first value
#: to 1 at the second (share of the outline inside the image).
INSIDE_FRACTION_SCORE_RANGE = (0.6, 0.9)

#: The mirrored-view agreement part of the quality score is 0 when the HC of the
#: view and of its mirror differ by this share of HC (set with
#: :data:`QUALITY_THRESHOLD` on the validation split).
TTA_HC_DISAGREEMENT_ZERO = 0.04

#: A fitted "head" with a minor/major axis ratio below this is no fetal head
#: (cephalic index 40 %, far below the severe dolichocephaly of about 65 %).
MIN_AXIS_RATIO = 0.4

#: The network's head region is no head-like ellipse when its IoU with the fitted ellipse is
#: below this: the scan is ``failed`` (no HC, no gestational age). Clean HC18 validation
#: heads score 0.96 or more; heads under shadows and cuts 0.54 or more (two shadow bands).
NO_HEAD_MASK_FIT = 0.5

#: No fetal head. The network was trained to say "no head" on views of random parts of the scans and
#: on blank views (``fetalhead.training.train``: ``random_crop_prob``, ``blank_view_prob``), so its mean
#: head probability over the region it calls head is near 1 on a fetal head and lower on anything else:
#: ``coarse_confidence`` in the whole-image view, ``head_confidence`` in the head-centred view. A scan is
#: ``failed`` ("no fetal head found", no figures) when either is under this, or when both are under
#: :data:`NO_HEAD_DOUBTFUL_CONFIDENCE`. Measured with ``python bench/no_head.py`` (shipped INT8 model
#: 0.3.0): the 807 labelled HC18 images, clean, score 0.937 / 0.886 or more (whole image / head-centred);
#: HC18's 335 official test images 0.904 / 0.942 or more: none fails; of every fifth labelled image
#: under each of the 17 damages of ``bench/robustness.py``, 1 of 2754. Of the images with no fetal head
#: that the network still outlined (crops of HC18 scans away from the head, other anatomy), 500 of 525
#: fail (BENCHMARKS.md, "No fetal head"); a real head this unsure fails too, with the same words.
NO_HEAD_CONFIDENCE = 0.88
#: (whole-image view, head-centred view): both under these, the network is unsure there is a head in
#: both views: no fetal head (see :data:`NO_HEAD_CONFIDENCE`; clean labelled heads score 0.937 or more
#: in the first, and none is under both).
NO_HEAD_DOUBTFUL_CONFIDENCE = (0.93, 0.92)

#: Nothing with a quality near zero prints an HC or a gestational age: under this quality score
#: (with the calibrated model: a 90 % interval of HC of about +/-10 %, see
#: :data:`fetalhead.model.uncertainty.QUALITY_ZERO_HALF_WIDTH`) the scan is ``failed``, and the message
#: says how wide the range would have been.
TOO_UNCERTAIN_QUALITY = 0.05

#: Plausible fetal head circumference (mm): HC18's labelled scans span 44-346 mm (from
#: about 12 weeks to term; van den Heuvel et al., PLOS ONE 2018) and the
#: INTERGROWTH-21st 99.9th centile at 40 weeks is 374 mm (Papageorghiou et al., Lancet
#: 2014). Outside 40-400 mm a "head" is flagged ``implausible_head_size``: a wrong pixel
#: size, or no fetal head.
PLAUSIBLE_HC_RANGE_MM = (40.0, 400.0)

#: An HC this many standard deviations or more from the mean for the gestational age by dates (z-score on the
#: chosen chart) is flagged ``hc_far_from_ga``: under the standard one fetus in about 16,000 lies beyond +/-4 SD,
#: while fetal microcephaly is diagnosed from 3 SD below the mean (Society for Maternal-Fetal Medicine,
#: Gelber et al., Am J Obstet Gynecol 2016): a head this far off is most often a wrong pixel size or scale, or a
#: wrong date, and otherwise needs a sonographer's eye anyway. (Review of issue 22: a pixel size typed 2.2 times
#: too large gave HC 379 mm at 36 weeks, z +5.6, "above the 99th centile", with no warning.)
HC_FAR_FROM_GA_Z = 4.0

#: Pixel spacing sources that are measured on the scan, not typed (prefixes of ``spacing_source``): the
#: DICOM file's own calibration, the screen's depth scale, two points of known distance set on the
#: picture. With one of these a "head" outside :data:`PLAUSIBLE_HC_RANGE_MM` cannot be put down to a
#: mistyped pixel size: it is no fetal head (issue 21: no figures, not a flagged HC). Found on the
#: SonoSite cardiac screen of pydicom-data, measured from its own calibration as HC 467 mm.
MEASURED_SPACING_SOURCES = ("dicom:", "screen:", "two_points")

#: Plausible BPD and OFD (mm) typed by a sonographer (``fetalhead validate``): the diameters of a head
#: whose HC is in :data:`PLAUSIBLE_HC_RANGE_MM`, from HC/pi shrunk by 0.8 to HC/pi grown by 1.2 (the
#: axis ratio of a fetal head lies within about 0.7-0.9: cephalic index 70-90 %).
PLAUSIBLE_DIAMETER_RANGE_MM = (round(PLAUSIBLE_HC_RANGE_MM[0] / math.pi * 0.8, 1),
                               round(PLAUSIBLE_HC_RANGE_MM[1] / math.pi * 1.2, 1))

#: The names of this computer: servers (web page, DICOM node) listen only here unless told otherwise,
#: and beyond it they need a guard (a login for the page, a calling AE title list for the node).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

#: Plausible pixel sizes of obstetric B-mode images, mm per pixel. HC18's 807
#: labelled scans span 0.049-0.393 mm (van den Heuvel et al., PLOS ONE 2018);
#: the range leaves room for finer and coarser scanners but refuses what is no
#: fetal-head ultrasound spacing (1.66 typed for 0.166, a CT's 1.25 mm), wherever
#: it comes from: command line, CSV, form, DICOM.
PIXEL_SIZE_RANGE_MM = (0.02, 1.0)

#: The distance typed between two points set by hand on a picture to give its scale (cm): from a
#: millimetre to 30 cm, the deepest depth setting of obstetric abdominal probes (24-30 cm); anything
#: else is a typing slip (mm typed as cm, a depth of 160).
SCALE_DISTANCE_RANGE_CM = (0.1, 30.0)

#: Two points set by hand for a scale lie at least this far apart (pixels of the original image): a
#: click or tap lands within about a pixel of a mark, so 20 px between them keep the scale within about
#: 10 %; a scale's marks 1 cm apart are 10-500 px apart (:data:`PIXEL_SIZE_RANGE_MM`).
MIN_SCALE_POINTS_PX = 20.0

#: Gestational age by dates accepted as input (weeks): the widest range any of the
#: formulas used accepts (Hadlock 1984: 14-42 weeks). Centiles are given only
#: inside :data:`CHART_GA_RANGE_WEEKS`; outside it the result says why.
GA_BY_DATES_RANGE_WEEKS = (min(HADLOCK_GA_RANGE_WEEKS[0], INTERGROWTH_GA_RANGE_WEEKS[0]),
                           max(HADLOCK_GA_RANGE_WEEKS[1], INTERGROWTH_GA_RANGE_WEEKS[1]))

#: The growth chart's weeks axis: where the INTERGROWTH-21st standard is defined.
CHART_GA_RANGE_WEEKS = INTERGROWTH_GA_RANGE_WEEKS


def no_fetal_head(coarse_confidence: float, head_confidence: float) -> bool:
    """Whether the network's confidence (mean head probability over its head region, whole-image
    view and head-centred view, 0-1) says there is no fetal head (:data:`NO_HEAD_CONFIDENCE`,
    :data:`NO_HEAD_DOUBTFUL_CONFIDENCE`)."""
    whole, centred = NO_HEAD_DOUBTFUL_CONFIDENCE
    return (min(coarse_confidence, head_confidence) < NO_HEAD_CONFIDENCE
            or (coarse_confidence < whole and head_confidence < centred))


def no_head_by_size(hc_mm: float | None, spacing_source: str | None) -> bool:
    """Whether a "head" of ``hc_mm`` (mm) is no fetal head by its size alone: outside
    :data:`PLAUSIBLE_HC_RANGE_MM` with a pixel spacing measured on the scan
    (:data:`MEASURED_SPACING_SOURCES`). With a typed pixel size the size is flagged instead (the pixel
    size is the likelier mistake)."""
    if hc_mm is None or not spacing_source or not str(spacing_source).startswith(MEASURED_SPACING_SOURCES):
        return False
    lo, hi = PLAUSIBLE_HC_RANGE_MM
    return not lo <= float(hc_mm) <= hi


class LimitError(ValueError):
    """An input outside the range in which fetalhead can use it."""


def chart_hc_range_mm(step_mm: float = 50.0) -> tuple[float, float]:
    """The chart's HC axis (mm): the 3rd centile at the first week to the 97th at the last,
    widened to multiples of ``step_mm``."""
    lo_wk, hi_wk = CHART_GA_RANGE_WEEKS
    lo = intergrowth_value_at_centile("hc", 3, lo_wk)
    hi = intergrowth_value_at_centile("hc", 97, hi_wk)
    return (math.floor(lo / step_mm) * step_mm, math.ceil(hi / step_mm) * step_mm)


def check_pixel_spacing(spacing, where: str = "pixel size") -> tuple[float, float] | None:
    """``(x, y)`` mm per pixel from a number or a pair, or None; raises :class:`LimitError`
    naming ``where`` when a value is not a finite number in :data:`PIXEL_SIZE_RANGE_MM`."""
    if spacing is None:
        return None
    try:
        pair = (spacing, spacing) if isinstance(spacing, (int, float)) else tuple(spacing)
        sx, sy = (float(v) for v in pair)
    except (TypeError, ValueError):
        raise LimitError(f"{where}: not a number or an (x, y) pair: {spacing!r}") from None
    lo, hi = PIXEL_SIZE_RANGE_MM
    for v in (sx, sy):
        if not (math.isfinite(v) and lo <= v <= hi):
            raise LimitError(f"{where}: {v:g} mm per pixel is outside the plausible range for ultrasound "
                             f"({lo:g}-{hi:g} mm)")
    return sx, sy


def check_ga_by_dates(ga_weeks, where: str = "gestational age by dates") -> float | None:
    """The gestational age by dates in weeks, or None; raises :class:`LimitError` outside
    :data:`GA_BY_DATES_RANGE_WEEKS`."""
    if ga_weeks is None:
        return None
    try:
        ga = float(ga_weeks)
    except (TypeError, ValueError):
        raise LimitError(f"{where}: not a number: {ga_weeks!r}") from None
    lo, hi = GA_BY_DATES_RANGE_WEEKS
    if not (math.isfinite(ga) and lo <= ga <= hi):
        raise LimitError(f"{where}: {ga:g} weeks is outside {lo:g}-{hi:g} weeks, the range of the formulas used")
    return ga


def form_limits() -> dict:
    """The limits the page's form and chart use (served at ``/api/v1/limits``)."""
    return {"pixel_size_mm": list(PIXEL_SIZE_RANGE_MM), "scale_distance_cm": list(SCALE_DISTANCE_RANGE_CM),
            "scale_points_min_px": MIN_SCALE_POINTS_PX, "ga_weeks": list(GA_BY_DATES_RANGE_WEEKS),
            "chart_ga_weeks": list(CHART_GA_RANGE_WEEKS), "chart_hc_mm": list(chart_hc_range_mm()),
            "quality_threshold": QUALITY_THRESHOLD, "formulas": dict(FORMULAS), "charts": dict(CHART_NAMES)}
