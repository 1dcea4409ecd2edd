"""``fetalhead check-data``: validate a data set before training.

Checks: counts and image sizes; unreadable or truncated images; missing or extra
annotations; annotations that are not one closed ellipse; reference HC that
disagrees with the annotation (mm difference); pixel sizes out of range;
duplicate images; subject numbers that disagree with file names; subjects spread
over both sides of the train/validation split. Each finding is an ``error`` (the
set should not be trained on as is) or a ``warning``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..clinical.biometry import head_biometry
from ..scans.datasets import (IMAGE_SUFFIXES, DatasetError, detect_layout, ellipse_from_landmarks,
                       load_dataset, subject_id_from_filename, subject_split)
from ..clinical.geometry import distance_to_outline, ellipse_points, fit_ellipse_to_outline
from ..scans.imageio import ScanReadError, read_scan
from ..clinical.limits import PIXEL_SIZE_RANGE_MM

#: An annotation outline counts as an ellipse when 95 % of its pixels lie within
#: this distance of the fitted ellipse (HC18 outlines are drawn 1-2 px wide).
OUTLINE_ELLIPSE_TOLERANCE_PX = 2.0
#: ... and as closed when the outline runs within that distance of this share of
#: the ellipse (inside the image).
OUTLINE_CLOSED_SHARE = 0.97
#: ``ellipses.csv`` rounds its numbers to 4 decimals; its HC and its ellipse may
#: disagree by this much from rounding alone (mm).
CSV_ROUNDING_HC_TOLERANCE_MM = 0.05

__all__ = ["Finding", "DataReport", "check_dataset", "PIXEL_SIZE_RANGE_MM"]



@dataclass
class Finding:
    severity: str  # "error" or "warning"
    check: str
    file: str
    message: str


@dataclass
class DataReport:
    path: str
    layout: str
    counts: dict = field(default_factory=dict)
    image_sizes: dict = field(default_factory=dict)
    hc_difference_mm: dict = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def add(self, severity: str, check: str, file: str, message: str) -> None:
        self.findings.append(Finding(severity, check, file, message))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["n_errors"], d["n_warnings"] = len(self.errors), len(self.warnings)
        return d

    def text(self) -> str:
        c = self.counts
        lines = [f"data set: {self.path} (layout: {self.layout})",
                 f"images: {c.get('images', 0)}  labelled: {c.get('labelled', 0)}  "
                 f"subjects: {c.get('subjects', 0)}  train/validation split: "
                 f"{c.get('train_images', 0)}/{c.get('val_images', 0)} images",
                 "image sizes: " + ", ".join(f"{k} x{v}" for k, v in
                                             sorted(self.image_sizes.items(), key=lambda kv: -kv[1])[:6])]
        if self.hc_difference_mm:
            h = self.hc_difference_mm
            lines.append(f"HC from annotation minus reference HC: mean {h['mean']:+.2f} mm, "
                         f"max |diff| {h['max_abs']:.2f} mm over {h['n']} images")
        by_check = Counter((f.severity, f.check) for f in self.findings)
        for (sev, check), n in sorted(by_check.items()):
            lines.append(f"{sev.upper()}: {check}: {n}")
            for f in [f for f in self.findings if f.check == check and f.severity == sev][:10]:
                lines.append(f"    {f.file}: {f.message}")
            if n > 10:
                lines.append(f"    ... and {n - 10} more (see --json)")
        lines.append(f"{len(self.errors)} error(s), {len(self.warnings)} warning(s): "
                     + ("CLEAN" if not self.errors else "NOT CLEAN"))
        return "\n".join(lines)


def _outline_checks(outline: np.ndarray) -> tuple[object, str]:
    """Fit an ellipse to an annotation outline; say why it is not one closed ellipse."""
    binary = (outline > 0).astype(np.uint8)
    if binary.sum() < 20:
        return None, "annotation has no outline drawn"
    closed = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    n_comp, _ = cv2.connectedComponents(closed, connectivity=8)
    try:
        e = fit_ellipse_to_outline(binary, robust=False)
    except ValueError as exc:
        return None, f"annotation outline fits no ellipse ({exc})"
    if n_comp - 1 != 1:
        return e, f"annotation has {n_comp - 1} separate pieces, not one closed outline"
    ys, xs = np.nonzero(binary)
    pts = np.stack([xs, ys], 1).astype(float)
    resid = distance_to_outline(pts, e)
    if float(np.percentile(resid, 95)) > OUTLINE_ELLIPSE_TOLERANCE_PX:
        return e, f"annotation is not an ellipse (95% of outline pixels within {np.percentile(resid, 95):.1f} px)"
    # closed: the outline must follow the whole ellipse
    h, w = binary.shape
    samples = ellipse_points(e, 720)
    inside = (samples[:, 0] >= 0) & (samples[:, 0] < w - 0.5) & (samples[:, 1] >= 0) & (samples[:, 1] < h - 0.5)
    dist = cv2.distanceTransform((1 - binary).astype(np.uint8), cv2.DIST_L2, 3)
    s = np.round(samples[inside]).astype(int)
    covered = float(np.mean(dist[s[:, 1].clip(0, h - 1), s[:, 0].clip(0, w - 1)] <= OUTLINE_ELLIPSE_TOLERANCE_PX)) if len(s) else 0.0
    if covered < OUTLINE_CLOSED_SHARE:
        return e, f"annotation outline is not closed (covers {100 * covered:.0f}% of its ellipse)"
    return e, ""


def check_dataset(path: str | Path, hc_tolerance_mm: float = 1.0, val_fraction: float = 0.2,
                  split_seed: int = 0, progress: bool = False) -> DataReport:
    """Run every check on a data set; see the module docstring."""
    from tqdm import tqdm

    path = Path(path)
    try:
        layout = detect_layout(path)
    except DatasetError as exc:
        rep = DataReport(str(path), "unknown")
        rep.add("error", "layout", str(path), str(exc))
        return rep
    rep = DataReport(str(path), layout)
    try:
        samples = load_dataset(path)
    except DatasetError as exc:
        rep.add("error", "layout", str(path), str(exc))
        return rep
    sizes, hashes = Counter(), defaultdict(list)
    hc_diffs = []
    for s in tqdm(samples, desc="checking", unit="image", disable=not progress):
        name = s.filename
        if s.problem:
            rep.add("error", "annotation unreadable", name, s.problem)
        if not s.image_path.is_file():
            rep.add("error", "missing image", name, f"listed but {s.image_path} does not exist")
            continue
        try:
            grey = read_scan(s.image_path)
        except ScanReadError as exc:
            rep.add("error", "unreadable image", name, str(exc).replace(str(s.image_path) + ": ", ""))
            continue
        h, w = grey.shape
        sizes[f"{w}x{h}"] += 1
        hashes[hashlib.sha256(np.ascontiguousarray(grey).tobytes()).hexdigest()].append(name)
        sid = subject_id_from_filename(name)
        if s.subject_id is not None and sid is not None and sid != s.subject_id:
            rep.add("error", "subject id", name, f"subject_id {s.subject_id} but the file name says {sid}")
        if s.pixel_size_mm is None:
            rep.add("error" if s.ellipse is not None else "warning", "pixel size missing", name,
                    "no pixel size: HC in mm cannot be computed")
        elif not PIXEL_SIZE_RANGE_MM[0] <= s.pixel_size_mm <= PIXEL_SIZE_RANGE_MM[1]:
            rep.add("error", "pixel size out of range", name,
                    f"{s.pixel_size_mm:g} mm outside {PIXEL_SIZE_RANGE_MM[0]}-{PIXEL_SIZE_RANGE_MM[1]} mm")
        # annotations
        ann_ellipse = None
        if s.annotation_path is not None and s.annotation_path.is_file():
            outline = cv2.imread(str(s.annotation_path), cv2.IMREAD_GRAYSCALE)
            if outline is None:
                rep.add("error", "annotation unreadable", name, f"{s.annotation_path.name} is not a readable image")
            else:
                if outline.shape != grey.shape:
                    rep.add("error", "annotation size", name,
                            f"annotation is {outline.shape[1]}x{outline.shape[0]}, image {w}x{h}")
                ann_ellipse, why = _outline_checks(outline)
                if why:
                    rep.add("error", "annotation not one closed ellipse", name, why)
        elif layout in ("shared", "hc18") and (s.ellipse is not None or layout == "hc18") and s.hc_mm is not None:
            rep.add("error", "missing annotation", name, "no annotation file for this labelled image")
        ref = s.ellipse or ann_ellipse
        if ref is not None:
            if not (0 <= ref.center_x < w and 0 <= ref.center_y < h):
                rep.add("warning", "ellipse centre outside image", name, "the head centre lies outside the image")
        if s.pixel_size_mm and s.hc_mm is not None:
            if ann_ellipse is not None:
                hc_ann = head_biometry(ann_ellipse, s.pixel_size_mm).head_circumference
                d = hc_ann - s.hc_mm
                hc_diffs.append(d)
                if abs(d) > hc_tolerance_mm:
                    rep.add("error", "HC disagrees with annotation", name,
                            f"annotation gives {hc_ann:.2f} mm, reference says {s.hc_mm:.2f} mm ({d:+.2f} mm)")
            if s.ellipse is not None and layout == "shared":
                hc_e = head_biometry(s.ellipse, s.pixel_size_mm).head_circumference
                if abs(hc_e - s.hc_mm) > CSV_ROUNDING_HC_TOLERANCE_MM:
                    rep.add("error", "HC disagrees with ellipse", name,
                            f"ellipse gives {hc_e:.2f} mm, reference says {s.hc_mm:.2f} mm ({hc_e - s.hc_mm:+.2f} mm)")
        if s.extra and all(s.extra.get(k) for k in ("ofd_1_x", "bpd_2_y")) and s.ellipse is not None:
            v = [float(s.extra[k]) for k in ("ofd_1_x", "ofd_1_y", "ofd_2_x", "ofd_2_y",
                                              "bpd_1_x", "bpd_1_y", "bpd_2_x", "bpd_2_y")]
            from_lm = ellipse_from_landmarks(v[0:2], v[2:4], v[4:6], v[6:8])
            dev = max(abs(from_lm.center_x - s.ellipse.center_x), abs(from_lm.center_y - s.ellipse.center_y),
                      abs(from_lm.semi_major - s.ellipse.semi_major), abs(from_lm.semi_minor - s.ellipse.semi_minor))
            if dev > 1.0:
                rep.add("error", "landmarks disagree with ellipse", name, f"by up to {dev:.1f} px")
    # extra annotations (annotation files with no image)
    ann_dirs = {s.annotation_path.parent for s in samples if s.annotation_path is not None}
    names = {Path(s.filename).stem for s in samples}
    for d in ann_dirs:
        for a in d.glob("*_Annotation.png"):
            if a.stem[: -len("_Annotation")] not in names:
                rep.add("error", "extra annotation", a.name, "annotation without an image")
    if layout == "shared":
        listed = {s.filename for s in samples}
        img_dir = path / "images"
        for f in img_dir.iterdir():
            if f.suffix.lower() in IMAGE_SUFFIXES and f.name not in listed:
                rep.add("warning", "unlisted image", f.name, "image not listed in ellipses.csv")
    for digest, group in hashes.items():
        if len(group) > 1:
            for name in group[1:]:
                rep.add("error", "duplicate image", name, f"same pixels as {group[0]}")
    train, val = subject_split(samples, val_fraction, split_seed)
    spread = {s.subject_id for s in train} & {s.subject_id for s in val}
    for sid in sorted(x for x in spread if x is not None):
        rep.add("error", "subject in both splits", str(sid), "images of this subject are in train and validation")
    rep.counts = {"images": len(samples), "labelled": sum(1 for s in samples if s.ellipse is not None),
                  "subjects": len({s.subject_id for s in samples}), "train_images": len(train),
                  "val_images": len(val)}
    rep.image_sizes = dict(sizes)
    if hc_diffs:
        arr = np.array(hc_diffs)
        rep.hc_difference_mm = {"n": int(arr.size), "mean": float(arr.mean()), "max_abs": float(np.abs(arr).max())}
    return rep


def write_json(report: DataReport, path: str | Path) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=2))
