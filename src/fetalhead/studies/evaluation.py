"""Evaluation of predicted head ellipses against references: the HC18 challenge metrics and more.

Metrics (van den Heuvel et al., PLOS ONE 2018, section "Evaluation"):

* ADF: mean absolute difference of HC (mm) with its SD; DF: mean difference
  (predicted - reference, mm);
* Dice (%) of the filled ellipses, rasterised on a grid that holds both ellipses
  whole (the outline is not cut at the image border);
* Hausdorff distance (mm) between the two outlines;

plus BPD and OFD absolute error (mm), the landmark radial error (mm; the two
ends of each diameter are matched order-free), the number of reference images
with no prediction (counted as failures, never dropped), and all of it per
trimester band of the reference HC (< 175 mm, 175-265 mm, > 265 mm).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..clinical.biometry import head_biometry
from ..scans.datasets import (ELLIPSE_COLUMNS, LANDMARK_COLUMNS, DatasetError, HeadSample, ellipse_from_landmarks,
                       ellipse_from_row, load_dataset, parse_number, read_ellipses_csv)
from ..clinical.geometry import Ellipse, dice_coefficient, ellipse_landmarks, hausdorff_distance

__all__ = ["ellipse_errors", "landmark_radial_errors", "evaluate_predictions", "read_predictions",
           "HC_BANDS_MM", "format_report", "evaluate_files"]

#: Trimester bands of the reference HC (mm): about < 20 weeks, 20-29 weeks, > 29 weeks.
HC_BANDS_MM = (("HC < 175 mm", 0.0, 175.0), ("HC 175-265 mm", 175.0, 265.0), ("HC > 265 mm", 265.0, math.inf))

_METRICS = ("hc_abs_mm", "hc_diff_mm", "dice", "hausdorff_mm", "bpd_abs_mm", "ofd_abs_mm", "landmark_radial_mm")


def landmark_radial_errors(pred: dict, ref: dict) -> list[float]:
    """Distances (same unit as the inputs) between matched landmarks.

    ``pred`` and ``ref`` map ``ofd_1, ofd_2, bpd_1, bpd_2`` to (x, y). Within each
    diameter the two ends are matched in the order that gives the smaller total
    distance (which end is "1" is arbitrary).
    """
    out = []
    for d in ("ofd", "bpd"):
        p1, p2, r1, r2 = (np.asarray(x, float) for x in (pred[f"{d}_1"], pred[f"{d}_2"], ref[f"{d}_1"], ref[f"{d}_2"]))
        same = [np.linalg.norm(p1 - r1), np.linalg.norm(p2 - r2)]
        swap = [np.linalg.norm(p1 - r2), np.linalg.norm(p2 - r1)]
        out.extend(same if sum(same) <= sum(swap) else swap)
    return [float(v) for v in out]


def ellipse_errors(pred: Ellipse, ref: Ellipse, pixel_size_mm: float,
                   pred_landmarks: dict | None = None, ref_landmarks: dict | None = None,
                   ref_hc_mm: float | None = None) -> dict:
    """Per-image errors of a predicted ellipse against the reference (pixels of one image).

    Returns a dict with ``hc_pred_mm``, ``hc_ref_mm``, ``hc_abs_mm``, ``hc_diff_mm``,
    ``dice`` (%), ``hausdorff_mm``, ``bpd_abs_mm``, ``ofd_abs_mm`` and
    ``landmark_radial_mm`` (mean over the 4 landmarks). Landmarks default to the
    axis end points of each ellipse. Dice is computed on a grid holding both ellipses whole.
    """
    if pixel_size_mm is None or not pixel_size_mm > 0:
        raise ValueError("evaluation in mm needs the reference pixel size")
    bp, br = head_biometry(pred, pixel_size_mm), head_biometry(ref, pixel_size_mm)
    hc_ref = float(ref_hc_mm) if ref_hc_mm is not None else br.head_circumference
    lm_p = pred_landmarks or ellipse_landmarks(pred)
    lm_r = ref_landmarks or ellipse_landmarks(ref)
    radial = landmark_radial_errors(lm_p, lm_r)
    return {
        "hc_pred_mm": bp.head_circumference,
        "hc_ref_mm": hc_ref,
        "hc_abs_mm": abs(bp.head_circumference - hc_ref),
        "hc_diff_mm": bp.head_circumference - hc_ref,
        "dice": 100.0 * dice_coefficient(pred, ref),
        "hausdorff_mm": hausdorff_distance(pred, ref) * pixel_size_mm,
        "bpd_pred_mm": bp.biparietal_diameter,
        "bpd_ref_mm": br.biparietal_diameter,
        "ofd_pred_mm": bp.occipitofrontal_diameter,
        "ofd_ref_mm": br.occipitofrontal_diameter,
        "bpd_abs_mm": abs(bp.biparietal_diameter - br.biparietal_diameter),
        "ofd_abs_mm": abs(bp.occipitofrontal_diameter - br.occipitofrontal_diameter),
        "landmark_radial_mm": float(np.mean(radial)) * pixel_size_mm,
    }


def _landmarks_from_row(row: dict) -> dict | None:
    try:
        v = [float(row[k]) for k in LANDMARK_COLUMNS]
    except (KeyError, TypeError, ValueError):
        return None
    if not all(math.isfinite(x) for x in v):
        return None
    return {"ofd_1": v[0:2], "ofd_2": v[2:4], "bpd_1": v[4:6], "bpd_2": v[6:8]}


def read_predictions(path: str | Path) -> dict[str, dict]:
    """Rows of a results CSV by file name. A row whose ellipse (or, failing that,
    landmarks) is empty or unreadable has ``ellipse = None`` (a failed prediction)."""
    path = Path(path)
    rows = read_ellipses_csv(path)
    out = {}
    for i, row in enumerate(rows, start=2):
        ellipse = None
        if all(row.get(c) for c in ELLIPSE_COLUMNS):
            try:
                ellipse = ellipse_from_row(row, f"{path} line {i}")
            except (DatasetError, ValueError):
                ellipse = None
        if ellipse is None:
            lm = _landmarks_from_row(row)
            if lm is not None:
                try:
                    ellipse = ellipse_from_landmarks(lm["ofd_1"], lm["ofd_2"], lm["bpd_1"], lm["bpd_2"])
                except ValueError:
                    ellipse = None
        out[Path(row["filename"]).name] = {"row": row, "ellipse": ellipse, "landmarks": _landmarks_from_row(row)}
    return out


def _summary(rows: list[dict], n_missing: int) -> dict:
    out = {"n": len(rows) + n_missing, "n_measured": len(rows), "n_failed": n_missing}
    for key in _METRICS:
        vals = np.array([r[key] for r in rows if r.get(key) is not None], float)
        if vals.size:
            out[key] = float(vals.mean())
            out[key + "_sd"] = float(vals.std(ddof=1)) if vals.size > 1 else 0.0
            if key in ("hc_abs_mm", "hausdorff_mm", "landmark_radial_mm"):
                out[key + "_max"] = float(vals.max())
    return out


def evaluate_predictions(predictions: dict[str, dict], references: list[HeadSample]) -> dict:
    """Compare predictions (see :func:`read_predictions`) with labelled reference samples.

    Only references with an ellipse and a pixel size count. Each of them without
    a usable prediction is a failure. Predictions for unknown files are counted
    in ``n_unmatched`` and otherwise ignored.
    """
    refs = [s for s in references if s.ellipse is not None and s.pixel_size_mm]
    per_image, missing = [], []
    for s in refs:
        p = predictions.get(Path(s.filename).name)
        ref_hc = s.hc_mm
        if p is None or p["ellipse"] is None:
            missing.append({"filename": s.filename, "hc_ref_mm": ref_hc if ref_hc is not None else
                            head_biometry(s.ellipse, s.pixel_size_mm).head_circumference})
            continue
        ref_lm = _landmarks_from_row(s.extra) if s.extra else None
        err = ellipse_errors(p["ellipse"], s.ellipse, s.pixel_size_mm, pred_landmarks=p["landmarks"],
                             ref_landmarks=ref_lm, ref_hc_mm=ref_hc)
        per_image.append({"filename": s.filename, **err})
    known = {Path(s.filename).name for s in refs}
    result = {"overall": _summary(per_image, len(missing)), "bands": {}}
    for name, lo, hi in HC_BANDS_MM:
        rows = [r for r in per_image if lo <= r["hc_ref_mm"] < hi]
        miss = [m for m in missing if lo <= m["hc_ref_mm"] < hi]
        result["bands"][name] = _summary(rows, len(miss))
    result["n_unmatched_predictions"] = sum(1 for k in predictions if k not in known)
    result["failed"] = [m["filename"] for m in missing]
    result["per_image"] = per_image
    return result


def format_report(result: dict) -> str:
    """A readable table of :func:`evaluate_predictions` figures."""
    def line(name: str, s: dict) -> str:
        if not s.get("n_measured"):
            return f"{name:<16} {s['n']:>5} {s['n_failed']:>6}   (nothing measured)"
        return (f"{name:<16} {s['n']:>5} {s['n_failed']:>6} {s['hc_abs_mm']:>6.2f} ±{s['hc_abs_mm_sd']:<5.2f}"
                f" {s['hc_diff_mm']:>+6.2f} {s['dice']:>6.2f} {s['hausdorff_mm']:>6.2f}"
                f" {s['bpd_abs_mm']:>6.2f} {s['ofd_abs_mm']:>6.2f} {s['landmark_radial_mm']:>6.2f}")
    head = (f"{'':<16} {'n':>5} {'failed':>6} {'ADF mm':>13} {'DF mm':>6} {'Dice%':>6} {'HD mm':>6}"
            f" {'BPD mm':>6} {'OFD mm':>6} {'LRE mm':>6}")
    lines = [head, line("all", result["overall"])]
    lines += [line(name, s) for name, s in result["bands"].items()]
    if result.get("failed"):
        lines.append(f"no prediction for {len(result['failed'])} image(s): " + ", ".join(result["failed"][:20])
                     + (" ..." if len(result["failed"]) > 20 else ""))
    if result.get("n_unmatched_predictions"):
        lines.append(f"{result['n_unmatched_predictions']} prediction(s) for files not in the reference were ignored")
    lines.append("ADF/DF: HC absolute/signed difference; HD: Hausdorff distance; "
                 "BPD/OFD: absolute error; LRE: landmark radial error (all means)")
    return "\n".join(lines)


def evaluate_files(pred_csv: str | Path, reference: str | Path, json_out: str | Path | None = None) -> dict:
    """``fetalhead evaluate``: read both, compare, optionally write the JSON report."""
    preds = read_predictions(pred_csv)
    refs = load_dataset(reference) if Path(reference).is_dir() else _samples_from_csv(Path(reference))
    result = evaluate_predictions(preds, refs)
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2))
    return result


def _samples_from_csv(path: Path) -> list[HeadSample]:
    """Reference samples from an ``ellipses.csv``-style file (images need not be present)."""
    from ..scans.datasets import read_shared_layout

    if path.name == "ellipses.csv" and (path.parent / "images").is_dir():
        return read_shared_layout(path.parent)
    samples = []
    for i, row in enumerate(read_ellipses_csv(path), start=2):
        try:
            e = ellipse_from_row(row, f"{path} line {i}")
        except (DatasetError, ValueError):
            e = None
        where = f"{path} line {i}"
        ps = parse_number(row["pixel_size_mm"], "pixel size", where) if row.get("pixel_size_mm") else None
        hc = parse_number(row["hc_mm"], "head circumference", where) if row.get("hc_mm") else None
        samples.append(HeadSample(filename=row["filename"], image_path=path.parent / row["filename"],
                                  pixel_size_mm=ps, hc_mm=hc, ellipse=e,
                                  extra={k: row[k] for k in LANDMARK_COLUMNS if k in row}))
    return samples
