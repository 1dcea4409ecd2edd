"""Reading fetal head data sets and splitting them by subject.

Three layouts are read:

* the shared layout: ``images/``, ``annotations/`` and ``ellipses.csv``
  (see ``../shared/data/hc18/README.md``);
* the official HC18 download: a folder with ``NNN_HC.png`` and
  ``NNN_HC_Annotation.png`` side by side, plus ``training_set_pixel_size_and_HC.csv``
  (or ``test_set_pixel_size.csv``) in it or in its parent;
* a plain landmark CSV: ``filename`` plus the 8 landmark columns
  ``ofd_1_x, ofd_1_y, ofd_2_x, ofd_2_y, bpd_1_x, bpd_1_y, bpd_2_x, bpd_2_y``
  (optionally ``pixel_size_mm``), with the images in the CSV's folder or ``images/``.

Each gives a list of :class:`HeadSample`. Images are not read here.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..clinical.geometry import Ellipse, fit_ellipse_to_outline

__all__ = [
    "HeadSample",
    "DatasetError",
    "ELLIPSE_COLUMNS",
    "LANDMARK_COLUMNS",
    "subject_id_from_filename",
    "parse_number",
    "read_pixel_size_csv",
    "read_scale_csv",
    "read_spacing_csv",
    "SCALE_COLUMNS",
    "read_reference_hc",
    "read_ellipses_csv",
    "ellipse_from_row",
    "ellipse_from_landmarks",
    "read_shared_layout",
    "read_hc18_official",
    "read_landmark_csv",
    "load_dataset",
    "detect_layout",
    "subject_split",
    "is_validation_subject",
    "IMAGE_SUFFIXES",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
LANDMARK_COLUMNS = ("ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y", "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y")
ELLIPSE_COLUMNS = ("center_x_px", "center_y_px", "semi_major_px", "semi_minor_px", "angle_deg")
OFFICIAL_TRAIN_CSV = "training_set_pixel_size_and_HC.csv"
OFFICIAL_TEST_CSV = "test_set_pixel_size.csv"
_SUBJECT_RE = re.compile(r"^(\d+)_(\d*)HC", re.IGNORECASE)


class DatasetError(ValueError):
    """A data set folder or file that cannot be read as any known layout."""


@dataclass(frozen=True)
class HeadSample:
    """One image of a data set and what is known about it.

    ``pixel_size_mm`` and ``hc_mm`` are the reference values of the data set's
    CSV; ``ellipse`` is the reference head outline in pixels (``None`` when the
    image is unlabelled or its annotation could not be read, see ``problem``).
    """

    filename: str
    image_path: Path
    subject_id: int | None = None
    pixel_size_mm: float | None = None
    hc_mm: float | None = None
    ellipse: Ellipse | None = None
    annotation_path: Path | None = None
    problem: str = ""
    extra: dict = field(default_factory=dict, compare=False, repr=False)


def subject_id_from_filename(filename: str) -> int | None:
    """Subject (pregnancy) number of an HC18 file name: ``012_2HC.png`` -> 12."""
    m = _SUBJECT_RE.match(Path(filename).name)
    return int(m.group(1)) if m else None


def parse_number(value, what: str, where: str) -> float:
    """A finite float from a CSV cell; :class:`DatasetError` naming ``where`` and ``what`` otherwise."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: {what} is not a number: {value!r}") from None
    if not math.isfinite(v):
        raise DatasetError(f"{where}: {what} is not finite: {value!r}")
    return v


def _read_csv_rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            rows = []
            for i, row in enumerate(reader, start=2):
                if None in row or None in row.values():
                    raise DatasetError(f"{path} line {i}: the row does not have the header's columns "
                                       f"({', '.join(reader.fieldnames or [])[:80]}); is this the right CSV?")
                rows.append({(k or "").strip(): (v or "").strip() for k, v in row.items()})
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise DatasetError(f"{path}: the CSV has no rows")
    return rows


