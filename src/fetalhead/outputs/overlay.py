"""Overlay pictures: the scan with the head ellipse, the 4 calipers and the figures written on it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .._version import SOFTWARE_NAME
from ..clinical.geometry import ellipse_points
from .display import distance_cm_text

__all__ = ["draw_overlay", "write_overlay", "arc_points", "in_arc", "draw_scale_overlay"]

GREEN, CYAN, YELLOW, RED, WHITE = (0, 220, 0), (255, 255, 0), (0, 215, 255), (0, 0, 255), (255, 255, 255)
AMBER = (0, 160, 255)  # BGR: the outline of a result adjusted by hand
MAGENTA = (255, 0, 255)  # BGR: the part of the outline to check (a doubtful stretch), drawn thick over it


def in_arc(direction_deg, arc: dict) -> np.ndarray:
    """Whether directions (degrees clockwise from +x about the centre) lie in ``arc`` (its ``from_deg``
    clockwise to its ``to_deg``; a stretch all round the head holds every direction)."""
    d = np.asarray(direction_deg, float)
    if arc.get("where") == "all_round":
        return np.ones(d.shape, bool)
    start, span = float(arc["from_deg"]), (float(arc["to_deg"]) - float(arc["from_deg"])) % 360.0
    return (d - start) % 360.0 <= span


def arc_points(ellipse, arc: dict, n: int = 720) -> list[np.ndarray]:
    """The outline's points (pixels) in a doubtful stretch, as runs of consecutive points."""
    pts = ellipse_points(ellipse, n)
    inside = in_arc(np.degrees(np.arctan2(pts[:, 1] - ellipse.center_y, pts[:, 0] - ellipse.center_x)) % 360.0, arc)
    if inside.all():
        return [pts]
    k = int(np.argmin(inside))  # start on a point outside, so that no run wraps
    order = np.roll(np.arange(n), -k)
    runs, run = [], []
    for i in order:
        if inside[i]:
            run.append(i)
        elif run:
            runs.append(pts[run])
            run = []
    if run:
        runs.append(pts[run])
    return runs


def _fmt(v, unit="", nd=1):
    return "-" if v is None else f"{v:.{nd}f}{unit}"


def _text_lines(m) -> list[str]:
    if m.ellipse is None:
        return [f"FAILED: {m.message[:90]}"]
    lines = []
    if m.head_circumference_mm is not None:
        lines.append(f"HC {_fmt(m.head_circumference_mm, ' mm')}  BPD {_fmt(m.biparietal_diameter_mm, ' mm')}"
                     f"  OFD {_fmt(m.occipitofrontal_diameter_mm, ' mm')}  CI {_fmt(m.cephalic_index, '%')}")
        if m.ga_hc_hadlock_weeks is not None or m.ga_hc_intergrowth_weeks is not None:
            lines.append(f"GA by HC: Hadlock 1984 {_fmt(m.ga_hc_hadlock_weeks, ' wk')}"
                         f"  INTERGROWTH-21st {_fmt(m.ga_hc_intergrowth_weeks, ' wk')}")
        else:
            lines.append("GA: HC outside the range of the dating formulas")
    else:
        lines.append(f"HC {_fmt(m.head_circumference_px, ' px')}  (no pixel spacing: no mm)")
    lines.append(f"quality {_fmt(m.quality, '', 2)}  {m.status.upper()}"
                 + (f"  [{', '.join(m.flags)}]" if m.flags else ""))
    lines.append(f"{SOFTWARE_NAME}, model {m.model_version or 'unknown'}")
    return lines


def draw_overlay(grey: np.ndarray, measurement, with_text: bool = True) -> np.ndarray:
    """BGR uint8 picture of ``grey`` (float in [0, 1]) with the measurement drawn on it.

    Ellipse in green (red when flagged; the stretches of it to check, ``uncertain_arcs``, thick in
    magenta), the four landmarks as cyan dots, the BPD and OFD as yellow lines, and the figures (mm, or px without spacing), the
    gestational age and the quality written in the top-left corner (``with_text``; the
    reports write the figures beside the picture instead, in the chosen language).
    """
    img = np.clip(np.asarray(grey, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    h, w = img.shape
    scale = max(1, int(round(max(h, w) / 800)))
    m = measurement
    lines = _text_lines(m) if with_text else []
    font, fs, th = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1 * scale
    step = 20 * scale
    if lines:  # darken behind the text (before drawing the calipers) so it reads on any scan
        width = max(cv2.getTextSize(t, font, fs, th)[0][0] for t in lines) + 12 * scale
        box = out[: step * len(lines) + 8 * scale, : min(width, w)]
        box[:] = (box * 0.35).astype(np.uint8)
    if m.ellipse is not None:
        colour = {"ok": GREEN, "adjusted": AMBER}.get(m.status, RED)
        pts = np.round(ellipse_points(m.ellipse, 720) * 16).astype(np.int32)
        cv2.polylines(out, [pts], True, colour, 1 * scale, cv2.LINE_AA, shift=4)
        for arc in getattr(m, "uncertain_arcs", None) or []:
            for run in arc_points(m.ellipse, arc):
                cv2.polylines(out, [np.round(run * 16).astype(np.int32)], arc.get("where") == "all_round", MAGENTA,
                              3 * scale, cv2.LINE_AA, shift=4)
        lm = m.landmarks
        for a, b in (("ofd_1", "ofd_2"), ("bpd_1", "bpd_2")):
            p1 = tuple(int(round(v * 16)) for v in lm[a])
            p2 = tuple(int(round(v * 16)) for v in lm[b])
            cv2.line(out, p1, p2, YELLOW, 1 * scale, cv2.LINE_AA, shift=4)
        for key in ("ofd_1", "ofd_2", "bpd_1", "bpd_2"):
            c = tuple(int(round(v * 16)) for v in lm[key])
            cv2.circle(out, c, 4 * 16 * scale, CYAN, -1, cv2.LINE_AA, shift=4)
    _draw_scale_used(out, m, scale)
    y = 18 * scale
    for text in lines:
        cv2.putText(out, text, (6 * scale, y), font, fs, WHITE, th, cv2.LINE_AA)
        y += step
    return out


def _draw_scale_used(out: np.ndarray, m, scale: int) -> None:
    """Where the pixel size came from, drawn so that it can be checked on the picture (issue 22): a scale
    set by two points as a line between them with its distance, or the screen's depth-scale marks
    circled when the screen's scale gave the millimetres."""
    points = getattr(m, "scale_points", None)
    if points:
        (x1, y1), (x2, y2) = ((int(round(x * 16)), int(round(y * 16))) for x, y in points)
        cv2.line(out, (x1, y1), (x2, y2), YELLOW, 1 * scale, cv2.LINE_AA, shift=4)
        for c in ((x1, y1), (x2, y2)):
            cv2.circle(out, c, 5 * 16 * scale, YELLOW, 1 * scale, cv2.LINE_AA, shift=4)
        cm = getattr(m, "scale_distance_cm", None)
        if cm is not None:
            at = (int((x1 + x2) / 32) + 8 * scale, int((y1 + y2) / 32))
            cv2.putText(out, f"{distance_cm_text(cm)} cm", at, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, YELLOW, 1 * scale,
                        cv2.LINE_AA)
    elif str(getattr(m, "spacing_source", "") or "").startswith("screen:"):
        for x, y in getattr(m, "screen_marks", None) or []:
            cv2.circle(out, (int(round(x * 16)), int(round(y * 16))), 4 * 16 * scale, YELLOW, 1, cv2.LINE_AA,
                       shift=4)


def write_overlay(path: str | Path, grey: np.ndarray, measurement) -> Path:
    """Draw and write the overlay as PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), draw_overlay(grey, measurement)):
        raise OSError(f"{path}: could not write the overlay")
    return path


def draw_scale_overlay(image: np.ndarray, scale) -> np.ndarray:
    """The screen picture (BGR uint8) with the depth scale's marks circled and what was read written on it,
    so that a user can check them against the screen (issue 22). ``scale``: a
    :class:`fetalhead.scans.screen_scale.ScreenScale`."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        img = np.clip(img * 255.0, 0, 255).astype(np.uint8)
    out = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR) if img.ndim == 2 else img[..., :3].copy()
    for x, y in scale.marks:
        cv2.circle(out, (int(round(x)), int(round(y))), 6, YELLOW, 1, cv2.LINE_AA)
    if scale.mm_per_px is not None:
        text = f"1 cm = {10 / scale.mm_per_px[1]:.1f} px  ({scale.mm_per_px[1]:.4f} mm/px, confidence {scale.confidence:.2f})"
        colour = GREEN
    else:
        text, colour = scale.reason[:100], RED
    cv2.putText(out, text, (8, out.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (8, out.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
    return out
