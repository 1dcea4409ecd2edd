"""One result format: the columns, the CSV row, the HC18 row, the JSON form, the writer and the
resume key of a :class:`fetalhead.measurement.Measurement`.

* CSV (``results.csv``): :data:`RESULT_COLUMNS`, the columns of ``ellipses.csv`` first; an
  empty cell where a number is missing; text cells that a spreadsheet would run as a formula
  (starting with ``= + - @``, tab or CR) are written with a leading ``'`` (OWASP, "CSV
  Injection"); numbers are never altered.
* HC18 (``--format hc18``): :data:`HC18_COLUMNS`, the ellipse mapped to millimetres as a
  whole (with anisotropic spacing the axes and angle change, not just each coordinate).
* JSON: :func:`to_json`, ``null`` where a number is missing, the pixel spacing as ``[x, y]``,
  flags and messages as lists, the ellipse and landmarks as objects.
* ``flags`` and ``message`` are what sends a result to review (each flag in words: what is wrong,
  where, what to do) or why it failed; ``notes`` and ``note_message`` are information, never a
  warning (a cephalic index outside Hadlock's +/-1 SD, no pixel size, a figure left out and why).

Everything here reads a measurement's attributes; nothing decides anything about a scan.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np

from ..scans.datasets import subject_id_from_filename

__all__ = ["RESULT_COLUMNS", "HC18_COLUMNS", "csv_row", "hc18_row", "to_json", "result_key", "ResultWriter",
           "write_json", "csv_safe", "ellipse_in_mm", "ellipse_json", "check_output_path", "PAGE_SPACING_SOURCE",
           "TWO_POINTS_SOURCE"]

#: The pixel size's source when it was typed on the page (the page and the report translate it).
PAGE_SPACING_SOURCE = "entered on the page"
#: The pixel size's source when it was set by hand by two points of the picture and their distance
#: (:func:`fetalhead.measurement.two_point_scale`; issue 22).
TWO_POINTS_SOURCE = "two_points"

RESULT_COLUMNS = (  # the columns of ellipses.csv first, in its order, then the rest of the measurement
    "filename", "subject_id", "pixel_size_mm", "hc_mm", "center_x_px", "center_y_px", "semi_major_px",
    "semi_minor_px", "angle_deg", "ofd_mm", "bpd_mm",
    "ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y", "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y",
    "status", "spacing_source", "cephalic_index", "hc_px", "ga_hc_hadlock_weeks", "ga_hc_intergrowth_weeks",
    "ga_bpd_hadlock_weeks", "ga_by_dates_weeks", "hc_zscore", "hc_centile", "bpd_centile", "ofd_centile",
    "quality", "flags", "message", "model_version", "path", "frame", "sha256", "overlay",
    "hc_mm_low", "hc_mm_high", "bpd_mm_low", "bpd_mm_high", "ofd_mm_low", "ofd_mm_high", "hc_px_low", "hc_px_high",
    "ga_hc_hadlock_weeks_low", "ga_hc_hadlock_weeks_high", "ga_hc_intergrowth_weeks_low",
    "ga_hc_intergrowth_weeks_high",
    "sop_instance_uid", "study_instance_uid", "series_instance_uid", "series_number", "instance_number",
    "chart", "time_s", "notes", "note_message", "scale_points", "scale_distance_cm",
)
HC18_COLUMNS = ("filename", "center_x_mm", "center_y_mm", "semi_axes_a_mm", "semi_axes_b_mm", "angle_rad")
#: DICOM identifiers (never patient data) that get their own result columns.
ID_COLUMNS = {"SOPInstanceUID": "sop_instance_uid", "StudyInstanceUID": "study_instance_uid",
              "SeriesInstanceUID": "series_instance_uid", "SeriesNumber": "series_number",
              "InstanceNumber": "instance_number"}
#: (attribute of Measurement, result column, decimals in the CSV)
_FIGURES = (("head_circumference_mm", "hc_mm", 2), ("biparietal_diameter_mm", "bpd_mm", 2),
            ("occipitofrontal_diameter_mm", "ofd_mm", 2), ("cephalic_index", "cephalic_index", 1),
            ("head_circumference_px", "hc_px", 2), ("ga_hc_hadlock_weeks", "ga_hc_hadlock_weeks", 2),
            ("ga_hc_intergrowth_weeks", "ga_hc_intergrowth_weeks", 2),
            ("ga_bpd_hadlock_weeks", "ga_bpd_hadlock_weeks", 2), ("ga_by_dates_weeks", "ga_by_dates_weeks", 2),
            ("hc_zscore", "hc_zscore", 2), ("hc_centile", "hc_centile", 1), ("bpd_centile", "bpd_centile", 1),
            ("ofd_centile", "ofd_centile", 1), ("quality", "quality", 3))
_ELLIPSE_COLUMNS = (("center_x", "center_x_px"), ("center_y", "center_y_px"), ("semi_major", "semi_major_px"),
                    ("semi_minor", "semi_minor_px"), ("angle_deg", "angle_deg"))
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(text) -> str:
    """A text cell that spreadsheets will not run as a formula (OWASP CSV injection advice)."""
    text = "" if text is None else str(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _num(v, nd=None):
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        return None
    return round(v, nd) if nd is not None else v


def _flat(m, rounded: bool) -> dict:
    """Every column's value (None where missing), numbers as numbers."""
    nd = (lambda k: k) if rounded else (lambda k: None)
    name = Path(m.source).name
    sid = subject_id_from_filename(name)
    row = dict.fromkeys(RESULT_COLUMNS)
    row.update(filename=name, subject_id=sid, path=m.source, status=m.status, spacing_source=m.spacing_source,
               model_version=m.model_version, frame=int(m.frame or 0), sha256=m.sha256 or None,
               overlay=m.overlay_path or None, chart=m.chart if m.hc_centile is not None else None,
               time_s=_num(m.frame_time_s, nd(3)))
    for key, col in ID_COLUMNS.items():
        row[col] = m.identifiers.get(key)
    if m.ellipse is not None:
        for attr, col in _ELLIPSE_COLUMNS:
            row[col] = _num(getattr(m.ellipse, attr), nd(4))
        for k, (x, y) in (m.landmarks or {}).items():
            row[f"{k}_x"], row[f"{k}_y"] = _num(x, nd(4)), _num(y, nd(4))
    for attr, col, digits in _FIGURES:
        row[col] = _num(getattr(m, attr), nd(digits))
    for key, (lo, hi) in (m.intervals or {}).items():  # 90 % intervals: <column>_low, <column>_high
        row[f"{key}_low"], row[f"{key}_high"] = _num(lo, nd(2)), _num(hi, nd(2))
    return row


