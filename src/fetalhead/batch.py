"""Measuring many files: find the scans, measure them here, in local worker processes or on a
Dask cluster, and write each result as soon as it exists.

* A file that cannot be measured becomes a ``failed`` row with the reason; the batch goes on.
* Rows are appended and flushed one by one, so an interrupted run keeps everything measured;
  with ``resume`` the files already in the output (keyed by the sha256 of the file's content
  and the frame, not by name) are skipped.
* The work function :func:`measure_one` takes a path and picklable options, and loads the
  ONNX model once per process (``fetalhead.model.runtime.load_model`` is cached), so the same code runs
  serially, in a ``multiprocessing`` pool or on Dask workers.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .hospital.handoff import write_hand_off
from .scans.datasets import read_reference_hc, read_spacing_csv
from .scans.files import SCAN_SUFFIXES, VIDEO_SUFFIXES, collect_scans
from .scans.imageio import file_sha256
from .clinical.limits import check_pixel_spacing
from .measurement import Measurement
from .outputs.results import ResultWriter, check_output_path, result_key, write_json

__all__ = ["collect_scans", "BatchSummary", "MeasureOptions", "PixelSizeLookup", "ResultWriter", "measure_one",
           "run_serial", "run_processes", "run_dask", "result_key", "SCAN_SUFFIXES", "pending_scans", "open_runner",
           "overlay_name", "write_json", "write_hand_off", "VIDEO_SUFFIXES"]



class PixelSizeLookup:
    """Pixel sizes read from the command line: one value for all, or per file name from an
    HC18-style CSV (with the reference HC when the CSV has it, and scales set by two points in its
    :data:`fetalhead.scans.datasets.SCALE_COLUMNS`). See :meth:`MeasureOptions.spacing`."""

    def __init__(self, pixel_size_mm: float | None = None, csv_path: str | Path | None = None):
        check_pixel_spacing(pixel_size_mm, "--pixel-size")  # LimitError (a ValueError) outside the range
        self.value = pixel_size_mm
        self.table, self.scale_table = read_spacing_csv(csv_path) if csv_path else ({}, {})
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
    chart: str = "intergrowth"
    frame: int = 0
    accept_anisotropic: bool = False
    model_path: str | None = None
    threads: int = 1
    precision: str | None = None
    sr_dir: str | None = None  # DICOM SR and overlay capture per measured ultrasound DICOM
    frames: str | None = None  # cine loops: "best" or "all" (None: the one ``frame``)
    blank_outside_regions: bool = True  # DICOM: blank burned-in text outside the ultrasound regions
    fhir_dir: str | None = None  # a FHIR R4 Bundle per measured scan
    fhir_bundle_type: str = "collection"  # or "transaction" (entries with their POST requests)
    scale_points: str | None = None  # a scale set by two points for every scan: "x1,y1,x2,y2" (pixels)
    scale_distance_cm: float | None = None  # ... and their distance (cm)
    scale_table: dict = field(default_factory=dict)  # per file name: (points, distance_cm), from the CSV

    @classmethod
    def from_lookup(cls, lookup: PixelSizeLookup, **kw) -> "MeasureOptions":
        return cls(pixel_size_mm=lookup.value, pixel_size_table=dict(lookup.table),
                   pixel_size_table_name=lookup.csv_name, scale_table=dict(lookup.scale_table), **kw)

    def scale(self, path: Path) -> dict:
        """The scale set by two points for ``path`` (the CSV's row, else the command line's), as the
        keyword arguments of :func:`fetalhead.measurement.measure_scan`; empty when none. Checked there
        against the picture: bad points make a failed ``invalid_input`` row, not the end of the batch."""
        if path.name in self.scale_table:
            points, cm = self.scale_table[path.name]
            return dict(scale_points=points, scale_distance_cm=cm or None)
        if self.scale_points is not None or self.scale_distance_cm is not None:
            return dict(scale_points=self.scale_points, scale_distance_cm=self.scale_distance_cm)
        return {}

    def spacing(self, path: Path) -> tuple[float | None, str]:
        if path.name in self.pixel_size_table:
            return self.pixel_size_table[path.name], f"csv:{self.pixel_size_table_name}"
        if self.pixel_size_mm is not None:
            return self.pixel_size_mm, "command line"
        return None, "none"


def overlay_name(path: str | Path, frame: int = 0) -> str:
    """A file name for a scan's overlay that no other scan of the batch shares: the stem, the
    original suffix and a short hash of the full path (``a/x.png`` and ``b/x.png`` differ)."""
    p = Path(path)
    tag = hashlib.sha256(str(p.resolve()).encode("utf-8", "surrogateescape")).hexdigest()[:8]
    suffix = p.suffix.lstrip(".").lower() or "scan"
    frame_part = f"_frame{frame}" if frame else ""
    return f"{p.stem}_{suffix}_{tag}{frame_part}_overlay.png"


def measure_one(path: str | Path, opts: MeasureOptions, sha256: str | None = None) -> Measurement:
    """Measure one file (the unit of work of every runner); never raises for a bad file.

    The file is read once (its sha256 from the same bytes, unless the caller passes the one it
    computed for ``--resume``). A failing overlay write is a flag on the row, not the end of
    the batch.
    """
    from .scans.imageio import ScanReadError
    from .measurement import load_scan, measure_scan
    from .model.runtime import load_model

    path = Path(path)
    name = os.fsdecode(path).encode("utf-8", "replace").decode("utf-8")  # names that are not UTF-8 stay printable
    try:
        scan = load_scan(path, name, opts.frame, opts.accept_anisotropic, sha256=sha256,
                         blank_outside_regions=opts.blank_outside_regions)
    except ScanReadError as exc:
        return Measurement(name, "failed", messages=[str(exc)], frame=opts.frame, failure="unreadable_scan",
                           sha256=getattr(exc, "sha256", None) or sha256 or "")
    except Exception as exc:  # never let one file end the batch
        return Measurement(name, "failed", messages=[f"{name}: unexpected error ({type(exc).__name__}: {exc})"],
                           frame=opts.frame, sha256=sha256 or "", failure="internal_error")
    px, source = opts.spacing(path)
    try:
        model = load_model(opts.model_path, threads=opts.threads, precision=opts.precision)
    except Exception as exc:
        return Measurement(name, "failed", messages=[f"model: {exc}"], frame=opts.frame, sha256=scan.sha256,
                           failure="model_error")
    kw = dict(ga_weeks=opts.ga_weeks, model=model, spacing_source=source, chart=opts.chart)
    if px is None:
        kw.update(opts.scale(path))
    try:
        if opts.frames == "all" and scan.is_loop:  # each frame written from the frame at hand: the file is read once
            from .measurement import iter_loop_measurements

            results = []
            for m, frame_scan in iter_loop_measurements(scan, path, px, accept_anisotropic=opts.accept_anisotropic,
                                                        blank_outside_regions=opts.blank_outside_regions, **kw):
                _write_outputs(m, frame_scan or scan, path, model, opts)
                results.append(m)
            return results
        if opts.frames == "best":  # a loop: its best frame (a still image: itself)
            from .measurement import measure_loop

            (m,) = measure_loop(path, px, frames="best", source=name, accept_anisotropic=opts.accept_anisotropic,
                                blank_outside_regions=opts.blank_outside_regions, first=scan, **kw)
            if m.status != "failed" and m.frame != scan.frame and (opts.overlay_dir or opts.sr_dir or opts.fhir_dir):
                scan = load_scan(path, name, m.frame, opts.accept_anisotropic, sha256=scan.sha256,
                                 blank_outside_regions=opts.blank_outside_regions)  # the chosen frame's picture
        else:
            m = measure_scan(scan, px, **kw)
    except Exception as exc:  # never let one file end the batch
        return Measurement(name, "failed", messages=[f"{name}: unexpected error ({type(exc).__name__}: {exc})"],
                           frame=opts.frame, sha256=scan.sha256, failure="internal_error")
    _write_outputs(m, scan, path, model, opts)
    return m


def _write_outputs(m: Measurement, scan, path: Path, model, opts: MeasureOptions) -> None:
    """The overlay, SR and FHIR of ``m`` (from ``scan``, the frame measured), as ``opts`` asks."""
    from .outputs.overlay import write_overlay

    if opts.overlay_dir:
        target = Path(opts.overlay_dir) / overlay_name(path, m.frame)
        try:
            m.overlay_path = str(write_overlay(target, scan.image, m))
        except (OSError, RuntimeError) as exc:
            m.flags.append("overlay_not_written")
            m.messages.append(f"overlay not written to {target} ({getattr(exc, 'strerror', None) or exc})")
    write_hand_off(m, scan, model, opts.sr_dir, opts.fhir_dir, opts.fhir_bundle_type)


def pending_scans(files: list[Path], done: set[str], frame: int | None = 0, failed: set[str] = frozenset()
                  ) -> tuple[list[tuple[Path, str | None]], int, int]:
    """The files not yet in the output (``done``: keys from :class:`ResultWriter`), each with the
    sha256 computed here once, to be passed to :func:`measure_one`; how many were skipped, and how many of
    those had failed (``failed``: their keys; a failure is done too, so that a resumed batch does not try a
    broken file again, but the user is told: a pixel size or scale typed wrong is not measured again).
    ``frame=None`` (cine loops, best or all frames): a file is done when any of its frames is."""
    done_files = {k.rsplit(":", 1)[0] for k in done} if frame is None else set()
    failed_files = {k.rsplit(":", 1)[0] for k in failed} if frame is None else set()
    if not done:
        return [(f, None) for f in files], 0, 0
    todo, skipped, skipped_failed = [], 0, 0
    for f in files:
        try:
            digest = file_sha256(f)
        except OSError:
            todo.append((f, None))  # measure_one reports why it cannot be read
            continue
        if (digest in done_files) if frame is None else (result_key(digest, frame) in done):
            skipped += 1
            skipped_failed += (digest in failed_files) if frame is None else (result_key(digest, frame) in failed)
        else:
            todo.append((f, digest))
    return todo, skipped, skipped_failed


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    flagged: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0  # of the skipped, those whose row in the output is a failure
    no_spacing: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: results whose SR or FHIR hand-off, asked for, could not be written (the run then exits 1)
    not_handed_off: list[tuple[str, str]] = field(default_factory=list)

    def add(self, m: Measurement) -> None:
        self.total += 1
        if {"sr_not_written", "fhir_not_written"} & set(m.flags):
            why = next((x for x in m.messages if " not written to " in x), "hand-off not written")
            self.not_handed_off.append((m.source, why))
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
                 f"{self.failed} failed" + (f"; {self.skipped} already in the output, skipped" if self.skipped else "")
                 + (f" ({self.skipped_failed} of them had failed: to measure them again, with a pixel size or scale "
                    "corrected, write to another --out or remove their rows)" if self.skipped_failed else "")]
        if self.no_spacing:
            lines.append(f"{self.no_spacing} scan(s) had no usable pixel spacing: lengths in pixels only, no mm")
        for src, why in self.failures:
            lines.append(f"  failed: {why if src in why else f'{src}: {why}'}")
        for src, why in self.not_handed_off:
            lines.append(f"  not handed off: {src}: {why}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"total": self.total, "ok": self.ok, "flagged": self.flagged, "failed": self.failed,
                "skipped": self.skipped, "no_spacing": self.no_spacing,
                "failures": [{"file": s, "reason": w} for s, w in self.failures]}


# --- runners: each yields Measurements as they finish --------------------------------------


def run_serial(files, opts: MeasureOptions) -> Iterator[Measurement]:
    """Measure here, one after the other. ``files``: paths, or (path, sha256) pairs."""
    for f, digest in _pairs(files):
        yield from _rows(measure_one(f, opts, digest))


def _rows(result) -> list[Measurement]:
    """A file's results as rows: every frame of a loop measured with ``frames="all"``, else one."""
    return result if isinstance(result, list) else [result]


