"""``fetalhead.measure``: one scan in, the head measurements out. The one place that decides.

For every scan, whatever the edge (command line, web app, report, batch), this module
alone decides:

* the input type, by one content sniff (:func:`load_scan`: a path, the file's bytes or an
  array; DICOM by 'DICM' at byte 128 first, then PNG/JPEG/BMP/TIFF);
* which pixel spacing wins (:func:`decide_spacing`: the DICOM file's own calibration, else
  the spacing given (typed, or set by two points of known distance on the picture:
  :func:`two_point_scale`), else the screen's depth scale, each checked against
  :data:`fetalhead.clinical.limits.PIXEL_SIZE_RANGE_MM`);
* the status (:func:`decide_status`: ``failed`` without an ellipse, ``flagged`` with any
  of :data:`REVIEW_FLAGS`, else ``ok``);
* what is a review flag (``Measurement.flags``: something is wrong, check it) and what is a note
  (``Measurement.notes``, :data:`NOTE_CODES`: information, never a warning), and where on the
  outline the doubt lies (``Measurement.uncertain_arcs``). Their words, in every language, are
  written by :mod:`fetalhead.outputs.wording`.

The result format (CSV, HC18, JSON) lives in :mod:`fetalhead.outputs.results`. A measurement
adjusted by hand is :meth:`Measurement.with_ellipse`: the same decisions, no network.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .outputs import results
from .clinical.biometry import (DEFAULT_CHART, INTERGROWTH_DATING_HC_RANGE_MM, OutOfRangeError, chart_centile,
                       chart_measures, chart_zscore, check_chart, ga_from_bpd_outer_outer, ga_from_hc_hadlock1984,
                       ga_from_hc_intergrowth2016, head_biometry)
from .clinical.geometry import Ellipse, ellipse_landmarks
from .scans.imageio import (ScanReadError, bytes_sha256, check_scan_array, decode_image, is_blank, read_file,
                            sniff_type)
from .clinical.limits import (CALIBRATED_QUALITY_THRESHOLD, INSIDE_FRACTION_FLAG, MIN_SCALE_POINTS_PX,
                     NO_HEAD_MASK_FIT, OUTLINE_IN_FIELD_MIN, PIXEL_SIZE_RANGE_MM, SCALE_DISTANCE_RANGE_CM, no_fetal_head, no_head_by_size,
                     HC_FAR_FROM_GA_Z, PLAUSIBLE_HC_RANGE_MM, QUALITY_THRESHOLD, SKULL_SEEN_MIN, TOO_UNCERTAIN_QUALITY, LimitError,
                     check_ga_by_dates, check_pixel_spacing)
from .model.uncertainty import COMPASS, DOUBT_CAUSES, doubtful_arcs, relative_interval
from .model.runtime import HeadModel, load_model
from .model.pipeline import HeadNotFoundError, inside_fraction, segment_head
from .outputs.display import distance_cm_text
from .outputs.results import PAGE_SPACING_SOURCE, TWO_POINTS_SOURCE
from .outputs.wording import mm_text, note_lines, review_lines, translations
from .scans.scan import Scan
from .scans.screen_photo import PHOTO_REFUSED, read_picture_scale
from .scans.screen_scale import AGREEMENT as SCREEN_AGREEMENT, ScreenScale

__all__ = ["Measurement", "Scan", "Assessment", "assess", "from_segmentation", "measure", "measure_scan", "measure_loop",
           "iter_loop_measurements", "load_scan", "decide_spacing", "read_screen", "screen_disagreement",
           "two_point_scale", "TwoPointScale", "ScaleError", "TWO_POINTS_SOURCE", "SCALE_ERRORS",
           "decide_status",
           "scan_flags", "QUALITY_THRESHOLD", "REVIEW_FLAGS", "NOTE_CODES", "WITHHELD_REASONS", "FAILURES", "PAGE_SPACING_SOURCE", "RESULT_COLUMNS", "HC18_COLUMNS"]

RESULT_COLUMNS = results.RESULT_COLUMNS
HC18_COLUMNS = results.HC18_COLUMNS

#: Flags about the scan or the fit that send a measured result to review (status "flagged").
REVIEW_FLAGS = ("low_quality", "skull_not_seen", "head_cut_by_image_border", "head_cut_by_sector_edge",
                "implausible_head_size", "pixel_size_disagrees_with_screen", "hc_far_from_ga")
#: Information about a result, never a warning (``Measurement.notes``): the cephalic index outside
#: Hadlock's +/-1 SD (74-83 %: date by HC, not BPD), no pixel size, and each reason a figure was
#: left out by its formula's or chart's range (:data:`WITHHELD_REASONS`; "no GA by dates" is no note:
#: nothing was typed). Shown apart from the review flags, never under the warning banner.
NOTE_CODES = ("cephalic_index_out_of_range", "no_pixel_spacing", "outside_formula_range", "outside_dating_window",
              "ga_outside_standard", "not_in_chart")
#: Why a figure is left out (``Measurement.withheld``): codes the page and the report translate.
WITHHELD_REASONS = {
    "no_pixel_spacing": "no pixel size: no length in mm, so no gestational age or centile",
    "outside_formula_range": "the measurement is outside the range for which the formula is valid",
    "no_ga_by_dates": "a centile needs the gestational age by dates",
    "ga_outside_standard": "the gestational age by dates is outside the weeks the growth standard covers",
    "outside_dating_window": "INTERGROWTH-21st dates by HC only from scans at 14+0 to 25+6 weeks",
    "not_in_chart": "the chosen growth chart has no centiles for this measure",
}
#: Why nothing was measured (``Measurement.failure``): codes the page and the report translate.
FAILURES = {
    "unreadable_scan": "the file could not be read as a scan",
    "invalid_input": "a value given with the scan (pixel size, gestational age) is out of range",
    "model_error": "the model could not be loaded or run",
    "no_head_found": "no fetal head found",
    "no_measurable_head": "the network's head region is not an ellipse",
    "too_uncertain": "the 90 % range of HC would be too wide to give figures",
    "internal_error": "an unexpected error or a crash while measuring (a bug: please report it)",
    "no_frame_measured": "no frame of the loop could be measured",
    "too_long": "the loop takes longer to measure than the server's time limit",
    "stopped": "measuring was stopped before the loop's end (on request: a server stops when its client leaves)",
}
#: Why two points and a distance give no scale (``ScaleError.code``): codes the API answers and the page
#: translates.
SCALE_ERRORS = {
    "invalid_scale_points": "the two points must be given as four numbers, x1, y1, x2, y2 (pixels)",
    "scale_points_too_close": "the two points are the same or too close together",
    "scale_point_outside_image": "a point lies outside the picture",
    "invalid_scale_distance_cm": "the distance between the two points is not a number of cm in the allowed range",
    "scale_pixel_size_out_of_range": "the two points and the distance give an implausible pixel size",
    "scale_and_pixel_size": "a pixel size and a scale set by two points were both given: give one",
}

#: Flags that describe the scan (set by the segmentation), kept when an ellipse is adjusted by hand.
_MODEL_FLAGS = ("low_quality", "skull_not_seen", "head_cut_by_sector_edge")
_KEEP = object()


@dataclass
class Measurement:
    """The head measured on one scan.

    Lengths in mm are ``None`` when no pixel spacing was known (``unit`` is then
    ``"px"``, the pixel lengths are still given, and ``message`` says so).
    ``status`` is ``"ok"`` (no automatic warning), ``"flagged"`` (measured, but a clinician
    should check it: see ``flags``), ``"adjusted"`` (the outline was placed by hand: the
    software's checks and intervals are not of it) or ``"failed"`` (nothing measured: see
    ``message``). ``withheld`` names, per figure left out (``None``), the reason as a code
    (see :data:`WITHHELD_REASONS`).
    """

    source: str
    status: str
    ellipse: Ellipse | None = None
    landmarks: dict | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    spacing_source: str = "none"
    spacing_note: str = ""
    screen_mm_per_px: tuple[float, float] | None = None  # the depth scale read off the screen (issue 22)
    #: where the screen's depth-scale marks lie (x, y, pixels of the original image), when one was read
    screen_marks: list = field(default_factory=list)
    #: a scale set by hand (issue 22): two points (x, y, pixels of the original image) and their distance
    scale_points: list | None = None
    scale_distance_cm: float | None = None
    head_circumference_mm: float | None = None
    biparietal_diameter_mm: float | None = None
    occipitofrontal_diameter_mm: float | None = None
    cephalic_index: float | None = None
    head_circumference_px: float | None = None
    ga_hc_hadlock_weeks: float | None = None
    ga_hc_intergrowth_weeks: float | None = None
    ga_bpd_hadlock_weeks: float | None = None
    ga_by_dates_weeks: float | None = None
    hc_zscore: float | None = None
    hc_centile: float | None = None
    bpd_centile: float | None = None
    ofd_centile: float | None = None
    quality: float | None = None
    quality_components: dict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # review flags (REVIEW_FLAGS) and outputs not written
    messages: list[str] = field(default_factory=list)  # what is wrong (each flag in words) or why it failed
    notes: list[str] = field(default_factory=list)  # information, not warnings (NOTE_CODES)
    note_messages: list[str] = field(default_factory=list)  # the notes in words (English)
    #: where on the outline the doubt lies, for a flagged result: longest first, each {"from_deg",
    #: "to_deg" (clockwise about the centre, from +x, image coordinates), "share", "cause", "where"}
    #: (fetalhead.model.uncertainty.doubtful_arcs)
    uncertain_arcs: list = field(default_factory=list)
    model_version: str = ""
    frame: int = 0
    identifiers: dict = field(default_factory=dict)
    sha256: str = ""
    image_size: tuple[int, int] | None = None  # (width, height) in pixels
    overlay_path: str = ""
    interval_half_widths: dict = field(default_factory=dict)  # relative half-widths of the 90 % intervals
    intervals: dict = field(default_factory=dict)  # "hc_mm": (low, high), ... (see fetalhead.outputs.results)
    withheld: dict = field(default_factory=dict)  # result column -> reason code (WITHHELD_REASONS) when it is None
    failure: str = ""  # why nothing was measured, as a code (FAILURES) when status is "failed"
    chart: str = DEFAULT_CHART  # the growth chart of the centiles (fetalhead.clinical.biometry.CHARTS)
    n_frames: int = 1  # frames in the file (a cine loop: more than 1)
    frame_time_s: float | None = None  # the frame's time in the loop (s), when the file says
    hc_trace: list = field(default_factory=list)  # a loop's best frame: every frame's HC, status, quality
    frame_choice: str = ""  # a loop's best frame: which frame and why

    @property
    def message(self) -> str:
        return "; ".join(self.messages)

    @property
    def note_message(self) -> str:
        return "; ".join(self.note_messages)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def unit(self) -> str:
        return "mm" if self.head_circumference_mm is not None else "px"

    # --- the result format lives in fetalhead.outputs.results -------------------------------------
    def to_row(self, rounded: bool = True) -> dict:
        """One results-CSV row; see :func:`fetalhead.outputs.results.csv_row`."""
        return results.csv_row(self, rounded)

    def to_hc18_row(self) -> dict:
        """One HC18 submission row; see :func:`fetalhead.outputs.results.hc18_row`."""
        return results.hc18_row(self)

    def to_dict(self) -> dict:
        """The JSON form; see :func:`fetalhead.outputs.results.to_json`."""
        return results.to_json(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Measurement":
        """A measurement back from its JSON form (:meth:`to_dict`); the figures are recomputed from
        the ellipse, the spacing and the GA by dates, never taken from ``d``.

        Raises ``ValueError`` naming the field that is missing or not a number.
        """
        if not isinstance(d, dict):
            raise ValueError("measurement: expected a JSON object")
        e = d.get("ellipse")
        ellipse = None
        if e is not None:
            try:
                ellipse = Ellipse.from_axes(*(float(e[k]) for k in ("center_x", "center_y", "semi_major",
                                                                   "semi_minor", "angle_deg")))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(f"measurement.ellipse: {exc}") from None
        spacing = d.get("pixel_spacing_mm")
        if spacing is not None:
            spacing = check_pixel_spacing(spacing, "measurement.pixel_spacing_mm")
        size = None
        if d.get("image_width") and d.get("image_height"):
            size = (int(d["image_width"]), int(d["image_height"]))
        flags = [str(f) for f in d.get("flags") or []]
        quality = d.get("quality")
        m = cls(source=str(d.get("path") or d.get("filename") or "scan"), status=str(d.get("status", "failed")),
                ellipse=ellipse, pixel_spacing_mm=spacing, spacing_source=str(d.get("spacing_source") or "none"),
                spacing_note=str(d.get("spacing_note") or ""),
                quality=None if quality is None else float(quality),
                flags=[f for f in flags if f in _MODEL_FLAGS], model_version=str(d.get("model_version") or ""),
                frame=int(d.get("frame") or 0), identifiers=dict(d.get("identifiers") or {}),
                sha256=str(d.get("sha256") or ""), image_size=size,
                quality_components=dict(d.get("quality_components") or {}))
        screen = d.get("screen_mm_per_px")
        if screen is not None:
            m.screen_mm_per_px = check_pixel_spacing(screen, "measurement.screen_mm_per_px")
        m.screen_marks = _check_points(d.get("screen_marks"), "measurement.screen_marks")
        if d.get("scale_points") is not None:
            scale = two_point_scale(d.get("scale_points"), d.get("scale_distance_cm"), size)
            m.scale_points, m.scale_distance_cm = scale.points_list(), scale.distance_cm
        if ellipse is None:
            m.status, m.messages = "failed", [str(x) for x in d.get("messages") or []]
            m.failure = str(d.get("failure") or "")
            return m
        m.chart = check_chart(str(d.get("chart") or DEFAULT_CHART))
        ga = d.get("ga_by_dates_weeks")
        m.interval_half_widths = {k: float(v) for k, v in (d.get("interval_half_widths") or {}).items()}
        m.uncertain_arcs = _check_arcs(d.get("uncertain_arcs"))
        _fill(m, ellipse, spacing, m.spacing_source, None if ga is None else float(ga))
        if "adjusted_by_hand" in flags:
            m.flags.append("adjusted_by_hand")
        _decide(m)
        return m

    def with_ellipse(self, ellipse: Ellipse | None = None, *, ga_weeks=_KEEP, chart=_KEEP) -> "Measurement":
        """A new measurement of the same scan with ``ellipse`` (adjusted by hand) and/or another
        gestational age by dates and/or growth chart: figures, flags and status recomputed by the
        same rules, the frame, sha256, identifiers, spacing and quality kept; no network is run.

        Raises ``ValueError`` when there is no ellipse to start from and none is given.
        """
        e = self.ellipse if ellipse is None else ellipse
        if e is None:
            raise ValueError(f"{self.source}: no ellipse to adjust (the scan was not measured)")
        ga = self.ga_by_dates_weeks if ga_weeks is _KEEP else check_ga_by_dates(ga_weeks)
        m = Measurement(self.source, "failed", model_version=self.model_version, frame=self.frame,
                        identifiers=dict(self.identifiers), sha256=self.sha256, image_size=self.image_size,
                        quality=self.quality, quality_components=dict(self.quality_components),
                        spacing_note=self.spacing_note, overlay_path=self.overlay_path,
                        screen_mm_per_px=self.screen_mm_per_px, screen_marks=[tuple(p) for p in self.screen_marks],
                        scale_points=None if self.scale_points is None else [list(p) for p in self.scale_points],
                        scale_distance_cm=self.scale_distance_cm,
                        flags=[f for f in self.flags if f in _MODEL_FLAGS],
                        chart=self.chart if chart is _KEEP else check_chart(chart))
        adjusted = "adjusted_by_hand" in self.flags or (ellipse is not None and ellipse != self.ellipse)
        if not adjusted:  # the model's interval and doubtful stretches belong to the model's ellipse
            m.interval_half_widths = dict(self.interval_half_widths)
            m.uncertain_arcs = [dict(a) for a in self.uncertain_arcs]
        _fill(m, e, self.pixel_spacing_mm, self.spacing_source, ga)
        if adjusted:
            m.flags.append("adjusted_by_hand")
        _decide(m)
        if adjusted and m.status == "adjusted":  # a flagged one says it among its flags' lines already
            m.messages.append("ellipse adjusted by hand")
        return m


# --- decisions -------------------------------------------------------------------------------


def decide_status(m: Measurement) -> str:
    """``failed`` without an ellipse or without a figure; ``flagged`` with any :data:`REVIEW_FLAGS`;
    ``adjusted`` when the outline was placed by hand (the software's quality score and interval are
    of its own outline, not of this one); else ``ok`` (no automatic warning, which is not a promise)."""
    if m.ellipse is None or m.head_circumference_px is None:
        return "failed"
    if any(f in REVIEW_FLAGS for f in m.flags):
        return "flagged"
    return "adjusted" if "adjusted_by_hand" in m.flags else "ok"


def _decide(m: Measurement) -> Measurement:
    """The status, then the words of the flags and notes (:mod:`fetalhead.outputs.wording`, English): the
    doubtful stretches of the outline are kept for a flagged result only (they say where to check)."""
    m.status = decide_status(m)
    if m.status != "flagged":
        m.uncertain_arcs = []
    if m.status != "failed":  # after _fill, whose note_messages are the formulas' own words for a figure left out
        en = translations("en")
        m.messages = review_lines(m, en)
        m.note_messages = (note_lines(m, en, figures=False) + m.note_messages
                           + ([m.spacing_note] if m.spacing_note else []))
    return m


def _check_points(points, where: str) -> list:
    """Points sent back (``Measurement.from_dict``): a list of (x, y) pairs of finite numbers, or ``ValueError``."""
    out = []
    for p in points or []:
        try:
            x, y = (float(v) for v in p)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected (x, y) pairs of numbers") from None
        if not (np.isfinite(x) and np.isfinite(y)):
            raise ValueError(f"{where}: not a finite number")
        out.append((x, y))
    return out


def _check_arcs(arcs) -> list:
    """Doubtful stretches sent back (``Measurement.from_dict``): checked, or ``ValueError``."""
    out = []
    for a in arcs or []:
        try:
            arc = {"from_deg": float(a["from_deg"]), "to_deg": float(a["to_deg"]), "share": float(a["share"]),
                   "cause": str(a["cause"]), "where": str(a["where"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"measurement.uncertain_arcs: {exc}") from None
        if arc["cause"] not in DOUBT_CAUSES or arc["where"] not in COMPASS + ("all_round",):
            raise ValueError(f"measurement.uncertain_arcs: unknown cause or place {arc['cause']!r}, {arc['where']!r}")
        out.append(arc)
    return out


def _inside_fraction(e: Ellipse, image_size) -> float:
    """Share of ``e``'s outline inside an image of ``image_size`` = (width, height)."""
    w, h = image_size
    return inside_fraction(e, (h, w))


