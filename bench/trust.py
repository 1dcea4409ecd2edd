"""How honest the results are: 90 % interval coverage and width, flags, silent failures, non-heads.

Measures the fixed validation split of HC18 (never trained on) clean and under every variation of
``bench/robustness.py`` (:data:`fetalhead.studies.variations.VARIATIONS`: scanner changes, acoustic shadows,
missing skull arcs, sector and border cuts), images with no fetal head at all, and how often each flag
is raised on HC18's official test images (real scans with no public reference).

The intervals and the flag line are *cross-fitted*: the validation subjects are split in two by a
hash; each half is judged with a calibration (``fetalhead.studies.calibration.calibrate_records``) made on the
other half only, so no figure here comes from the scans it was fitted on. Non-head images are
judged by the shipped model as it is (its own stored calibration).

    python bench/trust.py [--limit N]

With ``--oof NAME=DIR`` every labelled image (807) is measured by the fold model of a recipe that never
saw its subject (issue 20's cross-validation), instead of the shipped model on the 157-image
validation split: the calibration data of issue 21.

Columns: n; failed (no figures); HC ADF (mm, measured scans); coverage of the 90 % HC interval;
mean half-width (% of HC); flagged; "ok off" = share of `ok` results that are *off* (HC more than
3 %, :data:`fetalhead.model.uncertainty.OFF_HC_SHARE`, one sonographer's own repeatability) and "ok
wrong" = *wrong* (more than 5 %, WRONG_HC_SHARE, beyond two sonographers' disagreement); the flag's
precision (share of flagged results that are off) and recall (share of off results flagged or
failed); AUROC of the quality score (off vs not; within each fold, then averaged). Targets (issue
21, :data:`fetalhead.model.uncertainty.FLAG_TARGETS`): clean, no ok result wrong, at most 2 % of ok
results off, at most 10 % flagged, coverage 88-92 % with mean half-width at most 2.5 %; under each
variation, at most 1 % of ok results wrong, 4 % off, 40 % flagged, coverage at least 85 %.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np

from fetalhead.studies.calibration import calibrate_records, collect_records, subject_half
from fetalhead.scans.datasets import load_dataset, read_pixel_size_csv, subject_split
from fetalhead.scans.imageio import read_scan
from fetalhead.measurement import Scan, measure, measure_scan
from fetalhead.model.runtime import load_model
from fetalhead.model.uncertainty import OFF_HC_SHARE, WRONG_HC_SHARE
from fetalhead.studies.variations import NON_HEAD, VARIATIONS

ROOT = Path(__file__).resolve().parents[1]


def auroc(scores_wrong, scores_right) -> float:
    """Probability that a wrong result has a lower quality than a right one (ties count half)."""
    w, r = np.asarray(scores_wrong, float), np.asarray(scores_right, float)
    if not len(w) or not len(r):
        return float("nan")
    return float(((w[:, None] < r[None, :]).sum() + 0.5 * (w[:, None] == r[None, :]).sum()) / (len(w) * len(r)))


def judge(records, cal, fold: int = 0) -> list[dict]:
    """Each record's status, interval and quality under calibration ``cal``, exactly as a measurement."""
    out = []
    for r in records:
        m = r.judged(cal)
        if m.status == "failed" or r.rel_err_hc is None:
            out.append({"rec": r, "failed": True, "fold": fold})
            continue
        hw = m.interval_half_widths["hc"]
        out.append({"rec": r, "failed": False, "fold": fold, "hw": hw, "quality": m.quality,
                    "flagged": m.status == "flagged",
                    "covered": abs(r.rel_err_hc) <= hw, "wrong": abs(r.rel_err_hc) > WRONG_HC_SHARE,
                    "off": abs(r.rel_err_hc) > OFF_HC_SHARE})
    return out


