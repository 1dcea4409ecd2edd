"""Batches that survive: append as you go, resume by content hash, local workers, Dask."""

import csv
import os
import shutil
import signal
import time

import pytest

from fetalhead.batch import MeasureOptions, ResultWriter, collect_scans, measure_one, run_processes, run_serial
from fetalhead.cli import main

KEY_COLUMNS = ("status", "hc_mm", "bpd_mm", "ofd_mm", "center_x_px", "center_y_px", "semi_major_px", "sha256")


@pytest.fixture()
def folder(tmp_path, samples_dir):
    d = tmp_path / "scans"
    d.mkdir()
    for p in samples_dir.glob("*.png"):
        shutil.copy(p, d / p.name)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 50)
    return d


def rows_by_name(path):
    return {r["filename"]: r for r in csv.DictReader(open(path))}


def same_results(a, b):
    assert set(a) == set(b)
    for name in a:
        for col in KEY_COLUMNS:
            assert a[name][col] == b[name][col], (name, col)


def test_collect_scans_skips_annotations_and_reports_missing(tmp_path, folder):
    (folder / "011_HC_Annotation.png").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    files, problems = collect_scans([folder, folder / "011_HC.png", tmp_path / "nope"])
    names = [f.name for f in files]
    assert "011_HC_Annotation.png" not in names and "notes.txt" not in names
    assert len(names) == len(set(names)) == 7
    assert problems == [f"{tmp_path / 'nope'}: no such file or folder"]


def test_interrupted_run_resumes_each_scan_once(folder, tmp_path, capsys, samples_dir):
    out = tmp_path / "r.csv"
    args = ["measure", str(folder), "--pixel-size-csv", str(samples_dir / "pixel_size_and_HC.csv"), "--out", str(out),
            "--no-progress"]
    assert main(args) == 1  # broken.png fails, and is listed with its reason
    first = rows_by_name(out)
    assert len(first) == 7 and first["broken.png"]["status"] == "failed"
    # simulate a run killed while writing: header, 3 full rows and half of the 4th row
    lines = out.read_bytes().split(b"\n")
    out.write_bytes(b"\n".join(lines[:4]) + b"\n" + lines[4][:30])
    assert main(args + ["--resume"]) == 1
    rows = list(csv.DictReader(open(out)))
    assert sorted(r["filename"] for r in rows) == sorted(first)  # each scan exactly once
    same_results(first, rows_by_name(out))
    assert "3 already in the output, skipped" in capsys.readouterr().err
    # a renamed copy of a measured scan is recognised by its content and skipped
    shutil.copy(folder / "358_HC.png", folder / "renamed_copy.png")
    assert main(args + ["--resume"]) == 0
    assert "8 already in the output, skipped" in capsys.readouterr().err
    assert len(list(csv.DictReader(open(out)))) == 7


def test_results_are_written_as_they_come(folder, tmp_path):
    out = tmp_path / "r.csv"
    w = ResultWriter(out)
    opts = MeasureOptions(pixel_size_mm=0.1)
    files, _ = collect_scans([folder])
    seen = 0
    for m in run_serial(files[:3], opts):
        w.write(m)
        seen += 1
        assert len(list(csv.DictReader(open(out)))) == seen  # on disk before the next scan starts
    w.close()


def test_workers_equal_serial(folder, tmp_path):
    files, _ = collect_scans([folder])
    opts = MeasureOptions(pixel_size_mm=0.12)
    serial = {m.source: m.to_row() for m in run_serial(files, opts)}
    parallel = {m.source: m.to_row() for m in run_processes(files, opts, 2)}
    same_results(serial, parallel)


