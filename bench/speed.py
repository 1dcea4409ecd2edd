"""Speed of measuring: end-to-end time per image and throughput, on the CPU, against a reference.

End to end = read the PNG, preprocess, network (coarse pass + mirrored fine pass),
ellipse fit, measurements. Prints the median time per image with 1 thread for the float
and the INT8 model, the images per second of 2 worker processes (1 thread each, i.e. 2
cores), the model sizes and the peak memory.

The reference, timed in the same run on the same images: the seed document's stage-1
network, a ResNet34 regressing 8 landmark coordinates from a 128 x 128 grey image (random
weights, exported to ONNX and run by ONNX Runtime on 1 thread; per image: read the PNG,
resize, normalise, one forward pass). Machines differ: the ratio to the reference is the
figure to compare (needs the ``train`` extra for PyTorch, to build the reference).

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


def _reference_onnx(path: Path) -> Path:
    """The seed's stage-1 network: ResNet34 (basic blocks 3-4-6-3), 1 grey channel, 8 outputs."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.down = None if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.b2(self.c2(torch.relu(self.b1(self.c1(x)))))
            return torch.relu(y + (x if self.down is None else self.down(x)))

    layers, cin = [nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)], 64
    for cout, n, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for k in range(n):
            layers.append(Block(cin, cout, stride if k == 0 else 1))
            cin = cout
    net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 8)).eval()
    torch.manual_seed(0)
    torch.onnx.export(net, torch.zeros(1, 1, 128, 128), str(path), input_names=["image"], output_names=["xy"],
                      opset_version=17, dynamo=False)
    return path


def _time_reference(paths: list[str], onnx_path: Path) -> list[float]:
    import cv2
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def one(p):
        img = cv2.imread(p, cv2.IMREAD_GRAYSCALE)
        x = cv2.resize(img, (128, 128), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        x = (x - x.mean()) / max(float(x.std()), 1e-3)
        return sess.run(None, {"image": x[None, None]})[0]

    one(paths[0])
    times = []
    for p in paths:
        t0 = time.perf_counter()
        one(p)
        times.append(time.perf_counter() - t0)
    return times


def _time_images(paths: list[str], precision: str = "fp32") -> list[float]:
    from fetalhead.measurement import measure
    from fetalhead.model.runtime import load_model

    model = load_model(threads=1, precision=precision)
    measure(paths[0], 0.1, model=model)  # warm-up
    times = []
    for p in paths:
        t0 = time.perf_counter()
        m = measure(p, 0.1, model=model)
        times.append(time.perf_counter() - t0)
        assert m.status != "failed", m.message
    return times


def _stages(paths: list[str], precision: str) -> dict:
    """Where the time goes (medians, ms): reading and decoding the file, the network's coarse pass (1
    view) and fine pass (the view and its mirror in one batch), and everything else of a measurement
    (ellipse fits, outline evidence, intervals, figures)."""
    from fetalhead.measurement import load_scan, measure_scan
    from fetalhead.model.runtime import load_model

    model = load_model(threads=1, precision=precision)
    calls = []
    predict = model.predict

    def timed(batch):
        t = time.perf_counter()
        out = predict(batch)
        calls.append((batch.shape[0], time.perf_counter() - t))
        return out

    model.predict = timed
    measure_scan(load_scan(paths[0]), 0.1, model=model)
    read, rest, coarse, fine = [], [], [], []
    for p in paths:
        calls.clear()
        t0 = time.perf_counter()
        scan = load_scan(p)
        t1 = time.perf_counter()
        measure_scan(scan, 0.1, model=model)
        t2 = time.perf_counter()
        read.append(t1 - t0)
        coarse += [t for n, t in calls if n == 1]
        fine += [t for n, t in calls if n > 1]
        rest.append(t2 - t1 - sum(t for _, t in calls))
    return {k: 1000 * statistics.median(v) for k, v in
            (("read", read), ("coarse", coarse), ("fine", fine), ("rest", rest)) if v}


def _worker(args) -> int:
    from fetalhead.measurement import measure
    from fetalhead.model.runtime import load_model

    paths, precision = args
    model = load_model(threads=1, precision=precision)
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
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ref_path = _reference_onnx(Path(tmp) / "resnet34_ref.onnx")
        # interleaved, so that both meet the same machine state
        ref, fp32, int8 = [], [], []
        for chunk in (paths[k:k + 10] for k in range(0, len(paths), 10)):
            ref += _time_reference(chunk, ref_path)
            fp32 += _time_images(chunk, "fp32")
            int8 += _time_images(chunk, "int8")
    med_ref = statistics.median(ref)
    ctx = mp.get_context("spawn")
    from fetalhead.model.runtime import DEFAULT_PRECISION, default_model_path

    rates = {}
    with ctx.Pool(2) as pool:
        for precision in ("fp32", "int8"):
            pool.map(_worker, [(paths[:2], precision)] * 2)  # start and load the model in both workers
            t0 = time.perf_counter()
            done = sum(pool.map(_worker, [(paths[0::2], precision), (paths[1::2], precision)]))
            rates[precision] = done / (time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"images: {len(paths)} from {args.images}; default precision {DEFAULT_PRECISION}")
    print(f"reference (ResNet34, 128 x 128, 8 outputs, 1 thread): median {1000 * med_ref:.1f} ms per image")
    for name, times in (("fp32", fp32), ("int8", int8)):
        med = statistics.median(times)
        p90 = sorted(times)[int(0.9 * (len(times) - 1))]
        print(f"fetalhead {name}, end-to-end, 1 thread: median {1000 * med:.1f} ms (90th percentile {1000 * p90:.1f} ms)"
              f" = {med / med_ref:.2f} x the reference; 2 processes x 1 thread: {rates[name]:.1f} images/s; "
              f"model {default_model_path(name).stat().st_size / 1e6:.2f} MB")
    print(f"peak memory of the 1-thread process: {peak_mb:.0f} MB")
    st = _stages(paths[:40], DEFAULT_PRECISION)
    print(f"where the time goes ({DEFAULT_PRECISION}, medians over {min(40, len(paths))} images): read and decode "
          f"{st['read']:.1f} ms, coarse pass {st['coarse']:.1f} ms, fine pass (view + mirror) {st['fine']:.1f} ms, "
          f"the rest {st['rest']:.1f} ms; the reference's whole budget at 0.5 x is {500 * med_ref:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
