"""The depth label of a scanner screen ("16cm", "4.0cm", "11 cm") read with a small template matcher (issue 22).

Why a template matcher and not an OCR engine: the label is a handful of glyphs (the digits, a decimal
point, "c" and "m") in a plain sans font drawn bright on the dark screen, and it is only ever a
cross-check of the depth scale's marks (:func:`fetalhead.scans.screen_scale.read_screen_scale`), never
the source of a pixel size. Templates rendered from OpenCV's own Hershey fonts (already a dependency),
and the same glyphs of the shipped Noto Sans, regular and bold (7 KB, ``assets/glyphs``, made by
``tools/glyph_templates.py``: scanners' bold sans labels, the Philips EPIQ 7C's "16cm", resemble no
Hershey font), read the real scanner screens of the pydicom-data files; an OCR engine (Tesseract, a
neural reader) would add a system package or hundreds of MB to the default install for no better
cross-check.

How (numpy and OpenCV only):

1. *Glyphs*: connected components of the bright pixels (:data:`TEXT_LEVEL`) that are glyph-sized.
2. *Words*: glyphs on one baseline with letter gaps between them (at most :data:`MAX_GAP` of the
   cap height; a wider gap, as in "11 cm", is read as a space and allowed only before "cm"), on a dark
   background.
3. *Letters*: each glyph, by its height in the word (digits are cap height, "c" and "m" lower, "." a
   dot on the baseline), is compared with the templates of its class, normalised to
   :data:`TEMPLATE_SIZE`: the best normalised correlation wins when it reaches :data:`MIN_MATCH`.
4. *Labels*: words that read ``<number>cm`` with a number of :data:`DEPTH_RANGE_CM`. Anything else is
   not read: **no label, never a guess**.
"""

from __future__ import annotations

import re
from pathlib import Path
import threading
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["DepthLabel", "read_depth_labels", "read_glyphs", "DEPTH_RANGE_CM", "MIN_MATCH"]

#: Text is drawn bright: a pixel of a glyph is at least this bright (0-255, the brightest channel).
TEXT_LEVEL = 128
#: Glyph heights (cap height of the digits, pixels) the reader looks for: 7 px (a 480-line screen's
#: small print) to 60 px.
CAP_HEIGHT_PX = (7, 60)
#: Letters of one word are at most this far apart (share of the cap height); a space is wider.
MAX_GAP = 0.45
#: ... or, two digits, their centres at most this far apart (scanners' digits are fixed-width: "11cm"
#: on the Philips CX50 leaves a wide gap around each narrow "1"), share of the cap height.
MAX_ADVANCE = 1.05
#: A space ("11 cm") is at most this wide (share of the cap height).
MAX_SPACE = 1.2
#: A glyph is read when its best template's normalised correlation reaches this (0-1).
MIN_MATCH = 0.6
#: ... and beats every other character by at least this much: a "6" of a font no template has (Pillow's
#: Aileron) scored 0.67 as "5" against 0.62 as "8"; below the margin it is not read (no label, never a guess).
#: bench/depth_labels.py (1792 labels, 14 fonts, cap heights 6-24 px): 0.05 read 5 wrong (Liberation Mono's
#: "3" as "8" at 34 px), 0.08 none, at 57.8 % read right against 59.5 %.
MIN_MARGIN = 0.08
#: Templates and glyphs are compared at this size (width, height, pixels).
TEMPLATE_SIZE = (12, 16)
#: Depths a scanner shows (cm): 1 cm (a small parts probe) to 40 cm.
DEPTH_RANGE_CM = (1.0, 40.0)
#: The background around a word is dark: at least this share of the ring around it below TEXT_LEVEL / 2.
MIN_DARK_AROUND = 0.6
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX,
         cv2.FONT_HERSHEY_PLAIN)
DIGITS = "0123456789"
LOWER = "cm"
#: Sans-serif glyphs ("<char>_<weight>": binary crops of Noto Sans, SIL Open Font License) made by
#: ``tools/glyph_templates.py``.
SANS_GLYPHS = Path(__file__).resolve().parents[1] / "assets" / "glyphs" / "noto_sans_glyphs.npz"


