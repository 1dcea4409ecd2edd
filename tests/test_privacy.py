"""Nothing leaves the machine: a measurement opens no network connection and writes nothing outside
the output and temporary folders (ONNX Runtime's telemetry stays off)."""

import os
import shutil
import subprocess
import sys

import pytest

STRACE = shutil.which("strace")

SCRIPT = """
import sys, time, fetalhead
m = fetalhead.measure(sys.argv[1], 0.13)
fetalhead.measure(sys.argv[1])
print(m.status)
time.sleep(3)  # long enough for a telemetry thread to try
"""


@pytest.mark.skipif(STRACE is None, reason="strace is not installed (make test installs it)")
def test_a_measurement_opens_no_connection_and_writes_no_home_files(tmp_path, samples_dir):
    home = tmp_path / "home"
    home.mkdir()
    log = tmp_path / "strace.log"
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), TMPDIR=str(tmp_path))
    cmd = [STRACE, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg", "-o", str(log), sys.executable, "-c", SCRIPT,
           str(samples_dir / "358_HC.png")]
    if shutil.which("unshare") and os.geteuid() == 0:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode == 0:  # a network namespace with no network at all
            cmd = ["unshare", "-n"] + cmd
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() in ("ok", "flagged")
    calls = [line for line in log.read_text().splitlines()
             if ("AF_INET" in line or "AF_INET6" in line) and ("connect(" in line or "send" in line)]
    assert not calls, calls[:5]
    written = [str(p.relative_to(home)) for p in home.rglob("*")]
    assert written == [], written  # no device id, no event queue, no cache