def read_pixel_size_csv(path: str | Path) -> dict[str, float]:
    """Pixel sizes (mm) by file name from an HC18-style CSV.

    Accepts the official columns (``filename, pixel size(mm)[, head circumference (mm)]``)
    and the shared ``pixel_size_mm`` column; a file whose scale is set by two points instead
    (:data:`SCALE_COLUMNS`, :func:`read_scale_csv`) is not in it.
    """
    return read_spacing_csv(path)[0]


#: Optional columns of a pixel-size CSV: a scale set by two points of the picture ("x1;y1;x2;y2",
#: pixels) and their distance (cm), for a file whose pixel size nobody knows (issue 22).
SCALE_COLUMNS = ("scale_points", "scale_distance_cm")
_PIXEL_SIZE_COLUMNS = ("pixelsize(mm)", "pixel_size_mm")


def read_scale_csv(path: str | Path) -> dict[str, tuple[str, str]]:
    """Scales set by two points, by file name, from a pixel-size CSV's :data:`SCALE_COLUMNS`: the points and
    the distance as written (checked where the picture is known:
    :func:`fetalhead.measurement.two_point_scale`)."""
    return read_spacing_csv(path)[1]


def _column(keys, names) -> str | None:
    """The header among ``keys`` that is one of ``names``, whatever its case, spaces and underscores."""
    def norm(text):
        return text.lower().replace(" ", "").replace("_", "")

    wanted = {norm(n) for n in names}
    return next((k for k in keys if norm(k) in wanted), None)


def read_spacing_csv(path: str | Path) -> tuple[dict[str, float], dict[str, tuple[str, str]]]:
    """Each file's pixel size, or its two-point scale (points and distance as written), from a pixel-size
    CSV, read once: ``(pixel_sizes, scales)``. Refused (:class:`DatasetError`, the line named): a row with
    both, a distance without points, a row with neither, a file on two rows."""
    path = Path(path)
    rows = _read_csv_rows(path)
    keys = list(rows[0])
    px_col = _column(keys, _PIXEL_SIZE_COLUMNS)
    pts_col, cm_col = _column(keys, (SCALE_COLUMNS[0],)), _column(keys, (SCALE_COLUMNS[1],))
    if "filename" not in keys or (px_col is None and pts_col is None):
        raise DatasetError(f"{path}: needs the columns 'filename' and 'pixel size(mm)' or 'pixel_size_mm' (or "
                           f"'{SCALE_COLUMNS[0]}' with '{SCALE_COLUMNS[1]}')")
    pixel_sizes, scales, line_of = {}, {}, {}
    for i, row in enumerate(rows, start=2):
        where, name = f"{path} line {i}", row["filename"]
        if name in line_of:
            raise DatasetError(f"{where}: {name!r} is on line {line_of[name]} already: one row a file")
        line_of[name] = i
        px, pts = row.get(px_col, "") if px_col else "", row.get(pts_col, "") if pts_col else ""
        cm = row.get(cm_col, "") if cm_col else ""
        if px and pts:
            raise DatasetError(f"{where}: give either a pixel size or scale points, not both")
        if pts:
            scales[name] = (pts, cm)
        elif cm:
            raise DatasetError(f"{where}: {SCALE_COLUMNS[1]} without {SCALE_COLUMNS[0]} (the two points it is "
                               "the distance of)")
        elif px or pts_col is None:
            pixel_sizes[name] = parse_number(px, "pixel size", where)
        else:
            raise DatasetError(f"{where}: {name!r} has neither a pixel size nor scale points")
    return pixel_sizes, scales


