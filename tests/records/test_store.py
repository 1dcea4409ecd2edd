"""The local record: real SQLite files in temporary folders (no mocks)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fetalhead.records.store import (EXPORT_COLUMNS, SCHEMA_VERSION, PNG_MAGIC, RecordError, Records,
                                     default_db_path)

SRC = str(Path(__file__).resolve().parents[2] / "src")
PICTURE = PNG_MAGIC + b"IHDR-fake-picture-of-the-patient" + os.urandom(64)


def _m(hc, status="ok"):
    return {"status": status, "hc_mm": hc, "bpd_mm": hc * 0.27, "ofd_mm": hc * 0.35}


def _save(rec, visit_id, hc, user=None, picture=PICTURE):
    m = _m(hc)
    return rec.add_measurement(visit_id, {"hc": hc, "note": "x"}, status=m["status"], hc_mm=m["hc_mm"],
                               bpd_mm=m["bpd_mm"], ofd_mm=m["ofd_mm"], picture_png=picture, user=user)


def test_created_on_first_use_in_wal_with_schema_version(tmp_path):
    path = tmp_path / "sub" / "records.sqlite"
    rec = Records(path)
    assert not path.exists()  # nothing written before it is used
    v = rec.create_visit("P-001", "2024-05-20", lmp="2024-01-01", sonographer="Dr A", name="Asha", user="anu")
    assert path.exists() and rec.schema_version() == SCHEMA_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert v["id"] and v["patient_id"] == "P-001" and v["lmp"] == "2024-01-01"
    assert rec.patient("P-001")["name"] == "Asha"
    assert [a["action"] for a in rec.audit_rows()] == ["create_visit"]
    assert rec.audit_rows()[0]["user"] == "anu"


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    Records(path).schema_version()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RecordError) as err:
        Records(path).schema_version()
    assert err.value.code == "newer_schema"


def test_visits_newest_first_previous_and_other_patients(tmp_path):
    rec = Records(tmp_path / "r.sqlite")
    a = rec.create_visit("P1", "2024-03-01")
    b = rec.create_visit("P1", "2024-05-01")
    c = rec.create_visit("P2", "2024-04-01")
    assert [v["id"] for v in rec.visits("P1")] == [b["id"], a["id"]]
    assert rec.previous_visit(b)["id"] == a["id"] and rec.previous_visit(a) is None
    with pytest.raises(RecordError) as err:
        rec.visit(c["id"], patient_id="P1")
    assert err.value.code == "visit_of_another_patient"
    with pytest.raises(RecordError) as err:
        rec.visits("nobody")
    assert err.value.code == "unknown_patient"
    with pytest.raises(RecordError) as err:
        rec.visit(999)
    assert err.value.code == "unknown_visit"


def test_measurements_pictures_update_and_audit(tmp_path):
    rec = Records(tmp_path / "r.sqlite")
    v = rec.create_visit("P1", "2024-05-01")
    saved = _save(rec, v["id"], 180.0, user="anu")
    assert saved["has_picture"] and saved["measurement"] == {"hc": 180.0, "note": "x"}
    assert rec.measurement(saved["id"], with_picture=True)["picture_png"] == PICTURE
    with pytest.raises(RecordError, match="not a PNG"):
        _save(rec, v["id"], 181.0, picture=b"GIF89a")
    changed = rec.update_visit(v["id"], {"ac_mm": 160.0, "fl_mm": 33.0, "notes": "ok"}, user="anu")
    assert (changed["ac_mm"], changed["fl_mm"], changed["notes"]) == (160.0, 33.0, "ok")
    with pytest.raises(RecordError) as err:
        rec.update_visit(v["id"], {"patient_id": "P2"})
    assert err.value.code == "invalid_field"
    actions = [(a["action"], a["user"]) for a in rec.audit_rows()]
    assert actions == [("create_visit", "local"), ("save_measurement", "anu"), ("change_visit", "anu")]


def test_backup_and_export(tmp_path):
    rec = Records(tmp_path / "r.sqlite")
    v = rec.create_visit("P1", "2024-05-01", name="Asha")
    _save(rec, v["id"], 180.0)
    _save(rec, v["id"], 182.0)
    rec.create_visit("P2", "2024-05-02")
    copy = rec.backup(tmp_path / "copy.sqlite")
    assert Records(copy).integrity_check() == "ok"
    assert len(Records(copy).measurements(v["id"])) == 2
    with pytest.raises(RecordError):
        rec.backup(copy)  # never over an existing file
    assert rec.export(tmp_path / "x.json") == 3
    data = json.loads((tmp_path / "x.json").read_text())
    assert [r["hc_mm"] for r in data["rows"]] == [180.0, 182.0, None]
    assert rec.export(tmp_path / "x.csv") == 3
    lines = (tmp_path / "x.csv").read_text().splitlines()
    assert lines[0].split(",") == list(EXPORT_COLUMNS) and len(lines) == 4
    with pytest.raises(RecordError):
        rec.export(tmp_path / "x.txt")


def test_erasure_leaves_no_row_and_no_picture(tmp_path):
    path = tmp_path / "r.sqlite"
    rec = Records(path)
    secret_id, secret_name = "PATIENT-7QX93", "Zebulonia Quixote"
    v1 = rec.create_visit(secret_id, "2024-03-01", name=secret_name)
    v2 = rec.create_visit(secret_id, "2024-05-01")
    for v in (v1, v2):
        _save(rec, v["id"], 180.0)
    keep = rec.create_visit("OTHER", "2024-05-01")
    _save(rec, keep["id"], 200.0, picture=PNG_MAGIC + b"other")
    removed = rec.delete_patient(secret_id, user="anu")
    assert (removed["visits"], removed["measurements"], removed["pictures"]) == (2, 2, 2)
    with pytest.raises(RecordError):
        rec.patient(secret_id)
    assert len(rec.measurements(keep["id"])) == 1
    conn = sqlite3.connect(path)
    for table in ("patients", "visits", "audit"):
        rows = conn.execute(f"SELECT * FROM {table}").fetchall()
        assert not any(secret_id in str(r) or secret_name in str(r) for r in rows), table
    conn.close()
    assert rec.audit_rows()[-1]["action"] == "delete_patient"
    # nothing of the patient left in the bytes of the files either (secure_delete, WAL checkpointed)
    for f in tmp_path.iterdir():
        raw = f.read_bytes()
        assert secret_id.encode() not in raw and secret_name.encode() not in raw, f.name
        assert PICTURE[8:] not in raw, f.name


def test_default_db_path_in_the_users_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_db_path() == tmp_path / "fetalhead" / "records.sqlite"


SAVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from fetalhead.records.store import Records, PNG_MAGIC
rec = Records(sys.argv[2])
visit = int(sys.argv[3])
picture = PNG_MAGIC + bytes(2_000_000)   # a large picture: the kill lands inside a write
print("ready", flush=True)
i = 0
while True:
    rec.add_measurement(visit, {"i": i}, status="ok", hc_mm=180.0 + i % 5, picture_png=picture)
    print(i, flush=True)
    i += 1
"""


