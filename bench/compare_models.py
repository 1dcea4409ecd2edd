"""Two models or recipes side by side, image by image, on held-out scans of a subject-grouped K-fold split.

Every image is measured by a model that never saw its subject: a *recipe* is a folder of fold runs
(``DIR/fold0``, ``DIR/fold1``, ... made by ``fetalhead train --folds K --fold k``); each fold's
checkpoint is exported to ONNX (float) and its outline level chosen on that fold's *training* images,
as ``make train`` does for the shipped model. A candidate may change the measuring pipeline too
(``NAME=DIR:refine_passes=2``). Images are measured clean and under each chosen variation of
``fetalhead.studies.variations``; the per-image rows are kept (``out/compare/<name>.csv``: the
out-of-fold predictions, also the calibration data of the trust study) and reused on the next run.

Printed: per candidate, the HC absolute error's mean, median, p95, the share more than 3 % off
(one sonographer's own 95 % repeatability, Sarris et al., UOG 2012) and Dice; the paired difference
B - A with its 95 % confidence interval (bootstrap over subjects, so images of one pregnancy count
together; and the paired t interval), overall, per HC band (< 175, 175-265, > 265 mm) and per
variation. A change whose interval does not exclude a loss is not shipped (issue 20).

    python bench/compare_models.py A=runs/cv/r030 B=runs/cv/r030:refine_passes=2 [--folds 3]
        [--variations identity,shadow_wide_centre,missing_arc_60] [--max-images N] [--out out/compare]
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

from fetalhead.model.pipeline import HeadNotFoundError, PipelineConfig, segment_head
from fetalhead.scans.datasets import fold_split, load_dataset, sample_key
from fetalhead.scans.imageio import read_scan
from fetalhead.studies.evaluation import ellipse_errors
from fetalhead.studies.variations import EXTRA_VARIATIONS, VARIATIONS

ROOT = Path(__file__).resolve().parents[1]
#: HC bands of issue 20 (mm of the reference HC)
HC_BANDS = ((0.0, 175.0, "< 175"), (175.0, 265.0, "175-265"), (265.0, 1e9, "> 265"))
#: "off": HC more than this share from the reference (Sarris et al., Ultrasound Obstet Gynecol 2012)
OFF_SHARE = 0.03
#: the default variations: clean, and the damages issue 20 names (shadows, missing skull arcs) plus a
#: geometric and an intensity one
DEFAULT_VARIATIONS = ("identity", "shadow_wide_centre", "missing_arc_60", "missing_arcs_faint", "rotate_30",
                      "gain_low_12db", "jpeg_q30")
COLUMNS = ("fold", "filename", "subject", "variation", "hc_ref_mm", "hc_pred_mm", "hc_diff_mm", "hc_abs_mm",
           "dice", "hausdorff_mm", "failed")
BOOTSTRAP = 2000


def parse_candidate(text: str) -> tuple[str, Path, dict]:
    """``NAME=DIR[:key=value,...]`` -> name, recipe folder, pipeline overrides."""
    name, _, rest = text.partition("=")
    if not name or not rest:
        raise SystemExit(f"candidate {text!r}: expected NAME=DIR[:key=value,...]")
    folder, _, opts = rest.partition(":")
    overrides = {}
    fields = {f.name: f.type for f in dataclasses.fields(PipelineConfig)}
    for item in filter(None, opts.split(",")):
        k, _, v = item.partition("=")
        if k not in fields:
            raise SystemExit(f"candidate {name}: {k!r} is not a PipelineConfig setting ({', '.join(fields)})")
        overrides[k] = v.lower() in ("1", "true", "yes") if fields[k] in ("bool", bool) else float(v)
        if fields[k] in ("int", int):
            overrides[k] = int(overrides[k])
    return name, Path(folder), overrides


def fold_checkpoint(folder: Path, k: int) -> Path | None:
    """Fold ``k``'s finished weights: ``DIR/fold<k>/last.pt`` of a training run, or ``DIR/fold<k>.pt``
    (the weights-only file committed in training-artifacts/cv); None while it is not trained."""
    run = folder / f"fold{k}"
    if (run / "last.pt").is_file() and ((run / "done").exists() or _finished(run)):
        return run / "last.pt"
    if (folder / f"fold{k}.pt").is_file():
        return folder / f"fold{k}.pt"
    return None


def fold_model(checkpoint: Path, train_samples, level_images: int, cache: Path):
    """The fold's float ONNX model (exported once into ``cache``) with its outline level chosen on the
    fold's training images."""
    from fetalhead.model.runtime import HeadModel
    from fetalhead.studies.calibration import choose_boundary_level

    cache.mkdir(parents=True, exist_ok=True)
    onnx = cache / "model.onnx"
    if not onnx.is_file():
        subprocess.run([sys.executable, "-m", "fetalhead.cli", "export", str(checkpoint), str(onnx)],
                       check=True, stdout=subprocess.DEVNULL)
    meta_path = onnx.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    if "boundary_level_choice" not in meta:
        model = HeadModel(onnx, threads=1, verify=False)
        level, table = choose_boundary_level(train_samples, model, n_images=level_images)
        meta["pipeline"]["boundary_level"] = level
        meta["boundary_level_choice"] = {"level": level, "images": level_images, "table": table}
        meta_path.write_text(json.dumps(meta, indent=2))
    return HeadModel(onnx, threads=1, verify=False)


