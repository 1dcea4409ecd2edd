"""The local record: one SQLite file (stdlib ``sqlite3``) in WAL mode, with a schema version and migrations.

Tables: ``patients`` (the clinic's patient ID; name, age optional), ``visits`` (exam date, LMP or GA by
dates, sonographer, typed AC/FL, notes), ``measurements`` (a measurement this server issued, as JSON, its
figures, and its picture as a PNG BLOB) and ``audit`` (who saved, changed, viewed a report of, exported
or deleted what, and when; the login's user name, ``local`` without a login).

Reliability: every change is one transaction (``BEGIN IMMEDIATE``), so a process killed while saving
loses at most the measurement it was saving; WAL with ``synchronous=FULL`` keeps the file whole
(``PRAGMA integrity_check``); writers wait for each other (``busy_timeout``), so two browsers saving to one
visit at once both land. Each call opens its own connection: safe from any thread or process.

Privacy: patient fields are kept only here and in the reports a user asks for; this module logs nothing
and names no file after a patient. Erasure (:meth:`Records.delete_patient`) removes the patient's rows and
pictures with ``secure_delete`` on (freed pages zeroed) and checkpoints the WAL, and the patient ID in the
audit trail is replaced by a random token.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as _dt
import json
import os
import secrets
import sqlite3
from pathlib import Path

__all__ = ["Records", "RecordError", "SCHEMA_VERSION", "MIGRATIONS", "default_db_path", "LOCAL_USER",
           "PNG_MAGIC", "MAX_PICTURE_BYTES", "EXPORT_COLUMNS"]

#: The user name audited when the server has no login.
LOCAL_USER = "local"
#: How long a writer waits for another one to finish (ms) before giving up.
BUSY_TIMEOUT_MS = 30_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: Largest picture kept with a measurement (bytes): a 4096 x 4096 grey PNG is well under this.
MAX_PICTURE_BYTES = 32 * 1024 * 1024

#: The schema, one script per version; a database at version N gets scripts N+1... (``PRAGMA user_version``).
MIGRATIONS = (
    # 1: the first schema
    """
    CREATE TABLE patients (
        patient_id TEXT PRIMARY KEY,
        name TEXT,
        age_years REAL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE visits (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients(patient_id) ON DELETE CASCADE,
        exam_date TEXT NOT NULL,
        lmp TEXT,
        ga_by_dates_weeks REAL,
        sonographer TEXT,
        ac_mm REAL,
        fl_mm REAL,
        notes TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX visits_by_patient ON visits(patient_id, exam_date);
    CREATE TABLE measurements (
        id INTEGER PRIMARY KEY,
        visit_id INTEGER NOT NULL REFERENCES visits(id) ON DELETE CASCADE,
        saved_at TEXT NOT NULL,
        saved_by TEXT NOT NULL,
        status TEXT NOT NULL,
        hc_mm REAL,
        bpd_mm REAL,
        ofd_mm REAL,
        measurement_json TEXT NOT NULL,
        picture_png BLOB
    );
    CREATE INDEX measurements_by_visit ON measurements(visit_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        action TEXT NOT NULL,
        patient_id TEXT,
        visit_id INTEGER,
        detail TEXT
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

#: The columns of ``fetalhead records export`` (one row per measurement; a visit without one: one row).
EXPORT_COLUMNS = ("patient_id", "name", "age_years", "visit_id", "exam_date", "lmp", "ga_by_dates_weeks",
                  "sonographer", "ac_mm", "fl_mm", "notes", "measurement_id", "saved_at", "saved_by", "status",
                  "hc_mm", "bpd_mm", "ofd_mm", "has_picture")


class RecordError(ValueError):
    """A request the record cannot satisfy: ``code`` says which (``unknown_patient``, ``unknown_visit``,
    ``visit_of_another_patient``, ``invalid_...``, ``newer_schema``)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/fetalhead/records.sqlite`` (``~/.local/share`` without it; ``%LOCALAPPDATA%`` on
    Windows): the user's data folder, not the working folder."""
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        base = Path(os.environ["LOCALAPPDATA"])
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "fetalhead" / "records.sqlite"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to :data:`SCHEMA_VERSION` (each step in one transaction); returns the version found."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise RecordError("newer_schema", f"the record file has schema version {found}; this fetalhead knows "
                                          f"up to {SCHEMA_VERSION}: update fetalhead")
    for version in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < version:  # another process may have done it
                for statement in MIGRATIONS[version - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found


def _check_picture(picture_png: bytes | None) -> None:
    """A measurement's picture is a PNG of at most :data:`MAX_PICTURE_BYTES` (RecordError otherwise)."""
    if picture_png is None:
        return
    if not picture_png.startswith(PNG_MAGIC):
        raise RecordError("invalid_picture", "the picture is not a PNG")
    if len(picture_png) > MAX_PICTURE_BYTES:
        raise RecordError("invalid_picture", f"the picture is larger than {MAX_PICTURE_BYTES // 2**20} MB")


class Records:
    """The record file at ``path``; created (with its folder) on first use, not before."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._ready = False

    # -- connections ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA secure_delete = ON")
        conn.execute("PRAGMA synchronous = FULL")
        if not self._ready:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                conn.close()
                raise RecordError("no_wal", f"{self.path}: could not switch the record to WAL mode")
            migrate(conn)
            with contextlib.suppress(OSError):
                os.chmod(self.path, 0o600)  # patient data: the owner only
            self._ready = True
        return conn

    @contextlib.contextmanager
    def _read(self):
        conn = self._open()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self):
        """One transaction that waits for other writers first (``BEGIN IMMEDIATE``)."""
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    @staticmethod
    def _audit(conn, user: str | None, action: str, patient_id=None, visit_id=None, detail: str = "") -> None:
        conn.execute("INSERT INTO audit (at, user, action, patient_id, visit_id, detail) VALUES (?, ?, ?, ?, ?, ?)",
                     (_now(), user or LOCAL_USER, action, patient_id, visit_id, detail))

    def schema_version(self) -> int:
        with self._read() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    # -- patients and visits -------------------------------------------------------------------

    def create_visit(self, patient_id: str, exam_date: str, *, lmp: str | None = None,
                     ga_by_dates_weeks: float | None = None, sonographer: str | None = None,
                     name: str | None = None, age_years: float | None = None, user: str | None = None) -> dict:
        """A new visit of ``patient_id`` (the patient is created on the first visit; a name or age given
        updates the patient's)."""
        with self._write() as conn:
            now = _now()
            conn.execute("INSERT INTO patients (patient_id, name, age_years, created_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(patient_id) DO UPDATE SET name = COALESCE(excluded.name, name), "
                         "age_years = COALESCE(excluded.age_years, age_years)",
                         (patient_id, name, age_years, now))
            cur = conn.execute("INSERT INTO visits (patient_id, exam_date, lmp, ga_by_dates_weeks, sonographer, "
                               "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (patient_id, exam_date, lmp, ga_by_dates_weeks, sonographer, now, now))
            self._audit(conn, user, "create_visit", patient_id, cur.lastrowid)
            visit_id = cur.lastrowid
        return self.visit(visit_id)

    def update_patient(self, patient_id: str, *, name: str | None = None, age_years: float | None = None,
                       user: str | None = None) -> dict:
        """Change the patient's name or age (``None``: left as it is)."""
        self.patient(patient_id)
        if name is not None or age_years is not None:
            with self._write() as conn:
                conn.execute("UPDATE patients SET name = COALESCE(?, name), age_years = COALESCE(?, age_years) "
                             "WHERE patient_id = ?", (name, age_years, patient_id))
                self._audit(conn, user, "change_patient", patient_id, None,
                            ",".join(k for k, v in (("name", name), ("age_years", age_years)) if v is not None))
        return self.patient(patient_id)

    def patient(self, patient_id: str) -> dict:
        with self._read() as conn:
            row = conn.execute("SELECT * FROM patients WHERE patient_id = ?", (patient_id,)).fetchone()
        if row is None:
            raise RecordError("unknown_patient", "no patient with this ID in the record")
        return dict(row)

    def visits(self, patient_id: str) -> list[dict]:
        """The patient's visits, newest first (by exam date, then by when they were made)."""
        self.patient(patient_id)
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM visits WHERE patient_id = ? ORDER BY exam_date DESC, id DESC",
                                (patient_id,)).fetchall()
        return [dict(r) for r in rows]

    def visit(self, visit_id: int, patient_id: str | None = None) -> dict:
        """One visit; with ``patient_id``, refused (``visit_of_another_patient``) when it is another's."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM visits WHERE id = ?", (int(visit_id),)).fetchone()
        if row is None:
            raise RecordError("unknown_visit", f"no visit {visit_id} in the record")
        if patient_id is not None and row["patient_id"] != patient_id:
            raise RecordError("visit_of_another_patient", f"visit {visit_id} is not this patient's")
        return dict(row)

    def previous_visit(self, visit: dict) -> dict | None:
        """The same patient's visit before ``visit`` (by exam date), or None."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM visits WHERE patient_id = ? AND (exam_date < ? OR "
                               "(exam_date = ? AND id < ?)) ORDER BY exam_date DESC, id DESC LIMIT 1",
                               (visit["patient_id"], visit["exam_date"], visit["exam_date"], visit["id"])).fetchone()
        return dict(row) if row else None

    #: The visit fields :meth:`update_visit` may change.
    EDITABLE = ("ac_mm", "fl_mm", "notes", "lmp", "ga_by_dates_weeks", "sonographer", "exam_date")

    def update_visit(self, visit_id: int, changes: dict, user: str | None = None) -> dict:
        """Change typed fields of a visit (:data:`EDITABLE`; ``None`` clears one)."""
        bad = sorted(set(changes) - set(self.EDITABLE))
        if bad:
            raise RecordError("invalid_field", f"fields that cannot be changed: {', '.join(bad)}")
        visit = self.visit(visit_id)
        if changes:
            with self._write() as conn:
                sets = ", ".join(f"{k} = ?" for k in changes)
                conn.execute(f"UPDATE visits SET {sets}, updated_at = ? WHERE id = ?",
                             (*changes.values(), _now(), int(visit_id)))
                self._audit(conn, user, "change_visit", visit["patient_id"], int(visit_id),
                            ",".join(sorted(changes)))
        return self.visit(visit_id)

    # -- measurements --------------------------------------------------------------------------

    def add_measurement(self, visit_id: int, measurement: dict, *, status: str, hc_mm=None, bpd_mm=None,
                        ofd_mm=None, picture_png: bytes | None = None, user: str | None = None) -> dict:
        """Keep a measurement (its JSON as issued, its figures and its picture) with a visit: one transaction."""
        visit = self.visit(visit_id)
        _check_picture(picture_png)
        body = json.dumps(measurement, sort_keys=True, allow_nan=False)
        with self._write() as conn:
            cur = conn.execute("INSERT INTO measurements (visit_id, saved_at, saved_by, status, hc_mm, bpd_mm, ofd_mm, "
                               "measurement_json, picture_png) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (int(visit_id), _now(), user or LOCAL_USER, status, hc_mm, bpd_mm, ofd_mm, body,
                                picture_png))
            self._audit(conn, user, "save_measurement", visit["patient_id"], int(visit_id), f"measurement {cur.lastrowid}")
            mid = cur.lastrowid
        return self.measurement(mid)

    def replace_measurement(self, measurement_id: int, measurement: dict, *, status: str, hc_mm=None, bpd_mm=None,
                            ofd_mm=None, picture_png: bytes | None = None, user: str | None = None) -> dict:
        """Put ``measurement`` in the place of a saved one (a hand adjustment of the same scan): its figures,
        JSON, picture, who and when; the audit log says which was replaced. One transaction."""
        old = self.measurement(measurement_id)
        visit = self.visit(old["visit_id"])
        _check_picture(picture_png)
        body = json.dumps(measurement, sort_keys=True, allow_nan=False)
        with self._write() as conn:
            conn.execute("UPDATE measurements SET saved_at = ?, saved_by = ?, status = ?, hc_mm = ?, bpd_mm = ?, "
                         "ofd_mm = ?, measurement_json = ?, picture_png = COALESCE(?, picture_png) WHERE id = ?",
                         (_now(), user or LOCAL_USER, status, hc_mm, bpd_mm, ofd_mm, body, picture_png,
                          int(measurement_id)))
            self._audit(conn, user, "replace_measurement", visit["patient_id"], visit["id"],
                        f"measurement {int(measurement_id)} (HC was {old['hc_mm']})")
        return self.measurement(measurement_id)

    def measurement(self, measurement_id: int, with_picture: bool = False) -> dict:
        cols = "*" if with_picture else ("id, visit_id, saved_at, saved_by, status, hc_mm, bpd_mm, ofd_mm, "
                                         "measurement_json, picture_png IS NOT NULL AS has_picture")
        with self._read() as conn:
            row = conn.execute(f"SELECT {cols} FROM measurements WHERE id = ?", (int(measurement_id),)).fetchone()
        if row is None:
            raise RecordError("unknown_measurement", f"no measurement {measurement_id} in the record")
        return self._measurement_row(row)

    @staticmethod
    def _measurement_row(row) -> dict:
        d = dict(row)
        d["measurement"] = json.loads(d.pop("measurement_json"))
        if "has_picture" in d:
            d["has_picture"] = bool(d["has_picture"])
        else:
            d["has_picture"] = d.get("picture_png") is not None
        return d

    def measurements(self, visit_id: int, with_pictures: bool = False) -> list[dict]:
        """A visit's measurements in the order they were saved."""
        cols = "*" if with_pictures else ("id, visit_id, saved_at, saved_by, status, hc_mm, bpd_mm, ofd_mm, "
                                          "measurement_json, picture_png IS NOT NULL AS has_picture")
        with self._read() as conn:
            rows = conn.execute(f"SELECT {cols} FROM measurements WHERE visit_id = ? ORDER BY id",
                                (int(visit_id),)).fetchall()
        return [self._measurement_row(r) for r in rows]

    # -- audit, backup, export, erasure --------------------------------------------------------

    def audit(self, user: str | None, action: str, patient_id=None, visit_id=None, detail: str = "") -> None:
        """Record an action that changes nothing else (a report viewed, an export made)."""
        with self._write() as conn:
            self._audit(conn, user, action, patient_id, visit_id, detail)

    def audit_rows(self) -> list[dict]:
        with self._read() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY id").fetchall()]

    def backup(self, out: str | os.PathLike, user: str | None = None) -> Path:
        """A consistent copy of the record at ``out`` (SQLite's online backup: writers may go on meanwhile)."""
        out = Path(out)
        if out.resolve() == self.path.resolve():
            raise RecordError("invalid_output", "the backup must be another file than the record")
        if out.exists():
            raise RecordError("invalid_output", f"{out} exists already: choose a new file")
        with self._read() as src:
            dst = sqlite3.connect(out)
            try:
                src.backup(dst)
            finally:
                dst.close()
        with contextlib.suppress(OSError):
            os.chmod(out, 0o600)
        self.audit(user, "backup")
        return out

    def export_rows(self) -> list[dict]:
        """Every visit and measurement, one row per measurement (:data:`EXPORT_COLUMNS`)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT p.patient_id, p.name, p.age_years, v.id AS visit_id, v.exam_date, v.lmp, v.ga_by_dates_weeks, "
                "v.sonographer, v.ac_mm, v.fl_mm, v.notes, m.id AS measurement_id, m.saved_at, m.saved_by, m.status, "
                "m.hc_mm, m.bpd_mm, m.ofd_mm, m.picture_png IS NOT NULL AS has_picture "
                "FROM visits v JOIN patients p ON p.patient_id = v.patient_id "
                "LEFT JOIN measurements m ON m.visit_id = v.id ORDER BY p.patient_id, v.exam_date, v.id, m.id"
            ).fetchall()
        out = []
        for r in rows:
            d = {k: r[k] for k in EXPORT_COLUMNS}
            d["has_picture"] = bool(d["has_picture"]) if d["measurement_id"] is not None else None
            out.append(d)
        return out

    def export(self, out: str | os.PathLike, user: str | None = None) -> int:
        """Write :meth:`export_rows` to ``out`` (``.csv`` or ``.json``); returns the number of rows."""
        out = Path(out)
        kind = out.suffix.lower()
        if kind not in (".csv", ".json"):
            raise RecordError("invalid_output", f"{out}: the export is .csv or .json")
        rows = self.export_rows()
        tmp = out.with_name(out.name + ".part")
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            if kind == ".json":
                json.dump({"schema_version": SCHEMA_VERSION, "exported_at": _now(), "rows": rows}, fh, indent=1)
            else:
                w = csv.DictWriter(fh, fieldnames=EXPORT_COLUMNS)
                w.writeheader()
                w.writerows(rows)
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o600)
        os.replace(tmp, out)
        self.audit(user, "export", detail=f"{len(rows)} rows")
        return len(rows)

    def delete_patient(self, patient_id: str, user: str | None = None) -> dict:
        """Erase a patient: the patient row, the visits, the measurements and their pictures. The audit
        trail keeps that an erasure happened, with the patient's ID replaced by a random token in every
        row. Returns what was removed (counts)."""
        self.patient(patient_id)
        token = "erased-" + secrets.token_hex(6)
        with self._write() as conn:
            visits = [r[0] for r in conn.execute("SELECT id FROM visits WHERE patient_id = ?", (patient_id,))]
            marks = ",".join("?" * len(visits))
            n_meas = n_pics = 0
            if visits:
                n_meas, n_pics = conn.execute(
                    f"SELECT COUNT(*), COUNT(picture_png) FROM measurements WHERE visit_id IN ({marks})", visits
                ).fetchone()
                conn.execute(f"DELETE FROM measurements WHERE visit_id IN ({marks})", visits)
            conn.execute("DELETE FROM visits WHERE patient_id = ?", (patient_id,))
            conn.execute("DELETE FROM patients WHERE patient_id = ?", (patient_id,))
            audited = conn.execute("UPDATE audit SET patient_id = ? WHERE patient_id = ?", (token, patient_id)).rowcount
            removed = {"patients": 1, "visits": len(visits), "measurements": n_meas, "pictures": n_pics,
                       "audit_rows_pseudonymised": audited, "token": token}
            self._audit(conn, user, "delete_patient", token, None,
                        f"{len(visits)} visits, {n_meas} measurements, {n_pics} pictures")
        with self._read() as conn:  # the deleted pages out of the WAL into the (zeroed) main file
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def integrity_check(self) -> str:
        with self._read() as conn:
            return conn.execute("PRAGMA integrity_check").fetchone()[0]