def summary(rows) -> dict:
    n = len(rows)
    meas = [x for x in rows if not x["failed"]]
    off = [x for x in meas if x["off"]]
    ok = [x for x in meas if not x["flagged"]]
    flagged = [x for x in meas if x["flagged"]]
    nan = float("nan")
    return {
        "n": n, "failed": n - len(meas),
        "adf": float(np.mean([x["rec"].hc_abs_mm for x in meas])) if meas else nan,
        "coverage": float(np.mean([x["covered"] for x in meas])) if meas else nan,
        "half_width": 100 * float(np.mean([x["hw"] for x in meas])) if meas else nan,
        "flagged": float(np.mean([x["flagged"] for x in meas])) if meas else nan,
        "ok_off": float(np.mean([x["off"] for x in ok])) if ok else 0.0,
        "ok_wrong": float(np.mean([x["wrong"] for x in ok])) if ok else 0.0,
        "precision": float(np.mean([x["off"] for x in flagged])) if flagged else nan,
        "recall": (sum(x["flagged"] for x in off) + (n - len(meas))) / (len(off) + n - len(meas))
        if (off or n - len(meas)) else nan,
        "n_off": len(off),
        # quality scores of two folds come from two calibrations: ranked within a fold, then averaged
        "auroc": float(np.nanmean([auroc([x["quality"] for x in off if x["fold"] == f],
                                         [x["quality"] for x in meas if not x["off"] and x["fold"] == f])
                                   for f in (0, 1)])),
    }


def print_table(judged) -> None:
    head = (f"{'variation':<22} {'n':>4} {'failed':>6} {'ADF mm':>7} {'cover':>6} {'±% HC':>6} {'flagged':>7} "
            f"{'ok off':>6} {'ok wrong':>8} {'precision':>9} {'recall':>6} {'off':>4} {'AUROC':>6}")
    print(head)

    def line(name, s):
        print(f"{name:<22} {s['n']:>4} {s['failed']:>6} {s['adf']:>7.2f} {100 * s['coverage']:>5.1f}% "
              f"{s['half_width']:>6.2f} {100 * s['flagged']:>6.1f}% {100 * s['ok_off']:>5.1f}% "
              f"{100 * s['ok_wrong']:>7.1f}% {100 * s['precision']:>8.0f}% {100 * s['recall']:>5.0f}% "
              f"{s['n_off']:>4} {s['auroc']:>6.3f}")

    for name in dict.fromkeys(x["rec"].variation for x in judged):  # the variations the records hold, in order
        line(name, summary([x for x in judged if x["rec"].variation == name]))
    line("all damaged", summary([x for x in judged if x["rec"].variation != "identity"]))


def cross_fitted(records, split_seed: int = 2, calibration_seed: int = 1, quantile_level=None) -> list[dict]:
    """Every record judged by a calibration made on the other half of the subjects only."""
    judged = []
    for fold in (0, 1):
        train = [r for r in records if subject_half(r.subject, seed=split_seed) != fold]
        test = [r for r in records if subject_half(r.subject, seed=split_seed) == fold]
        judged += judge(test, calibrate_records(train, seed=calibration_seed, quantile_level=quantile_level), fold)
    return judged


