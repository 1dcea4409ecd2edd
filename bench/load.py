"""The web server under load, on 127.0.0.1: scans/s, latency percentiles, /health while loaded, memory.

Starts ``fetalhead serve`` (its own process, the default 2 workers) on a free loopback port, then for
1, 8, 16 and 32 concurrent clients posts the bundled scan 358_HC.png to /api/v1/measure for a fixed
time each, while a probe asks /api/v1/health every 50 ms. Prints per level: completed scans/s, the
ratio to 1 client, p50/p95/p99 latency of the scans, 503 answers, /health p99 and the server's RSS.

    python bench/load.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from fetalhead.web.serving import free_loopback_port

ROOT = Path(__file__).resolve().parents[1]


def _body(scan: bytes) -> tuple[bytes, str]:
    b = "loadbench"
    parts = [f'--{b}\r\nContent-Disposition: form-data; name="pixel_size_mm"\r\n\r\n0.1347\r\n'.encode(),
             f'--{b}\r\nContent-Disposition: form-data; name="include_image"\r\n\r\nfalse\r\n'.encode(),
             f'--{b}\r\nContent-Disposition: form-data; name="file"; filename="358_HC.png"\r\n\r\n'.encode()
             + scan + b"\r\n", f"--{b}--\r\n".encode()]
    return b"".join(parts), f"multipart/form-data; boundary={b}"


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def level(port: int, clients: int, seconds: float, body: bytes, ctype: str) -> dict:
    stop = time.time() + seconds
    lat, busy, errors = [], [0], [0]
    health = []
    lock = threading.Lock()

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.time() < stop:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/measure", body=body, headers={"Content-Type": ctype})
                r = conn.getresponse()
                r.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                with lock:
                    errors[0] += 1
                continue
            with lock:
                if r.status == 200:
                    lat.append(time.perf_counter() - t0)
                elif r.status == 503:
                    busy[0] += 1
                else:
                    errors[0] += 1

    def probe():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.time() < stop:
            t0 = time.perf_counter()
            conn.request("GET", "/api/v1/health")
            conn.getresponse().read()
            health.append(time.perf_counter() - t0)
            time.sleep(0.05)

    threads = [threading.Thread(target=client) for _ in range(clients)] + [threading.Thread(target=probe)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a = np.array(lat) * 1000 if lat else np.array([np.nan])
    return {"clients": clients, "scans_per_s": len(lat) / seconds, "p50": np.percentile(a, 50),
            "p95": np.percentile(a, 95), "p99": np.percentile(a, 99), "busy": busy[0], "errors": errors[0],
            "health_p99": np.percentile(np.array(health) * 1000, 99) if health else float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--levels", default="1,8,16,32")
    args = ap.parse_args(argv)
    port = free_loopback_port()
    env = dict(os.environ, OMP_NUM_THREADS="1")
    srv = subprocess.Popen([sys.executable, "-m", "fetalhead.cli", "serve", "--port", str(port)], env=env,
                           stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                c.request("GET", "/api/v1/health")
                c.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
        body, ctype = _body((ROOT / "samples" / "358_HC.png").read_bytes())
        level(port, 2, 2.0, body, ctype)  # warm-up
        print(f"{os.cpu_count()} CPU cores; server: fetalhead serve (2 workers); {args.seconds:g} s per level")
        print(f"{'clients':>7} {'scans/s':>8} {'x 1 cl.':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'503':>5} "
              f"{'errors':>6} {'health p99 ms':>13} {'RSS MB':>7}")
        base = None
        for n in (int(x) for x in args.levels.split(",")):
            r = level(port, n, args.seconds, body, ctype)
            base = base or r["scans_per_s"]
            print(f"{n:>7} {r['scans_per_s']:>8.1f} {r['scans_per_s'] / base:>7.2f} {r['p50']:>7.0f} {r['p95']:>7.0f} "
                  f"{r['p99']:>7.0f} {r['busy']:>5} {r['errors']:>6} {r['health_p99']:>13.1f} {_rss_mb(srv.pid):>7.0f}",
                  flush=True)
    finally:
        srv.terminate()
        srv.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