def measure_fold(model, overrides: dict, held, variations, seed: int = 0) -> list[dict]:
    cfg = dataclasses.replace(model.pipeline_config, **overrides)
    by_name = {f.__name__: f for f in VARIATIONS + EXTRA_VARIATIONS}
    rows = []
    for s in held:
        image = read_scan(s.image_path)
        for vname in variations:
            rng = np.random.default_rng([seed, zlib.crc32(f"{s.filename}:{vname}".encode())])
            img, ref, ps = by_name[vname](image, s.ellipse, s.pixel_size_mm, rng)
            row = {"filename": s.filename, "subject": sample_key(s), "variation": vname,
                   "hc_ref_mm": ref.perimeter_px * ps}
            try:
                e = segment_head(img, model.predict, cfg).ellipse
                err = ellipse_errors(e, ref, ps)
                row.update(hc_pred_mm=err["hc_pred_mm"], hc_diff_mm=err["hc_diff_mm"], hc_abs_mm=err["hc_abs_mm"],
                           dice=err["dice"], hausdorff_mm=err["hausdorff_mm"], failed=0)
            except HeadNotFoundError:
                row.update(hc_pred_mm="", hc_diff_mm="", hc_abs_mm="", dice="", hausdorff_mm="", failed=1)
            rows.append(row)
    return rows


def predictions(name: str, folder: Path, overrides: dict, samples, n_folds: int, variations, out: Path,
                max_images: int, level_images: int) -> list[dict]:
    """Out-of-fold rows of a candidate (cached in ``out/<name>.csv``, fold by fold)."""
    path = out / f"{name}.csv"
    key = json.dumps({"folder": str(folder.resolve()), "overrides": overrides, "variations": list(variations),
                      "n_folds": n_folds, "max_images": max_images})
    rows: list[dict] = []
    if path.is_file() and path.with_suffix(".key").is_file():
        cached = json.loads(path.with_suffix(".key").read_text())
        wanted = json.loads(key)
        same = all(cached.get(k) == wanted[k] for k in wanted if k != "variations")
        if same and set(variations) <= set(cached["variations"]):  # reuse: the rows of the variations asked
            with path.open() as f:
                rows = [r for r in csv.DictReader(f) if r["variation"] in set(variations)]
            if set(variations) != set(cached["variations"]):
                done = {int(r["fold"]) for r in rows}
                missing = [k for k in range(n_folds) if k not in done and fold_checkpoint(folder, k)]
                if not missing:
                    return rows
                name = f"{name}-{len(variations)}v"  # new folds for this subset go to a file of their own
                path, rows = out / f"{name}.csv", []
    done = {int(r["fold"]) for r in rows}
    for k in range(n_folds):
        if k in done:
            continue
        checkpoint = fold_checkpoint(folder, k)
        if checkpoint is None:
            print(f"{name}: fold {k} not trained yet ({folder}), left out", file=sys.stderr)
            continue
        train, held = fold_split(samples, n_folds, k)
        if max_images:
            held = held[:max_images]
        t0 = time.time()
        model = fold_model(checkpoint, train, level_images, out / "models" / f"{folder.name}_fold{k}")
        new = measure_fold(model, overrides, held, variations)
        for r in new:
            r["fold"] = k
        rows += new
        print(f"{name}: fold {k}, {len(held)} images x {len(variations)} in {time.time() - t0:.0f} s "
              f"(outline level {model.pipeline_config.boundary_level:.3f})", file=sys.stderr)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, COLUMNS)
            w.writeheader()
            w.writerows({c: r.get(c, "") for c in COLUMNS} for r in rows)
        path.with_suffix(".key").write_text(key)
    return rows


def _finished(run: Path) -> bool:
    cfg, hist = run / "train_config.json", run / "history.json"
    if not cfg.is_file() or not hist.is_file():
        return False
    history = json.loads(hist.read_text())
    return bool(history) and history[-1]["epoch"] >= json.loads(cfg.read_text())["epochs"]


