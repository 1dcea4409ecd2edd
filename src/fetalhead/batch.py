"""Measuring many files: find the scans, look up their pixel size, write results as they come.

A file that cannot be measured becomes a ``failed`` row with the reason; the
batch goes on. Rows are written and flushed one by one, so an interrupted run
keeps everything measured so far.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .datasets import IMAGE_SUFFIXES, read_pixel_size_csv, read_reference_hc
from .imageio import ScanReadError, read_scan
from .measure import HC18_COLUMNS, RESULT_COLUMNS, Measurement, measure
from .model import HeadModel

__all__ = ["collect_scans", "BatchSummary", "measure_files", "PixelSizeLookup"]


def collect_scans(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Scan files under ``paths`` (files, or folders searched recursively), sorted.

    HC18 annotation files (``*_Annotation.png``) are skipped. Returns the files
    and a list of problems (paths that do not exist).
    """
    files, problems = [], []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                           and not f.stem.endswith("_Annotation"))
            if not found:
                problems.append(f"{p}: no scans (PNG/JPEG/BMP/TIFF) in this folder")
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
    """Pixel size for a file: one value for all, or per file name from an HC18-style CSV."""

    def __init__(self, pixel_size_mm: float | None = None, csv_path: str | Path | None = None):
        if pixel_size_mm is not None and not pixel_size_mm > 0:
            raise ValueError(f"pixel size must be positive, got {pixel_size_mm}")
        self.value = pixel_size_mm
        self.table = read_pixel_size_csv(csv_path) if csv_path else {}
        self.reference_hc_mm = read_reference_hc(csv_path) if csv_path else {}
        self.csv_path = csv_path

    def __call__(self, path: Path) -> tuple[float | None, str]:
        if path.name in self.table:
            return self.table[path.name], f"csv:{Path(self.csv_path).name}"
        if self.value is not None:
            return self.value, "command line"
        return None, "none"


@dataclass
class BatchSummary:
    total: int = 0
    ok: int = 0
    flagged: int = 0
    failed: int = 0
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
                 f"{self.failed} failed"]
        if self.no_spacing:
            lines.append(f"{self.no_spacing} scan(s) had no pixel spacing: lengths in pixels only, no mm")
        for src, why in self.failures:
            lines.append(f"  failed: {why if src in why else f'{src}: {why}'}")
        return "\n".join(lines)


def measure_files(files: list[Path], out_csv: str | Path | None, *, spacing: PixelSizeLookup,
                  model: HeadModel | None = None, overlay_dir: str | Path | None = None,
                  json_path: str | Path | None = None, fmt: str = "fetalhead",
                  ga_weeks: float | None = None, progress: bool = True) -> Iterator[Measurement]:
    """Measure ``files`` one by one, writing each result as soon as it exists.

    Yields each :class:`Measurement`. ``fmt`` is ``"fetalhead"`` (all columns) or
    ``"hc18"`` (the challenge submission columns).
    """
    from tqdm import tqdm

    from .overlay import write_overlay

    columns = HC18_COLUMNS if fmt == "hc18" else RESULT_COLUMNS
    fh = writer = None
    if out_csv:
        Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
        fh = open(out_csv, "w", newline="", encoding="utf-8")
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        fh.flush()
    json_rows = []
    try:
        for path in tqdm(files, desc="measuring", unit="scan", disable=not progress, mininterval=1.0):
            px, source = spacing(path)
            try:
                grey = read_scan(path)
            except ScanReadError as exc:
                m = Measurement(str(path), "failed", messages=[str(exc)])
                grey = None
            else:
                m = measure(grey, px, model=model, source=str(path), spacing_source=source, ga_weeks=ga_weeks)
            if overlay_dir and grey is not None:
                write_overlay(Path(overlay_dir) / f"{path.stem}_overlay.png", grey, m)
            if writer:
                writer.writerow(m.to_hc18_row() if fmt == "hc18" else m.to_row())
                fh.flush()
            if json_path:
                json_rows.append(m.to_dict())
            yield m
    finally:
        if fh:
            fh.close()
        if json_path:
            Path(json_path).write_text(json.dumps(json_rows, indent=2))
