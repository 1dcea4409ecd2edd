"""``fetalhead.measure``: one scan in, the head measurements out.

This module joins the pieces: read the scan, run the two-pass segmentation
(:mod:`fetalhead.pipeline`) with the shipped ONNX model, and turn the ellipse
into landmarks, millimetres (only when a pixel spacing is known), gestational age
and centiles (:mod:`fetalhead.biometry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .biometry import (OutOfRangeError, ga_from_bpd_hadlock1984, ga_from_hc_hadlock1984,
                       ga_from_hc_intergrowth2016, head_biometry, intergrowth_centile, intergrowth_zscore)
from .datasets import subject_id_from_filename
from .geometry import Ellipse, ellipse_landmarks
from .imageio import ScanReadError, check_scan_array, read_scan
from .model import HeadModel, load_model
from .pipeline import HeadNotFoundError, segment_head

__all__ = ["Measurement", "measure", "measure_image", "load_input", "apply_biometry", "QUALITY_THRESHOLD",
           "REVIEW_FLAGS", "RESULT_COLUMNS", "HC18_COLUMNS"]

#: Results whose quality score is below this are flagged "check manually".
#: Chosen on the validation split: see BENCHMARKS.md.
QUALITY_THRESHOLD = 0.85

#: Flags about the scan itself that send a measured result to review (status "flagged").
REVIEW_FLAGS = ("low_quality", "head_cut_by_image_border")

RESULT_COLUMNS = (  # the columns of ellipses.csv first, in its order, then the rest of the measurement
    "filename", "subject_id", "pixel_size_mm", "hc_mm", "center_x_px", "center_y_px", "semi_major_px",
    "semi_minor_px", "angle_deg", "ofd_mm", "bpd_mm",
    "ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y", "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y",
    "status", "spacing_source", "cephalic_index", "hc_px", "ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks", "ga_bpd_hadlock_weeks",
    "ga_by_dates_weeks", "hc_zscore", "hc_centile", "bpd_centile", "ofd_centile",
    "quality", "flags", "message", "model_version", "path", "frame", "sha256",
    "sop_instance_uid", "study_instance_uid", "series_instance_uid", "series_number", "instance_number",
)
_ID_COLUMNS = {"SOPInstanceUID": "sop_instance_uid", "StudyInstanceUID": "study_instance_uid",
               "SeriesInstanceUID": "series_instance_uid", "SeriesNumber": "series_number",
               "InstanceNumber": "instance_number"}
HC18_COLUMNS = ("filename", "center_x_mm", "center_y_mm", "semi_axes_a_mm", "semi_axes_b_mm", "angle_rad")


@dataclass
class Measurement:
    """The head measured on one scan.

    Lengths in mm are ``None`` when no pixel spacing was known (``unit`` is then
    ``"px"``, the pixel lengths are still given, and ``message`` says so).
    ``status`` is ``"ok"``, ``"flagged"`` (measured, but a clinician should check
    it: see ``flags``) or ``"failed"`` (nothing measured: see ``message``).
    """

    source: str
    status: str
    ellipse: Ellipse | None = None
    landmarks: dict | None = None
    pixel_spacing_mm: tuple[float, float] | None = None
    spacing_source: str = "none"
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
    flags: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    model_version: str = ""
    frame: int = 0
    identifiers: dict = field(default_factory=dict)
    sha256: str = ""

    @property
    def message(self) -> str:
        return "; ".join(self.messages)

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def to_row(self, rounded: bool = True) -> dict:
        """One results-CSV row (:data:`RESULT_COLUMNS`); numbers rounded for reading unless ``rounded=False``."""
        def r(v, nd=4):
            if v is None:
                return ""
            if isinstance(v, (float, np.floating)):
                return round(float(v), nd) if rounded else float(v)
            return v

        row = {c: "" for c in RESULT_COLUMNS}
        sid = subject_id_from_filename(Path(self.source).name)
        row.update(filename=Path(self.source).name, subject_id="" if sid is None else sid, path=self.source,
                   status=self.status, spacing_source=self.spacing_source, flags=";".join(self.flags),
                   message=self.message, model_version=self.model_version, frame=self.frame, sha256=self.sha256)
        for key, col in _ID_COLUMNS.items():
            row[col] = self.identifiers.get(key, "")
        if self.pixel_spacing_mm:
            sx, sy = self.pixel_spacing_mm
            row["pixel_size_mm"] = r(sx, 8) if sx == sy else f"{sx:.8g}x{sy:.8g}"
        if self.ellipse is not None:
            e = self.ellipse
            row.update(center_x_px=r(e.center_x), center_y_px=r(e.center_y), semi_major_px=r(e.semi_major),
                       semi_minor_px=r(e.semi_minor), angle_deg=r(e.angle_deg))
            for k, (x, y) in self.landmarks.items():
                row[f"{k}_x"], row[f"{k}_y"] = r(x), r(y)
        row.update(hc_mm=r(self.head_circumference_mm, 2), bpd_mm=r(self.biparietal_diameter_mm, 2),
                   ofd_mm=r(self.occipitofrontal_diameter_mm, 2), cephalic_index=r(self.cephalic_index, 1),
                   hc_px=r(self.head_circumference_px, 2), ga_hc_hadlock_weeks=r(self.ga_hc_hadlock_weeks, 2),
                   ga_hc_intergrowth_weeks=r(self.ga_hc_intergrowth_weeks, 2),
                   ga_bpd_hadlock_weeks=r(self.ga_bpd_hadlock_weeks, 2), ga_by_dates_weeks=r(self.ga_by_dates_weeks, 2),
                   hc_zscore=r(self.hc_zscore, 2), hc_centile=r(self.hc_centile, 1),
                   bpd_centile=r(self.bpd_centile, 1), ofd_centile=r(self.ofd_centile, 1),
                   quality=r(self.quality, 3))
        return row

    def to_hc18_row(self) -> dict:
        """A row of the HC18 challenge submission format (mm, radians; empty when failed).

        ``semi_axes_a_mm`` is the semi-axis along ``angle_rad``, which is the
        major-axis direction measured clockwise from +x in image coordinates.
        """
        row = {c: "" for c in HC18_COLUMNS}
        row["filename"] = Path(self.source).name
        if self.ellipse is not None and self.pixel_spacing_mm:
            e, (sx, sy) = self.ellipse, self.pixel_spacing_mm
            row.update(center_x_mm=round(e.center_x * sx, 6), center_y_mm=round(e.center_y * sy, 6),
                       semi_axes_a_mm=round(e.semi_major * sx, 6), semi_axes_b_mm=round(e.semi_minor * sy, 6),
                       angle_rad=round(math.radians(e.angle_deg), 6))
        return row

    def to_dict(self) -> dict:
        """JSON-ready dict of everything measured."""
        d = {k: v for k, v in self.to_row(rounded=False).items() if k not in ("flags", "message")}
        d["flags"] = list(self.flags)
        d["messages"] = list(self.messages)
        d["quality_components"] = dict(self.quality_components)
        d["unit"] = "mm" if self.head_circumference_mm is not None else "px"
        d["identifiers"] = dict(self.identifiers)
        return d


def _safe(fn, *args):
    try:
        return fn(*args), None
    except OutOfRangeError as exc:
        return None, str(exc)


def load_input(image, src: str, frame: int, accept_anisotropic: bool):
    """Grey image, DICOM scan (or None) for a path or an array; raises ScanReadError."""
    if isinstance(image, (str, Path)):
        from .dicom import is_dicom_file, read_dicom

        if is_dicom_file(image):
            scan = read_dicom(image, frame=frame, accept_anisotropic=accept_anisotropic)
            return scan.image, scan
        if frame:
            raise ScanReadError(f"{src}: --frame {frame} given, but the file is not a multi-frame DICOM")
        return read_scan(image), None
    return check_scan_array(image, src), None


def measure(image, pixel_spacing_mm=None, *, ga_weeks: float | None = None, model: HeadModel | None = None,
            source: str | None = None, spacing_source: str | None = None, frame: int = 0,
            accept_anisotropic: bool = False) -> Measurement:
    """Measure the fetal head on one scan.

    Parameters
    ----------
    image : str, Path or ndarray
        A file (PNG/JPEG/BMP/TIFF, or ultrasound DICOM with the ``dicom`` extra) or
        an image array (grey or BGR colour, 8/16-bit or float in [0, 1]).
    pixel_spacing_mm : float or (float, float), optional
        Pixel size in mm (isotropic, or x and y). Without it the lengths are
        reported in pixels only and ``message`` says that no mm could be given.
        A DICOM file's own calibration (see :mod:`fetalhead.dicom`) takes
        precedence; this value is used for a DICOM file only when the file has no
        usable calibration, and ``spacing_source`` then says so.
    ga_weeks : float, optional
        Gestational age by dates (weeks); with it the INTERGROWTH-21st z-score and
        centiles of HC, BPD and OFD are given.
    model : HeadModel, optional
        Defaults to the model shipped in the package.
    frame : int
        Frame of a multi-frame DICOM (cine loop) to measure; only that frame is decoded.
    accept_anisotropic : bool
        Measure DICOM files whose x and y spacing differ by more than 1 %.

    Returns
    -------
    Measurement
        Never raises for a bad scan: ``status="failed"`` and ``message`` say why.
    """
    src = source or (str(image) if isinstance(image, (str, Path)) else "<array>")
    try:
        grey, dicom_scan = load_input(image, src, frame, accept_anisotropic)
    except ScanReadError as exc:
        return Measurement(src, "failed", messages=[str(exc)], frame=frame)
    return measure_image(grey, pixel_spacing_mm, dicom_scan=dicom_scan, ga_weeks=ga_weeks, model=model,
                         source=src, spacing_source=spacing_source, frame=frame)


def measure_image(grey: np.ndarray, pixel_spacing_mm=None, *, dicom_scan=None, ga_weeks: float | None = None,
                  model: HeadModel | None = None, source: str = "<array>", spacing_source: str | None = None,
                  frame: int = 0) -> Measurement:
    """:func:`measure` on an already read grey scan (float32 in [0, 1]); ``dicom_scan`` is the
    :class:`fetalhead.dicom.DicomScan` it came from, if any (its calibration is then used)."""
    src = source
    try:
        model = model or load_model()
    except Exception as exc:  # ModelError or onnxruntime failures
        return Measurement(src, "failed", messages=[str(exc)], frame=frame)
    m = Measurement(src, "failed", model_version=model.version, frame=frame)
    if dicom_scan is not None:
        m.identifiers = dict(dicom_scan.identifiers)
    try:
        seg = segment_head(grey, model.predict, model.pipeline_config)
    except HeadNotFoundError as exc:
        m.messages.append(f"{src}: {exc}")
        return m
    e = seg.ellipse
    m.status, m.ellipse, m.landmarks = "ok", e, ellipse_landmarks(e)
    m.quality, m.quality_components = seg.quality, seg.components
    if seg.quality < QUALITY_THRESHOLD:
        m.flags.append("low_quality")
        m.messages.append(f"quality {seg.quality:.2f} below {QUALITY_THRESHOLD}: check the ellipse on the overlay")
    if seg.components.get("inside_fraction", 1.0) < 0.9:
        m.flags.append("head_cut_by_image_border")
    spacing, source_used = pixel_spacing_mm, spacing_source or "given"
    if dicom_scan is not None:
        decision = dicom_scan.spacing_for(e)
        if decision.spacing_mm is not None:
            spacing, source_used = decision.spacing_mm, f"dicom:{decision.source}"
            if decision.note:
                m.messages.append(decision.note)
        elif pixel_spacing_mm is not None:
            source_used = f"{spacing_source or 'given'} (DICOM not usable: {decision.note})"
        else:
            spacing = None
            m.messages.append(f"no mm: {decision.note}")
    apply_biometry(m, spacing, source_used, ga_weeks)
    if any(f in m.flags for f in REVIEW_FLAGS):
        m.status = "flagged"
    return m


def apply_biometry(m: Measurement, spacing, spacing_source: str, ga_weeks: float | None = None) -> Measurement:
    """Fill the lengths, gestational ages, centiles and biometry flags of ``m`` from ``m.ellipse``.

    Used by :func:`measure_image` and when a user adjusts the ellipse by hand (the web app).
    """
    e, src, source_used = m.ellipse, m.source, spacing_source
    m.head_circumference_px = e.perimeter_px
    try:
        bio = head_biometry(e, spacing)
    except ValueError as exc:
        m.messages.append(f"{src}: {exc}")
        bio = head_biometry(e, None)
    if bio.unit == "mm":
        m.pixel_spacing_mm = bio.pixel_spacing_mm
        m.spacing_source = source_used
        m.head_circumference_mm = bio.head_circumference
        m.biparietal_diameter_mm = bio.biparietal_diameter
        m.occipitofrontal_diameter_mm = bio.occipitofrontal_diameter
        for attr, fn, value in (("ga_hc_hadlock_weeks", ga_from_hc_hadlock1984, bio.head_circumference),
                                ("ga_hc_intergrowth_weeks", ga_from_hc_intergrowth2016, bio.head_circumference),
                                ("ga_bpd_hadlock_weeks", ga_from_bpd_hadlock1984, bio.biparietal_diameter)):
            val, why = _safe(fn, value)
            setattr(m, attr, val)
            if why:
                m.messages.append(why)
        if ga_weeks is not None:
            m.ga_by_dates_weeks = float(ga_weeks)
            m.hc_zscore, why = _safe(intergrowth_zscore, "hc", bio.head_circumference, ga_weeks)
            if why:
                m.messages.append(why)
            else:
                m.hc_centile = intergrowth_centile("hc", bio.head_circumference, ga_weeks)
                m.bpd_centile = intergrowth_centile("bpd", bio.biparietal_diameter, ga_weeks)
                m.ofd_centile = intergrowth_centile("ofd", bio.occipitofrontal_diameter, ga_weeks)
    else:
        m.flags.append("no_pixel_spacing")
        m.messages.append("no pixel spacing: HC, BPD and OFD are not given in mm (pixels only)")
    m.cephalic_index = bio.cephalic_index
    m.flags.extend(bio.flags)
    if "cephalic_index_out_of_range" in bio.flags:
        m.messages.append(bio.note.split("; ")[-1])
    return m
