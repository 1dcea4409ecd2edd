"""Throughput of batch measuring: 1 process, 2 local worker processes, and a 2-worker Dask LocalCluster.

Runs `fetalhead measure` three ways on the same images (default: the 335 unlabelled HC18
test images) and prints images per second, the ratios to the serial run, and the
LocalCluster's start-up time (measured separately).

    python bench/scale.py [--images DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from fetalhead.batch import MeasureOptions, collect_scans, run_dask, run_processes, run_serial

ROOT = Path(__file__).resolve().parents[1]


def _timed(results, n) -> float:
    t0 = time.perf_counter()
    done = sum(1 for _ in results)
    assert done == n, (done, n)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "hc18" / "test_set"))
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args(argv)
    files, _ = collect_scans([args.images])
    if args.limit:
        files = files[: args.limit]
    n = len(files)
    opts = MeasureOptions(pixel_size_mm=0.15)
    with tempfile.TemporaryDirectory():
        list(run_serial(files[:2], opts))  # load the model once before timing
        t_serial = _timed(run_serial(files, opts), n)
        t_proc = _timed(run_processes(files, opts, 2), n)  # includes starting the 2 processes
        from distributed import Client, LocalCluster

        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        client = Client(cluster)
        t_start = time.perf_counter() - t0
        t_dask = _timed(run_dask(files, opts, client), n)  # includes loading the model on each worker
        client.close()
        cluster.close()
    print(f"{n} images from {args.images}")
    print(f"{'way':<34} {'seconds':>8} {'images/s':>9} {'vs serial':>9}")
    for name, t in (("1 process (serial)", t_serial), ("--workers 2 (local processes)", t_proc),
                    ("--dask-local 2 (LocalCluster)", t_dask)):
        print(f"{name:<34} {t:>8.1f} {n / t:>9.1f} {t_serial / t:>8.2f}x")
    print(f"LocalCluster start-up (not included above): {t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