def csv_row(m, rounded: bool = True) -> dict:
    """One results-CSV row (:data:`RESULT_COLUMNS`); numbers rounded for reading unless ``rounded=False``."""
    row = _flat(m, rounded)
    if m.pixel_spacing_mm:
        sx, sy = m.pixel_spacing_mm
        row["pixel_size_mm"] = round(sx, 8) if sx == sy else f"{sx:.8g}x{sy:.8g}"
    row["flags"] = ";".join(m.flags)
    row["message"] = m.message
    row["notes"] = ";".join(m.notes)
    row["note_message"] = m.note_message
    points = getattr(m, "scale_points", None)  # a scale set by hand: its points "x1;y1;x2;y2" (px) and distance
    if points:
        row["scale_points"] = ";".join(f"{float(v):.6g}" for p in points for v in p)
        row["scale_distance_cm"] = getattr(m, "scale_distance_cm", None)
    out = {}
    for k, v in row.items():
        if v is None:
            out[k] = ""
        elif isinstance(v, str) and k != "pixel_size_mm":
            out[k] = csv_safe(v)
        else:
            out[k] = v
    return out


def ellipse_in_mm(ellipse, pixel_spacing_mm):
    """The ellipse in millimetres: the image of the pixel ellipse under ``diag(sx, sy)``."""
    from ..clinical.geometry import Ellipse  # noqa: F401  (type of the result)

    sx, sy = pixel_spacing_mm
    return ellipse.transformed(np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]]))


def hc18_row(m) -> dict:
    """A row of the HC18 challenge submission format (mm, radians; empty when failed or no mm).

    ``semi_axes_a_mm`` is the semi-axis along ``angle_rad``, the major axis of the ellipse
    *in millimetres*, clockwise from +x in image coordinates.
    """
    row = dict.fromkeys(HC18_COLUMNS, "")
    row["filename"] = csv_safe(Path(m.source).name)
    if m.ellipse is not None and m.pixel_spacing_mm:
        e = ellipse_in_mm(m.ellipse, m.pixel_spacing_mm)
        row.update(center_x_mm=round(e.center_x, 6), center_y_mm=round(e.center_y, 6),
                   semi_axes_a_mm=round(e.semi_major, 6), semi_axes_b_mm=round(e.semi_minor, 6),
                   angle_rad=round(math.radians(e.angle_deg), 6))
    return row


