"""The DICOM node end to end: scanner (DCMTK dcmsend) -> fetalhead dicom-node -> PACS (Debian's Orthanc).

Makes ultrasound DICOM instances from the bundled scan 358_HC.png (each its own study), starts Orthanc
and the node on free loopback ports, and measures:

* latency: each image sent alone, the time from the start of its store to its SR stored in the PACS
  (median and max over ``--latency-images``);
* throughput: ``--images`` images sent in one association, images per second until every SR and
  overlay capture is stored in the PACS.

Needs Orthanc and DCMTK (``make test`` installs them) and the ``dicom`` extra.

    python bench/node.py [--images 40] [--latency-images 8]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
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
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--latency-images", type=int, default=8)
    args = ap.parse_args(argv)
    if not (ORTHANC and DCMSEND):
        print("Orthanc and DCMTK are needed (make test installs them)", file=sys.stderr)
        return 1
    grey = cv2.imread(str(ROOT / "samples" / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    h, w = grey.shape
    model = load_model(threads=1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = []
        for i in range(args.images + args.latency_images):
            files.append(write_us_dicom(tmp / f"us{i:03d}.dcm", grey, regions=[region(0, 0, w - 1, h - 1, 0.0134737677)]))
        pacs = Orthanc(tmp / "pacs", free_loopback_port(), free_loopback_port()).start()
        port = free_loopback_port()
        node = DicomNode(tmp / "node", port=port, send_to=Destination("ORTHANC", "127.0.0.1", pacs.dicom_port),
                         model=model, poll_s=0.02).start()
        send = [DCMSEND, "-aet", "SCANNER", "-aec", "FETALHEAD", "127.0.0.1", str(port)]
        try:
            latencies = []
            for f in files[:args.latency_images]:
                sr_uid = fetalhead_uid("sr", pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID, 0,
                                       model.version)
                t = time.perf_counter()
                subprocess.run([*send, str(f)], check=True, capture_output=True)
                while not _has(pacs, sr_uid):
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - t)
            start_count = _instances(pacs)
            batch = files[args.latency_images:]
            t = time.perf_counter()
            subprocess.run([*send, *map(str, batch)], check=True, capture_output=True)
            sent_s = time.perf_counter() - t
            while _instances(pacs) < start_count + 2 * len(batch):
                time.sleep(0.05)
            total_s = time.perf_counter() - t
        finally:
            node.stop()
            pacs.stop()
    print(f"scanner -> node -> PACS on loopback, model {model.version}, 1 measuring thread:")
    print(f"  latency, one image alone: median {1000 * statistics.median(latencies):.0f} ms, "
          f"max {1000 * max(latencies):.0f} ms (store, measure, SR + capture sent and stored; n {len(latencies)})")
    print(f"  throughput, {len(batch)} images in one association: {len(batch) / total_s:.1f} images/s "
          f"({total_s:.1f} s; the scanner's sends took {sent_s:.1f} s, acknowledged once journalled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
