"""Speed of measuring: end-to-end time per image and throughput, on the CPU.

End to end = read the PNG, preprocess, network (coarse pass + mirrored fine pass),
ellipse fit, measurements. Prints the median time per image with 1 thread, the
images per second of 2 worker processes (1 thread each, i.e. 2 cores), the model
size and the peak memory.

    python bench/speed.py [--images DIR] [--n 100]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _time_images(paths: list[str]) -> list[float]:
    from fetalhead.measurement import measure
    from fetalhead.model import load_model

    model = load_model(threads=1)
    measure(paths[0], 0.1, model=model)  # warm-up
    times = []
    for p in paths:
        t0 = time.perf_counter()
        m = measure(p, 0.1, model=model)
        times.append(time.perf_counter() - t0)
        assert m.status != "failed", m.message
    return times


def _worker(paths: list[str]) -> int:
    from fetalhead.measurement import measure
    from fetalhead.model import load_model

    model = load_model(threads=1)
    for p in paths:
        measure(p, 0.1, model=model)
    return len(paths)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", default=str(ROOT.parent / "shared" / "data" / "hc18" / "test_set"))
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    paths = sorted(str(p) for p in Path(args.images).glob("*.png"))[: args.n]
    if not paths:
        paths = sorted(str(p) for p in (ROOT / "samples").glob("*.png"))
    times = _time_images(paths)
    med = statistics.median(times)
    p90 = sorted(times)[int(0.9 * (len(times) - 1))]
    ctx = mp.get_context("spawn")
    with ctx.Pool(2) as pool:
        pool.map(_worker, [paths[:2], paths[:2]])  # start and load the model in both workers
        t0 = time.perf_counter()
        done = sum(pool.map(_worker, [paths[0::2], paths[1::2]]))
        rate = done / (time.perf_counter() - t0)
    from fetalhead.model import default_model_path

    size_mb = default_model_path().stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"images: {len(paths)} from {args.images}")
    print(f"end-to-end per image, 1 thread: median {1000 * med:.1f} ms, 90th percentile {1000 * p90:.1f} ms")
    print(f"throughput, 2 processes x 1 thread (2 cores): {rate:.1f} images/s")
    print(f"model file: {size_mb:.2f} MB; peak memory of the 1-thread process: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