def scan_flags(e: Ellipse, image_size) -> list[str]:
    """Flags that follow from where the ellipse lies on the image (``image_size`` = (width, height))."""
    if image_size is None:
        return []
    return ["head_cut_by_image_border"] if _inside_fraction(e, image_size) < INSIDE_FRACTION_FLAG else []


def screen_disagreement(spacing, spacing_source: str, screen) -> str:
    """Words when a pixel size given (typed, from a CSV) and the screen's own depth scale differ by more
    than :data:`fetalhead.scans.screen_scale.AGREEMENT` (2 %, issue 22); else ``""``."""
    if not spacing or not screen or spacing_source.startswith(("dicom:", "screen:")) or spacing_source == "none":
        return ""
    worst = max(abs(float(a) / float(b) - 1) for a, b in zip(spacing, screen))
    if worst <= SCREEN_AGREEMENT:
        return ""
    return (f"the pixel size given ({mm_text(spacing)}, {spacing_source}) differs by {100 * worst:.1f} % from the "
            f"screen's depth scale ({mm_text(screen)}): check the pixel size")


class ScaleError(LimitError):
    """Two points and a distance that give no scale; ``code`` is a key of :data:`SCALE_ERRORS`."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TwoPointScale:
    """A scale set by hand: two points of the picture (x, y, pixels of the original image) ``distance_cm``
    apart. ``distance_px`` is their distance in pixels; ``mm_per_px`` the pixel size it gives, (x, y),
    square pixels (as :mod:`fetalhead.scans.screen_scale` takes them)."""

    points: tuple[tuple[float, float], tuple[float, float]]
    distance_cm: float

    @property
    def distance_px(self) -> float:
        (x1, y1), (x2, y2) = self.points
        return float(np.hypot(x2 - x1, y2 - y1))

    @property
    def mm_per_px(self) -> tuple[float, float]:
        s = 10.0 * self.distance_cm / self.distance_px
        return s, s

    @property
    def px_per_cm(self) -> float:
        return self.distance_px / self.distance_cm

    @property
    def note(self) -> str:
        """In words (English), as results and reports give it."""
        return (f"pixel size set by two points {distance_cm_text(self.distance_cm)} cm apart "
                f"(1 cm = {self.px_per_cm:.1f} px)")

    def points_list(self) -> list:
        return [[float(x), float(y)] for x, y in self.points]


def two_point_scale(points, distance_cm, image_size=None) -> TwoPointScale:
    """The scale given by two points of a picture and the distance between them: the one place that
    turns a scale set by hand (the page's "Set the scale": two marks of the screen's depth scale, or any
    two points of known distance) into a pixel size.

    Parameters
    ----------
    points : two (x, y) pairs, or four numbers x1, y1, x2, y2 (a list, or a string "x1,y1,x2,y2")
        Pixels of the original image (the picture measured), x to the right, y down.
    distance_cm : float
        Their distance (cm), within :data:`fetalhead.clinical.limits.SCALE_DISTANCE_RANGE_CM`.
    image_size : (width, height), optional
        When given, both points must lie inside the picture.

    Returns
    -------
    TwoPointScale

    Raises
    ------
    ScaleError
        A :class:`fetalhead.clinical.limits.LimitError` whose ``code`` (:data:`SCALE_ERRORS`) says what
        is wrong: points not four numbers, points closer than
        :data:`fetalhead.clinical.limits.MIN_SCALE_POINTS_PX`, a point outside the picture, a distance
        out of range, or a pixel size outside :data:`fetalhead.clinical.limits.PIXEL_SIZE_RANGE_MM`.
    """
    raw = points
    try:
        if isinstance(points, str):
            points = points.replace(";", ",").split(",")
        flat = np.asarray(points, dtype=float).ravel()
    except (TypeError, ValueError):
        flat = np.zeros(0)
    if flat.size != 4 or not np.all(np.isfinite(flat)):
        got = "none given" if raw is None or (isinstance(raw, str) and not raw.strip()) else f"got {str(raw)[:80]!r}"
        raise ScaleError("invalid_scale_points", f"scale points: {SCALE_ERRORS['invalid_scale_points']}, {got}")
    try:
        cm = float(distance_cm)
    except (TypeError, ValueError):
        cm = float("nan")
    lo, hi = SCALE_DISTANCE_RANGE_CM
    if distance_cm is None or (isinstance(distance_cm, str) and not distance_cm.strip()):
        raise ScaleError("invalid_scale_distance_cm", f"scale distance: none given; give the distance between the "
                                                      f"two points, {lo:g}-{hi:g} cm")
    if not (np.isfinite(cm) and lo <= cm <= hi):
        raise ScaleError("invalid_scale_distance_cm", f"scale distance: {str(distance_cm)[:20]} cm is not a "
                                                      f"distance of {lo:g}-{hi:g} cm")
    pts = ((float(flat[0]), float(flat[1])), (float(flat[2]), float(flat[3])))
    if image_size is not None:
        w, h = image_size
        for x, y in pts:
            if not (0 <= x <= w and 0 <= y <= h):
                raise ScaleError("scale_point_outside_image", f"scale points: ({x:.4g}, {y:.4g}) lies outside "
                                                              f"the picture (0-{w} x 0-{h} px)")
    scale = TwoPointScale(pts, cm)
    if scale.distance_px < MIN_SCALE_POINTS_PX:
        raise ScaleError("scale_points_too_close", f"scale points: {scale.distance_px:.1f} px apart; set two "
                                                   f"points at least {MIN_SCALE_POINTS_PX:g} px apart")
    s = scale.mm_per_px[0]
    plo, phi = PIXEL_SIZE_RANGE_MM
    if not plo <= s <= phi:
        raise ScaleError("scale_pixel_size_out_of_range",
                         f"scale points: {cm:g} cm over {scale.distance_px:.1f} px gives {s:.4g} mm per pixel, "
                         f"outside the plausible range for ultrasound ({plo:g}-{phi:g} mm): check the distance "
                         "typed and the points")
    return scale


def read_screen(scan: Scan):
    """The screen's depth scale on a scan without DICOM calibration (:func:`fetalhead.scans.screen_scale.read_screen_scale`),
    or ``None`` for a DICOM file with its own calibration; a photo of the screen taken at an angle is refused
    (:func:`fetalhead.scans.screen_photo.check_screen_photo`). Never raises: a failure reads as no scale."""
    if scan.dicom is not None and scan.dicom.spacing_for(None).spacing_mm is not None:
        return None
    try:
        return read_picture_scale(scan.image)
    except Exception as exc:  # a bug in the reader must not cost the measurement
        return ScreenScale(None, 0.0, f"no scale: the screen could not be read ({exc})")


def decide_spacing(given, given_source: str, dicom_scan, ellipse: Ellipse | None, screen=None):
    """Which pixel spacing wins, once for every edge.

    The DICOM file's own calibration (for the region holding the head) wins; a given
    spacing is used for a DICOM file only when the file has no usable calibration; else the depth
    scale read off the screen (``screen``, a :class:`fetalhead.scans.screen_scale.ScreenScale`; source
    ``screen:depth-scale`` or ``screen:sector-scale``); else none. Every
    spacing, from wherever, must lie in :data:`fetalhead.clinical.limits.PIXEL_SIZE_RANGE_MM`.

    Returns ``(spacing or None, source, note)``; raises :class:`fetalhead.clinical.limits.LimitError`
    for a *given* spacing out of range (a DICOM file's implausible calibration gives no mm and
    a note instead).
    """
    given = check_pixel_spacing(given, f"pixel size ({given_source})") if given is not None else None
    if dicom_scan is None:
        if given is None and screen is not None and screen.mm_per_px is not None:
            try:
                spacing = check_pixel_spacing(screen.mm_per_px, "the screen's depth scale")
            except LimitError as exc:
                return None, "none", f"no mm: {exc}"
            return spacing, f"screen:{screen.how}", f"pixel size read from the screen: {screen.reason}"
        if given is None and screen is not None and screen.how == PHOTO_REFUSED:  # say what to do instead
            return None, "none", f"no mm: {screen.reason}"
        return given, (given_source if given is not None else "none"), ""
    decision = dicom_scan.spacing_for(ellipse)
    if decision.spacing_mm is not None:
        try:
            spacing = check_pixel_spacing(decision.spacing_mm, f"DICOM calibration ({decision.source})")
        except LimitError as exc:
            if given is not None:
                return given, f"{given_source} (DICOM not usable: {exc})", ""
            return None, "none", f"no mm: {exc}"
        return spacing, f"dicom:{decision.source}", decision.note
    if given is not None:
        return given, f"{given_source} (DICOM not usable: {decision.note})", ""
    if screen is not None and screen.mm_per_px is not None:
        return decide_spacing(None, given_source, None, ellipse, screen)
    return None, "none", f"no mm: {decision.note}"


# --- one way in ------------------------------------------------------------------------------


def load_scan(image, source: str | None = None, frame: int = 0, accept_anisotropic: bool = False,
              include_identifying: bool = False, sha256: str | None = None,
              blank_outside_regions: bool = True) -> Scan:
    """Read a scan from a path, the file's bytes or an array; the one place that sniffs the type.

    ``blank_outside_regions``: in a DICOM file that defines ultrasound regions, what lies outside them
    (text burned in by the scanner: patient name, ID) is blanked before anything is measured or
    written (:func:`fetalhead.scans.dicom.blank_outside`); ``False`` keeps the pixels as they are.

    A path is read once: its sha256 is computed from the same bytes (unless ``sha256`` is
    given, as a batch that already hashed the file for ``--resume`` does).

    Raises
    ------
    ScanReadError
        Naming ``source`` and the problem.
    """
    if isinstance(image, np.ndarray):
        name = source or "<array>"
        if frame:
            raise ScanReadError(f"{name}: frame {frame} given, but an array holds one frame")
        return Scan(check_scan_array(image, name), name, "array")
    if isinstance(image, (str, Path)):
        name = source or str(image)
        data = read_file(image, name)
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data, name = bytes(image), source or "<bytes>"
    else:
        raise ScanReadError(f"{source or 'input'}: expected a file path, bytes or an image array, "
                            f"got {type(image).__name__}")
    digest = sha256 or bytes_sha256(data)
    if not data:
        exc = ScanReadError(f"{name}: the file is empty")
        exc.sha256 = digest  # so that a resumed batch knows it was done
        raise exc
    try:
        kind = sniff_type(data)
        if kind == "dicom" or (kind is None and Path(name).suffix.lower() in (".dcm", ".dicom")):
            from .scans.dicom import read_dicom

            scan = read_dicom(data, frame=frame, accept_anisotropic=accept_anisotropic,
                              include_identifying=include_identifying, name=name,
                              blank_outside_regions=blank_outside_regions)
            from .scans.dicom import dicom_frame_times

            time_s = dicom_frame_times(scan.header, scan.n_frames)[frame] if scan.n_frames > 1 else None
            return Scan(scan.image, name, "dicom", frame, digest, scan, scan.n_frames, time_s)
        if kind == "video":
            from .scans.cine import read_video_frame

            grey, n, time_s = read_video_frame(image if isinstance(image, (str, Path)) else data, name, frame)
            return Scan(check_scan_array(grey, name, allow_blank=n > 1), name, "video", frame, digest, None, n,
                        time_s)
        if frame:
            raise ScanReadError(f"{name}: frame {frame} given, but the file is a still image, not a loop "
                                "(multi-frame DICOM or video)")
        return Scan(decode_image(data, name, kind), name, kind or "unknown", 0, digest)
    except ScanReadError as exc:
        exc.sha256 = digest  # a failed row still names the content it failed on
        raise


def measure(image, pixel_spacing_mm=None, *, ga_weeks: float | None = None, model: HeadModel | None = None,
            source: str | None = None, spacing_source: str | None = None, frame: int = 0,
            accept_anisotropic: bool = False, include_identifying: bool = False,
            sha256: str | None = None, chart: str = DEFAULT_CHART, blank_outside_regions: bool = True,
            scale_points=None, scale_distance_cm: float | None = None) -> Measurement:
    """Measure the fetal head on one scan.

    Parameters
    ----------
    image : str, Path, bytes or ndarray
        A file (PNG/JPEG/BMP/TIFF, or ultrasound DICOM with the ``dicom`` extra), the
        file's bytes, or an image array (grey or BGR colour, 8/16-bit or float in [0, 1]).
    pixel_spacing_mm : float or (float, float), optional
        Pixel size in mm (isotropic, or x and y), within
        :data:`fetalhead.clinical.limits.PIXEL_SIZE_RANGE_MM`. Without it the lengths are
        reported in pixels only and ``message`` says that no mm could be given.
        A DICOM file's own calibration (see :mod:`fetalhead.scans.dicom`) takes
        precedence; this value is used for a DICOM file only when the file has no
        usable calibration, and ``spacing_source`` then says so.
    ga_weeks : float, optional
        Gestational age by dates (weeks); with it the INTERGROWTH-21st z-score and
        centiles of HC, BPD and OFD are given.
    model : HeadModel, optional
        Defaults to the model shipped in the package.
    source : str, optional
        How results and messages name the scan (default: the path).
    frame : int
        Frame of a multi-frame DICOM (cine loop) to measure; only that frame is decoded.
    accept_anisotropic : bool
        Measure DICOM files whose x and y spacing differ by more than 1 %.
    sha256 : str, optional
        The file's sha256 when the caller already has it (it is not computed again).
    scale_points, scale_distance_cm : optional
        A scale set by hand instead of ``pixel_spacing_mm``: two points of the picture (pixels) and
        their distance in cm (:func:`two_point_scale`); ``spacing_source`` is then ``two_points``.

    Returns
    -------
    Measurement
        Never raises for a bad scan or a bad value: ``status="failed"`` and ``message`` say why.
    """
    src = source or (str(image) if isinstance(image, (str, Path)) else "<array>")
    try:
        scan = load_scan(image, src, frame, accept_anisotropic, include_identifying, sha256, blank_outside_regions)
    except ScanReadError as exc:
        return Measurement(src, "failed", messages=[str(exc)], frame=frame, failure="unreadable_scan",
                           sha256=getattr(exc, "sha256", None) or sha256 or "")
    return measure_scan(scan, pixel_spacing_mm, ga_weeks=ga_weeks, model=model, spacing_source=spacing_source,
                        chart=chart, scale_points=scale_points, scale_distance_cm=scale_distance_cm)


def measure_loop(image, pixel_spacing_mm=None, *, frames="best", ga_weeks: float | None = None,
                 model: HeadModel | None = None, source: str | None = None, spacing_source: str | None = None,
                 accept_anisotropic: bool = False, include_identifying: bool = False,
                 chart: str = DEFAULT_CHART, blank_outside_regions: bool = True,
                 first: Scan | None = None, time_limit_s: float | None = None,
                 should_stop: Callable[[], bool] | None = None, scale_points=None,
                 scale_distance_cm: float | None = None) -> list[Measurement]:
    """Measure a cine loop (multi-frame DICOM or video; a still image is a loop of one frame).

    ``frames``: ``"best"`` (one result: the frame :func:`fetalhead.scans.cine.choose_best_frame` picks, with
    every frame's HC in ``hc_trace`` and the reason in ``frame_choice``), ``"all"`` (one result per
    frame, with ``frame`` and ``frame_time_s``) or a frame number. ``first``: the loop's first frame
    when the caller has already read it (it is not read again). ``time_limit_s``: measuring stops after
    that long (the frames measured stay; a failed row says why), so that a long loop cannot hold a
    server's worker. ``should_stop``: asked before each frame; when it answers True measuring stops
    there with a failed ``stopped`` result (a server asks whether its client is still there). Never
    raises for a bad file: a ``failed`` result says why. ``scale_points``, ``scale_distance_cm``: a scale
    set by hand, as :func:`measure_scan`.
    """
    from .scans.cine import choose_best_frame, loop_without_head

    src = source or (str(image) if isinstance(image, (str, Path)) else "<bytes>")
    kw = dict(ga_weeks=ga_weeks, model=model, spacing_source=spacing_source, chart=chart, scale_points=scale_points,
              scale_distance_cm=scale_distance_cm)
    if isinstance(frames, int):
        return [measure(image, pixel_spacing_mm, source=src, frame=frames, accept_anisotropic=accept_anisotropic,
                        include_identifying=include_identifying, blank_outside_regions=blank_outside_regions, **kw)]
    if frames not in ("best", "all"):
        raise ValueError(f"frames must be 'best', 'all' or a frame number, got {frames!r}")
    if first is None:
        try:
            first = load_scan(image, src, 0, accept_anisotropic, include_identifying,
                              blank_outside_regions=blank_outside_regions)
        except ScanReadError as exc:
            return [Measurement(src, "failed", messages=[str(exc)], failure="unreadable_scan",
                                sha256=getattr(exc, "sha256", None) or "")]
    kw["model"] = model or load_model()
    kw["screen"] = read_screen(first)
    if not first.is_loop:
        return [measure_scan(first, pixel_spacing_mm, **kw)]
    results = [m for m, _ in iter_loop_measurements(first, image, pixel_spacing_mm,
                                                   accept_anisotropic=accept_anisotropic,
                                                   include_identifying=include_identifying,
                                                   blank_outside_regions=blank_outside_regions,
                                                   time_limit_s=time_limit_s, should_stop=should_stop, **kw)]
    if frames == "all":
        return results
    cut = [m for m in results if m.failure in ("too_long", "stopped")]
    if cut:  # a frame chosen among part of the loop is no best frame: say why nothing is chosen
        return cut
    no_head = loop_without_head(results)
    index, why = (None, no_head) if no_head else choose_best_frame(results)
    trace = [{"frame": m.frame, "time_s": m.frame_time_s, "hc_mm": m.head_circumference_mm,
              "hc_px": m.head_circumference_px, "status": m.status, "quality": m.quality} for m in results]
    if index is None:
        chosen = Measurement(src, "failed", messages=[f"{src}: {why}"],
                             failure="no_head_found" if no_head else "no_frame_measured",
                             sha256=first.sha256, n_frames=first.n_frames)
    else:
        chosen = results[index]
        chosen.note_messages.append(f"best frame: {why}")
    chosen.hc_trace, chosen.frame_choice = trace, why
    return [chosen]


def iter_loop_measurements(first: Scan, image, pixel_spacing_mm=None, *, accept_anisotropic: bool = False,
                           include_identifying: bool = False, blank_outside_regions: bool = True,
                           time_limit_s: float | None = None, should_stop: Callable[[], bool] | None = None,
                           **kw):
    """Each frame of the loop whose first frame is ``first`` (read from ``image``: its path or bytes),
    measured: ``(Measurement, Scan)`` pairs, one frame decoded at a time, so that what is written per
    frame (an overlay, an SR) is written from the frame at hand. A loop that breaks half way ends with
    a failed measurement (and no scan); what was measured stays. A loop cut by ``time_limit_s`` (s)
    or by ``should_stop`` (asked before each frame) ends with a failed ``too_long`` or ``stopped``
    measurement. ``kw``: as :func:`measure_scan`."""
    from .scans.cine import iter_loop_frames

    data = image if isinstance(image, (str, Path)) else bytes(image)
    measured = 0
    if "screen" not in kw:  # the screen's scale is read once per loop (on its first frame)
        kw["screen"] = read_screen(first)
    started = time.monotonic()
    try:
        for scan in iter_loop_frames(data, first.name, first.kind, accept_anisotropic=accept_anisotropic,
                                     include_identifying=include_identifying, sha256=first.sha256,
                                     blank_outside_regions=blank_outside_regions):
            if measured and time_limit_s is not None and time.monotonic() - started > time_limit_s:
                yield (Measurement(first.name, "failed", frame=measured, sha256=first.sha256, failure="too_long",
                                   n_frames=first.n_frames, messages=[f"{first.name}: measuring stopped after {measured} of {first.n_frames} "
                                             f"frames: the loop takes longer than {time_limit_s:g} s; send a "
                                             "shorter loop or choose a frame"]), None)
                return
            if should_stop is not None and should_stop():
                yield (Measurement(first.name, "failed", frame=measured, sha256=first.sha256, failure="stopped",
                                   n_frames=first.n_frames, messages=[f"{first.name}: measuring stopped on request "
                                                                      f"after {measured} of {first.n_frames} frames"]),
                       None)
                return
            scan.n_frames = max(scan.n_frames, first.n_frames)  # a video's count is known from its first read
            changed = ""
            if measured and measured in (first.n_frames // 2, first.n_frames - 1) and kw.get("screen") is not None:
                changed = _screen_changed(kw["screen"], read_screen(scan), measured)
                if changed:  # checked on a few frames: a scale that changes within the loop is no scale
                    kw["screen"] = None
            m = measure_scan(scan, pixel_spacing_mm, **kw)
            if changed:
                m.messages.append(changed)
            m.n_frames = first.n_frames
            measured += 1
            yield m, scan
    except ScanReadError as exc:
        yield (Measurement(first.name, "failed", messages=[str(exc)], failure="unreadable_scan", frame=measured,
                           sha256=first.sha256), None)


def _screen_changed(before, now, frame: int) -> str:
    """Words when the screen's scale read on a later frame of a loop differs from the first frame's."""
    a = before.mm_per_px if before is not None else None
    b = now.mm_per_px if now is not None else None
    if a is None and b is None:
        return ""
    if a is not None and b is not None and abs(b[1] / a[1] - 1) <= SCREEN_AGREEMENT:
        return ""
    fmt = lambda v: "none" if v is None else f"{v[1]:.4f} mm/px"  # noqa: E731
    return (f"the screen's depth scale changed within the loop (first frame {fmt(a)}, frame {frame} {fmt(b)}): "
            "not used from this frame on")


def measure_scan(scan: Scan, pixel_spacing_mm=None, *, ga_weeks: float | None = None,
                 model: HeadModel | None = None, spacing_source: str | None = None,
                 chart: str = DEFAULT_CHART, screen=_KEEP, scale_points=None,
                 scale_distance_cm: float | None = None) -> Measurement:
    """:func:`measure` on a scan already read by :func:`load_scan` (the web app keeps its image).

    ``scale_points`` and ``scale_distance_cm``: a scale set by hand (:func:`two_point_scale`), given
    instead of ``pixel_spacing_mm`` (both at once: failed, ``invalid_input``); its ``spacing_source`` is
    :data:`TWO_POINTS_SOURCE`, still checked against the screen's own scale.

    ``screen``: the screen's depth scale when the caller has read it (a loop reads it once,
    :func:`read_screen`), ``None`` not to read it; by default it is read here for a scan without DICOM
    calibration: it gives the pixel size when none is given, and checks the one given."""
    src = scan.name
    h, w = scan.image.shape
    m = Measurement(src, "failed", frame=scan.frame, sha256=scan.sha256, image_size=(int(w), int(h)),
                    chart=check_chart(chart), n_frames=scan.n_frames, frame_time_s=scan.frame_time_s)
    if scan.dicom is not None:
        m.identifiers = dict(scan.dicom.identifiers)
    try:
        ga = check_ga_by_dates(ga_weeks)
        check_pixel_spacing(pixel_spacing_mm, f"pixel size ({spacing_source or 'given'})")
        scale = None
        if scale_points is not None or scale_distance_cm is not None:
            if pixel_spacing_mm is not None:
                raise ScaleError("scale_and_pixel_size", f"scale: {SCALE_ERRORS['scale_and_pixel_size']}")
            scale = two_point_scale(scale_points, scale_distance_cm, (int(w), int(h)))
            m.scale_points, m.scale_distance_cm = scale.points_list(), scale.distance_cm
    except LimitError as exc:
        m.messages.append(f"{src}: {exc}")
        m.failure = "invalid_input"
        return m
    try:
        model = model or load_model()
    except Exception as exc:  # ModelError or onnxruntime failures
        m.messages.append(f"model: {exc}")
        m.failure = "model_error"
        return m
    m.model_version = model.version
    if is_blank(scan.image):  # a loop's blank frame (a still image so is refused when read)
        m.messages.append(f"{src}: frame {scan.frame + 1} of {scan.n_frames} is blank (a single grey level): "
                          "nothing to measure")
        m.failure = "unreadable_scan"
        return m
    if screen is _KEEP:
        screen = read_screen(scan)
    if screen is not None and screen.mm_per_px is not None:  # kept even when no head is found
        m.screen_mm_per_px = tuple(screen.mm_per_px)
        m.screen_marks = [(float(x), float(y)) for x, y in screen.marks]
    try:
        seg = segment_head(scan.image, model.predict, model.pipeline_config)
    except HeadNotFoundError as exc:
        m.messages.append(f"{src}: no fetal head found ({exc})")
        m.failure = "no_head_found"
        return m
    given, given_source = pixel_spacing_mm, spacing_source or "given"
    if scale is not None:
        given, given_source = scale.mm_per_px, TWO_POINTS_SOURCE
    spacing, used, note = decide_spacing(given, given_source, scan.dicom, seg.ellipse, screen)
    if scale is not None:  # what became of the scale set by hand
        note = scale.note if used.startswith(TWO_POINTS_SOURCE) else "; ".join(
            n for n in (note, "the scale set by two points was not used: the DICOM file's own calibration wins") if n)
    m.spacing_note = note
    return from_segmentation(m, seg, spacing, used, ga, getattr(model, "calibration", None))


def from_segmentation(m: Measurement, seg, spacing, spacing_source: str, ga_weeks=None,
                      calibration=None) -> Measurement:
    """Fill ``m`` (its image size, frame, identifiers set) from a segmentation: :func:`assess`, then the
    figures, flags and status. :func:`measure_scan` and the trust benchmarks both end here."""
    v = assess(seg, spacing, m.image_size, calibration, spacing_source)
    m.quality_components, m.quality, m.interval_half_widths = v.components, v.quality, v.half_widths
    if v.fail_reason:
        m.messages.append(f"{m.source}: {v.fail_reason}")
        m.status, m.failure = "failed", v.fail_code
        return m
    m.flags = list(v.flags)
    m.uncertain_arcs = list(v.arcs)
    _fill(m, seg.ellipse, spacing, spacing_source, ga_weeks)
    return _decide(m)


@dataclass
class Assessment:
    """How far to trust one segmentation: the verdict of :func:`assess`."""

    components: dict
    quality: float
    half_widths: dict
    flags: list
    fail_reason: str = ""
    fail_code: str = ""  # a key of FAILURES
    arcs: list = field(default_factory=list)  # doubtful stretches of the outline (doubtful_arcs)


def assess(seg, spacing, image_size, calibration=None, spacing_source: str | None = None) -> Assessment:
    """The one place that judges a segmentation: figures withheld (``fail_reason``), review flags from
    the model, the quality score and the 90 % interval half-widths.

    * no fetal head (the network is unsure there is a head at all: its mean head probability over
      the region it found, :func:`fetalhead.clinical.limits.no_fetal_head`): failed, ``no_head_found``,
      no figures;
    * no fetal head by its size: HC outside :data:`fetalhead.clinical.limits.PLAUSIBLE_HC_RANGE_MM` with a
      pixel spacing measured on the scan (``spacing_source`` DICOM, screen or two points:
      :func:`fetalhead.clinical.limits.no_head_by_size`): failed, ``no_head_found``;
    * no head-like ellipse (the network's region is no ellipse: IoU with its fit under
      :data:`fetalhead.clinical.limits.NO_HEAD_MASK_FIT`, or an implausible shape): failed;
    * with a calibration (:mod:`fetalhead.model.uncertainty`), the quality is the calibrated one and a
      quality under :data:`fetalhead.clinical.limits.TOO_UNCERTAIN_QUALITY` is failed (no figures near zero);
      under :data:`fetalhead.clinical.limits.CALIBRATED_QUALITY_THRESHOLD`: ``low_quality``; without one,
      the segmentation's own score and :data:`fetalhead.clinical.limits.QUALITY_THRESHOLD`;
    * the skull echo seen on too little of the outline: ``skull_not_seen``;
    * where on the outline the doubt lies (``arcs``: :func:`fetalhead.model.uncertainty.doubtful_arcs`
      of the segmentation's per-angle evidence).

    Used by :func:`measure_scan` and by the calibration and trust benchmarks, so that they judge
    exactly as a measurement does.
    """
    comps = dict(seg.components, segmentation_score=seg.quality)
    if spacing is not None:
        comps["hc_mm"] = head_biometry(seg.ellipse, spacing).head_circumference
    if no_fetal_head(comps.get("coarse_confidence", 1.0), comps.get("head_confidence", 1.0)):
        return Assessment(comps, seg.quality, {}, [], "no fetal head found (the network is unsure there is a head: "
                                                     f"confidence {comps.get('coarse_confidence', 1.0):.2f} whole image, "
                                                     f"{comps.get('head_confidence', 1.0):.2f} around it)",
                          "no_head_found")
    if no_head_by_size(comps.get("hc_mm"), spacing_source):
        lo, hi = PLAUSIBLE_HC_RANGE_MM
        return Assessment(comps, seg.quality, {}, [], f"no fetal head found (the outline found would be a head of HC "
                                                     f"{comps['hc_mm']:.0f} mm by the pixel size of {spacing_source}, "
                                                     f"outside any fetal head, {lo:g}-{hi:g} mm)", "no_head_found")
    if comps.get("implausible_shape") or comps.get("mask_fit", 0.0) < NO_HEAD_MASK_FIT:
        return Assessment(comps, seg.quality, {}, [], f"no measurable head: the network's head region is not an "
                                                     f"ellipse (fit {comps.get('mask_fit', 0.0):.2f})",
                          "no_measurable_head")
    quality, half_widths, threshold = seg.quality, {}, QUALITY_THRESHOLD
    if calibration is not None:  # calibrated: the interval's width is the quality
        half_widths = calibration.half_widths(comps)
        quality = calibration.quality(half_widths["hc"])
        threshold = CALIBRATED_QUALITY_THRESHOLD
    if quality < TOO_UNCERTAIN_QUALITY:
        extra = f"; the 90 % range of HC would be +/-{100 * half_widths['hc']:.0f} %" if half_widths else ""
        return Assessment(comps, quality, half_widths, [],
                          f"too uncertain to give figures (quality {quality:.2f}{extra}): check the scan",
                          "too_uncertain")
    flags = ["low_quality"] if quality < threshold else []
    if comps.get("outline_seen", 1.0) < SKULL_SEEN_MIN:
        flags.append("skull_not_seen")
    if comps.get("outline_in_field", 1.0) < OUTLINE_IN_FIELD_MIN:
        flags.append("head_cut_by_sector_edge")
    arcs = doubtful_arcs(getattr(seg, "outline", None) or {}, seg.ellipse.center)
    return Assessment(comps, quality, half_widths, flags, arcs=arcs)


# --- figures from an ellipse ---------------------------------------------------------------------


def _safe(fn, *args):
    try:
        return fn(*args), None
    except OutOfRangeError as exc:
        return None, str(exc)


def _fill(m: Measurement, e: Ellipse, spacing, spacing_source: str, ga_weeks: float | None) -> Measurement:
    """Landmarks, lengths, gestational ages, centiles, flags and messages of ``m`` from ``e``."""
    m.ellipse, m.landmarks = e, ellipse_landmarks(e)
    m.head_circumference_px = e.perimeter_px
    m.ga_by_dates_weeks = ga_weeks
    m.flags = [f for f in m.flags if f in _MODEL_FLAGS] + scan_flags(e, m.image_size)
    if "head_cut_by_image_border" in m.flags:  # outside the image is no echo too: one cut, one flag
        m.flags = [f for f in m.flags if f != "head_cut_by_sector_edge"]
    m.withheld = {}
    m.notes = []
    msgs = []  # the formulas' own words for a figure left out (notes, English)
    bio = head_biometry(e, spacing)
    disagree = screen_disagreement(bio.pixel_spacing_mm if bio.unit == "mm" else None, spacing_source,
                                   m.screen_mm_per_px)
    if disagree:  # a review flag: its words (both values) come from outputs.wording
        m.flags.append("pixel_size_disagrees_with_screen")
    if bio.unit == "mm":
        m.pixel_spacing_mm, m.spacing_source = bio.pixel_spacing_mm, spacing_source
        m.head_circumference_mm = bio.head_circumference
        m.biparietal_diameter_mm = bio.biparietal_diameter
        m.occipitofrontal_diameter_mm = bio.occipitofrontal_diameter
        lo, hi = PLAUSIBLE_HC_RANGE_MM
        if not lo <= bio.head_circumference <= hi:
            m.flags.append("implausible_head_size")
        for attr, fn, value in (("ga_hc_hadlock_weeks", ga_from_hc_hadlock1984, bio.head_circumference),
                                ("ga_hc_intergrowth_weeks", ga_from_hc_intergrowth2016, bio.head_circumference),
                                ("ga_bpd_hadlock_weeks", ga_from_bpd_outer_outer, bio.biparietal_diameter)):
            val, why = _safe(fn, value)
            setattr(m, attr, val)
            if why:
                msgs.append(why)
                too_late = attr == "ga_hc_intergrowth_weeks" and value > INTERGROWTH_DATING_HC_RANGE_MM[1]
                m.withheld[attr] = "outside_dating_window" if too_late else "outside_formula_range"
        _fill_centiles(m, bio, ga_weeks, msgs)
    else:
        m.pixel_spacing_mm, m.spacing_source = None, "none"
        m.withheld = dict.fromkeys(("hc_mm", "bpd_mm", "ofd_mm", "ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks",
                                    "ga_bpd_hadlock_weeks", "hc_zscore", "hc_centile", "bpd_centile", "ofd_centile"),
                                   "no_pixel_spacing")
    _fill_intervals(m)
    m.cephalic_index = bio.cephalic_index
    codes = set(bio.flags) | set(m.withheld.values())
    m.notes = [c for c in NOTE_CODES if c in codes]
    m.messages, m.note_messages = [], msgs
    return m


def _fill_centiles(m: Measurement, bio, ga_weeks, msgs: list) -> None:
    """Centiles and the HC z-score on ``m.chart`` (INTERGROWTH-21st or WHO), or why they are left out."""
    centiles = ("hc_zscore", "hc_centile", "bpd_centile", "ofd_centile")
    if ga_weeks is None:
        m.withheld.update(dict.fromkeys(centiles, "no_ga_by_dates"))
        return
    values = {"hc": bio.head_circumference, "bpd": bio.biparietal_diameter, "ofd": bio.occipitofrontal_diameter}
    m.hc_zscore, why = _safe(chart_zscore, m.chart, "hc", values["hc"], ga_weeks)
    if why:
        msgs.append(why)
        m.withheld.update(dict.fromkeys(centiles, "ga_outside_standard"))
        return
    if abs(m.hc_zscore) >= HC_FAR_FROM_GA_Z and "implausible_head_size" not in m.flags:
        m.flags.append("hc_far_from_ga")  # a review flag: the pixel size or scale, or the date, is likely wrong
    have = chart_measures(m.chart)
    for measure, value in values.items():
        inside = measure in have
        setattr(m, f"{measure}_centile", chart_centile(m.chart, measure, value, ga_weeks) if inside else None)
        if not inside:
            m.withheld[f"{measure}_centile"] = "not_in_chart"


def _fill_intervals(m: Measurement) -> None:
    """The 90 % intervals of the lengths and the gestational-age ranges that follow from HC's."""
    m.intervals = {}
    hw = m.interval_half_widths
    if not hw:
        return
    m.intervals["hc_px"] = relative_interval(m.head_circumference_px, hw["hc"])
    if m.head_circumference_mm is None:
        return
    m.intervals["hc_mm"] = relative_interval(m.head_circumference_mm, hw["hc"])
    m.intervals["bpd_mm"] = relative_interval(m.biparietal_diameter_mm, hw["bpd"])
    m.intervals["ofd_mm"] = relative_interval(m.occipitofrontal_diameter_mm, hw["ofd"])
    lo, hi = m.intervals["hc_mm"]
    for key, fn in (("ga_hc_hadlock_weeks", ga_from_hc_hadlock1984),
                    ("ga_hc_intergrowth_weeks", ga_from_hc_intergrowth2016)):
        a, _ = _safe(fn, lo)
        b, _ = _safe(fn, hi)
        if a is not None and b is not None:
            m.intervals[key] = (a, b)