def test_kill_9_while_saving_loses_at_most_the_measurement_being_saved(tmp_path):
    path = tmp_path / "r.sqlite"
    rec = Records(path)
    visit = rec.create_visit("P1", "2024-05-01")["id"]
    proc = subprocess.Popen([sys.executable, "-c", SAVER, SRC, str(path), str(visit)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "ready"
    done = []
    deadline = time.time() + 60
    while len(done) < 5 and time.time() < deadline:  # some saves have landed, one is under way
        done.append(int(proc.stdout.readline()))
    time.sleep(0.013)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rest = [int(x) for x in proc.stdout.read().split()]
    confirmed = done + rest
    assert Records(path).integrity_check() == "ok"
    saved = [m["measurement"]["i"] for m in Records(path).measurements(visit)]
    assert saved == list(range(len(saved)))  # whole rows only, in order, none missing
    assert len(confirmed) <= len(saved) <= len(confirmed) + 1  # at most the one being saved is lost
    # and the file still takes new saves
    _save(Records(path), visit, 190.0)


def test_two_concurrent_savers_to_one_visit_both_land(tmp_path):
    path = tmp_path / "r.sqlite"
    rec = Records(path)
    visit = rec.create_visit("P1", "2024-05-01")["id"]
    errors = []

    def saver(n):
        try:
            r = Records(path)  # a browser's own request: its own connection
            for i in range(20):
                _save(r, visit, 180.0 + n, user=f"user{n}")
        except Exception as exc:  # pragma: no cover - the failure is reported below
            errors.append(exc)

    threads = [threading.Thread(target=saver, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rows = rec.measurements(visit)
    assert len(rows) == 40
    assert sorted({r["saved_by"] for r in rows}) == ["user1", "user2"]


# the command line ---------------------------------------------------------------------------------

def test_records_commands(tmp_path, capsys, monkeypatch):
    from fetalhead.cli import main

    db = tmp_path / "r.sqlite"
    rec = Records(db)
    v = rec.create_visit("PX-1", "2024-05-01", name="Asha Kumari")
    _save(rec, v["id"], 180.0)
    rec.create_visit("PX-2", "2024-05-02")
    assert main(["records", "backup", "--db", str(db), "--out", str(tmp_path / "copy.sqlite")]) == 0
    assert "integrity: ok" in capsys.readouterr().err
    assert main(["records", "backup", "--db", str(db), "--out", str(tmp_path / "copy.sqlite")]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["records", "export", "--db", str(db), "--out", str(tmp_path / "all.csv")]) == 0
    assert "2 rows" in capsys.readouterr().err
    assert "Asha Kumari" in (tmp_path / "all.csv").read_text()
    assert main(["records", "delete", "--db", str(db), "--patient-id", "PX-1"]) == 0
    err = capsys.readouterr().err
    assert "1 visits, 1 measurements, 1 pictures" in err and "PX-1" not in err
    assert main(["records", "delete", "--db", str(db), "--patient-id", "PX-1"]) == 1
    assert "no patient with this ID" in capsys.readouterr().err
    assert main(["records", "export", "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "x.json")]) == 1
    assert "no record file there" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["records", "export", "--out", str(tmp_path / "x.json")]) == 1  # the default file: not made yet
    assert str(tmp_path / "data" / "fetalhead" / "records.sqlite") in capsys.readouterr().err


def test_an_older_file_is_migrated_in_place(tmp_path, monkeypatch):
    import fetalhead.records.store as store

    path = tmp_path / "r.sqlite"
    v = Records(path).create_visit("P1", "2024-05-01")
    monkeypatch.setattr(store, "MIGRATIONS", store.MIGRATIONS + ("ALTER TABLE visits ADD COLUMN placenta TEXT",))
    monkeypatch.setattr(store, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    rec = Records(path)
    assert rec.schema_version() == SCHEMA_VERSION + 1
    assert rec.visit(v["id"])["placenta"] is None and rec.visit(v["id"])["patient_id"] == "P1"
