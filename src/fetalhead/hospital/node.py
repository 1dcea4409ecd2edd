"""A DICOM node beside the PACS: receives ultrasound images and cine loops (C-STORE), measures each,
and sends the SR and the overlay capture on to a destination (extra ``dicom``: pydicom, pynetdicom,
highdicom).

``fetalhead dicom-node --port 11112 --ae-title FETALHEAD --send-to PACS@10.0.0.5:104 --work-dir DIR``

Nothing is lost, everything is on disk in ``DIR`` (a journal by folders, so a restart carries on):

* ``incoming/<SOPInstanceUID>.dcm``: each received instance is written (and synced) there *before*
  the C-STORE is acknowledged; a scanner whose store failed can resend;
* ``outbox/<SOPInstanceUID>/``: the SR and overlay made from it, with ``state.json`` (attempts, next
  try, last error); the received file is then deleted (the PACS holds the original);
* ``sent/<SOPInstanceUID>.json`` once both were accepted by the destination; ``failed/<UID>.json``
  for a received instance that could not be measured (the reason; nothing is sent);
* a send that fails (destination down, refused) is retried with back-off (1 s, 2 s, 4 s, ... at most
  :data:`MAX_RETRY_DELAY_S`), also after a restart. Each file is marked sent the moment the
  destination accepts it, so it is not sent again; if the node stops between the acceptance and the
  mark, the same file (same SOP Instance UID, derived from the source) is sent once more, which a PACS
  stores once: each result is stored exactly once.

Logs (``node.log``) and status hold UIDs and reasons, never patient data. ``--status`` prints the
queue. C-ECHO is answered. Calling AE titles can be restricted (``--allow-calling-ae``), and so can the
addresses a connection may come from (``--allow-ip CIDR``: others are closed before any DICOM is read,
and logged), the number of associations (``--max-associations``) and of instances waiting to be
measured (``--max-queue``: beyond it a store is refused with "out of resources", A700, so the sender
keeps it and retries). ``--workers N`` measuring threads take the waiting instances oldest first, each
instance claimed by one of them, so that one long cine loop does not hold up the images behind it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DicomNode", "Destination", "parse_destination", "parse_networks", "node_status", "MAX_RETRY_DELAY_S",
           "DEFAULT_WORKERS"]

#: Numbers the node objects of a process, each with a logger of its own.
_NODE_SERIAL = itertools.count()
#: The longest wait between two tries to send a result (seconds).
MAX_RETRY_DELAY_S = 300.0
#: C-STORE answers that will not change on a retry (PS3.4 Annex B, PS3.7 Annex C): refused (0xA9xx:
#: data set does not match the SOP class; 0xCxxx: cannot understand), SOP class not supported (0x0122),
#: not authorised (0x0124), invalid SOP instance (0x0117). The result goes to the dead-letter folder.
#: Anything else (0xA7xx out of resources, 0x0110 processing failure, a lost connection) is retried.
def is_permanent_refusal(status: int) -> bool:
    return 0xA900 <= status <= 0xA9FF or 0xC000 <= status <= 0xCFFF or status in (0x0122, 0x0124, 0x0117)


class StoreRefused(ConnectionError):
    """The PACS answered a C-STORE with a failure status."""

    def __init__(self, message: str, status: int | None):
        super().__init__(message)
        self.status = status

    @property
    def permanent(self) -> bool:
        return self.status is not None and is_permanent_refusal(self.status)


#: Free space the node keeps on its work folder's disk (bytes): below it new stores are answered "out of
#: resources" (A700; the scanner keeps the image and retries) so that the journal, the SRs and the log can
#: still be written: a full disk otherwise deadlocked the node on its own journal.
MIN_FREE_BYTES = 256 * 1024 * 1024

#: Associations at once: a department's scanners, a PACS and a modality worklist broker together
#: (4 was too few: the fifth scanner was refused).
MAX_ASSOCIATIONS = 16
#: Measuring threads: two, so that one long cine loop (seconds to measure) does not hold up the images
#: received after it, while a 2-core node still has a core for receiving and sending.
DEFAULT_WORKERS = 2
_OUT_OF_RESOURCES = 0xA700
_NOT_MATCHING_SOP_CLASS = 0xA900  # "Error: Data Set does not match SOP Class"
_CANNOT_UNDERSTAND = 0xC000


@dataclass
class Destination:
    ae_title: str
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


def parse_destination(text: str) -> Destination:
    """``AET@HOST:PORT`` -> :class:`Destination`; ``ValueError`` naming what is wrong."""
    try:
        aet, rest = text.split("@", 1)
        host, port = rest.rsplit(":", 1)
        port_n = int(port)
    except ValueError:
        raise ValueError(f"--send-to {text!r}: expected AET@HOST:PORT, e.g. PACS@10.0.0.5:104") from None
    if not aet or len(aet) > 16 or not host or not 0 < port_n < 65536:
        raise ValueError(f"--send-to {text!r}: the AE title is 1-16 characters and the port 1-65535")
    return Destination(aet, host, port_n)


def parse_networks(texts) -> list:
    """``--allow-ip`` values (an address or a CIDR network, IPv4 or IPv6) -> ``ipaddress`` networks;
    ``ValueError`` naming the value that is not one."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(str(text).strip(), strict=False))
        except ValueError:
            raise ValueError(f"--allow-ip {text!r}: expected an address or a network, e.g. 10.1.2.0/24") from None
    return networks


