"""Cine loops: frames per second for a 120-frame loop, on 1 thread and on 2 cores.

Makes a 120-frame ultrasound loop (multi-frame DICOM, 800 x 540, from the bundled scan 358_HC.png
drifting a little each frame, with two blurred moments) and measures every frame, as ``fetalhead
measure loop.dcm --frames all`` does:

* 1 thread: one process, ONNX Runtime on 1 thread;
* 2 cores: two processes of 1 thread, each measuring every other frame (the way a batch runs);
* 2 cores, 1 process: ONNX Runtime on 2 threads.

Also prints the time of ``--frames best`` (every frame measured, then the choice). Real time on a
scanner's PC would be at least 30 frames per second on 2 cores.

    python bench/cine.py [--frames 120] [--precision int8|fp32]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _make_loop(path: Path, n: int) -> Path:
    import cv2

    from tests.dicom_fixtures import loop_frames, write_loop_dicom

    grey = cv2.imread(str(ROOT / "samples" / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    return write_loop_dicom(path, loop_frames(grey, n, blurred=(30, 31, 90)), 0.0134737677)


def _measure_every(args) -> int:
    path, k, step, threads, precision = args
    from fetalhead.scans.cine import iter_loop_frames
    from fetalhead.measurement import measure_scan
    from fetalhead.model.runtime import load_model

    model = load_model(threads=threads, precision=precision)
    done = 0
    for scan in iter_loop_frames(str(path), path.name if hasattr(path, "name") else str(path), "dicom"):
        if scan.frame % step == k:
            measure_scan(scan, model=model)
            done += 1
    return done


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--precision", choices=("int8", "fp32"), default=None)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        loop = _make_loop(Path(tmp) / "loop.dcm", args.frames)
        _measure_every((loop, 0, args.frames, 1, args.precision))  # warm the caches
        rows = []
        t = time.perf_counter()
        n = _measure_every((loop, 0, 1, 1, args.precision))
        rows.append(("1 thread", n / (time.perf_counter() - t)))
        with mp.get_context("spawn").Pool(2) as pool:
            pool.map(_measure_every, [(loop, 0, args.frames, 1, args.precision)] * 2)  # start both workers
            t = time.perf_counter()
            n = sum(pool.map(_measure_every, [(loop, k, 2, 1, args.precision) for k in (0, 1)]))
            rows.append(("2 cores (2 processes x 1 thread)", n / (time.perf_counter() - t)))
        t = time.perf_counter()
        n = _measure_every((loop, 0, 1, 2, args.precision))
        rows.append(("2 cores (1 process x 2 threads)", n / (time.perf_counter() - t)))
        from fetalhead.measurement import measure_loop
        from fetalhead.model.runtime import load_model

        model = load_model(threads=1, precision=args.precision)
        t = time.perf_counter()
        (best,) = measure_loop(loop, frames="best", model=model)
        best_s = time.perf_counter() - t
    print(f"{args.frames}-frame loop (800 x 540 DICOM), model {model.version}, every frame measured:")
    for name, fps in rows:
        print(f"  {name:<34} {fps:6.1f} frames/s  ({1000 / fps:5.1f} ms per frame)")
    print(f"  --frames best, 1 thread: {best_s:.1f} s for the loop; chose frame {best.frame} "
          f"({best.frame_choice.split(':', 1)[1].strip()})")
    two = max(fps for name, fps in rows if name.startswith("2 cores"))
    print(f"real time (30 frames/s on 2 cores): {'reached' if two >= 30 else 'not reached'}, "
          f"{two:.1f} frames/s = {two / 30:.2f} x real time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