def summary(errors: np.ndarray, rel: np.ndarray, dice: np.ndarray) -> dict:
    return {"n": len(errors), "mean": float(np.mean(errors)), "median": float(np.median(errors)),
            "p95": float(np.percentile(errors, 95)), "off_pct": 100 * float(np.mean(rel > OFF_SHARE)),
            "dice": float(np.mean(dice))}


def paired_ci(diff: np.ndarray, groups: np.ndarray, seed: int = 0) -> dict:
    """Mean of ``diff`` with its 95 % interval: bootstrap over the groups (subjects), and the t interval."""
    n = len(diff)
    mean = float(np.mean(diff))
    sd = float(np.std(diff, ddof=1)) if n > 1 else float("nan")
    t_half = 1.96 * sd / math.sqrt(n) if n > 1 else float("nan")
    uniq, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=diff)
    counts = np.bincount(inv)
    rng = np.random.default_rng(seed)
    picks = rng.integers(len(uniq), size=(BOOTSTRAP, len(uniq)))
    boot = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return {"mean": mean, "lo": float(lo), "hi": float(hi), "t_lo": mean - t_half, "t_hi": mean + t_half,
            "t": mean / (sd / math.sqrt(n)) if n > 1 and sd > 0 else float("nan")}


def compare(rows_a: list[dict], rows_b: list[dict]) -> dict:
    """Figures of A and B and their paired difference on the images and variations both measured."""
    ka = {(r["filename"], r["variation"]): r for r in rows_a}
    kb = {(r["filename"], r["variation"]): r for r in rows_b}
    common = sorted(set(ka) & set(kb))
    out = {}
    for vname in sorted({v for _, v in common}, key=lambda v: (v != "identity", v)):
        keys = [k for k in common if k[1] == vname]
        both = [k for k in keys if ka[k]["failed"] in ("0", 0) and kb[k]["failed"] in ("0", 0)]
        fails = (sum(ka[k]["failed"] in ("1", 1) for k in keys), sum(kb[k]["failed"] in ("1", 1) for k in keys))
        if not both:
            continue

        def arr(rows, col):
            return np.array([float(rows[k][col]) for k in both])

        ref = arr(ka, "hc_ref_mm")
        bands = {"all": np.ones(len(both), bool)}
        if vname == "identity":
            bands.update({label: (ref >= lo) & (ref < hi) for lo, hi, label in HC_BANDS})
        groups = np.array([str(ka[k]["subject"]) for k in both])
        for band, sel in bands.items():
            if sel.sum() < 2:
                continue
            ea, eb = arr(ka, "hc_abs_mm")[sel], arr(kb, "hc_abs_mm")[sel]
            out[(vname, band)] = {
                "A": summary(ea, ea / ref[sel], arr(ka, "dice")[sel]),
                "B": summary(eb, eb / ref[sel], arr(kb, "dice")[sel]),
                "diff": paired_ci(eb - ea, groups[sel]), "failed": fails if band == "all" else None}
    return out


def print_table(name_a: str, name_b: str, table: dict) -> None:
    print(f"\nA = {name_a}, B = {name_b}: HC absolute error (mm) on the same held-out images; "
          f"B - A with its 95 % CI (bootstrap over subjects; paired t)")
    print(f"{'variation':<20} {'HC band':<8} {'n':>4} | {'A mean':>6} {'median':>6} {'p95':>5} {'>3 %':>5} "
          f"{'Dice':>6} | {'B mean':>6} {'median':>6} {'p95':>5} {'>3 %':>5} {'Dice':>6} | "
          f"{'B - A':>6} {'95 % CI':>15} {'t CI':>15} {'fail A/B':>8}")
    for (vname, band), r in table.items():
        a, b, d = r["A"], r["B"], r["diff"]
        fails = f"{r['failed'][0]}/{r['failed'][1]}" if r["failed"] else ""
        print(f"{vname:<20} {band:<8} {a['n']:>4} | {a['mean']:6.3f} {a['median']:6.3f} {a['p95']:5.2f} "
              f"{a['off_pct']:5.1f} {a['dice']:6.2f} | {b['mean']:6.3f} {b['median']:6.3f} {b['p95']:5.2f} "
              f"{b['off_pct']:5.1f} {b['dice']:6.2f} | {d['mean']:+6.3f} [{d['lo']:+6.3f}, {d['hi']:+6.3f}] "
              f"[{d['t_lo']:+6.3f}, {d['t_hi']:+6.3f}] {fails:>8}")