def _address_in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(str(address).split("%")[0])
    except ValueError:
        return False
    if getattr(ip, "ipv4_mapped", None):  # ::ffff:10.1.2.3 from a dual-stack socket
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a ``.part`` file synced, then renamed); a write that fails (a
    full disk) removes its ``.part`` file, so that it takes no more room."""
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(work: Path) -> int:
    """Delete the ``.part`` and ``.tmp`` files an interrupted run left (writes that never completed:
    the file they were for was never renamed into place); return how many."""
    removed = 0
    for pattern in ("**/*.part", "**/*.tmp"):
        for f in work.glob(pattern):
            try:
                f.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def _json(path: Path, obj) -> None:
    _write_atomic(path, json.dumps(obj, indent=2).encode())


def _safe_uid(uid: str) -> str:
    uid = str(uid).strip()
    if not uid or len(uid) > 64 or any(ch not in "0123456789." for ch in uid):
        raise ValueError(f"not a DICOM UID: {uid[:70]!r}")
    return uid


def node_status(work_dir: str | Path) -> dict:
    """The queue in ``work_dir``: instances waiting to be measured, results waiting to be sent (with
    their last error), sent, and instances that could not be measured (with the reason)."""
    work = Path(work_dir)
    waiting_send, failed_send = [], []
    for d in sorted((work / "outbox").glob("*")) if (work / "outbox").is_dir() else []:
        try:
            state = json.loads((d / "state.json").read_text())
        except (OSError, ValueError):
            state = {}
        item = {"uid": d.name, "attempts": state.get("attempts", 0), "last_error": state.get("last_error")}
        (failed_send if state.get("last_error") else waiting_send).append(item)
    dead = []
    for d in sorted((work / "dead-letter").glob("*")) if (work / "dead-letter").is_dir() else []:
        try:
            state = json.loads((d / "state.json").read_text())
        except (OSError, ValueError):
            state = {}
        dead.append({"uid": d.name, "status_code": state.get("status_code"), "reason": state.get("last_error")})
    failed = []
    for f in sorted((work / "failed").glob("*.json")) if (work / "failed").is_dir() else []:
        try:
            failed.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            failed.append({"uid": f.stem, "reason": "unreadable record"})
    return {"received_waiting": len(list((work / "incoming").glob("*.dcm"))) if (work / "incoming").is_dir() else 0,
            "to_send": len(waiting_send) + len(failed_send), "send_retrying": failed_send,
            "sent": len(list((work / "sent").glob("*.json"))) if (work / "sent").is_dir() else 0,
            "not_measured": failed, "dead_letter": dead}


def tls_server_context(cert: str | Path, key: str | Path, ca: str | Path | None = None):
    """The node's TLS context for DICOM TLS (PS3.15 B.1; BCP 195: TLS 1.2 or newer, forward-secret AEAD
    ciphers): the node's certificate chain and key; with ``ca``, clients must present a certificate
    signed by it (mutual authentication). Raises ``ValueError`` naming the file that is wrong."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM")  # TLS 1.3 suites are always on
    ctx.options |= ssl.OP_NO_COMPRESSION
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"--tls-cert {cert} / --tls-key {key}: not a usable certificate and key ({exc})") from None
    if ca:
        try:
            ctx.load_verify_locations(str(ca))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"--tls-ca {ca}: not a usable CA certificate ({exc})") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class DicomNode:
    """The storage SCP, the measuring worker and the sender; :meth:`start` runs all three in threads."""

    def __init__(self, work_dir: str | Path, *, ae_title: str = "FETALHEAD", host: str = "127.0.0.1",
                 port: int = 11112, send_to: Destination | None = None, allowed_calling_aets=(),
                 max_associations: int = MAX_ASSOCIATIONS, max_queue: int = 1000, model=None, retry_base_s: float = 1.0,
                 poll_s: float = 0.2, min_free_bytes: int = MIN_FREE_BYTES, ssl_context=None, allowed_ips=(),
                 workers: int = DEFAULT_WORKERS):
        self.work = Path(work_dir)
        for sub in ("incoming", "outbox", "sent", "failed"):
            (self.work / sub).mkdir(parents=True, exist_ok=True)
        self.min_free_bytes = int(min_free_bytes)
        self.ssl_context = ssl_context  # DICOM TLS on the listening port (tls_server_context)
        stale = _remove_stale_temporaries(self.work)
        self.ae_title, self.host, self.port = ae_title, host, int(port)
        self.send_to, self.allowed = send_to, [a.strip() for a in allowed_calling_aets if a.strip()]
        self.max_associations, self.max_queue = int(max_associations), int(max_queue)
        self.allowed_networks = parse_networks(allowed_ips)
        if int(workers) < 1:
            raise ValueError(f"--workers {workers}: at least 1")
        self.workers = int(workers)
        self._claim_lock = threading.Lock()
        self._claimed: set[str] = set()  # instances a worker is measuring now
        self.retry_base_s, self.poll_s = float(retry_base_s), float(poll_s)
        self._model = model
        self._stop = threading.Event()
        # wake-ups: a store journalled wakes the measuring workers, a result written wakes the sender (the
        # folders are still polled every poll_s, which finds what an earlier run left)
        self._received, self._measured = threading.Event(), threading.Event()
        self._write_retry: dict[str, tuple[int, float]] = {}  # uid -> (local write failures, next try)
        self._threads: list[threading.Thread] = []
        self._server = None
        # a logger of its own per node object: named by a counter, not id(self), which a later node can
        # reuse once this one is gone (logging keeps every logger, and its handler would still write into
        # the old node's folder)
        self.log = logging.getLogger(f"fetalhead.hospital.node.{next(_NODE_SERIAL)}")
        self.log.propagate = False
        self.log.setLevel(logging.INFO)
        self._open_log()
        if stale:
            self.log.info("removed %d unfinished temporary file(s) left by an earlier run", stale)

    def _open_log(self) -> None:
        if not self.log.handlers:
            handler = logging.FileHandler(self.work / "node.log")
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            self.log.addHandler(handler)

    # --- receiving --------------------------------------------------------------------------
    def _on_echo(self, event) -> int:
        return 0x0000

    def _on_store(self, event) -> int:
        try:
            uid = _safe_uid(event.request.AffectedSOPInstanceUID)
        except ValueError:
            return _CANNOT_UNDERSTAND
        why = self._refusal(event)
        if why:
            self.log.warning("refused %s from %s: %s", uid, event.assoc.requestor.ae_title, why)
            return _NOT_MATCHING_SOP_CLASS
        free = shutil.disk_usage(self.work).free
        data = getattr(event.request, "DataSet", None)
        size = data.getbuffer().nbytes if hasattr(data, "getbuffer") else 0
        if free < self.min_free_bytes + size:
            self.log.warning("refused %s: %d MB free on the work folder's disk, under the %d MB kept free",
                             uid, free // 2**20, self.min_free_bytes // 2**20)
            return _OUT_OF_RESOURCES
        if len(list((self.work / "incoming").glob("*.dcm"))) >= self.max_queue:
            self.log.warning("refused %s: %d instances wait to be measured (--max-queue)", uid, self.max_queue)
            return _OUT_OF_RESOURCES
        try:
            _write_atomic(self.work / "incoming" / f"{uid}.dcm", event.encoded_dataset())
        except OSError as exc:
            self.log.error("could not journal %s: %s", uid, exc.strerror or exc)
            return _OUT_OF_RESOURCES
        self.log.info("received %s from %s", uid, event.assoc.requestor.ae_title)
        self._received.set()
        return 0x0000

    def _on_rejected(self, event) -> None:
        """A refused association, logged with who asked and the likely reason (a PACS admin's first
        question when a scanner says 'association rejected')."""
        req = event.assoc.requestor
        calling = str(getattr(req, "ae_title", "") or "").strip()
        if self.allowed and calling not in self.allowed:
            why = "calling AE title not allowed (--allow-calling-ae)"
        elif getattr(req, "requested_ae_title", None) not in (None, self.ae_title) and \
                str(req.requested_ae_title).strip() != self.ae_title:
            why = f"called AE title is not {self.ae_title}"
        elif len(getattr(self._server, "active_associations", [])) > self.max_associations:
            why = f"association limit reached ({self.max_associations}, --max-associations)"
        else:
            why = "refused by the association rules"
        self.log.warning("association from %s (%s) rejected: %s", calling or "?", getattr(req, "address", "?"), why)

    def _on_aborted(self, event) -> None:
        req = event.assoc.requestor
        self.log.warning("association from %s (%s) aborted (e.g. no presentation context accepted)",
                         str(getattr(req, "ae_title", "") or "?").strip(), getattr(req, "address", "?"))

    @staticmethod
    def _refusal(event) -> str:
        """Why a received dataset is not an ultrasound image to measure ("" when it is): answered at once
        with a failure status rather than journalled (no patient data in the reason)."""
        from ..scans.dicom import not_ultrasound_reason

        try:
            ds = event.dataset
            why = not_ultrasound_reason(ds)
            if why:
                return why.split(";")[0]
            if "PixelData" not in ds:
                return "no pixel data"
            int(ds.Rows), int(ds.Columns)
        except Exception as exc:  # a dataset that does not even parse
            return f"unreadable dataset ({type(exc).__name__})"
        return ""

    def _application_entity(self):
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES
        from pynetdicom.sop_class import (UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, Verification)

        ae = AE(ae_title=self.ae_title)
        for sop in (UltrasoundImageStorage, UltrasoundMultiFrameImageStorage):
            ae.add_supported_context(sop, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_called_aet = True
        if self.allowed:
            ae.require_calling_aet = self.allowed
        ae.maximum_associations = self.max_associations
        return ae

    # --- measuring --------------------------------------------------------------------------
    def _model_or_load(self):
        with self._claim_lock if self._model is None else contextlib.nullcontext():  # loaded once, by one worker
            if self._model is None:
                from ..model.runtime import load_model

                self._model = load_model()
        return self._model

    def _measure(self, path: Path):
        """The measurement of the instance in ``path`` and the scan of its frame (a cine loop: the best
        frame, chosen as ``fetalhead measure --frames best`` chooses it)."""
        from ..measurement import load_scan, measure_loop

        scan = load_scan(path, path.name)
        (m,) = measure_loop(path, frames="best", model=self._model_or_load(), source=path.name, first=scan)
        if m.status != "failed" and m.frame != scan.frame:
            scan = load_scan(path, path.name, m.frame, sha256=scan.sha256)
        return m, scan

    def process_once(self, now: float | None = None) -> int:
        """Measure every received instance waiting and not claimed by another worker, oldest first;
        return how many this call handled.

        An instance that cannot be measured goes to ``failed/`` with the reason. A *local write error*
        (an unwritable or full outbox) is no verdict on the scan: the received instance is kept and
        tried again with back-off, since the scanner, which got Success, will not send it again.
        Several workers may call this at once: each instance is claimed by one of them (a lock and
        a set in memory: after a restart every waiting instance is free again, and measuring one
        twice gives the same results, the same UIDs)."""
        now = time.time() if now is None else now
        handled = 0
        for path, _ in sorted(self._waiting(), key=lambda item: item[1]):
            uid = path.stem
            if self._write_retry.get(uid, (0, 0.0))[1] > now:
                continue
            with self._claim_lock:
                if uid in self._claimed:
                    continue
                self._claimed.add(uid)
            try:
                if path.exists():  # another worker may have finished it since the folder was listed
                    handled += self._process(path, uid, now)
            finally:
                with self._claim_lock:
                    self._claimed.discard(uid)
            if self._stop.is_set():
                break
        return handled

    def _waiting(self):
        """(path, mtime) of the received instances; those gone while listing are left out."""
        for path in (self.work / "incoming").glob("*.dcm"):
            try:
                yield path, path.stat().st_mtime
            except OSError:
                continue

    def _process(self, path: Path, uid: str, now: float) -> int:
        """Measure one received instance and write its results to the outbox; 1 when it is done with
        (results written, or recorded as not measurable), 0 when it is kept for another try."""
        from .sr import write_hospital_dicom
        from ..scans.imageio import ScanReadError

        out = self.work / "outbox" / uid
        try:
            m, scan = self._measure(path)
            if m.status == "failed" or m.head_circumference_mm is None:
                raise ValueError(f"not measured: {m.failure or 'no pixel spacing'}")
            out.mkdir(exist_ok=True)
            model = self._model_or_load()
            written = write_hospital_dicom(m, scan, out, model_version=model.version,
                                           model_sha256=(getattr(model, "metadata", None) or {}).get("sha256", ""))
            _json(out / "state.json", {"attempts": 0, "next_try": 0.0, "last_error": None,
                                       "status": m.status, "frame": m.frame})
            self.log.info("measured %s frame %d: %s, SR %s", uid, m.frame, m.status, written[0].name)
            self._measured.set()
        except OSError as exc:  # local: keep the instance, try again later
            tries = self._write_retry.get(uid, (0, 0.0))[0] + 1
            delay = min(MAX_RETRY_DELAY_S, self.retry_base_s * 2 ** (tries - 1))
            self._write_retry[uid] = (tries, now + delay)
            self.log.error("could not write the results of %s (try %d, next in %.0f s): %s; the received "
                           "instance is kept", uid, tries, delay, exc.strerror or exc)
            return 0
        except (ScanReadError, ValueError, RuntimeError) as exc:
            _json(self.work / "failed" / f"{uid}.json", {"uid": uid, "reason": str(exc).replace(str(path), uid)})
            self.log.warning("could not measure %s: %s", uid, type(exc).__name__)
        self._write_retry.pop(uid, None)
        path.unlink(missing_ok=True)
        return 1

    # --- sending ----------------------------------------------------------------------------
    def send_once(self, now: float | None = None) -> int:
        """Send every result due, over one association; return how many results were completely sent.
        A failure (no association, a refused store) counts as a try for each result not yet sent."""
        if self.send_to is None:
            return 0
        now = time.time() if now is None else now
        due = []
        for out in sorted(p for p in (self.work / "outbox").glob("*") if p.is_dir()):
            try:
                state = json.loads((out / "state.json").read_text())
            except (OSError, ValueError):
                continue  # still being written
            if state.get("next_try", 0) <= now:
                due.append((out, state))
        if not due:
            return 0
        done = tried = 0
        try:
            with self._association() as assoc:
                for out, state in due:
                    tried += 1
                    try:
                        # the SR first: it is what a reading package waits for, the capture follows
                        self._c_store(assoc, sorted(out.glob("*.dcm"), key=lambda f: (not f.name.endswith("_sr.dcm"),
                                                                                      f.name)))
                    except StoreRefused as exc:  # this result only: the others are still tried
                        if exc.permanent:
                            self._dead_letter(out, state, exc)
                        else:
                            self._mark_failed(out, state, now, exc)
                        if not assoc.is_established:
                            raise ConnectionError(f"{self.send_to} ended the association") from None
                        continue
                    self._mark_sent(out, state)
                    done += 1
        except Exception as exc:  # no association, or it broke: the results not yet tried wait their turn
            for out, state in due[tried:]:
                self._mark_failed(out, state, now, exc)
        return done

    def _dead_letter(self, out: Path, state: dict, exc: StoreRefused) -> None:
        """A result the PACS refuses for good: moved to ``dead-letter/`` with the reason, never retried."""
        target = self.work / "dead-letter" / out.name
        target.parent.mkdir(exist_ok=True)
        state.update(attempts=int(state.get("attempts", 0)) + 1, last_error=str(exc)[:300],
                     status_code=f"0x{exc.status:04X}", dead_lettered_at=time.time())
        _json(out / "state.json", state)
        if target.exists():
            shutil.rmtree(target)
        out.rename(target)
        self.log.error("ALERT: the result of %s was refused for good by %s (status 0x%04X) and moved to "
                       "dead-letter/: %s", out.name, self.send_to, exc.status, str(exc)[:200])

    def _mark_sent(self, out: Path, state: dict) -> None:
        _json(self.work / "sent" / f"{out.name}.json", {"uid": out.name, "sent_to": str(self.send_to),
                                                        "attempts": int(state.get("attempts", 0)) + 1,
                                                        "sent_at": time.time()})
        for f in out.iterdir():
            f.unlink()
        out.rmdir()
        self.log.info("sent results of %s to %s", out.name, self.send_to)

    def _mark_failed(self, out: Path, state: dict, now: float, exc: Exception) -> None:
        state["attempts"] = int(state.get("attempts", 0)) + 1
        delay = min(MAX_RETRY_DELAY_S, self.retry_base_s * 2 ** (state["attempts"] - 1))
        state.update(next_try=now + delay, last_error=str(exc)[:300])
        _json(out / "state.json", state)
        self.log.warning("send of %s to %s failed (try %d, next in %.0f s): %s", out.name, self.send_to,
                         state["attempts"], delay, str(exc)[:200])

    @contextlib.contextmanager
    def _association(self):
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
        from pynetdicom import AE
        from pynetdicom.sop_class import ComprehensiveSRStorage, SecondaryCaptureImageStorage

        ae = AE(ae_title=self.ae_title)
        for sop in (ComprehensiveSRStorage, SecondaryCaptureImageStorage):
            # the files' own transfer syntax (sent as written), and the one every SCP supports
            ae.add_requested_context(sop, ExplicitVRLittleEndian)
            ae.add_requested_context(sop, ImplicitVRLittleEndian)
        d = self.send_to
        assoc = ae.associate(d.host, d.port, ae_title=d.ae_title)
        if not assoc.is_established:
            raise ConnectionError(f"no association with {d} (refused, rejected or unreachable)")
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _c_store(self, assoc, files: list[Path]) -> None:
        import pydicom
        from pynetdicom import _config

        # a file's data set is sent as written, not read and encoded again (the SR's encoding takes
        # longer than building it); when the PACS took only another transfer syntax, it is converted
        _config.STORE_SEND_CHUNKED_DATASET = True
        for f in files:
            if f.name.endswith(".sent.dcm"):
                continue
            try:
                status = assoc.send_c_store(f)
            except ValueError:  # no presentation context accepted in the file's transfer syntax
                status = assoc.send_c_store(pydicom.dcmread(f))
            code = getattr(status, "Status", None)
            if code is None:
                raise ConnectionError(f"{self.send_to} gave no C-STORE answer for {f.name} (association lost?)")
            if code not in (0x0000, 0xB000, 0xB007, 0xB006):
                raise StoreRefused(f"{self.send_to} answered C-STORE status 0x{code:04X} for {f.name}", int(code))
            f.rename(f.with_name(f.stem + ".sent.dcm"))  # accepted: never sent again

    # --- running ----------------------------------------------------------------------------
    def _loop(self, fn, wake: threading.Event) -> None:
        while not self._stop.is_set():
            wake.clear()  # before the round: what arrives during it wakes the next one at once
            try:
                fn()
            except Exception as exc:  # a bug in one round never stops the node
                self.log.error("%s: %s", fn.__name__, exc)
            wake.wait(self.poll_s)

    def start(self) -> "DicomNode":
        from pynetdicom import evt

        self._open_log()  # again after a stop()
        ae = self._application_entity()
        self._server = ae.start_server((self.host, self.port), block=False, ssl_context=self.ssl_context,
                                       evt_handlers=[(evt.EVT_C_STORE, self._on_store), (evt.EVT_C_ECHO, self._on_echo),
                                                     (evt.EVT_REJECTED, self._on_rejected),
                                                     (evt.EVT_ABORTED, self._on_aborted)])
        if self.allowed_networks:
            self._guard_addresses(self._server)
        loops = [(self.process_once, self._received, f"measure-{i + 1}") for i in range(self.workers)]
        loops.append((self.send_once, self._measured, "send"))
        for fn, wake, name in loops:
            t = threading.Thread(target=self._loop, args=(fn, wake), daemon=True, name=f"fetalhead-node-{name}")
            t.start()
            self._threads.append(t)
        self.log.info("listening as %s on %s:%d%s%s, %d measuring worker(s), sending to %s", self.ae_title, self.host,
                      self.port, " (DICOM TLS)" if self.ssl_context else "",
                      f", from {', '.join(map(str, self.allowed_networks))} only" if self.allowed_networks else "",
                      self.workers, self.send_to or "nobody (results stay in outbox)")
        return self

    def _guard_addresses(self, server) -> None:
        """Close connections from addresses outside ``--allow-ip`` as they are accepted, before TLS or any
        DICOM is read, with a log line (pynetdicom's ``get_request``, with the address checked first)."""
        def get_request():
            client, address = server.socket.accept()
            if not _address_in(address[0], self.allowed_networks):
                self.log.warning("connection from %s refused: address not in --allow-ip", address[0])
                with contextlib.suppress(OSError):
                    client.close()
                raise OSError(f"connection from {address[0]} refused")  # socketserver drops the request
            if server.ssl_context:
                client = server.ssl_context.wrap_socket(client, server_side=True)
            return client, address

        server.get_request = get_request

    def stop(self) -> None:
        self._stop.set()
        self._received.set()
        self._measured.set()
        if self._server is not None:
            self._server.shutdown()
        for t in self._threads:
            t.join(timeout=30)
        self.log.info("stopped")
        for handler in list(self.log.handlers):  # the file is closed; a node started again opens it anew
            self.log.removeHandler(handler)
            handler.close()
