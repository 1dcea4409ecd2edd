"""Accuracy of the shipped model on the fixed subject-grouped validation split of HC18.

Trains nothing: measures every validation image with the model shipped in the
package, writes the results CSV and the evaluation JSON under out/bench/, and
prints the `fetalhead evaluate` figures (overall and per HC band).

    python bench/accuracy.py [--data ../shared/data/hc18] [--out out/bench]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fetalhead.batch import MeasureOptions, ResultWriter, run_serial
from fetalhead.scans.datasets import load_dataset, subject_split
from fetalhead.studies.evaluation import evaluate_predictions, format_report, read_predictions
from fetalhead.model.runtime import load_model

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "hc18"))
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    ap.add_argument("--model", default=None, help="the float ONNX file (default: the shipped one)")
    ap.add_argument("--precision", choices=("fp32", "int8"), default=None,
                    help="the float model or its INT8 copy (default: the package's default, int8)")
    ap.add_argument("--write-model-card", action="store_true",
                    help="store the overall and per-band figures in the model's metadata JSON ('validation')")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    samples = load_dataset(args.data)
    _, val = subject_split(samples, 0.2, seed=0)
    model = load_model(args.model, precision=args.precision)
    opts = MeasureOptions(pixel_size_table={s.filename: s.pixel_size_mm for s in val},
                          pixel_size_table_name="validation split", model_path=args.model,
                          precision=args.precision)
    t0 = time.time()
    results = out / "val_results.csv"
    writer = ResultWriter(results)
    flagged = []
    for m in run_serial([s.image_path for s in val], opts):
        writer.write(m)
        if m.status == "flagged":
            flagged.append(m)
    writer.close()
    dt = time.time() - t0
    res = evaluate_predictions(read_predictions(results), val)
    per = {p["filename"]: p for p in res["per_image"]}
    err_flagged = [per[Path(m.source).name]["hc_abs_mm"] for m in flagged if Path(m.source).name in per]
    err_ok = [p["hc_abs_mm"] for n, p in per.items() if n not in {Path(m.source).name for m in flagged}]
    res["quality_flag"] = {"n_flagged": len(flagged),
                           "hc_abs_mm_flagged": sum(err_flagged) / len(err_flagged) if err_flagged else None,
                           "hc_abs_mm_not_flagged": sum(err_ok) / len(err_ok) if err_ok else None}
    res["model"] = {"version": model.version, "sha256": model.metadata.get("sha256")}
    (out / "val_evaluation.json").write_text(json.dumps(res, indent=2))
    print(f"model {model.version} on the validation split: {len(val)} images of "
          f"{len({s.subject_id for s in val})} subjects (never seen in training), {dt:.0f} s")
    print(format_report(res))
    q = res["quality_flag"]
    if q["n_flagged"]:
        print(f"flagged for review: {q['n_flagged']} image(s), their mean HC error "
              f"{q['hc_abs_mm_flagged']:.2f} mm vs {q['hc_abs_mm_not_flagged']:.2f} mm for the rest")
    else:
        print("flagged for review: none")
    worst = sorted(res["per_image"], key=lambda p: -p["hc_abs_mm"])[:5]
    print("largest HC errors: " + ", ".join(f"{p['filename']} {p['hc_diff_mm']:+.1f} mm" for p in worst))
    print(f"results: {results}; figures: {out / 'val_evaluation.json'}")
    if args.write_model_card:
        card_path = model.path.with_suffix(".json")
        card = json.loads(card_path.read_text())
        card["validation"] = {"split": "fetalhead.scans.datasets.subject_split(val_fraction=0.2, seed=0): "
                                       f"{len(val)} images, {len({s.subject_id for s in val})} subjects",
                              "command": "python bench/accuracy.py"
                              + (f" --precision {args.precision}" if args.precision else ""),
                              "overall": res["overall"],
                              "bands": res["bands"], "quality_flag": res["quality_flag"]}
        card_path.write_text(json.dumps(card, indent=2))
        print(f"validation figures stored in {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
