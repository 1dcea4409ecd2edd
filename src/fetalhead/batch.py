"""Measuring many files: find the scans, measure them here, in local worker processes or on a
Dask cluster, and write each result as soon as it exists.

* A file that cannot be measured becomes a ``failed`` row with the reason; the batch goes on.
* Rows are appended and flushed one by one, so an interrupted run keeps everything measured;
  with ``resume`` the files already in the output (keyed by the sha256 of the file's content
  and the frame, not by name) are skipped.
* The work function :func:`measure_one` takes a path and picklable options, and loads the
  ONNX model once per process (``fetalhead.model.load_model`` is cached), so the same code runs
  serially, in a ``multiprocessing`` pool or on Dask workers.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .datasets import IMAGE_SUFFIXES, read_pixel_size_csv, read_reference_hc
from .imageio import file_sha256
from .measurement import HC18_COLUMNS, RESULT_COLUMNS, Measurement, load_input, measure_image

__all__ = ["collect_scans", "BatchSummary", "MeasureOptions", "PixelSizeLookup", "ResultWriter", "measure_one",
           "run_serial", "run_processes", "run_dask", "result_key", "SCAN_SUFFIXES"]

SCAN_SUFFIXES = IMAGE_SUFFIXES + (".dcm", ".dicom")


def _is_scan_file(f: Path) -> bool:
    if f.stem.endswith("_Annotation"):
        return False
    if f.suffix.lower() in SCAN_SUFFIXES:
        return True
    if f.suffix == "":  # DICOM files often have no suffix: look for the DICM preamble
        from .dicom import is_dicom_file

        return is_dicom_file(f)
    return False


def collect_scans(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Scan files under ``paths`` (files, or folders searched recursively), sorted, without repeats.

    Folders yield PNG/JPEG/BMP/TIFF and DICOM files (by suffix, or suffix-less files with the
    DICOM preamble); HC18 annotation files (``*_Annotation.png``) are skipped. Returns the files
    and a list of problems (paths that do not exist, folders without scans).
    """
    files, problems = [], []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_scan_file(f))
            if not found:
                problems.append(f"{p}: no scans (PNG/JPEG/BMP/TIFF/DICOM) in this folder")
            files.extend(found)
        elif p.is_file():
            if not p.stem.endswith("_Annotation"):
                files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


class PixelSizeLookup:
    """Pixel sizes read from the command line: one value for all, or per file name from an
    HC18-style CSV (with the reference HC when the CSV has it). See :meth:`MeasureOptions.spacing`."""

    def __init__(self, pixel_size_mm: float | None = None, csv_path: str | Path | None = None):
        if pixel_size_mm is not None and not pixel_size_mm > 0:
            raise ValueError(f"pixel size must be positive, got {pixel_size_mm}")
        self.value = pixel_size_mm
        self.table = read_pixel_size_csv(csv_path) if csv_path else {}
        self.reference_hc_mm = read_reference_hc(csv_path) if csv_path else {}
        self.csv_name = Path(csv_path).name if csv_path else ""



@dataclass(frozen=True)
class MeasureOptions:
    """Everything a worker needs besides the path (picklable)."""

    pixel_size_mm: float | None = None
    pixel_size_table: dict = field(default_factory=dict)
    pixel_size_table_name: str = ""
    overlay_dir: str | None = None
    ga_weeks: float | None = None
    frame: int = 0
    accept_anisotropic: bool = False
    model_path: str | None = None
    threads: int = 1

    @classmethod
    def from_lookup(cls, lookup: PixelSizeLookup, **kw) -> "MeasureOptions":
        return cls(pixel_size_mm=lookup.value, pixel_size_table=dict(lookup.table),
                   pixel_size_table_name=lookup.csv_name, **kw)

    def spacing(self, path: Path) -> tuple[float | None, str]:
        if path.name in self.pixel_size_table:
            return self.pixel_size_table[path.name], f"csv:{self.pixel_size_table_name}"
        if self.pixel_size_mm is not None:
            return self.pixel_size_mm, "command line"
        return None, "none"


def measure_one(path: str | Path, opts: MeasureOptions) -> Measurement:
    """Measure one file (the unit of work of every runner); never raises for a bad file."""
    from .imageio import ScanReadError
    from .model import load_model
    from .overlay import write_overlay

    path = Path(path)
    try:
        digest = file_sha256(path)
    except OSError as exc:
        return Measurement(str(path), "failed", messages=[f"{path}: cannot read ({exc.strerror or exc})"],
                           frame=opts.frame)
    px, source = opts.spacing(path)
    try:
        grey, dicom_scan = load_input(path, str(path), opts.frame, opts.accept_anisotropic)
    except ScanReadError as exc:
        m = Measurement(str(path), "failed", messages=[str(exc)], frame=opts.frame)
        grey = None
    else:
        try:
            model = load_model(opts.model_path, threads=opts.threads)
        except Exception as exc:
            m = Measurement(str(path), "failed", messages=[f"model: {exc}"], frame=opts.frame)
        else:
            m = measure_image(grey, px, dicom_scan=dicom_scan, ga_weeks=opts.ga_weeks, model=model,
                              source=str(path), spacing_source=source, frame=opts.frame)
    m.sha256 = digest
    if opts.overlay_dir and grey is not None:
        suffix = f"_frame{opts.frame}" if opts.frame else ""
        write_overlay(Path(opts.overlay_dir) / f"{path.stem}{suffix}_overlay.png", grey, m)
    return m


def result_key(sha256: str, frame) -> str:
    return f"{sha256}:{int(frame or 0)}"