def _pairs(files) -> list[tuple[Path, str | None]]:
    return [(Path(f[0]), f[1]) if isinstance(f, tuple) else (Path(f), None) for f in files]


#: prctl(2) option: the signal a process gets when the thread that started it ends (Linux)
_PR_SET_PDEATHSIG = 1


def _exit_with_parent() -> None:
    """A worker ends when the batch that started it dies (kill -9 included), instead of living on with
    parent 1: Linux's PR_SET_PDEATHSIG, then a check that the parent did not die before it was set."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the parent check below still holds at start
            pass
    if parent == 1 or os.getppid() != parent:
        os._exit(1)


def _pool_init(opts: MeasureOptions) -> None:
    _exit_with_parent()
    os.environ.setdefault("OMP_NUM_THREADS", str(opts.threads))
    from .model.runtime import load_model

    load_model(opts.model_path, threads=opts.threads, precision=opts.precision)  # once per worker process


def _pool_task(args) -> Measurement:
    path, opts, digest = args
    return measure_one(path, opts, digest)


#: A scan whose worker process died is measured again this many times (alone) before it is a failed row.
WORKER_DEATH_RETRIES = 1


def run_processes(files, opts: MeasureOptions, workers: int) -> Iterator[Measurement]:
    """Measure in ``workers`` local processes (1 ONNX thread each); results in completion order.

    A worker process that dies (killed, out of memory, a crash in a decoder) breaks the pool: the
    scans in flight are then measured again one by one in a fresh process, and a scan that kills
    its worker again becomes a ``failed`` row; the rest of the batch goes on in a new pool.
    """
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")
    todo = [(str(f), d) for f, d in _pairs(files)][::-1]
    window = 2 * workers

    def new_pool(n):
        return ProcessPoolExecutor(n, mp_context=ctx, initializer=_pool_init, initargs=(opts,))

    pool = new_pool(workers)
    running: dict = {}
    try:
        while todo or running:
            while todo and len(running) < window:
                path, digest = todo.pop()
                running[pool.submit(_pool_task, (path, opts, digest))] = (path, digest)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            broken = []
            for fut in done:
                item = running.pop(fut)
                try:
                    yield from _rows(fut.result())
                except BrokenProcessPool:
                    broken.append(item)
            if broken:
                broken += list(running.values())  # every scan in flight died with the pool
                running.clear()
                pool.shutdown(wait=False, cancel_futures=True)
                for path, digest in broken:
                    yield from _rows(_measure_alone(path, digest, opts, new_pool))
                pool = new_pool(workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _measure_alone(path: str, digest, opts: MeasureOptions, new_pool) -> Measurement:
    """Measure one scan in a fresh single process; a failed row if its worker dies every time."""
    from concurrent.futures.process import BrokenProcessPool

    for _ in range(WORKER_DEATH_RETRIES):
        pool = new_pool(1)
        try:
            return pool.submit(_pool_task, (path, opts, digest)).result()
        except BrokenProcessPool:
            continue
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return Measurement(path, "failed", frame=opts.frame, sha256=digest or "", failure="internal_error",
                       messages=[f"{path}: the worker process measuring it died (crash or out of memory); "
                                 "measured again alone, it died again"])


def run_dask(files, opts: MeasureOptions, client) -> Iterator[Measurement]:
    """Measure on a Dask cluster; results stream back in completion order.

    Tasks carry paths (the workers must see the same files, as on a shared file system).
    A worker that dies loses only its in-flight tasks, which the scheduler reruns elsewhere
    (``distributed.scheduler.allowed-failures``); each file's result arrives once.
    """
    from distributed import as_completed

    pairs = _pairs(files)
    futures = client.map(measure_one, [str(f) for f, _ in pairs], [opts] * len(pairs), [d for _, d in pairs],
                         pure=False, retries=1)
    for fut in as_completed(futures):
        yield from _rows(fut.result())


class RunnerError(RuntimeError):
    """The chosen way of running cannot start (Dask missing, scheduler unreachable...)."""


def open_runner(files, opts: MeasureOptions, workers: int = 1, dask_local: int = 0,
                scheduler: str | None = None, log=None):
    """The way of running a batch: serial, local processes, or Dask.

    Returns ``(iterator of Measurements, list of closers)``. Raises :class:`RunnerError`
    with a one-line reason when Dask is missing or the scheduler cannot be reached.
    """
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if workers < 1 or dask_local < 0:
        raise RunnerError("--workers must be 1 or more and --dask-local 0 or more")
    if scheduler or dask_local:
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise RunnerError("--scheduler/--dask-local need Dask: pip install 'fetalhead[scale]'") from None
        try:
            if scheduler:
                client = Client(scheduler, timeout="10s")
                closers = [client.close]
            else:
                cluster = LocalCluster(n_workers=dask_local, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
                client = Client(cluster)
                closers = [client.close, cluster.close]
        except (OSError, TimeoutError, ValueError) as exc:
            raise RunnerError(f"cannot reach the Dask scheduler {scheduler or '(local)'}: {exc}") from None
        log(f"Dask: {len(client.scheduler_info()['workers'])} worker(s) at {client.scheduler.address}")
        return run_dask(files, opts, client), closers
    if workers > 1:
        return run_processes(files, opts, workers), []
    return run_serial(files, opts), []