def repeated(records, n_splits: int, quantile_level=None) -> None:
    """How much the figures move with the split of the subjects: the same cross-fitting over
    ``n_splits`` other random splits (of the judged and of the calibration halves)."""
    rows = []
    for k in range(n_splits):
        judged = cross_fitted(records, split_seed=100 + k, calibration_seed=200 + k, quantile_level=quantile_level)
        names = dict.fromkeys(x["rec"].variation for x in judged)
        per = {v: summary([x for x in judged if x["rec"].variation == v]) for v in names}
        worst = min(per, key=lambda v: per[v]["coverage"])
        rows.append((per["identity"], per[worst]["coverage"], worst))
    clean_cov = [100 * r[0]["coverage"] for r in rows]
    clean_hw = [r[0]["half_width"] for r in rows]
    silent = [100 * r[0]["ok_off"] for r in rows]
    flagged = [100 * r[0]["flagged"] for r in rows]
    worst_cov = [100 * r[1] for r in rows]
    print(f"\nthe same over {n_splits} other random splits of the subjects: mean (lowest-highest)")
    print(f"  clean: coverage {np.mean(clean_cov):.1f} % ({min(clean_cov):.1f}-{max(clean_cov):.1f}), mean half-width "
          f"{np.mean(clean_hw):.2f} % ({min(clean_hw):.2f}-{max(clean_hw):.2f}), ok off {np.mean(silent):.1f} % "
          f"({min(silent):.1f}-{max(silent):.1f}), flagged {np.mean(flagged):.1f} % "
          f"({min(flagged):.1f}-{max(flagged):.1f})")
    print(f"  the least covered variation of each split: coverage {np.mean(worst_cov):.1f} % "
          f"({min(worst_cov):.1f}-{max(worst_cov):.1f}); which: {', '.join(sorted({r[2] for r in rows}))}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    ap.add_argument("--limit", type=int, default=0, help="only the first N validation images")
    ap.add_argument("--model", default=None)
    ap.add_argument("--records", metavar="PICKLE", help="keep the measured records here and reuse them when the "
                                                        "file exists (to study the calibration without re-measuring; "
                                                        "with --oof: the file of fetalhead calibrate --records-cache)")
    ap.add_argument("--oof", metavar="NAME=DIR", help="out of fold: every labelled image, measured by the model of a "
                    "recipe's fold runs (DIR/fold<k>, as bench/compare_models.py reads them) that never saw its "
                    "subject, instead of the shipped model on the validation split")
    ap.add_argument("--folds", type=int, default=3, help="with --oof: the recipe's number of folds")
    ap.add_argument("--quantile-level", type=float, default=None,
                    help="the conformal quantile's level (default: fetalhead.studies.calibration.POOLED_QUANTILE_LEVEL)")
    ap.add_argument("--skip-non-head", action="store_true")
    ap.add_argument("--splits", type=int, default=10, help="other random subject splits to repeat the "
                                                           "cross-fitting on (0: none)")
    args = ap.parse_args(argv)
    samples = [s for s in load_dataset(args.data) if s.ellipse is not None]
    _, val = subject_split(samples, 0.2, seed=0)
    if args.limit:
        val = val[: args.limit]
    model = None if args.oof and args.skip_non_head else load_model(args.model)  # --oof measures with fold models
    t0 = time.time()
    if args.oof:
        records = oof_records(args.oof, samples, args.folds, args.limit, args.records)
        val = samples
    elif args.records and Path(args.records).is_file():
        records = pickle.loads(Path(args.records).read_bytes())
    else:
        records = collect_records(val, model)
        if args.records:
            Path(args.records).write_bytes(pickle.dumps(records))
    judged = cross_fitted(records, split_seed=2, quantile_level=args.quantile_level)
    print(f"model {args.oof or model.version}; {len(val)} {'labelled images out of fold' if args.oof else 'validation images'} ({len({s.subject_id for s in val})} subjects) x "
          f"{len(VARIATIONS)} variations; cross-fitted calibration; {time.time() - t0:.0f} s")
    print_table(judged)
    if args.splits:
        repeated(records, args.splits, args.quantile_level)
    if args.skip_non_head:
        return 0
    # images with no fetal head, judged by the shipped model as it is
    print("\nno fetal head (shipped model and its own calibration): status counts")
    rng = np.random.default_rng(0)
    for fn in NON_HEAD:
        counts = {"ok": 0, "flagged": 0, "failed": 0}
        for s_ in val:
            img = fn(read_scan(s_.image_path), s_.ellipse, rng)
            m = measure_scan(Scan(np.ascontiguousarray(img, np.float32), s_.filename, "array"), 0.15, model=model)
            counts[m.status] += 1
        print(f"{fn.__name__:<22} ok {counts['ok']:>3}  flagged {counts['flagged']:>3}  failed {counts['failed']:>3}")
    other = _other_anatomy(model)
    if other:
        print(f"{'other anatomy (DICOM)':<22} " + "  ".join(f"{k} {v}" for k, v in other.items()))
    _official_test_images(model, Path(args.data))
    return 0


def oof_records(spec: str, samples, n_folds: int, limit: int = 0, cache: str | None = None) -> list:
    """Every sample measured clean and under each variation by the fold model of recipe
    ``NAME=DIR[:setting=value,...]`` that never saw its subject: ``DIR/fold<k>.onnx`` where exported (as
    ``make train`` calibrates with them), else the fold runs exported and given their outline level as
    ``bench/compare_models.py`` does; the settings override the measuring pipeline's, as there. The records
    are those ``fetalhead calibrate --fold-models ... --records-cache FILE`` measures and keeps: with the
    same ``cache`` file, the calibration and this benchmark share one measuring run."""
    import dataclasses

    sys.path.insert(0, str(ROOT / "bench"))
    from compare_models import fold_checkpoint, fold_model, parse_candidate
    from fetalhead.model.runtime import HeadModel
    from fetalhead.scans.datasets import fold_split
    from fetalhead.studies.calibration import cached_records, store_records, collect_oof_records, oof_records_key

    name, folder, overrides = parse_candidate(spec)
    models = []
    for k in range(n_folds):
        if (folder / f"fold{k}.onnx").is_file():
            models.append(HeadModel(folder / f"fold{k}.onnx", threads=1, verify=False))
            continue
        checkpoint = fold_checkpoint(folder, k)
        if checkpoint is None:
            raise SystemExit(f"{folder}: fold {k} is not trained")
        train, _ = fold_split(samples, n_folds, k)
        models.append(fold_model(checkpoint, train, 200, ROOT / "out" / "compare" / "models" / f"{folder.name}_fold{k}"))
    pipeline = dataclasses.replace(models[0].pipeline_config, **overrides)
    every = samples[:limit] if limit else samples
    key = oof_records_key(models, pipeline, every)
    records = cached_records(cache, key)
    if records is None:
        t0 = time.time()
        records = collect_oof_records(every, models, pipeline=pipeline)
        print(f"{name}: {len(every)} images x {len(VARIATIONS)} out of fold in {time.time() - t0:.0f} s", file=sys.stderr)
        store_records(cache, key, records)
    return records


def _official_test_images(model, data: Path) -> None:
    """HC18's official test images (no public reference: how often each flag is raised on real
    scans never seen, and which scans raise the rarer ones), measured as a user's files are."""
    from collections import Counter

    table = data / "test_set_pixel_size.csv"
    if not table.is_file():
        return
    pixel_sizes = read_pixel_size_csv(table)
    status, flags, which = Counter(), Counter(), {}
    for name, spacing in pixel_sizes.items():
        m = measure(data / "test_set" / name, spacing, model=model)
        status[m.status] += 1
        for f in m.flags:
            flags[f] += 1
            which.setdefault(f, []).append(name)
    print(f"\nHC18's {len(pixel_sizes)} official test images (no public reference): " +
          ", ".join(f"{k} {status[k]}" for k in ("ok", "flagged", "failed")))
    for f, n in flags.most_common():
        print(f"  {f:<26} {n:>4}" + (f"  ({', '.join(which[f])})" if n <= 3 else ""))


def _other_anatomy(model) -> dict:
    """pydicom's example images (ultrasound of other anatomy, CT, MR) measured as pictures."""
    try:
        from pydicom import dcmread
        from pydicom.data import get_testdata_file
    except ImportError:
        return {}
    from fetalhead.scans.imageio import to_grey_float

    counts = {"ok": 0, "flagged": 0, "failed": 0}
    for name in ("examples_palette.dcm", "examples_jpeg2k.dcm", "examples_rgb_color.dcm", "examples_ybr_color.dcm",
                 "CT_small.dcm", "MR_small.dcm"):  # files pydicom ships (nothing is downloaded)
        try:
            ds = dcmread(get_testdata_file(name, download=False))
            arr = ds.pixel_array
        except Exception:
            continue
        arr = arr[0] if arr.ndim == 4 or (arr.ndim == 3 and arr.shape[-1] not in (3, 4)) else arr
        a = arr.astype(np.float32)
        a = (a - a.min()) / max(float(np.ptp(a)), 1e-6)
        if a.ndim == 3:
            a = a.mean(axis=2)
        if min(a.shape) < 64:
            continue
        m = measure_scan(Scan(to_grey_float(a), name, "array"), 0.2, model=model)
        counts[m.status] += 1
    return counts


if __name__ == "__main__":
    sys.exit(main())