class ResultWriter:
    """Appends result rows to a CSV as they come (flushed), optionally converted to Parquet at the end.

    ``out`` ending in ``.parquet`` journals the rows to ``out + '.csv'`` (kept for resuming)
    and writes the Parquet file on :meth:`close` (needs pyarrow). With ``resume`` an existing
    output is kept, a torn last line (from a killed run) is cut off, and :attr:`done` holds the
    keys (sha256:frame) of the files already measured.
    """

    def __init__(self, out: str | Path | None, fmt: str = "fetalhead", resume: bool = False):
        self.fmt = fmt
        self.columns = list(HC18_COLUMNS if fmt == "hc18" else RESULT_COLUMNS)
        self.done: set[str] = set()
        self.parquet = None
        self.fh = None
        if out is None:
            return
        out = Path(out)
        if out.suffix.lower() == ".parquet":
            self.parquet, out = out, Path(str(out) + ".csv")
        self.csv_path = out
        out.parent.mkdir(parents=True, exist_ok=True)
        if resume and out.is_file() and out.stat().st_size > 0:
            self._repair_tail(out)
            with open(out, newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                if reader.fieldnames != self.columns:
                    raise ValueError(f"{out}: cannot resume: its columns are not those of --format {fmt}")
                for row in reader:
                    if row.get("sha256"):
                        self.done.add(result_key(row["sha256"], row.get("frame") or 0))
            self.fh = open(out, "a", newline="", encoding="utf-8")
            self.writer = csv.DictWriter(self.fh, fieldnames=self.columns)
        else:
            self.fh = open(out, "w", newline="", encoding="utf-8")
            self.writer = csv.DictWriter(self.fh, fieldnames=self.columns)
            self.writer.writeheader()
            self.fh.flush()

    @staticmethod
    def _repair_tail(path: Path) -> None:
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n")
            with open(path, "r+b") as fh:
                fh.truncate(cut + 1 if cut >= 0 else 0)

    def write(self, m: Measurement) -> None:
        if self.fh is None:
            return
        self.writer.writerow(m.to_hc18_row() if self.fmt == "hc18" else m.to_row())
        self.fh.flush()

    def close(self) -> None:
        if self.fh is None:
            return
        self.fh.close()
        self.fh = None
        if self.parquet is not None:
            try:
                import pyarrow.csv as pacsv
                import pyarrow.parquet as pq
            except ImportError:
                raise RuntimeError(f"{self.parquet}: writing Parquet needs pyarrow: pip install 'fetalhead[scale]' "
                                   f"(the results are in {self.csv_path})") from None
            opts = pacsv.ConvertOptions(strings_can_be_null=True,
                                        column_types={c: "string" for c in ("filename", "flags", "message", "path",
                                                                            "sha256", "pixel_size_mm")})
            table = pacsv.read_csv(io.BytesIO(self.csv_path.read_bytes()), convert_options=opts)
            pq.write_table(table, self.parquet)


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    flagged: int = 0
    failed: int = 0
    skipped: int = 0
    no_spacing: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, m: Measurement) -> None:
        self.total += 1
        if m.status == "failed":
            self.failed += 1
            self.failures.append((m.source, m.message))
        elif m.status == "flagged":
            self.flagged += 1
        else:
            self.ok += 1
        if m.status != "failed" and m.head_circumference_mm is None:
            self.no_spacing += 1

    def text(self) -> str:
        lines = [f"{self.total} scan(s): {self.ok} measured, {self.flagged} measured but flagged for review, "
                 f"{self.failed} failed" + (f"; {self.skipped} already in the output, skipped" if self.skipped else "")]
        if self.no_spacing:
            lines.append(f"{self.no_spacing} scan(s) had no usable pixel spacing: lengths in pixels only, no mm")
        for src, why in self.failures:
            lines.append(f"  failed: {why if src in why else f'{src}: {why}'}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"total": self.total, "ok": self.ok, "flagged": self.flagged, "failed": self.failed,
                "skipped": self.skipped, "no_spacing": self.no_spacing,
                "failures": [{"file": s, "reason": w} for s, w in self.failures]}


# --- runners: each yields Measurements as they finish --------------------------------------


def run_serial(files: list[Path], opts: MeasureOptions) -> Iterator[Measurement]:
    for f in files:
        yield measure_one(f, opts)


def _pool_init(opts: MeasureOptions) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(opts.threads))
    from .model import load_model

    load_model(opts.model_path, threads=opts.threads)  # once per worker process


def _pool_task(args) -> Measurement:
    path, opts = args
    return measure_one(path, opts)


def run_processes(files: list[Path], opts: MeasureOptions, workers: int) -> Iterator[Measurement]:
    """Measure in ``workers`` local processes (1 ONNX thread each); results in completion order."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_pool_init, initargs=(opts,)) as pool:
        yield from pool.imap_unordered(_pool_task, [(str(f), opts) for f in files], chunksize=1)


def run_dask(files: list[Path], opts: MeasureOptions, client) -> Iterator[Measurement]:
    """Measure on a Dask cluster; results stream back in completion order.

    Tasks carry paths (the workers must see the same files, as on a shared file system).
    A worker that dies loses only its in-flight tasks, which the scheduler reruns elsewhere
    (``distributed.scheduler.allowed-failures``); each file's result arrives once.
    """
    from distributed import as_completed

    futures = client.map(measure_one, [str(f) for f in files], opts=opts, pure=False, retries=1)
    for fut in as_completed(futures):
        yield fut.result()


def write_json(path: str | Path, measurements: list[Measurement]) -> None:
    Path(path).write_text(json.dumps([m.to_dict() for m in measurements], indent=2))