def read_reference_hc(path: str | Path) -> dict[str, float]:
    """Reference HC (mm) by file name from a CSV with an ``hc_mm`` or ``head circumference (mm)``
    column; empty when it has neither."""
    path = Path(path)
    rows = _read_csv_rows(path)
    col = next((k for k in rows[0] if k.lower().replace(" ", "") in ("hc_mm", "headcircumference(mm)")), None)
    if col is None or "filename" not in rows[0]:
        return {}
    return {r["filename"]: parse_number(r[col], "head circumference", f"{path} line {i}")
            for i, r in enumerate(rows, start=2) if r.get(col)}


def read_ellipses_csv(path: str | Path) -> list[dict[str, str]]:
    """Rows of an ``ellipses.csv``-style file (also a fetalhead results CSV), as strings."""
    path = Path(path)
    rows = _read_csv_rows(path)
    if "filename" not in rows[0]:
        raise DatasetError(f"{path}: has no 'filename' column")
    return rows


def ellipse_from_row(row: dict[str, str], where: str = "row") -> Ellipse:
    """The ellipse of an ``ellipses.csv`` row (pixel columns)."""
    vals = [parse_number(row.get(c), c, where) for c in ELLIPSE_COLUMNS]
    return Ellipse.from_axes(*vals)


def ellipse_from_landmarks(ofd_1, ofd_2, bpd_1, bpd_2) -> Ellipse:
    """The head ellipse from its 4 caliper landmarks (pixels).

    Centre: the mean of the two diameters' midpoints; semi-axes: half of each
    diameter; angle: the direction of the OFD. The two diameters of a true
    ellipse share their midpoint and are perpendicular; :mod:`fetalhead.studies.datacheck`
    reports landmark sets that are not.
    """
    (x1, y1), (x2, y2), (x3, y3), (x4, y4) = ofd_1, ofd_2, bpd_1, bpd_2
    cx = (x1 + x2 + x3 + x4) / 4.0
    cy = (y1 + y2 + y3 + y4) / 4.0
    ofd = math.hypot(x2 - x1, y2 - y1)
    bpd = math.hypot(x4 - x3, y4 - y3)
    angle = math.degrees(math.atan2(y2 - y1, x2 - x1))
    return Ellipse.from_axes(cx, cy, ofd / 2.0, bpd / 2.0, angle)


def _find_image(folder: Path, name: str) -> Path:
    return folder / name


def read_shared_layout(root: str | Path) -> list[HeadSample]:
    """The shared layout: ``images/``, ``annotations/`` and ``ellipses.csv``.

    Pixel sizes and reference HC come at full precision from
    ``training_set_pixel_size_and_HC.csv`` when it is present (``ellipses.csv``
    rounds the pixel size to 4 decimals, which moves HC by up to 0.05 mm).
    """
    root = Path(root)
    rows = read_ellipses_csv(root / "ellipses.csv")
    precise = {}
    if (root / OFFICIAL_TRAIN_CSV).is_file():
        precise = read_pixel_size_csv(root / OFFICIAL_TRAIN_CSV)
    samples = []
    for i, row in enumerate(rows, start=2):
        name = row["filename"]
        where = f"{root / 'ellipses.csv'} line {i} ({name})"
        problem, ellipse = "", None
        try:
            ellipse = ellipse_from_row(row, where)
        except (DatasetError, ValueError) as exc:
            problem = str(exc)
        ps = precise.get(name)
        if ps is None and row.get("pixel_size_mm"):
            ps = parse_number(row["pixel_size_mm"], "pixel_size_mm", where)
        sid = row.get("subject_id")
        subject = int(sid) if sid not in (None, "") and sid.isdigit() else subject_id_from_filename(name)
        hc = parse_number(row["hc_mm"], "hc_mm", where) if row.get("hc_mm") else None
        stem = Path(name).stem
        samples.append(HeadSample(
            filename=name, image_path=root / "images" / name, subject_id=subject,
            pixel_size_mm=ps, hc_mm=hc, ellipse=ellipse,
            annotation_path=root / "annotations" / f"{stem}_Annotation.png", problem=problem,
            extra={k: row[k] for k in LANDMARK_COLUMNS if k in row}))
    return samples