def to_json(m) -> dict:
    """The JSON form of a measurement: every column (``null`` where missing, numbers unrounded),
    the spacing as ``[x, y]``, lists for flags and messages, objects for the ellipse and landmarks."""
    d = _flat(m, rounded=False)
    d.pop("pixel_size_mm")
    d["pixel_spacing_mm"] = list(m.pixel_spacing_mm) if m.pixel_spacing_mm else None
    d["unit"] = "mm" if m.head_circumference_mm is not None else "px"
    d["flags"] = list(m.flags)
    d["messages"] = list(m.messages)
    d["message"] = m.message
    d["notes"] = list(m.notes)  # information, not warnings (fetalhead.measurement.NOTE_CODES)
    d["note_messages"] = list(m.note_messages)
    d["note_message"] = m.note_message
    d["uncertain_arcs"] = [dict(a) for a in m.uncertain_arcs]  # where on the outline to check (flagged)
    d["spacing_note"] = m.spacing_note or None
    screen = getattr(m, "screen_mm_per_px", None)  # the screen's depth scale, when one was read (issue 22)
    d["screen_mm_per_px"] = [float(v) for v in screen] if screen else None
    # where the screen's scale marks lie, and a scale set by hand: two points and their distance (original-image
    # pixels, cm), so that a page can draw them on the picture and a report can name them
    d["screen_marks"] = [[round(float(x), 1), round(float(y), 1)] for x, y in getattr(m, "screen_marks", None) or []]
    points = getattr(m, "scale_points", None)
    d["scale_points"] = [[float(x), float(y)] for x, y in points] if points else None
    d["scale_distance_cm"] = getattr(m, "scale_distance_cm", None)
    d["ellipse"] = None if m.ellipse is None else ellipse_json(m.ellipse)
    d["landmarks"] = None if not m.landmarks else {k: [float(x), float(y)] for k, (x, y) in m.landmarks.items()}
    d["quality_components"] = {k: (bool(v) if isinstance(v, (bool, np.bool_)) else _num(v))
                               for k, v in m.quality_components.items()}
    d["identifiers"] = dict(m.identifiers)
    d["image_width"], d["image_height"] = (m.image_size if m.image_size else (None, None))
    d["interval_level"] = 0.9 if m.intervals else None
    d["interval_half_widths"] = dict(m.interval_half_widths) or None
    d["chart"] = m.chart  # the growth chart of the centiles (asked for, even when no centile was given)
    d["n_frames"] = int(m.n_frames or 1)
    d["hc_trace"] = list(m.hc_trace) or None  # a loop's best frame: every frame's HC, status and quality
    d["frame_choice"] = m.frame_choice or None
    d["failure"] = m.failure or None  # why nothing was measured (fetalhead.measurement.FAILURES)
    d["withheld"] = dict(m.withheld)  # result column -> reason code (fetalhead.measurement.WITHHELD_REASONS)
    return d


def ellipse_json(e) -> dict:
    """The JSON form of an ellipse (pixels, degrees), as ``Measurement.from_dict`` reads it back."""
    return {"center_x": e.center_x, "center_y": e.center_y, "semi_major": e.semi_major,
            "semi_minor": e.semi_minor, "angle_deg": e.angle_deg}


def result_key(sha256: str, frame) -> str:
    """What ``--resume`` matches a scan on: the sha256 of the file's content and the frame."""
    return f"{sha256}:{int(frame or 0)}"


def check_output_path(path: str | Path, what: str = "output") -> Path:
    """Fail early (``ValueError`` naming the path) when ``path`` cannot be written."""
    import os

    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{path}: cannot create the folder for the {what} ({exc.strerror or exc})") from None
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a file ({what})")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{path}: not writable ({what})")
    return path


