"""Cine loops: multi-frame DICOM and video, every frame or the best one, and bad loops."""

import json

import cv2
import numpy as np
import pytest

import fetalhead
from fetalhead.scans.cine import STABILITY_SCALE, choose_best_frame, parse_frames
from fetalhead.measurement import Measurement, measure_loop

from ..dicom_fixtures import loop_frames, write_loop_dicom, write_video

PS = 0.134737677


@pytest.fixture(scope="module")
def frames(samples_dir):
    return loop_frames(cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE))


def test_every_frame_with_its_time(frames, tmp_path):
    loop = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    ms = measure_loop(loop, frames="all")
    assert [m.frame for m in ms] == list(range(12)) and all(m.n_frames == 12 for m in ms)
    assert [round(m.frame_time_s, 4) for m in ms] == [round(i * 0.0333, 4) for i in range(12)]
    assert all(m.status != "failed" for m in ms)
    assert {m.to_row()["time_s"] for m in ms} >= {0.0, 0.033}


def test_the_best_frame_is_clear_and_steady_with_the_trace(frames, tmp_path):
    loop = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    ms = measure_loop(loop, frames="all")
    (best,) = measure_loop(loop, frames="best")
    assert best.frame not in (3, 4)  # never a blurred moment
    assert best.quality == max(m.quality for m in ms if m.status == "ok" and abs(
        m.head_circumference_px / best.head_circumference_px - 1) < 2 * STABILITY_SCALE)
    assert len(best.hc_trace) == 12 and best.hc_trace[best.frame]["hc_mm"] == best.head_circumference_mm
    assert f"frame {best.frame} of 12" in best.frame_choice
    d = best.to_dict()
    assert d["n_frames"] == 12 and len(d["hc_trace"]) == 12 and d["frame_choice"]


def test_a_steady_frame_beats_an_outlier_of_higher_quality():
    def m(i, hc, q, status="ok"):
        return Measurement("x", status, frame=i, head_circumference_px=hc, quality=q)

    ms = [m(0, 1000, 0.6), m(1, 1002, 0.6), m(2, 1150, 0.9), m(3, 1001, 0.7), m(4, 999, 0.6)]
    index, why = choose_best_frame(ms)
    assert index == 3 and "frame 3 of 5" in why
    assert choose_best_frame([m(0, 1000, 0.9, "flagged"), m(1, 1000, 0.5)])[0] == 1  # ok before flagged
    assert choose_best_frame([Measurement("x", "failed")])[0] is None


def test_video_loops_measure_like_dicom_loops(frames, tmp_path):
    video = write_video(tmp_path / "loop.avi", frames)
    dicom = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    (v,) = measure_loop(video, PS, frames="best")
    (d,) = measure_loop(dicom, frames="best")
    assert v.n_frames == 12 and v.frame_time_s == pytest.approx(v.frame / 30.0)
    assert v.head_circumference_mm == pytest.approx(d.head_circumference_mm, rel=0.01)  # MJPEG is lossy
    (one,) = measure_loop(video.read_bytes(), PS, frames=5, source="loop.avi")  # bytes, as the page sends
    assert one.frame == 5 and one.status != "failed"


def test_bad_loops_say_why_and_lose_nothing(frames, tmp_path, capsys):
    from fetalhead.cli import main

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 200)
    (m,) = measure_loop(broken, PS)
    assert m.status == "failed" and "video" in m.message
    with pytest.raises(ValueError, match="best, all or a frame number"):
        parse_frames("most")
    good = write_video(tmp_path / "loop.avi", frames)
    (late,) = measure_loop(good, PS, frames=99)
    assert late.status == "failed" and "frame 99 requested, the video has 12 frame(s)" in late.message
    out = tmp_path / "r.csv"
    code = main(["measure", str(broken), str(good), "--pixel-size", str(PS), "--frames", "all", "--out", str(out),
                 "--json", str(tmp_path / "r.json"), "--no-progress"])
    assert code == 1  # one file failed
    rows = json.loads((tmp_path / "r.json").read_text())
    assert len(rows) == 13 and sum(r["status"] == "failed" for r in rows) == 1
    with pytest.raises(SystemExit):
        main(["measure", str(good), "--frames", "most"])
    assert "best, all or a frame number" in capsys.readouterr().err