def read_hc18_official(folder: str | Path, fit_annotations: bool = True) -> list[HeadSample]:
    """The official HC18 download: images with ``*_Annotation.png`` beside them and the pixel-size CSV.

    The CSV is looked for in ``folder`` and its parent. With ``fit_annotations``
    each annotation outline is read and an ellipse fitted to it (about 25 ms an
    image); an unreadable annotation leaves ``ellipse=None`` and says why in
    ``problem``.
    """
    import cv2

    folder = Path(folder)
    csv_path = None
    for cand in (folder / OFFICIAL_TRAIN_CSV, folder.parent / OFFICIAL_TRAIN_CSV,
                 folder / OFFICIAL_TEST_CSV, folder.parent / OFFICIAL_TEST_CSV):
        if cand.is_file():
            csv_path = cand
            break
    pixel_sizes, hcs = {}, {}
    if csv_path is not None:
        pixel_sizes = read_pixel_size_csv(csv_path)
        rows = _read_csv_rows(csv_path)
        hc_col = next((k for k in rows[0] if k.lower().startswith("head circumference")), None)
        if hc_col:
            hcs = {r["filename"]: parse_number(r[hc_col], "head circumference", str(csv_path)) for r in rows}
    images = sorted(p for p in folder.iterdir()
                    if p.suffix.lower() in IMAGE_SUFFIXES and not p.stem.endswith("_Annotation"))
    if not images:
        raise DatasetError(f"{folder}: no images found")
    samples = []
    for path in images:
        ann = path.with_name(f"{path.stem}_Annotation.png")
        ellipse, problem = None, ""
        if ann.is_file() and fit_annotations:
            outline = cv2.imread(str(ann), cv2.IMREAD_GRAYSCALE)
            if outline is None:
                problem = f"{ann.name}: annotation is not a readable image"
            else:
                try:
                    ellipse = fit_ellipse_to_outline(outline)
                except ValueError as exc:
                    problem = f"{ann.name}: {exc}"
        samples.append(HeadSample(
            filename=path.name, image_path=path, subject_id=subject_id_from_filename(path.name),
            pixel_size_mm=pixel_sizes.get(path.name), hc_mm=hcs.get(path.name), ellipse=ellipse,
            annotation_path=ann if ann.is_file() else None, problem=problem))
    return samples


def read_landmark_csv(csv_path: str | Path, image_dir: str | Path | None = None) -> list[HeadSample]:
    """A CSV of ``filename`` plus the 8 landmark coordinates (pixels).

    The ellipse is built from the landmarks (:func:`ellipse_from_landmarks`).
    Images are looked for in ``image_dir``, else beside the CSV or in ``images/`` there.
    """
    csv_path = Path(csv_path)
    rows = _read_csv_rows(csv_path)
    missing = [c for c in ("filename",) + LANDMARK_COLUMNS if c not in rows[0]]
    if missing:
        raise DatasetError(f"{csv_path}: missing columns {', '.join(missing)}")
    base = Path(image_dir) if image_dir else (
        csv_path.parent / "images" if (csv_path.parent / "images").is_dir() else csv_path.parent)
    samples = []
    for i, row in enumerate(rows, start=2):
        where = f"{csv_path} line {i} ({row['filename']})"
        ellipse, problem = None, ""
        try:
            c = [parse_number(row[k], k, where) for k in LANDMARK_COLUMNS]
            ellipse = ellipse_from_landmarks(c[0:2], c[2:4], c[4:6], c[6:8])
        except (DatasetError, ValueError) as exc:
            problem = str(exc)
        ps = None
        for col in ("pixel_size_mm", "pixel size(mm)"):
            if row.get(col):
                ps = parse_number(row[col], col, where)
        samples.append(HeadSample(
            filename=row["filename"], image_path=base / row["filename"],
            subject_id=subject_id_from_filename(row["filename"]), pixel_size_mm=ps, ellipse=ellipse,
            problem=problem, extra={k: row[k] for k in LANDMARK_COLUMNS}))
    return samples