class ResultWriter:
    """Appends result rows to a CSV as they come (flushed), optionally converted to Parquet at the end.

    ``out`` ending in ``.parquet`` journals the rows to ``out + '.csv'`` (kept for resuming)
    and writes the Parquet file on :meth:`close`; pyarrow is checked here, before any scan is
    measured. With ``resume`` an existing output is kept, a torn last line (from a killed run)
    is cut off, and :attr:`done` holds the keys (sha256:frame) of the files already measured.
    ``--format hc18`` rows have no key to match on, so resuming them is refused.
    """

    def __init__(self, out: str | Path | None, fmt: str = "fetalhead", resume: bool = False):
        if fmt not in ("fetalhead", "hc18"):
            raise ValueError(f"unknown result format {fmt!r} (fetalhead or hc18)")
        self.fmt = fmt
        self.columns = list(HC18_COLUMNS if fmt == "hc18" else RESULT_COLUMNS)
        self.done: set[str] = set()
        self.failed_done: set[str] = set()  # of those, the rows that failed
        self.parquet = None
        self.fh = None
        if out is None:
            return
        out = Path(out)
        if resume and fmt == "hc18":
            raise ValueError(f"{out}: --resume cannot be used with --format hc18 (its rows carry no file hash "
                             "to match on); write the fetalhead format and convert, or start afresh")
        if out.suffix.lower() == ".parquet":
            try:
                import pyarrow.csv  # noqa: F401
                import pyarrow.parquet  # noqa: F401
            except ImportError:
                raise ValueError(f"{out}: writing Parquet needs pyarrow: pip install 'fetalhead[scale]' "
                                 "(or write a .csv)") from None
            self.parquet, out = out, Path(str(out) + ".csv")
        self.csv_path = check_output_path(out, "results")
        if resume and out.is_file() and out.stat().st_size > 0:
            self._repair_tail(out)
        if resume and out.is_file() and out.stat().st_size > 0:  # a header torn by a kill leaves nothing
            with open(out, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames != self.columns:
                    got = ",".join(reader.fieldnames or [])[:80]
                    raise ValueError(f"{out}: cannot resume: its header ({got}...) is not that of --format {fmt} "
                                     "results; use another --out, or start without --resume")
                for row in reader:
                    if row.get("sha256"):
                        self.done.add(result_key(row["sha256"], row.get("frame") or 0))
                        if row.get("status") == "failed":  # done too: said apart when skipped (a bad value typed)
                            self.failed_done.add(result_key(row["sha256"], row.get("frame") or 0))
            self.fh = open(out, "a", newline="", encoding="utf-8")
            self.writer = csv.DictWriter(self.fh, fieldnames=self.columns)
        else:
            self.fh = open(out, "w", newline="", encoding="utf-8")
            self.writer = csv.DictWriter(self.fh, fieldnames=self.columns)
            self.writer.writeheader()
            self.fh.flush()

    @staticmethod
    def _repair_tail(path: Path) -> None:
        """Cut a record torn by a kill: keep up to the last line end that lies *outside* quotes (a file
        name may hold a newline, quoted in its field; a cut just after it ends no record)."""
        data = path.read_bytes()
        parts = data.split(b'"')  # even-numbered parts lie outside quotes ("" toggles twice)
        offsets, pos = [], 0
        for part in parts:
            offsets.append(pos)
            pos += len(part) + 1
        cut = 0
        for k in reversed(range(0, len(parts), 2)):
            if b"\n" in parts[k]:
                cut = offsets[k] + parts[k].rfind(b"\n") + 1
                break
        if cut != len(data):
            with open(path, "r+b") as fh:
                fh.truncate(cut)

    def write(self, m) -> None:
        if self.fh is None:
            return
        self.writer.writerow(hc18_row(m) if self.fmt == "hc18" else csv_row(m))
        self.fh.flush()

    def close(self) -> None:
        if self.fh is None:
            return
        self.fh.close()
        self.fh = None
        if self.parquet is not None:
            import pyarrow.csv as pacsv
            import pyarrow.parquet as pq

            opts = pacsv.ConvertOptions(strings_can_be_null=True,
                                        column_types={c: "string" for c in ("filename", "flags", "message", "path",
                                                                            "notes", "note_message",
                                                                            "sha256", "pixel_size_mm", "overlay")})
            table = pacsv.read_csv(io.BytesIO(self.csv_path.read_bytes()), convert_options=opts)
            pq.write_table(table, self.parquet)


def write_json(path: str | Path, measurements) -> None:
    """All results as one JSON list (see :func:`to_json`)."""
    Path(path).write_text(json.dumps([to_json(m) for m in measurements], indent=2, allow_nan=False))