def test_best_is_the_default_for_a_loop_and_stills_are_unchanged(frames, tmp_path, samples_dir):
    from fetalhead.cli import main

    write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    (tmp_path / "358_HC.png").write_bytes((samples_dir / "358_HC.png").read_bytes())
    assert main(["measure", str(tmp_path), "--pixel-size", str(PS), "--json", str(tmp_path / "r.json"),
                 "--no-progress"]) == 0
    rows = {r["filename"]: r for r in json.loads((tmp_path / "r.json").read_text())}
    assert rows["loop.dcm"]["n_frames"] == 12 and len(rows["loop.dcm"]["hc_trace"]) == 12
    still = fetalhead.measure(samples_dir / "358_HC.png", PS)
    assert rows["358_HC.png"]["hc_mm"] == pytest.approx(still.head_circumference_mm)
    assert rows["358_HC.png"]["hc_trace"] is None and rows["358_HC.png"]["n_frames"] == 1


def test_the_report_says_which_frame_of_the_loop(frames, tmp_path):
    from fetalhead.outputs.report import report_rows, translations

    loop = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    (best,) = measure_loop(loop)
    for lang in ("en", "hi", "te"):
        t = translations(lang)
        rows = dict(report_rows(best, t))
        assert rows[t["loop_slider"]].startswith(t["loop_frame"].replace("{n}", str(best.frame + 1)).replace(
            "{total}", "12")) and t["loop_best"] in rows[t["loop_slider"]]
    (one,) = measure_loop(loop, frames=2)
    # a frame asked for says so: the report tells whether the software chose it (issue 25 #3)
    assert dict(report_rows(one, translations("en")))["Frame of the loop"] == \
        "Frame 3 of 12 (chosen by hand, not by the software)"