def detect_layout(path: str | Path) -> str:
    """``"shared"``, ``"hc18"`` or ``"landmarks"`` for a data set path; raises :class:`DatasetError`."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return "landmarks"
    if not path.is_dir():
        raise DatasetError(f"{path}: no such folder or CSV file")
    if (path / "ellipses.csv").is_file() and (path / "images").is_dir():
        return "shared"
    if any(p.name.endswith("_Annotation.png") for p in path.iterdir()):
        return "hc18"
    for sub in ("training_set", "train"):
        if (path / sub).is_dir():
            return "hc18"
    raise DatasetError(
        f"{path}: not a known data set layout (expected images/ + ellipses.csv, an HC18 folder "
        "with *_Annotation.png files, or a landmark CSV)")


def load_dataset(path: str | Path) -> list[HeadSample]:
    """Read any of the three layouts (see the module docstring)."""
    path = Path(path)
    layout = detect_layout(path)
    if layout == "shared":
        return read_shared_layout(path)
    if layout == "landmarks":
        return read_landmark_csv(path)
    if not any(p.name.endswith("_Annotation.png") for p in path.iterdir()):
        for sub in ("training_set", "train"):
            if (path / sub).is_dir():
                path = path / sub
                break
    return read_hc18_official(path)


def is_validation_subject(subject_id, val_fraction: float = 0.2, seed: int = 0) -> bool:
    """Whether a subject belongs to the validation split.

    The assignment hashes (seed, subject) with SHA-256, so it is fixed: it does
    not depend on which other subjects are present or their order, and the same
    subject never moves between splits when a data set grows.
    """
    if not 0.0 <= val_fraction <= 1.0:
        raise ValueError("val_fraction must lie in [0, 1]")
    digest = hashlib.sha256(f"fetalhead-split:{seed}:{subject_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    return u < val_fraction


def subject_fold(subject_id, n_folds: int, seed: int = 0) -> int:
    """The cross-validation fold (0 .. ``n_folds - 1``) a subject belongs to.

    Like :func:`is_validation_subject`, the fold hashes (seed, subject) with
    SHA-256: it is fixed whatever other subjects are present, so every image of
    a subject is held out together and the folds can be recorded and rebuilt.
    """
    if int(n_folds) != n_folds or n_folds < 2:
        raise ValueError("n_folds must be an integer of at least 2")
    digest = hashlib.sha256(f"fetalhead-fold:{seed}:{subject_id}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2.0 ** 64
    return min(int(u * n_folds), int(n_folds) - 1)


def sample_key(sample: HeadSample):
    """What groups a sample with its subject: the subject number, else the file name stem."""
    return sample.subject_id if sample.subject_id is not None else Path(sample.filename).stem


def fold_split(samples: list[HeadSample], n_folds: int, fold: int, seed: int = 0
               ) -> tuple[list[HeadSample], list[HeadSample]]:
    """Subject-grouped K-fold split: ``(train, held_out)`` for fold ``fold`` of ``n_folds``."""
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must lie in 0 .. {n_folds - 1}, got {fold}")
    train, held = [], []
    for s in samples:
        (held if subject_fold(sample_key(s), n_folds, seed) == fold else train).append(s)
    return train, held


def subject_split(samples: list[HeadSample], val_fraction: float = 0.2, seed: int = 0
                  ) -> tuple[list[HeadSample], list[HeadSample]]:
    """Subject-grouped train/validation split (see :func:`is_validation_subject`).

    Images without a subject number are grouped by file name stem.
    """
    train, val = [], []
    for s in samples:
        (val if is_validation_subject(sample_key(s), val_fraction, seed) else train).append(s)
    return train, val
