"""The DICOM node end to end: scanner (DCMTK dcmsend) -> fetalhead dicom-node -> PACS (Debian's Orthanc).

Makes ultrasound DICOM instances from the bundled scan 358_HC.png (each its own study), starts Orthanc
and the node on free loopback ports, and measures:

* latency: each image sent alone, the time from the start of its store to its SR stored in the PACS
  (median and p95 over ``--latency-images``), and where that time goes (the scanner's store until it is
  acknowledged, the wait for a measuring worker, measuring, building and writing the SR and the overlay
  capture, the wait for the sender and its association, the two C-STOREs, and the PACS's answer to a
  lookup);
* throughput: ``--images`` images sent by 1 scanner (one association) and by 8 scanners at once (8
  associations, the images shared out), images per second until every SR and overlay capture is
  stored in the PACS; with ``--workers`` measuring threads (default: 1 and 2).

Needs Orthanc and DCMTK (``make test`` installs them) and the ``dicom`` extra.

    python bench/node.py [--images 48] [--latency-images 20] [--workers 1 2] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _instances(pacs) -> int:
    return len(pacs.get("/instances"))


def _has(pacs, sop_uid: str) -> bool:
    req = urllib.request.Request(f"http://127.0.0.1:{pacs.http_port}/tools/lookup", data=sop_uid.encode(),
                                 method="POST")
    with urllib.request.urlopen(req, timeout=5) as r:
        return bool(json.loads(r.read()))


def _p95(values):
    values = sorted(values)
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]


def _instrument(node, marks: dict) -> None:
    """Record, per received instance, when its measuring started and ended, when its results were
    written and when their C-STOREs started and ended (``time.perf_counter``)."""
    measure, process, c_store = node._measure, node._process, node._c_store

    def timed_measure(path):
        marks.setdefault(path.stem, {})["measure_start"] = time.perf_counter()
        out = measure(path)
        marks[path.stem]["measure_end"] = time.perf_counter()
        return out

    def timed_process(path, uid, now):
        out = process(path, uid, now)
        marks.setdefault(uid, {})["written"] = time.perf_counter()
        return out

    def timed_c_store(assoc, files):
        uid = files[0].parent.name if files else ""
        marks.setdefault(uid, {})["send_start"] = time.perf_counter()
        c_store(assoc, files)
        marks[uid]["send_end"] = time.perf_counter()

    node._measure, node._process, node._c_store = timed_measure, timed_process, timed_c_store


def main(argv=None) -> int:
    import cv2
    import pydicom

    from fetalhead.hospital.node import Destination, DicomNode
    from fetalhead.hospital.sr import fetalhead_uid
    from fetalhead.model.runtime import load_model
    from fetalhead.web.serving import free_loopback_port
    from tests.dicom_fixtures import region, write_us_dicom
    from tests.hospital_fixtures import DCMSEND, ORTHANC, Orthanc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=48, help="images of each throughput run (default 48)")
    ap.add_argument("--latency-images", type=int, default=20, help="images sent one by one (default 20)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="measuring threads to try (default 1 2)")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = ap.parse_args(argv)
    if not (ORTHANC and DCMSEND):
        print("Orthanc and DCMTK are needed (make test installs them)", file=sys.stderr)
        return 1
    grey = cv2.imread(str(ROOT / "samples" / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    h, w = grey.shape
    model = load_model(threads=1)
    latency_rows, throughput_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_files = args.latency_images + 2 * args.images * len(args.workers)
        files = [write_us_dicom(tmp / f"us{i:04d}.dcm", grey, regions=[region(0, 0, w - 1, h - 1, 0.0134737677)])
                 for i in range(n_files)]
        pool = iter(files)
        pacs = Orthanc(tmp / "pacs", free_loopback_port(), free_loopback_port()).start()
        try:
            for k, workers in enumerate(args.workers):
                port = free_loopback_port()
                node = DicomNode(tmp / f"node{k}", port=port, workers=workers, model=model,
                                 send_to=Destination("ORTHANC", "127.0.0.1", pacs.dicom_port))
                marks: dict = {}
                _instrument(node, marks)
                node.start()
                send = [DCMSEND, "-aet", "SCANNER", "-aec", "FETALHEAD", "127.0.0.1", str(port)]
                try:
                    if k == 0:  # latency once, with the first worker count (one image at a time)
                        for _ in range(args.latency_images):
                            f = next(pool)
                            uid = str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
                            sr_uid = fetalhead_uid("sr", uid, 0, model.version)
                            t0 = time.perf_counter()
                            subprocess.run([*send, str(f)], check=True, capture_output=True)
                            acked = time.perf_counter()
                            while not _has(pacs, sr_uid):
                                time.sleep(0.005)
                            m = marks.get(uid, {})
                            m.update(t0=t0, acked=acked, in_pacs=time.perf_counter())
                            latency_rows.append(m)
                    for scanners in (1, 8):
                        batch = [next(pool) for _ in range(args.images)]
                        start_count = _instances(pacs)
                        t = time.perf_counter()
                        procs = [subprocess.Popen([*send, *map(str, batch[i::scanners])], stdout=subprocess.DEVNULL,
                                                  stderr=subprocess.DEVNULL) for i in range(scanners)]
                        for p in procs:
                            if p.wait() != 0:
                                raise RuntimeError(f"dcmsend failed ({p.returncode})")
                        sent_s = time.perf_counter() - t
                        while _instances(pacs) < start_count + 2 * len(batch):
                            time.sleep(0.05)
                        total_s = time.perf_counter() - t
                        throughput_rows.append((workers, scanners, len(batch), total_s, sent_s))
                finally:
                    node.stop()
        finally:
            pacs.stop()
    _print(args, model, latency_rows, throughput_rows)
    return 0


def _print(args, model, latency_rows, throughput_rows) -> None:
    md = args.markdown
    ms = [1000 * (r["in_pacs"] - r["t0"]) for r in latency_rows]
    stages = [("store received and journalled, until a worker starts measuring", "t0", "measure_start"),
              ("measuring (read, model, ellipse, figures)", "measure_start", "measure_end"),
              ("SR and overlay capture built and written", "measure_end", "written"),
              ("wait for the sender, association with the PACS", "written", "send_start"),
              ("the SR's C-STORE until the PACS's lookup finds it", "send_start", "in_pacs"),
              ("(the scanner's view: dcmsend started until it exited)", "t0", "acked")]
    load = os.getloadavg()[0]
    print(f"scanner -> node -> PACS (Orthanc) on loopback, model {model.version}, {os.cpu_count()} cores, "
          f"load average {load:.1f}; latency with {args.workers[0]} measuring worker(s), n {len(ms)}:")
    if md:
        print("\n| store to SR in the PACS | median | p95 |\n|---|---:|---:|")
        print(f"| total | {statistics.median(ms):.0f} ms | {_p95(ms):.0f} ms |")
    else:
        print(f"  total: median {statistics.median(ms):.0f} ms, p95 {_p95(ms):.0f} ms")
    for label, a, b in stages:
        values = [1000 * (r[b] - r[a]) for r in latency_rows if a in r and b in r]
        if not values:
            continue
        if md:
            print(f"| {label} | {statistics.median(values):.0f} ms | {_p95(values):.0f} ms |")
        else:
            print(f"    {label}: median {statistics.median(values):.0f} ms, p95 {_p95(values):.0f} ms")
    if md:
        print("\n| measuring workers | scanners at once | images | images/s | all SRs and captures in the PACS |"
              "\n|---:|---:|---:|---:|---:|")
    else:
        print("throughput (every SR and overlay capture stored in the PACS):")
    for workers, scanners, n, total_s, sent_s in throughput_rows:
        if md:
            print(f"| {workers} | {scanners} | {n} | {n / total_s:.1f} | {total_s:.1f} s |")
        else:
            print(f"  {workers} worker(s), {scanners} scanner(s) at once, {n} images: {n / total_s:.1f} images/s "
                  f"({total_s:.1f} s; the scanners' sends took {sent_s:.1f} s, acknowledged once journalled)")


if __name__ == "__main__":
    sys.exit(main())