def test_parquet_output(folder, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "r.parquet"
    main(["measure", str(folder / "358_HC.png"), str(folder / "broken.png"), "--pixel-size", "0.13",
          "--out", str(out), "--no-progress"])
    table = pq.read_table(out)
    assert table.num_rows == 2
    assert sorted(table.column("status").to_pylist()) == ["failed", "ok"]


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_equals_serial(folder, dask_cluster):
    from fetalhead.batch import run_dask

    files, _ = collect_scans([folder])
    opts = MeasureOptions(pixel_size_mm=0.12)
    serial = {m.source: m.to_row() for m in run_serial(files, opts)}
    on_dask = {m.source: m.to_row() for m in run_dask(files, opts, dask_cluster)}
    same_results(serial, on_dask)


def _slow_measure(path, opts):
    time.sleep(0.4)
    return measure_one(path, opts)


def test_dask_worker_killed_mid_batch_loses_nothing(folder, dask_cluster):
    from distributed import as_completed

    files, _ = collect_scans([folder])
    files = files * 1  # 7 files
    opts = MeasureOptions(pixel_size_mm=0.12)
    futures = dask_cluster.map(_slow_measure, [str(f) for f in files], opts=opts, pure=False)
    pids = dask_cluster.run(os.getpid)
    got, killed = [], False
    for fut in as_completed(futures):
        got.append(fut.result())
        if not killed:
            os.kill(next(iter(pids.values())), signal.SIGKILL)  # a worker dies with tasks in flight
            killed = True
    names = sorted(m.source for m in got)
    assert names == sorted(str(f) for f in files)  # every file once: nothing lost, nothing duplicated
    assert sum(m.status == "failed" for m in got) == 1  # only broken.png


def test_dask_local_cli(folder, tmp_path, samples_dir):
    pytest.importorskip("distributed")
    out_serial, out_dask = tmp_path / "s.csv", tmp_path / "d.csv"
    main(["measure", str(folder), "--pixel-size", "0.12", "--out", str(out_serial), "--no-progress"])
    rc = main(["measure", str(folder), "--pixel-size", "0.12", "--out", str(out_dask), "--no-progress",
               "--dask-local", "2"])
    assert rc == 1  # broken.png
    same_results(rows_by_name(out_serial), rows_by_name(out_dask))


def test_resume_hashes_each_file_once(folder, tmp_path, monkeypatch, samples_dir):
    """--resume hashes each file once (for matching) and hands the hash to the worker, which does not hash
    again; without --resume each file is read once and hashed from those bytes."""
    import fetalhead.batch as batch
    import fetalhead.scans.imageio as imageio
    import fetalhead.measurement as measurement

    out = tmp_path / "r.csv"
    args = ["measure", str(folder), "--pixel-size", "0.13", "--out", str(out), "--no-progress"]
    calls = []
    real_file, real_bytes = imageio.file_sha256, imageio.bytes_sha256
    monkeypatch.setattr(batch, "file_sha256", lambda p: calls.append(("file", str(p))) or real_file(p))
    monkeypatch.setattr(measurement, "bytes_sha256", lambda d: calls.append(("bytes", len(d))) or real_bytes(d))
    main(args)
    assert [k for k, _ in calls].count("file") == 0 and len(calls) == 7
    calls.clear()
    shutil.copy(samples_dir / "785_HC.png", folder / "extra_copy.png")
    main(args + ["--resume"])
    assert len(calls) == 8 and all(k == "file" for k, _ in calls)  # 8 files, one hash each, none in the worker


def test_poison_files_are_failed_rows_and_the_batch_goes_on(folder, tmp_path, samples_dir):
    pydicom = pytest.importorskip("pydicom")
    import cv2

    from .dicom_fixtures import write_us_dicom

    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    bad = write_us_dicom(folder / "poison.dcm", grey)
    ds = pydicom.dcmread(bad)
    ds.Rows = 0  # a header that lies
    ds.save_as(bad)
    odd = os.fsencode(folder) + b"/caf\xe9_HC.png"  # a name that is not UTF-8
    with open(odd, "wb") as fh:
        fh.write((samples_dir / "590_HC.png").read_bytes())
    out = tmp_path / "r.csv"
    for extra in ([], ["--workers", "2"]):
        rc = main(["measure", str(folder), "--pixel-size", "0.13", "--out", str(out), "--no-progress"] + extra)
        rows = rows_by_name(out)
        assert rc == 1 and len(rows) == 9
        assert rows["poison.dcm"]["status"] == "failed" and rows["poison.dcm"]["message"]
        odd_row = next(r for n, r in rows.items() if n.startswith("caf"))
        assert odd_row["status"] in ("ok", "flagged")


def test_bad_options_are_one_line_errors(folder, tmp_path, capsys):
    out = str(tmp_path / "r.csv")
    assert main(["measure", str(folder), "--out", out, "--dask-local", "-1", "--no-progress"]) == 2
    assert main(["measure", str(folder), "--out", out, "--pixel-size", "1e300"]) == 2
    assert main(["measure", str(folder), "--out", out, "--pixel-size-csv", "/etc/passwd"]) == 2
    assert main(["measure", str(folder), "--out", "/proc/no/r.csv"]) == 2
    assert main(["measure", str(folder), "--out", out, "--overlay", "/proc/no"]) == 2
    assert main(["measure", str(folder), "--out", out, "--json", "/proc/no/r.json"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 6


def pool_workers(pid: int) -> list[int]:
    """The multiprocessing pool workers among the children of ``pid`` (not the resource tracker)."""
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += open(f"/proc/{pid}/task/{task}/children").read().split()
        except OSError:
            pass
    workers = []
    for c in out:
        try:
            cmd = open(f"/proc/{c}/cmdline", "rb").read()
        except OSError:
            continue
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            workers.append(int(c))
    return workers


def test_a_dying_worker_loses_no_scan(folder, tmp_path):
    """Kill a worker process mid-batch: every scan still gets exactly one row, the batch ends."""
    import threading

    files, _ = collect_scans([folder])
    for k in range(3):  # a longer batch, so that the kill lands while scans are in flight
        for p in list(folder.glob("*_HC.png"))[:6]:
            shutil.copy(p, folder / f"copy{k}_{p.name}")
    files, _ = collect_scans([folder])
    opts = MeasureOptions(pixel_size_mm=0.13)
    killed = []

    def children():
        return pool_workers(os.getpid())

    rows = []
    for m in run_processes(files, opts, 2):
        rows.append(m)
        if len(rows) == 3 and not killed:
            kids = children()
            if kids:
                os.kill(kids[-1], signal.SIGKILL)
                killed.append(kids[-1])
    assert killed
    assert sorted(m.source for m in rows) == sorted(str(f) for f in files)
    assert sum(m.status == "failed" for m in rows) == 1  # broken.png only: the killed worker's scans re-ran


def test_a_failing_overlay_write_is_a_flag_not_the_end(folder, tmp_path, monkeypatch):
    import fetalhead.outputs.overlay as overlay

    calls = []

    def full_disk(path, grey, m):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return path

    monkeypatch.setattr(overlay, "write_overlay", full_disk)
    opts = MeasureOptions(pixel_size_mm=0.13, overlay_dir=str(tmp_path / "ov"))
    rows = list(run_serial(collect_scans([folder])[0], opts))
    assert len(rows) == 7
    hit = [m for m in rows if "overlay_not_written" in m.flags]
    assert len(hit) == 1 and "No space left" in hit[0].message and hit[0].status in ("ok", "flagged")


def test_what_names_no_file_is_said_not_skipped_silently(tmp_path, folder):
    # issue 26 #12: dangling and looping links, FIFOs got neither a row nor a message
    import os
    import shutil

    d = tmp_path / "mine"
    d.mkdir()
    shutil.copy(folder / "011_HC.png", d / "a.png")
    (d / "dangling.png").symlink_to(tmp_path / "nothing.png")
    (d / "self.png").symlink_to(d / "self.png")
    os.mkfifo(d / "pipe.png")
    files, problems = collect_scans([d, d / "pipe.png"])
    assert [f.name for f in files] == ["a.png"]
    said = "\n".join(problems)
    assert f"{d / 'dangling.png'}: a broken link" in said and f"{d / 'self.png'}: a link that loops" in said
    assert said.count(f"{d / 'pipe.png'}: not a regular file") == 2
    from fetalhead.cli import main

    assert main(["measure", str(d), "--out", str(tmp_path / "r.csv")]) == 1  # problems fail the run


def test_an_empty_file_is_done_once_on_resume(tmp_path, folder):
    # issue 26 #12: a zero-byte file's row had no sha256, so every --resume measured it again
    import shutil

    from fetalhead.cli import main

    d = tmp_path / "mine"
    d.mkdir()
    shutil.copy(folder / "011_HC.png", d / "a.png")
    (d / "empty.png").write_bytes(b"")
    out = tmp_path / "r.csv"
    main(["measure", str(d), "--out", str(out)])
    main(["measure", str(d), "--out", str(out), "--resume"])
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["filename"] for r in rows) == ["a.png", "empty.png"]
    empty = next(r for r in rows if r["filename"] == "empty.png")
    assert empty["status"] == "failed" and empty["sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_workers_end_when_the_batch_is_killed(folder, tmp_path):
    # issue 26 #10: kill -9 of a batch's main process left its --workers 2 processes alive with parent 1
    import subprocess
    import sys
    import time

    for k in range(4):
        for p in list(folder.glob("*_HC.png")):
            shutil.copy(p, folder / f"copy{k}_{p.name}")
    proc = subprocess.Popen([sys.executable, "-m", "fetalhead.cli", "measure", str(folder), "--workers", "2",
                             "--out", str(tmp_path / "r.csv")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def workers():
        return pool_workers(proc.pid)

    try:
        deadline = time.monotonic() + 120
        kids = []
        while time.monotonic() < deadline and proc.poll() is None:
            kids = workers()
            if len(kids) >= 2 and (tmp_path / "r.csv").is_file():
                break
            time.sleep(0.2)
        assert kids, "the batch started no workers"
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 60
        alive = kids
        while alive and time.monotonic() < deadline:
            alive = [k for k in alive if os.path.exists(f"/proc/{k}") and
                     open(f"/proc/{k}/stat").read().split(")")[-1].split()[0] != "Z"]
            time.sleep(0.2)
        assert not alive, f"workers {alive} outlived their batch"
    finally:
        proc.kill()
        for k in workers() if proc.poll() is None else []:
            os.kill(k, signal.SIGKILL)
