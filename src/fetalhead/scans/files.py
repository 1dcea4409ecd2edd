"""Finding the scans in files and folders a user names."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Iterable

from .datasets import IMAGE_SUFFIXES

__all__ = ["collect_scans", "SCAN_SUFFIXES", "VIDEO_SUFFIXES"]

#: Cine loops as video files (decoded by OpenCV).
VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv")
SCAN_SUFFIXES = IMAGE_SUFFIXES + (".dcm", ".dicom") + VIDEO_SUFFIXES


def _is_scan_file(f: Path) -> bool:
    if f.stem.endswith("_Annotation"):
        return False
    if f.suffix.lower() in SCAN_SUFFIXES:
        return True
    if f.suffix == "":  # DICOM files often have no suffix: look for the DICM preamble
        from .dicom import is_dicom_file

        return is_dicom_file(f)
    return False


def _not_a_file(p: Path) -> str:
    """Why a path names no file to read: a broken or looping link, something that is not a regular file,
    or nothing at all."""
    if p.is_symlink():
        try:
            p.resolve(strict=True)
        except RuntimeError:  # Python before 3.13 says a loop so
            return f"{p}: a link that loops (it points back to itself): skipped"
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return f"{p}: a link that loops (it points back to itself): skipped"
            return f"{p}: a broken link (it points to nothing): skipped"
    if p.exists():
        return f"{p}: not a regular file (a pipe, socket or device): skipped"
    return f"{p}: no such file or folder"


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
            found = []
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    if _is_scan_file(f):
                        found.append(f)
                elif f.suffix.lower() in SCAN_SUFFIXES and not f.is_dir():
                    problems.append(_not_a_file(f))  # named like a scan, but nothing to read
            if not found:
                problems.append(f"{p}: no scans (PNG/JPEG/BMP/TIFF/DICOM) in this folder")
            files.extend(found)
        elif p.is_file():
            if not p.stem.endswith("_Annotation"):
                files.append(p)
        else:
            problems.append(_not_a_file(p))
    seen, unique = set(), []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems
