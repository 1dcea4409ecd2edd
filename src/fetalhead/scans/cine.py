"""Cine loops: multi-frame ultrasound DICOM and video files (MP4, MOV, AVI, WebM through OpenCV).

``fetalhead measure loop.dcm --frames all|best|N`` (default for a loop: ``best``):

* ``all``: one result per frame, with its frame number and time (from the DICOM frame timing,
  FrameTime or FrameTimeVector, or the video's frame rate; empty when the file has none);
* ``N``: that frame only;
* ``best``: the frame a sonographer would freeze, and the per-frame HC trace beside it. Every frame
  is measured; among the frames with a result (``ok`` before ``flagged``), the best has the highest
  *score* = quality (the calibrated trust of that frame's outline: how clear and complete the skull
  is, how well the network's region is an ellipse, how much lies inside the image) times its
  *stability* = exp(-d / :data:`STABILITY_SCALE`), where ``d`` is the relative difference of its HC
  from the median HC of the frames around it (:data:`STABILITY_WINDOW` each side): a clear frame
  whose figure agrees with its neighbours, not a lucky outlier. The result says which frame and why.

Frames are decoded one at a time (a DICOM file is parsed once; a video is read in order), so a long
loop never sits in memory whole. A video given as bytes (the web page) goes into an anonymous memory
file (OpenCV reads video from files only); it is never written to disk under a name.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .dicom import dicom_frame_times
from .imageio import ScanReadError
from .scan import Scan

__all__ = ["FRAME_CHOICES", "parse_frames", "iter_loop_frames", "read_video_frame", "dicom_frame_times",
           "choose_best_frame", "STABILITY_SCALE", "STABILITY_WINDOW", "MAX_VIDEO_FRAMES",
           "LOOP_NO_HEAD_SHARE", "loop_without_head"]

#: Relative HC difference from the neighbouring frames at which a frame's stability has fallen to 1/e
#: (2 %: about the inter-observer spread of HC, Sarris et al., UOG 2012).
STABILITY_SCALE = 0.02
#: Frames on each side whose median HC a frame is compared with.
STABILITY_WINDOW = 2
#: A loop in which more than this share of the frames measured show no fetal head (``no_head_found``)
#: is a loop without one: its "best frame" would be the one frame of other anatomy that looks most like
#: a head (issue 21: no figures for images with no fetal head). Found on pydicom-data's SonoSite cardiac
#: loop: 109 of its 120 frames show no head, the other 11 give a flagged "HC" of 260-396 mm; a loop of
#: a head sweeps through it, so the head shows on most frames.
LOOP_NO_HEAD_SHARE = 0.5
#: A video longer than this many frames is refused (an hour of 30 fps would be 108 000).
MAX_VIDEO_FRAMES = 10_000
#: Frames a video may decode fewer than its container declares before it counts as damaged: containers'
#: counts are estimates (from the duration and rate) and can be off by a frame or two, or by 5 %.
VIDEO_FRAME_COUNT_SLACK = 2
FRAME_CHOICES = ("best", "all")


def parse_frames(text) -> str | int:
    """``--frames``: "best", "all" or a frame number (0 = the first)."""
    if isinstance(text, int):
        value = text
    else:
        t = str(text).strip().lower()
        if t in FRAME_CHOICES:
            return t
        try:
            value = int(t)
        except ValueError:
            raise ValueError(f"--frames {text!r}: expected best, all or a frame number (0 = the first)") from None
    if value < 0:
        raise ValueError(f"--frames {value}: frame numbers start at 0")
    return value


@contextlib.contextmanager
def _video_capture(source, name: str):
    """An opened cv2.VideoCapture of a path or of bytes.

    Bytes (an upload) never lie on disk under a name: on Linux they go into an anonymous memory file
    (``memfd_create``) that OpenCV opens as ``/proc/self/fd/N``; elsewhere into a private temporary
    file (mode 0600) that is unlinked as soon as it is opened, so a killed process leaves nothing."""
    import cv2

    fd = None
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            fd = _anonymous_file(bytes(source))
            path = f"/proc/self/fd/{fd}"
            if not os.path.exists(path):
                raise ScanReadError(f"{name}: a video upload cannot be read on this system (no /proc/self/fd)")
        else:
            path = str(source)
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise ScanReadError(f"{name}: the video cannot be decoded (OpenCV could not open it)")
        try:
            yield cap
        finally:
            cap.release()
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def _anonymous_file(data: bytes) -> int:
    """A readable file descriptor holding ``data``, with no name on any disk."""
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("fetalhead-video", getattr(os, "MFD_CLOEXEC", 0))
    else:
        fd, tmp = tempfile.mkstemp(prefix="fetalhead-", suffix=".video")  # mode 0600
        os.unlink(tmp)  # gone from the folder at once; the data live while fd is open
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 3:
        frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    return frame.astype(np.float32) / 255.0


def _video_frames(source, name: str) -> Iterator[tuple[int, float | None, np.ndarray]]:
    import cv2

    from .imageio import check_dimensions

    with _video_capture(source, name) as cap:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        check_dimensions(w, h, name)
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if i >= MAX_VIDEO_FRAMES:
                raise ScanReadError(f"{name}: more than {MAX_VIDEO_FRAMES} frames: cut the loop shorter")
            yield i, (i / fps if fps > 0 else None), _grey(frame)
            i += 1
        if i == 0:
            raise ScanReadError(f"{name}: the video has no frame that can be decoded")
        declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if declared - i > max(VIDEO_FRAME_COUNT_SLACK, 0.05 * declared):
            raise ScanReadError(f"{name}: damaged video: the file declares {declared} frames, only the first {i} "
                                "could be decoded")


def read_video_frame(source, name: str, frame: int = 0) -> tuple[np.ndarray, int, float | None]:
    """Frame ``frame`` of a video as grey float32 in [0, 1], with the number of frames and its time (s).

    Raises :class:`ScanReadError` for a video that cannot be decoded, has no frames, or fewer than
    ``frame + 1``."""
    found = None
    n = 0
    for i, t, grey in _video_frames(source, name):
        if i == frame:
            found = (grey, t)
        n = i + 1
    if found is None:
        raise ScanReadError(f"{name}: frame {frame} requested, the video has {n} frame(s) (0-{n - 1})")
    return found[0], n, found[1]


def iter_loop_frames(source, name: str, kind: str, *, accept_anisotropic: bool = False,
                     include_identifying: bool = False, sha256: str = "", blank_outside_regions: bool = True
                     ) -> Iterator:
    """Each frame of a loop as a :class:`fetalhead.measurement.Scan` (DICOM parsed once, video read in order)."""
    if kind == "video":  # (the number of frames is known only at the end of the video)
        for i, t, grey in _video_frames(source, name):
            yield Scan(grey, name, "video", i, sha256, frame_time_s=t)
        return
    from .dicom import read_dicom_frames

    for dicom_scan, t in read_dicom_frames(source, name=name, accept_anisotropic=accept_anisotropic,
                                           include_identifying=include_identifying,
                                           blank_outside_regions=blank_outside_regions):
        yield Scan(dicom_scan.image, name, "dicom", dicom_scan.frame, sha256, dicom_scan, dicom_scan.n_frames, t)


def loop_without_head(measurements: list) -> str:
    """Why a loop has no fetal head (more than :data:`LOOP_NO_HEAD_SHARE` of its measured frames failed
    ``no_head_found``), or ``""`` when it may have one."""
    measured = [m for m in measurements if m.failure not in ("too_long", "stopped", "unreadable_scan")]
    none = sum(m.failure == "no_head_found" for m in measured)
    if measured and none > LOOP_NO_HEAD_SHARE * len(measured):
        return f"no fetal head found on {none} of the {len(measured)} frames: this loop shows no fetal head"
    return ""


def choose_best_frame(measurements: list) -> tuple[int | None, str]:
    """The index of the frame to report among ``measurements`` (one per frame, in order) and why;
    ``(None, reason)`` when no frame was measured. See the module's docstring for the rule."""
    hcs = [m.head_circumference_px if m.status != "failed" else None for m in measurements]
    best, best_key, best_parts = None, None, None
    for i, m in enumerate(measurements):
        if m.status == "failed" or hcs[i] is None:
            continue
        around = [h for h in hcs[max(0, i - STABILITY_WINDOW): i + STABILITY_WINDOW + 1] if h is not None]
        median = float(np.median(around))
        d = abs(hcs[i] - median) / max(median, 1e-9)
        stability = math.exp(-d / STABILITY_SCALE)
        score = float(m.quality or 0.0) * stability
        key = (m.status == "ok", score)
        if best_key is None or key > best_key:
            best, best_key, best_parts = i, key, (m.quality or 0.0, stability, d)
    if best is None:
        return None, f"no frame of the {len(measurements)} could be measured"
    q, stab, d = best_parts
    return best, (f"frame {measurements[best].frame} of {len(measurements)}: quality {q:.2f}, HC within "
                  f"{100 * d:.1f} % of the {2 * STABILITY_WINDOW} frames around it (stability {stab:.2f}); "
                  f"{'no automatic warning' if measurements[best].status == 'ok' else 'the best frame is flagged'}")