@dataclass
class DepthLabel:
    """A depth label read off a screen: its text as read (``"16cm"``), the depth in cm, where it is
    (x, y, w, h pixels) and the worst of its glyphs' template matches (0-1)."""

    text: str
    depth_cm: float
    box: tuple[int, int, int, int]
    match: float


_TEMPLATES: dict[str, list[tuple[np.ndarray, float]]] = {}
_LOCK = threading.Lock()


def _normalise(mask: np.ndarray) -> np.ndarray:
    """A glyph's pixels at the template height, its width kept (narrower than the box: centred in it;
    wider: squeezed), as a zero-mean unit vector."""
    tw, th = TEMPLATE_SIZE
    h, w = mask.shape
    nw = int(np.clip(round(w * th / h), 1, tw))
    g = cv2.resize(mask.astype(np.float32), (nw, th), interpolation=cv2.INTER_AREA)
    box = np.zeros((th, tw), np.float32)
    box[:, (tw - nw) // 2:(tw - nw) // 2 + nw] = g
    box = cv2.GaussianBlur(box, (3, 3), 0.8)  # tolerant of the stroke's width (bold and thin fonts)
    v = box.ravel() - box.mean()
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def _templates() -> dict[str, list[tuple[np.ndarray, float]]]:
    """Each glyph of "0-9cm" rendered in every Hershey font at five weights, and as Noto Sans draws it
    (regular and bold, :data:`SANS_GLYPHS`): (normalised image, aspect)."""
    with _LOCK:
        if not _TEMPLATES:
            sans_crops = {}
            if SANS_GLYPHS.exists():
                with np.load(SANS_GLYPHS) as sans:
                    sans_crops = {k: sans[k].astype(bool) for k in sans.files}
            for ch in DIGITS + LOWER:
                out = []
                for font in FONTS:
                    for thick in (1, 2, 3, 4, 5):
                        scale = 1.0 if font != cv2.FONT_HERSHEY_PLAIN else 2.0
                        img = np.zeros((80, 80), np.uint8)
                        cv2.putText(img, ch, (15, 60), font, scale, 255, thick, cv2.LINE_AA)
                        ys, xs = np.nonzero(img >= TEXT_LEVEL)
                        crop = img[ys.min():ys.max() + 1, xs.min():xs.max() + 1] >= TEXT_LEVEL
                        out.append((_normalise(crop), crop.shape[1] / crop.shape[0]))
                for key in sorted(k for k in sans_crops if k.split("_")[0] == ch):
                    crop = sans_crops[key]
                    out.append((_normalise(crop), crop.shape[1] / crop.shape[0]))
                _TEMPLATES[ch] = out
    return _TEMPLATES


def _classify(mask: np.ndarray, choices: str) -> tuple[str, float]:
    """The best of ``choices`` for a glyph's own pixels (bool array): (character, score); the character is
    "?" when another one scores within :data:`MIN_MARGIN` of it."""
    g = _normalise(mask)
    aspect = max(mask.shape[1] / mask.shape[0], 0.05)
    scores = []
    for ch in choices:
        mat, asp = _stacked()[ch]
        scores.append((float(np.max(mat @ g - 0.25 * np.abs(np.log(aspect / asp)))), ch))
    scores.sort(reverse=True)
    score, best = scores[0]
    if len(scores) > 1 and score - scores[1][0] < MIN_MARGIN:
        return "?", score
    return best, score


_STACKED: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def _stacked() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not _STACKED:
        for ch, ts in _templates().items():
            _STACKED[ch] = (np.stack([t for t, _ in ts]), np.maximum(np.array([a for _, a in ts]), 0.05))
    return _STACKED


def read_glyphs(value: np.ndarray) -> list[tuple[str, tuple[int, int, int, int], float]]:
    """The words of bright text that read as a number, optionally followed by "cm".

    Parameters
    ----------
    value : (H, W) uint8, the brightest channel of the screen picture

    Returns
    -------
    list of (text, box (x, y, w, h) in pixels, worst glyph match 0-1); "?" marks a glyph not read.
    """
    mask = (value >= TEXT_LEVEL).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_BBDT)
    if n <= 1:
        return []
    x, y, w, h, area = (stats[1:, i] for i in range(5))
    lo, hi = CAP_HEIGHT_PX
    glyph = (h >= 2) & (h <= hi) & (w <= 1.6 * hi) & (area >= 2) & (w <= 3 * np.maximum(h, 3))
    # text stands on a dark background: most of a 2-pixel ring around each glyph's box is dark
    # (speckle's bright flecks do not): one integral image for all of them
    H, W = value.shape
    ii = cv2.integral((value < TEXT_LEVEL // 2).view(np.uint8), sdepth=cv2.CV_32S)
    bx0, by0 = np.clip(x - 2, 0, W), np.clip(y - 2, 0, H)
    bx1, by1 = np.clip(x + w + 2, 0, W), np.clip(y + h + 2, 0, H)
    dark = ii[by1, bx1] - ii[by0, bx1] - ii[by1, bx0] + ii[by0, bx0]
    ring = (bx1 - bx0) * (by1 - by0) - w * h
    glyph &= (dark >= MIN_DARK_AROUND * ring) | (np.maximum(w, h) <= 4)  # a decimal point may touch its digits' ring
    ids = np.flatnonzero(glyph)
    if len(ids) == 0:
        return []
    order = ids[np.argsort(x[ids], kind="stable")]
    bottom = y + h
    words, taken = [], set()
    for a in order:  # left to right: a word starts at a tall glyph (a digit) not yet taken
        if a in taken or not (lo <= h[a] <= hi):
            continue
        cap = float(h[a])
        word, spaced = [a], False
        cur = a
        while True:
            right = x[cur] + w[cur]
            near = (x[order] >= right - 1) & (x[order] - right <= MAX_SPACE * cap) & (order != cur) \
                & (np.abs(bottom[order] - bottom[a]) <= max(1.5, 0.15 * cap)) & (h[order] <= 1.15 * cap)
            near_ids = [b for b in order[near] if b not in word]
            if not near_ids:
                break
            b = min(near_ids, key=lambda q: x[q])
            nxt = (b, x[b] - right)
            b, gap = nxt
            # a letter gap, or glyphs of a fixed-width font whose centres are a letter apart ("11cm")
            centres = (x[b] + w[b] / 2) - (x[cur] + w[cur] / 2)

            def digit_or_point(q):  # a digit's height, or a decimal point: small, on the baseline
                return h[q] >= 0.85 * cap or (h[q] <= 0.35 * cap and w[q] <= 0.45 * cap
                                              and abs(bottom[q] - bottom[a]) <= max(1.5, 0.15 * cap))

            point = digit_or_point(b) and digit_or_point(cur) and not (h[b] >= 0.85 * cap and h[cur] >= 0.85 * cap)
            if point and gap > MAX_GAP * cap and centres <= MAX_ADVANCE * cap:  # "7.5" in a fixed-width font
                word.append(b)
                cur = b
                if len(word) > 8:
                    break
                continue
            digits = h[b] >= 0.85 * cap and h[cur] >= 0.85 * cap
            if digits and gap > MAX_GAP * cap:  # nothing on the baseline between them (a faint decimal point)
                between = value[y[b] + int(0.6 * h[b]):y[b] + h[b], right + 1:x[b] - 1]
                digits = between.size == 0 or int(between.max()) < TEXT_LEVEL // 2
            if gap > MAX_GAP * cap and not (digits and centres <= MAX_ADVANCE * cap):
                # a space is dark: a glyph the threshold broke up ("20cm" whose small "0" was lost read "2 cm")
                # leaves bright pixels in it
                band = value[int(y[a]):int(y[a] + h[a]), right + 1:max(right + 1, x[b] - 1)]
                if spaced or (band.size and int(band.max()) >= TEXT_LEVEL // 2):
                    break
                spaced = True  # one space, read only if "cm" follows it
                word.append(-1)
            word.append(b)
            cur = b
            if len(word) > 8:
                break
        glyphs = [g for g in word if g >= 0]
        if len(glyphs) < 2:
            continue
        # the tail of a longer word is not a word: a glyph (a decimal point, a digit the reader lost) a letter
        # gap left of its first digit ("7.5cm" whose thin "7" broke up read "5cm")
        left = (x[ids] + w[ids] <= x[a] + 1) & (x[a] - (x[ids] + w[ids]) <= MAX_GAP * h[a]) \
            & (np.abs(bottom[ids] - bottom[a]) <= max(1.5, 0.15 * h[a])) & (h[ids] <= 1.15 * h[a])
        before = value[int(y[a]):int(y[a] + h[a]), max(0, int(x[a] - h[a])):max(0, int(x[a]) - 1)]
        if left.any() or (before.size and int(before.max()) >= TEXT_LEVEL // 2):  # or what is left of a glyph
            continue
        cap = float(max(h[g] for g in glyphs))
        if not (lo <= cap <= hi):
            continue
        text, worst = [], 1.0
        for g in word:
            if g < 0:
                text.append(" ")
                continue
            rel = h[g] / cap
            if rel <= 0.35 and w[g] <= 0.45 * cap:
                text.append(".")
                continue
            own = labels[y[g]:y[g] + h[g], x[g]:x[g] + w[g]] == g + 1
            choices = DIGITS if rel >= 0.85 else (LOWER if 0.45 <= rel < 0.85 else "")
            if not choices:
                text.append("?")
                worst = 0.0
                continue
            ch, s = _classify(own, choices)
            text.append(ch if s >= MIN_MATCH else "?")
            worst = min(worst, s)
        x0, y0 = int(min(x[g] for g in glyphs)), int(min(y[g] for g in glyphs))
        x1, y1 = int(max(x[g] + w[g] for g in glyphs)), int(max(y[g] + h[g] for g in glyphs))
        H, W = value.shape
        ring = value[max(0, y0 - 3):min(H, y1 + 3), max(0, x0 - 3):min(W, x1 + 3)]
        inside = mask[y0:y1, x0:x1].sum()
        dark = (np.count_nonzero(ring < TEXT_LEVEL // 2)) / max(ring.size - inside, 1)
        if dark < MIN_DARK_AROUND:
            continue
        taken.update(glyphs)
        words.append(("".join(text), (x0, y0, x1 - x0, y1 - y0), float(worst)))
    return words


_LABEL = re.compile(r"^(\d{1,2}(?:\.\d{1,2})?) ?cm$")


def read_depth_labels(image: np.ndarray) -> list[DepthLabel]:
    """Every word of the screen that reads as a depth (``<number>cm``, :data:`DEPTH_RANGE_CM`), best
    matched first. A caliper's measurement ("1.06 cm") reads the same way: which label is the depth
    is for the caller to decide against the scale's marks.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) uint8 picture (RGB or grey)
    """
    a = np.asarray(image)
    if a.dtype != np.uint8 or a.ndim not in (2, 3):
        raise ValueError(f"expected a (H, W) or (H, W, 3) uint8 picture, got {a.dtype} {a.shape}")
    if a.ndim == 3:
        r, g, b = cv2.split(np.ascontiguousarray(a[..., :3]))
        a = cv2.max(cv2.max(r, g), b)
    out = []
    for text, box, match in read_glyphs(np.ascontiguousarray(a)):
        m = _LABEL.match(text)
        if not m:
            continue
        depth = float(m.group(1))
        if DEPTH_RANGE_CM[0] <= depth <= DEPTH_RANGE_CM[1]:
            out.append(DepthLabel(text.replace(" ", ""), depth, box, match))
    return sorted(out, key=lambda d: -d.match)