def print_markdown(name_a: str, name_b: str, table: dict, bands: bool = True) -> None:
    """The same figures as a Markdown table (as BENCHMARKS.md quotes them)."""
    print(f"\n| variation | HC band | n | {name_a} mean / median / p95 / >3 % | {name_b} mean / median / p95 / >3 % "
          f"| {name_b} - {name_a} (95 % CI, subjects) |")
    print("|---|---|---|---|---|---|")
    for (vname, band), r in table.items():
        if band != "all" and not bands:
            continue
        a, b, d = r["A"], r["B"], r["diff"]
        print(f"| {vname} | {band} | {a['n']} | {a['mean']:.2f} / {a['median']:.2f} / {a['p95']:.2f} / "
              f"{a['off_pct']:.1f} % | {b['mean']:.2f} / {b['median']:.2f} / {b['p95']:.2f} / {b['off_pct']:.1f} % "
              f"| {d['mean']:+.3f} [{d['lo']:+.3f}, {d['hi']:+.3f}] |")


def time_ratios(cands, samples, n_folds: int, out: Path, level_images: int, n_images: int = 40,
                rounds: int = 3) -> dict:
    """Seconds per image of each candidate's pipeline (1 thread), interleaved on the same clean held-out
    images of fold 0 so that a busy machine slows all alike, as a ratio to the first candidate's."""
    name0, folder0, _ = cands[0]
    checkpoint = fold_checkpoint(folder0, 0)
    if checkpoint is None:
        return {}
    train, held = fold_split(samples, n_folds, 0)
    model = fold_model(checkpoint, train, level_images, out / "models" / f"{folder0.name}_fold0")
    images = [read_scan(s.image_path) for s in held[:n_images]]
    configs = {name: dataclasses.replace(model.pipeline_config, **ov) for name, _, ov in cands}
    best = {name: float("inf") for name in configs}
    for _ in range(rounds):  # the least of a few rounds: the machine's noise only ever adds time
        for name, cfg in configs.items():
            t0 = time.perf_counter()
            for img in images:
                try:
                    segment_head(img, model.predict, cfg)
                except HeadNotFoundError:
                    pass
            best[name] = min(best[name], (time.perf_counter() - t0) / len(images))
    return {name: {"s_per_image": t, "ratio": t / best[name0]} for name, t in best.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("candidates", nargs="*", help="NAME=DIR[:key=value,...]: a recipe's fold runs (A first)")
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--variations", default=",".join(DEFAULT_VARIATIONS),
                    help="comma-separated names of fetalhead.studies.variations ('all' for every one)")
    ap.add_argument("--max-images", type=int, default=0, help="only the first N held-out images of each fold")
    ap.add_argument("--level-images", type=int, default=200,
                    help="training images on which each fold model's outline level is chosen")
    ap.add_argument("--out", default=str(ROOT / "out" / "compare"))
    ap.add_argument("--time", action="store_true",
                    help="also time each candidate's pipeline (1 thread, interleaved) as a ratio to the first's")
    ap.add_argument("--markdown", action="store_true", help="also print each comparison as a Markdown table")
    ap.add_argument("--write-folds", metavar="CSV", help="write each image's fold (filename, subject, fold) and stop")
    args = ap.parse_args(argv)
    if args.write_folds:
        samples = [s for s in load_dataset(args.data) if s.ellipse is not None]
        with open(args.write_folds, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["filename", "subject_id", "fold"])
            for k in range(args.folds):
                for s in fold_split(samples, args.folds, k)[1]:
                    w.writerow([s.filename, sample_key(s), k])
        return 0
    names = {f.__name__ for f in VARIATIONS + EXTRA_VARIATIONS}
    variations = sorted(names, key=[f.__name__ for f in VARIATIONS].index) if args.variations == "all" \
        else [v.strip() for v in args.variations.split(",") if v.strip()]
    unknown = [v for v in variations if v not in names]
    if unknown:
        print(f"unknown variations: {', '.join(unknown)} (known: {', '.join(sorted(names))})", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = [s for s in load_dataset(args.data) if s.ellipse is not None and s.pixel_size_mm]
    cands = [parse_candidate(c) for c in args.candidates]
    rows = {name: predictions(name, folder, ov, samples, args.folds, variations, out, args.max_images,
                              args.level_images) for name, folder, ov in cands}
    first = cands[0][0]
    for name, _, _ in cands[1:]:
        table = compare(rows[first], rows[name])
        print_table(first, name, table)
        if args.markdown:
            print_markdown(first, name, table)
        (out / f"{first}_vs_{name}.json").write_text(json.dumps(
            {f"{v}|{b}": r for (v, b), r in table.items()}, indent=2))
    if args.time:
        print("\nspeed (1 thread, least of 3 interleaved rounds on 40 clean held-out images of fold 0):")
        for name, t in time_ratios(cands, samples, args.folds, out, args.level_images).items():
            print(f"  {name:<12} {1000 * t['s_per_image']:7.1f} ms per image   {t['ratio']:.2f} x {first}")
    if len(cands) == 1:
        table = compare(rows[first], rows[first])
        print_table(first, first, table)
        if args.markdown:
            print_markdown(first, first, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