def test_the_api_measures_a_video_loop_and_leaves_no_file_behind(frames, tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import tempfile

    from fastapi.testclient import TestClient

    from fetalhead.web.app import create_app

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    client = TestClient(create_app(), base_url="http://127.0.0.1")
    video = write_video(tmp_path / "loop.avi", frames).read_bytes()
    j = client.post("/api/v1/measure", files={"file": ("loop.avi", video)},
                    data={"pixel_size_mm": str(PS), "include_image": "false"}).json()
    assert j["n_frames"] == 12 and len(j["hc_trace"]) == 12 and j["frame_choice"] and j["frame"] not in (3, 4)
    assert j["display"]["frame"].startswith(f"Frame {j['frame'] + 1} of 12")
    five = client.post("/api/v1/measure", files={"file": ("loop.avi", video)},
                       data={"pixel_size_mm": str(PS), "frame": "5", "include_image": "false"}).json()
    assert five["frame"] == 5 and five["hc_trace"] is None
    late = client.post("/api/v1/measure", files={"file": ("loop.avi", video)}, data={"frame": "40"})
    assert late.status_code == 422 and "frame 40 requested" in late.json()["error"]["message"]
    assert list(scratch.iterdir()) == []  # the private temporary copies are gone


@pytest.mark.parametrize("kind", ["dicom", "video"])
def test_a_loop_is_judged_by_all_its_frames_blank_ones_included(samples_dir, tmp_path, kind):
    # issue 26 #14: a loop whose first frame was blank failed whole ("a single grey level")
    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    noise = np.random.default_rng(0).integers(0, 255, grey.shape).astype(np.uint8)
    shifted = np.roll(grey, 6, axis=1)
    blank = np.zeros_like(grey)
    loop = np.stack([blank, noise, grey, shifted, blank])
    path = write_loop_dicom(tmp_path / "loop.dcm", loop, PS / 10) if kind == "dicom" else \
        write_video(tmp_path / "loop.avi", loop)
    ps = None if kind == "dicom" else PS
    every = measure_loop(path, ps, frames="all")
    assert [m.frame for m in every] == [0, 1, 2, 3, 4]
    assert every[0].status == every[4].status == "failed"
    assert "frame 1 of 5 is blank" in every[0].message and "frame 5 of 5 is blank" in every[4].message
    assert every[2].status != "failed" and every[3].status != "failed"
    best = measure_loop(path, ps, frames="best")[0]
    assert best.frame in (2, 3) and best.status != "failed" and best.head_circumference_mm > 100
    assert len(best.hc_trace) == 5


@pytest.mark.parametrize("memfd", [True, False])
def test_an_uploaded_video_never_lies_on_disk_while_it_is_read(frames, tmp_path, monkeypatch, memfd):
    # issue 26 #9: a server killed mid-measurement left the patient's video in TMPDIR
    import os
    import tempfile

    from fetalhead.scans import cine

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    if not memfd:
        monkeypatch.delattr(os, "memfd_create", raising=False)
    video = write_video(tmp_path / "loop.avi", frames).read_bytes()
    seen = 0
    for i, _, grey in cine._video_frames(video, "loop.avi"):
        assert list(scratch.iterdir()) == [], "a named copy of the upload exists while it is read"
        seen += 1
    assert seen == 12


@pytest.mark.parametrize("fourcc, ext", [("mp4v", "mp4"), ("MJPG", "avi")])
def test_a_video_damaged_half_way_is_not_ok(samples_dir, tmp_path, fourcc, ext):
    # issue 26 #3: an MP4 whose middle half is random bytes was "ok, frame 1 of 5"
    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    path = write_video(tmp_path / f"loop.{ext}", loop_frames(grey, n=20), fourcc=fourcc)
    assert len(measure_loop(path, PS, frames="all")) == 20  # whole, it reads whole
    data = bytearray(path.read_bytes())
    n = len(data)
    data[n // 4:3 * n // 4] = np.random.default_rng(0).integers(0, 256, n // 2, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    best = measure_loop(path, PS, frames="best")[0]
    assert best.status == "failed" and "damaged video: the file declares 20 frames" in best.message


def test_a_loop_past_the_time_limit_stops_and_says_so(frames, tmp_path):
    # issue 26 #7: a 9999-frame video took 211 s of CPU in the server; a limit stops it with the reason
    loop = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    every = measure_loop(loop, frames="all", time_limit_s=0.0)
    assert every[-1].failure == "too_long" and "measuring stopped after 1 of 12 frames" in every[-1].message
    assert len(every) == 2 and every[0].status != "failed"  # what was measured stays
    best = measure_loop(loop, frames="best", time_limit_s=0.0)[0]
    assert best.status == "failed" and best.failure == "too_long" and best.n_frames == 12
    assert measure_loop(loop, frames="best", time_limit_s=600)[0].status != "failed"


def test_a_loop_stops_when_asked_between_frames(frames, tmp_path):
    # issue 26 #7: a server asks before each frame whether its client is still there
    loop = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10)
    asked = []

    def should_stop():
        asked.append(1)
        return len(asked) > 3

    every = measure_loop(loop, frames="all", should_stop=should_stop)
    assert [m.status != "failed" for m in every] == [True, True, True, False]  # what was measured stays
    assert every[-1].failure == "stopped" and "stopped on request after 3 of 12 frames" in every[-1].message
    asked.clear()
    best = measure_loop(loop, frames="best", should_stop=should_stop)[0]
    assert best.status == "failed" and best.failure == "stopped" and best.n_frames == 12
    assert measure_loop(loop, frames="best", should_stop=lambda: False)[0].status != "failed"
