"""Real parts for the hospital tests: Debian's Orthanc as the PACS, started on loopback ports and stopped
after, and DCMTK's tools (dcmsend as the scanner, dsrdump as the SR reader). ``make test`` installs both."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

ORTHANC = shutil.which("Orthanc") or shutil.which("Orthanc", path="/usr/sbin:/usr/bin")
DCMSEND = shutil.which("dcmsend")
DSRDUMP = shutil.which("dsrdump")
DCIODVFY = shutil.which("dciodvfy")


class Orthanc:
    """An Orthanc PACS in ``work`` on free loopback ports (AE title ORTHANC), accepting any store."""

    def __init__(self, work: Path, dicom_port: int, http_port: int):
        self.work, self.dicom_port, self.http_port = Path(work), dicom_port, http_port
        self.proc = None

    def start(self) -> "Orthanc":
        self.work.mkdir(parents=True, exist_ok=True)
        config = {"Name": "fetalhead-test-pacs", "StorageDirectory": str(self.work / "db"),
                  "IndexDirectory": str(self.work / "db"), "HttpPort": self.http_port, "DicomPort": self.dicom_port,
                  "DicomAet": "ORTHANC", "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "DicomCheckCalledAet": True, "DicomAlwaysAllowStore": True, "DicomAlwaysAllowEcho": True,
                  "Plugins": [], "HttpServerEnabled": True, "DicomServerEnabled": True, "StorageCompression": False}
        (self.work / "orthanc.json").write_text(json.dumps(config))
        self.log = open(self.work / "orthanc.log", "wb")
        self.proc = subprocess.Popen([ORTHANC, str(self.work / "orthanc.json")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                self.get("/system")
                return self
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.work / "orthanc.log").read_text()[-2000:])
                time.sleep(0.2)
        raise RuntimeError("Orthanc did not start in 30 s")

    def get(self, path: str):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=5) as r:
            return json.loads(r.read())

    def instances(self) -> list[dict]:
        return [self.get(f"/instances/{i}/simplified-tags") for i in self.get("/instances")]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if getattr(self, "log", None):
            self.log.close()
