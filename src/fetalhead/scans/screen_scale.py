"""The scanner's own depth scale read off a screen picture: millimetres without DICOM (issue 22).

Every scanner draws its depth scale on the screen: dots or ticks every centimetre (often a smaller
mark every half centimetre, a bigger or differently coloured mark every 5 cm) along one side of the
image or along the side of the sector. :func:`read_screen_scale` finds such a row of marks in a
screen picture (a screenshot, a USB still, an HDMI capture, a DICOM file's pixels without its
calibration) and turns its spacing into a pixel size in mm.

How (pure functions on arrays, numpy and OpenCV only):

1. *Mark candidates*: small bright or coloured blobs that stand out from what surrounds them (a white
   top-hat on the brightness and on the colourfulness, then connected components, each kept only when
   it is small and its colour differs from the ring around it).
2. *Rows*: every pair of near candidates proposes a line and a spacing; the candidates that lie on that
   line at whole multiples of the spacing are its marks. A row is kept when it has at least
   :data:`MIN_MARKS` marks, its spacing is regular (:data:`MAX_SPACING_CV`), its marks are alike and
   narrow along the row (ticks and dots, not text nor the bands of a colour bar).
3. *What one step is worth*: bigger or differently coloured marks every 2nd step mean half-centimetre
   steps; every 5th step, centimetre steps; every 10th, half-centimetre steps with 5 cm marks. Alike
   marks are taken as centimetre steps (the scanners' common convention), and the result says so.
4. *One answer or none*: rows that disagree by more than :data:`AGREEMENT` refuse the picture (two
   scales, no way to know which one is the image's); pixels are taken as square (no scanner in the
   test files draws a lateral scale that differs from its depth scale), so ``mm_per_px`` is (s, s).

The answer is a :class:`ScreenScale` whose ``mm_per_px`` is ``None`` with a reason whenever the
picture does not show one clear scale: **no scale, never a guess**.

The depth label ("16cm", "4.0cm", "11 cm") is read where it can be (:mod:`fetalhead.scans.depth_label`, a
small template matcher) and used as a cross-check only: a label alone gives no pixel size (the depth's
extent in pixels is not known without the marks). A label that fits the marks (the depth it says at
least their extent, and that depth fits on the picture) is reported (``label``); one that fits only if
alike marks assumed to be 1 cm were half centimetres refuses the picture; any other (a caliper's "3.3 cm")
is not the depth and is left out.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from .depth_label import read_depth_labels

__all__ = ["ScreenScale", "Row", "read_screen_scale", "mark_candidates", "find_rows",
           "MIN_MARKS", "MAX_SPACING_CV", "AGREEMENT", "MIN_CONFIDENCE"]

#: A row needs this many marks (4 steps): fewer can line up by chance (speckle, text).
MIN_MARKS = 5
#: The spacings of a row may vary this much (std / mean of the step lengths); screens draw marks at
#: whole pixels and JPEG and resizing move them by about a pixel, so 1 px on a 13 px step passes.
MAX_SPACING_CV = 0.08
#: Steps may grow or shrink along a row by at most this share from end to end (a slanted photo's
#: perspective does; a screen capture does not): beyond it the row is refused (issue 22: never more than 3 % off).
MAX_STEP_TREND = 0.02
#: A row of alike marks with a few odd ones among them and no pattern (the weakest kind) needs this many
#: marks: Doppler flecks lined up as 9 "dots" on pydicom's examples_rgb_color.dcm.
MIN_MARKS_WITH_ODD = 10
#: Two rows (or a typed pixel size and the screen's) that differ by more than this disagree (issue 22: 2 %).
AGREEMENT = 0.02
#: Below this confidence the answer is "no scale".
MIN_CONFIDENCE = 0.5
#: Steps between marks, in pixels, that a depth scale can have: 1 cm on a screen image of 200 to
#: 4000 pixels (the limits of fetalhead.clinical.limits.PIXEL_SIZE_RANGE_MM: 0.02-1 mm/px ->
#: 10-500 px per cm; half centimetres from 5 px).
SPACING_RANGE_PX = (5.0, 500.0)
#: A mark is at most this big (pixels, its longer side) and this much of a step along the row.
MAX_MARK_PX = 40
MAX_MARK_DUTY = 0.45
#: ... and at most this much when no pattern tells the step's worth (1 cm assumed): a monospaced text row
#: ("G123 5.0 R15 G66 C6 A2" on pydicom-data's ALOKA screen, glyph pitch 20 px) blurred in a phone photo
#: reads as alike marks with a duty of 0.40-0.44 (so does EPIQ's caption in the "all" photo variant);
#: the depth scales of pydicom-data's screens and of the synthetic ones measure 0.04-0.13
#: (bench/screen_scale.py and bench/screen_photo.py, 2026-12).
MAX_ASSUMED_MARK_DUTY = 0.25
#: Dots and ticks fill most of their box (a disc 0.79, a bar 1); letters fill half or less.
MIN_FILL = 0.6
#: A mark's colour differs from its surrounding ring by at least this much (Euclidean RGB, 0-255).
MIN_MARK_CONTRAST = 45.0
#: A grey mark stands on a plain background: the brightness around it varies at most this much (standard
#: deviation, 0-255); speckle does not. A coloured mark (chroma at least MIN_MARK_CHROMA) may stand on the image.
MAX_RING_SD = 30.0
#: ... or at least half of the ring is dark (below this level, 0-255): a mark beside a sector's edge.
DARK_LEVEL = 40
MIN_MARK_CHROMA = 60.0
#: The marks of a scale lie on a straight line: their distances to it (RMS, pixels) at most this.
MAX_LINE_RMS_PX = 1.2
#: Top-hat kernel (pixels): structures thinner than this in one direction count as marks.
TOPHAT_PX = 15
#: Top-hat levels (0-255): a mark touching bright speckle stands alone at a higher one.
TOPHAT_LEVELS = (40, 90, 150)
#: Candidates kept (the most contrasted): a screen holds far fewer marks; speckle holds more.
MAX_CANDIDATES = 1500
NEIGHBOURS = 16
#: A mark lies at most this far from its predicted place, as a share of the step.
ALONG_TOLERANCE = 0.12
#: A row goes on over at most 4 missing marks (dots merged with the bright edge of a sector) ...
MAX_GAP_STEPS = 5
#: ... and has a mark at this share of its steps at least (a short row, under LONG_ROW marks, at the higher
#: share: a few marks with gaps line up by chance, JPEG'd and resized screens showed it).
MIN_COVERAGE = 0.6
MIN_COVERAGE_SHORT = 0.75
LONG_ROW = 10


@dataclass(eq=False)
class Row:
    """A row of regularly spaced marks.

    ``points`` (n, 2) are the marks' centres (x, y in pixels), ``steps`` their whole step numbers,
    ``spacing_px`` the fitted step length in pixels, ``direction`` the unit vector along the row,
    ``step_cm`` what one step is worth (0.5 or 1.0), ``pattern`` how that was decided.
    """

    points: np.ndarray
    steps: np.ndarray
    spacing_px: float
    direction: np.ndarray
    spacing_cv: float
    kind: str = "marks"  # "dots" or "ticks"
    step_cm: float = 1.0
    pattern: str = "alike marks (1 cm assumed)"
    major: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def orientation(self) -> str:
        dx, dy = abs(float(self.direction[0])), abs(float(self.direction[1]))
        if dy >= 0.97:
            return "vertical"
        if dx >= 0.97:
            return "horizontal"
        return "oblique"

    @property
    def mm_per_px(self) -> float:
        return 10.0 * self.step_cm / self.spacing_px

    @property
    def n(self) -> int:
        return len(self.points)


@dataclass
class ScreenScale:
    """What the screen's scale says.

    ``mm_per_px`` is ``(x, y)`` in mm per pixel, or ``None`` when no scale was found (``reason`` says
    why). ``marks`` are the marks' centres (x, y pixels) of the rows used; ``confidence`` in 0-1;
    ``how`` names the kind of scale (``depth-scale``, ``sector-scale``) for ``spacing_source``.
    """

    mm_per_px: tuple[float, float] | None
    confidence: float
    reason: str
    marks: list[tuple[float, float]] = field(default_factory=list)
    label: str | None = None
    how: str = "none"
    rows: list[Row] = field(default_factory=list)

    @property
    def px_per_cm(self) -> float | None:
        return None if self.mm_per_px is None else 10.0 / self.mm_per_px[1]

    def to_dict(self) -> dict:
        return {"mm_per_px": None if self.mm_per_px is None else [round(v, 6) for v in self.mm_per_px],
                "marks": [[round(x, 1), round(y, 1)] for x, y in self.marks], "label": self.label,
                "confidence": round(self.confidence, 3), "reason": self.reason, "how": self.how}


_LOCAL = threading.local()


def _as_u8(image: np.ndarray) -> np.ndarray:
    """The picture as uint8, (H, W) for a grey one (as given: no copies into three channels), else
    (H, W, 3) RGB. Floats in 0-1 are scaled by 255 and truncated (float64 arithmetic, as always)."""
    a = np.asarray(image)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] < 3):
        raise ValueError(f"expected a (H, W) or (H, W, 3) image, got shape {a.shape}")
    if a.dtype != np.uint8:
        scale = 255.0 if a.max() <= 1.0 else 1.0
        a = a[..., :3] if a.ndim == 3 else a
        b = _LOCAL.__dict__.setdefault("f64", {})
        tmp = b.get(a.shape)
        if tmp is None:
            b.clear()
            tmp = b[a.shape] = np.empty(a.shape, np.float64)
        np.multiply(a, scale, out=tmp, casting="unsafe")
        np.clip(tmp, 0, 255, out=tmp)
        a = tmp.astype(np.uint8)
    return np.ascontiguousarray(a[..., :3] if a.ndim == 3 else a)


def _buffers(shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """Work arrays of one picture size, kept per thread and reused from call to call: on many machines a
    fresh picture-sized array costs more (the operating system hands out and zeroes its pages) than the
    operation that fills it."""
    b = getattr(_LOCAL, "buffers", None)
    if b is None or b["shape"] != shape:
        H, W = shape
        b = {"shape": shape}
        for name in ("value", "chroma", "top_v", "top_c", "bright", "dark", "mask", "notmask", "tmp", "tmp2",
                     "r", "g", "b"):
            b[name] = np.empty((H, W), np.uint8)
        b["stack"] = np.empty((H, W, 3), np.uint8)
        b["ones"] = np.ones((H, W), np.uint8)
        b["labels"] = np.empty((H, W), np.int32)
        b["ii3"] = np.empty((H + 1, W + 1, 3), np.int32)
        b["ii_c"] = np.empty((H + 1, W + 1, 3), np.int32)
        b["ii_s"] = np.empty((H + 1, W + 1), np.int32)
        b["ii_sq"] = np.empty((H + 1, W + 1), np.float64)
        _LOCAL.buffers = b
    return b


def _value_chroma(rgb: np.ndarray, buf: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The brightness (max of R, G, B) and the colourfulness (max - min), uint8; ``None`` for a grey picture."""
    r, g, b = cv2.split(rgb, [buf["r"], buf["g"], buf["b"]])
    value = cv2.max(cv2.max(r, g, dst=buf["tmp"]), b, dst=buf["value"])
    if np.array_equal(r, g) and np.array_equal(g, b):  # grey: no colour anywhere
        return value, None
    low = cv2.min(cv2.min(r, g, dst=buf["tmp"]), b, dst=buf["tmp"])
    return value, cv2.subtract(value, low, dst=buf["chroma"])


def mark_candidates(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Small blobs that stand out from their surroundings: the marks a scale could be made of.

    Parameters
    ----------
    rgb : (H, W, 3) uint8 array (or (H, W) grey, or floats in 0-1)

    Returns
    -------
    dict of arrays, one entry per candidate: ``xy`` (n, 2) centre in pixels, ``wh`` (n, 2) box size,
    ``area`` (pixels), ``colour`` (n, 3) mean RGB, ``contrast`` (RGB distance to the ring around it).
    """
    rgb = _as_u8(rgb)
    buf = _buffers(rgb.shape[:2])
    value, chroma = (rgb, None) if rgb.ndim == 2 else _value_chroma(rgb, buf)
    grey = chroma is None
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (TOPHAT_PX, TOPHAT_PX))
    top_v = cv2.morphologyEx(value, cv2.MORPH_TOPHAT, k, dst=buf["top_v"])
    if not grey:
        top_c = cv2.morphologyEx(chroma, cv2.MORPH_TOPHAT, k, dst=buf["top_c"])
        bright = cv2.threshold(value, 59, 1, cv2.THRESH_BINARY, dst=buf["bright"])[1]  # value >= 60
    dark = cv2.threshold(value, DARK_LEVEL - 1, 1, cv2.THRESH_BINARY_INV, dst=buf["dark"])[1]  # value < DARK_LEVEL
    parts = []
    for level in TOPHAT_LEVELS:  # a mark touching bright speckle stands alone at a higher level
        mask = cv2.threshold(top_v, level - 1, 1, cv2.THRESH_BINARY, dst=buf["mask"])[1]  # 0/1: top_v >= level
        if not grey:
            tc = cv2.threshold(top_c, level - 1, 1, cv2.THRESH_BINARY, dst=buf["tmp"])[1]
            cv2.bitwise_or(mask, cv2.bitwise_and(tc, bright, dst=buf["tmp"]), dst=mask)
        parts.append(_components(rgb, mask, value, None if grey else rgb, dark, buf))
    c = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if len(c["xy"]) > 1:  # the same mark found at several levels: keep its most contrasted copy
        order = np.argsort(-c["contrast"])
        c = {key: v[order] for key, v in c.items()}
        c = {key: v[_first_within(c["xy"], 2.0)] for key, v in c.items()}
    if len(c["xy"]) > MAX_CANDIDATES:
        keep = np.argsort(-c["contrast"])[:MAX_CANDIDATES]
        c = {key: v[keep] for key, v in c.items()}
    return c


def _first_within(xy: np.ndarray, r: float) -> np.ndarray:
    """Greedy suppression in the given order: a point is kept unless a kept point lies within ``r`` in
    both x and y. Only points with a near neighbour need the sequential pass."""
    n = len(xy)
    keep = np.ones(n, bool)
    o = np.argsort(xy[:, 0], kind="stable")
    xs = xy[o, 0]
    lo = np.searchsorted(xs, xs - r, side="left")  # every pair within r in x (sorted), then in y
    hi = np.searchsorted(xs, xs + r, side="right")
    counts = hi - lo
    if counts.max() <= 1:
        return keep
    a = np.repeat(np.arange(n), counts)
    b = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(lo, counts)
    a, b = o[a], o[b]
    near = (a != b) & (np.abs(xy[a, 1] - xy[b, 1]) <= r) & (np.abs(xy[a, 0] - xy[b, 0]) <= r)
    a, b = a[near], b[near]
    nbrs: dict[int, list[int]] = {}
    for i, j in zip(a.tolist(), b.tolist()):
        if j < i:  # only earlier points (in the given order) can suppress a later one
            nbrs.setdefault(i, []).append(j)
    for i in sorted(nbrs):
        if any(keep[j] for j in nbrs[i]):
            keep[i] = False
    return keep


_EMPTY = {"xy": np.zeros((0, 2)), "wh": np.zeros((0, 2)), "area": np.zeros(0), "colour": np.zeros((0, 3)),
          "contrast": np.zeros(0)}


def _components(rgb, mask, v, colour_rgb, dark, buf):
    """The mask's connected components that can be marks: small, contrasted against the ring around them,
    on a plain or dark ring (or coloured). ``mask`` is 0/1 uint8; ``colour_rgb`` is ``None`` for a grey
    picture (its colour is its value)."""
    n, labels, stats, cents = cv2.connectedComponentsWithStatsWithAlgorithm(mask, 8, cv2.CV_32S, cv2.CCL_BBDT,
                                                                            labels=buf["labels"])
    if n <= 1:
        return _EMPTY
    stats, cents = stats[1:], cents[1:]
    w, h, area = stats[:, 2], stats[:, 3], stats[:, 4]
    small = (np.maximum(w, h) <= MAX_MARK_PX) & (area >= 1)
    if not small.any():
        return _EMPTY
    on = mask.view(bool)  # the candidates' own pixels only (a few per cent of the image): far faster
    flat = labels[on]
    if colour_rgb is None:
        g = np.bincount(flat, weights=v[on], minlength=n)[1:]
        colour = np.stack([g, g, g], 1)
    else:
        colour = np.stack([np.bincount(flat, weights=rgb[..., c][on], minlength=n)[1:] for c in range(3)], 1)
    colour = colour / np.maximum(area, 1)[:, None]
    # the ring: a box 2 px wider on every side, without any candidate pixel (integral images of exact
    # integer sums: the same figures as in floating point)
    notmask = cv2.subtract(buf["ones"], mask, dst=buf["notmask"])
    st = buf["stack"]
    cv2.merge([notmask, cv2.multiply(v, notmask, dst=buf["tmp"]), cv2.bitwise_and(dark, notmask, dst=buf["tmp2"])],
              dst=st)
    ii = cv2.integral(st, sum=buf["ii3"], sdepth=cv2.CV_32S)
    H, W = mask.shape
    x0 = np.clip(stats[:, 0] - 2, 0, W)
    y0 = np.clip(stats[:, 1] - 2, 0, H)
    x1 = np.clip(stats[:, 0] + w + 2, 0, W)
    y1 = np.clip(stats[:, 1] + h + 2, 0, H)

    def box(ii):
        return (ii[y1, x1] - ii[y0, x1] - ii[y1, x0] + ii[y0, x0]).astype(np.float64)

    sums = box(ii)
    ring_n = sums[:, 0]
    cnt = np.maximum(ring_n, 1.0)
    ring_v = sums[:, 1] / cnt
    if colour_rgb is None:
        ring = np.stack([ring_v] * 3, 1)
    else:
        nm3 = cv2.merge([notmask, notmask, notmask], dst=st)
        ring = box(cv2.integral(cv2.multiply(colour_rgb, nm3, dst=st), sum=buf["ii_c"], sdepth=cv2.CV_32S)) / cnt[:, None]
    contrast = np.linalg.norm(colour - ring, axis=1)
    chroma = colour.max(axis=1) - colour.min(axis=1)
    # on a plain background (a mark drawn beside the image), or coloured (a mark drawn over it)
    keep = small & (contrast >= MIN_MARK_CONTRAST) & (ring_n >= 4)
    plain = (sums[:, 2] / cnt >= 0.5) | (chroma >= MIN_MARK_CHROMA)
    ask = np.flatnonzero(keep & ~plain)  # only these need the ring's spread (the sum of squares)
    if len(ask) > 48:  # many: an integral image of the squares (exact integers in float64)
        _, ii_sq = cv2.integral2(cv2.multiply(v, notmask, dst=buf["tmp"]), sum=buf["ii_s"], sqsum=buf["ii_sq"],
                                 sdepth=cv2.CV_32S, sqdepth=cv2.CV_64F)
        vv = box(ii_sq)[ask]
    elif len(ask):
        vv = np.empty(len(ask))
        for t, q in enumerate(ask):  # a few boxes of at most 44 x 44 pixels: exact integer sums
            vb = v[y0[q]:y1[q], x0[q]:x1[q]].astype(np.int64)
            vv[t] = float((vb * vb * notmask[y0[q]:y1[q], x0[q]:x1[q]]).sum())
    if len(ask):
        ring_sd = np.sqrt(np.maximum(vv / cnt[ask] - ring_v[ask] ** 2, 0))
        plain[ask] = ring_sd <= MAX_RING_SD
    keep &= plain
    idx = np.flatnonzero(keep)
    return {"xy": cents[idx].astype(np.float64), "wh": np.stack([w[idx], h[idx]], 1).astype(np.float64),
            "area": area[idx].astype(np.float64), "colour": colour[idx], "contrast": contrast[idx]}


def _row_from(xy, sizes, origin, u, d, seed_size):
    """The candidates on the line through ``origin`` along ``u`` at whole steps of ``d``."""
    rel = xy - origin
    along = rel @ u / d
    perp = np.abs(rel[:, 0] * u[1] - rel[:, 1] * u[0])
    k = np.round(along)
    ok = (np.abs(along - k) <= ALONG_TOLERANCE) & (perp <= 2.0 + 0.5 * np.minimum(sizes, seed_size))
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        return idx, k[idx]
    # one candidate per step: the one nearest its predicted place
    order = np.lexsort((np.abs(along[idx] - k[idx]) + perp[idx] / max(d, 1.0), k[idx]))
    idx = idx[order]
    first = np.concatenate([[True], k[idx][1:] != k[idx][:-1]])
    idx = idx[first]
    ks = k[idx]
    # the run around step 0, gaps of at most MAX_GAP_STEPS - 1 missing steps (marks hidden by the image's edge)
    if 0 not in ks:
        return idx[:0], ks[:0]
    z = int(np.flatnonzero(ks == 0)[0])
    lo = z
    while lo > 0 and ks[lo] - ks[lo - 1] <= MAX_GAP_STEPS:
        lo -= 1
    hi = z
    while hi < len(ks) - 1 and ks[hi + 1] - ks[hi] <= MAX_GAP_STEPS:
        hi += 1
    return idx[lo:hi + 1], ks[lo:hi + 1]


def _fit(xy, ks):
    """Least-squares line and step: position = a + k * s * u (the line: the principal axis of the
    points, from their 2 x 2 scatter in closed form)."""
    n = len(xy)
    c = xy.sum(axis=0) / n
    dx, dy = xy[:, 0] - c[0], xy[:, 1] - c[1]
    sxx, syy, sxy = float(dx @ dx), float(dy @ dy), float(dx @ dy)
    theta = 0.5 * np.arctan2(2.0 * sxy, sxx - syy)
    u = np.array([np.cos(theta), np.sin(theta)])
    t = dx * u[0] + dy * u[1]
    km = float(ks.sum()) / n
    kc = ks - km
    s = float((kc @ t) / max(kc @ kc, 1e-12))
    if s < 0:
        u, t, s = -u, -t, -s
    a = float(t.sum()) / n - s * km
    origin = c + a * u
    return origin, u, s


def _spacing_cv(xy, ks) -> float:
    origin, u, s = _fit(xy, ks)
    steps = np.diff((xy - origin) @ u) / np.diff(ks)
    return float(np.std(steps) / s) if s > 0 else 1.0


def _hopeful_pairs(xy, sizes, nb, d2, todo) -> np.ndarray:
    """For every candidate ``i`` and its neighbours ``nb[i]``: could the line through the two, at whole
    steps of their distance, hold :data:`MIN_MARKS` candidates (:func:`_row_from`'s first test)? All
    pairs at once, so that a picture without a row of marks costs a few array operations, not one search
    per pair. A necessary condition only (a hair looser than :func:`_row_from`): the pairs it rejects
    would find no row there anyway."""
    n, k = nb.shape
    out = np.zeros((n, k), bool)
    d = np.sqrt(d2[np.arange(n)[:, None], nb])
    valid = (d >= SPACING_RANGE_PX[0]) & (d <= SPACING_RANGE_PX[1]) & todo
    pi, pk = np.nonzero(valid)
    if len(pi) == 0:
        return out
    pj = nb[pi, pk]
    dd = d[pi, pk]
    u = (xy[pj] - xy[pi]) / dd[:, None]
    seed = np.maximum(sizes[pi], sizes[pj])
    eps = 1e-6
    c = xy[pi, 0] * u[:, 1] - xy[pi, 1] * u[:, 0]
    bound = 2.0 + 0.5 * seed + eps  # the widest the line's band can be for this pair
    chunk = max(1, 16_000 // max(len(xy), 1))  # small work arrays: reused memory, no fresh pages
    for a in range(0, len(pi), chunk):
        b = slice(a, a + chunk)
        # near the line (the band's widest first, as one dense test), then the exact tests on those only
        cross = np.multiply.outer(u[b, 1], xy[:, 0])
        cross -= np.multiply.outer(u[b, 0], xy[:, 1])
        cross -= c[b, None]
        r, m = np.nonzero(np.abs(cross) <= bound[b, None])
        p = r + a
        perp = np.abs(cross[r, m])
        along = ((xy[m, 0] - xy[pi[p], 0]) * u[p, 0] + (xy[m, 1] - xy[pi[p], 1]) * u[p, 1]) / dd[p]
        k = np.round(along)
        ok = (np.abs(along - k) <= ALONG_TOLERANCE + eps) & (perp <= 2.0 + 0.5 * np.minimum(sizes[m], seed[p]) + eps)
        r, k = r[ok], k[ok]
        enough = np.flatnonzero(np.bincount(r, minlength=min(chunk, len(pi) - a)) >= MIN_MARKS)
        if len(enough):
            sel = np.isin(r, enough)
            rows = np.searchsorted(enough, r[sel])
            hit = _chain_length(rows, k[sel], len(enough)) >= MIN_MARKS
            out[pi[a + enough[hit]], pk[a + enough[hit]]] = True
    return out


def _chain_length(rows: np.ndarray, k: np.ndarray, n_rows: int) -> np.ndarray:
    """Per line (``rows``: which line each candidate near a line is on; ``k``: its whole step): how many
    distinct steps the run around step 0 holds, going on over at most MAX_GAP_STEPS - 1 missing steps,
    as :func:`_row_from` counts them, capped (only whether it reaches MIN_MARKS matters: the first
    MIN_MARKS - 1 steps of each side lie within (MIN_MARKS - 1) * MAX_GAP_STEPS of step 0)."""
    reach = (MIN_MARKS - 1) * MAX_GAP_STEPS
    width = 2 * reach + 1
    near = np.abs(k) <= reach
    present = np.zeros((n_rows, width), bool)
    present[rows[near], k[near].astype(np.int64) + reach] = True
    total = present[:, reach].astype(np.int64)
    steps = np.arange(reach)
    for side in (present[:, reach + 1:], present[:, reach - 1::-1]):  # steps 1, 2, ... and -1, -2, ...
        padded = np.concatenate([side, np.zeros((len(side), MAX_GAP_STEPS), bool)], axis=1)
        c = np.concatenate([np.zeros((len(side), 1), np.int64), np.cumsum(padded, axis=1)], axis=1)
        empty = (c[:, MAX_GAP_STEPS:MAX_GAP_STEPS + reach] - c[:, :reach]) == 0  # steps t..t+4 all missing
        stop = np.where(empty.any(axis=1), empty.argmax(axis=1), reach)
        total += (side & (steps[None, :] < stop[:, None])).sum(axis=1)
    return np.where(present[:, reach], total, 0)


def find_rows(cand: dict[str, np.ndarray]) -> list[Row]:
    """Rows of regularly spaced, alike marks among the candidates (best first, no two sharing marks)."""
    xy = cand["xy"]
    n = len(xy)
    if n < MIN_MARKS:
        return []
    sizes = cand["wh"].max(axis=1)
    d2 = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    nb = np.argsort(d2, axis=1)[:, :NEIGHBOURS]
    # a pair is tried once: (j, i) is skipped when (i, j) came before it (the same line); only the hopeful
    # pairs are visited, in the same order, so that the rows found are those of trying every pair
    reverse_before = (nb[nb] == np.arange(n)[:, None, None]).any(axis=2) & (nb < np.arange(n)[:, None])
    area = cand["area"]
    ratio = (area[:, None] + 1) / (area[nb] + 1)
    hopeful = _hopeful_pairs(xy, sizes, nb, d2, ~reverse_before & (ratio >= 0.25) & (ratio <= 4))
    found = []
    seen = set()  # consecutive marks of rows already found
    for i, jj in zip(*np.nonzero(hopeful & ~reverse_before)):
        i, j = int(i), int(nb[i, jj])
        if (i, j) in seen:
            continue
        d = float(np.sqrt(d2[i, j]))
        if not (0.25 <= (area[i] + 1) / (area[j] + 1) <= 4):
            continue
        u = (xy[j] - xy[i]) / d
        seed = max(sizes[i], sizes[j])
        idx, ks = _row_from(xy, sizes, xy[i], u, d, seed)
        if len(idx) < MIN_MARKS:
            continue
        origin, u2, s = _fit(xy[idx], ks)  # refit, then look again along the refined line
        idx, ks = _row_from(xy, sizes, origin, u2, s, seed)
        if len(idx) < MIN_MARKS:
            continue
        origin, u2, s = _fit(xy[idx], ks)
        for m in (2, 3):  # every 2nd or 3rd mark of a finer row (the cm marks of a half-cm scale)
            if s / m >= SPACING_RANGE_PX[0]:
                idx_m, ks_m = _row_from(xy, sizes, origin, u2, s / m, seed)
                if len(idx_m) >= 0.8 * m * len(idx):
                    idx, ks = idx_m, ks_m
                    break
        cv = _spacing_cv(xy[idx], ks)
        if cv > MAX_SPACING_CV:
            continue
        found.append((len(idx) * (1 - cv / (2 * MAX_SPACING_CV)), idx, ks))
        for a, b in zip(idx[:-1], idx[1:]):
            seen.add((int(a), int(b)))
            seen.add((int(b), int(a)))
    found.sort(key=lambda f: -f[0])
    rows, used = [], np.zeros(n, bool)
    judged = set()  # the same row found from several pairs is judged once (its verdict cannot change)
    for _, idx, ks in found:
        key = (idx.tobytes(), (ks - ks.min()).tobytes())
        if key in judged or used[idx].mean() > 0.3:
            continue
        judged.add(key)
        row = _judge(cand, idx, ks)
        if row is not None:
            rows.append(row)
            used[idx] = True
    return rows


def _judge(cand, idx, ks) -> Row | None:
    """A row when its marks are regular, alike and narrow; else ``None``."""
    xy = cand["xy"][idx]
    ks = ks - ks.min()
    origin, u, s = _fit(xy, ks)
    steps = np.diff((xy - origin) @ u) / np.diff(ks)
    cv = float(np.std(steps) / s) if s > 0 else 1.0
    if cv > MAX_SPACING_CV or (ks.max() - ks.min()) < MIN_MARKS - 1:
        return None
    if len(idx) / (ks.max() - ks.min() + 1) < (MIN_COVERAGE if len(idx) >= LONG_ROW else MIN_COVERAGE_SHORT):  # too many steps without a mark
        return None
    rel = cand["xy"] - origin
    near_line = np.abs(rel @ np.array([-u[1], u[0]])) <= 2.0 + 0.5 * np.median(cand["wh"][idx].max(axis=1))
    for m in (2, 3):  # marks between the marks too: this is every 2nd or 3rd mark of a finer row
        t = rel[near_line] @ u / s * m
        off = np.round(t)
        between = (np.abs(t - off) <= m * ALONG_TOLERANCE) & (off % m != 0) & (t > -0.5) & (t < ks.max() * m + 0.5)
        if len(np.unique(off[between])) >= 0.5 * (m - 1) * ks.max():
            return None
    wh = cand["wh"][idx]
    perp = (xy - origin) @ np.array([-u[1], u[0]])
    along_res = (xy - origin) @ u - ks * s
    along_extent = np.abs(wh[:, 0] * u[0]) + np.abs(wh[:, 1] * u[1])
    across_extent = np.abs(wh[:, 0] * u[1]) + np.abs(wh[:, 1] * u[0])
    colour = cand["colour"][idx]
    area = cand["area"][idx]
    # the pattern: which marks are bigger (or of another colour) and how often
    # the hue, not the brightness: a thin mark resized between two pixel rows is dimmer, not of another colour
    tint = colour - colour.mean(axis=1, keepdims=True)
    off_colour = np.linalg.norm(tint - np.median(tint, axis=0), axis=1) > 50
    step_cm, pattern, major, odd = _pattern(ks.astype(int), [area, across_extent], off_colour)
    max_duty = MAX_MARK_DUTY if pattern is not None else MAX_ASSUMED_MARK_DUTY
    if pattern is None:
        special = odd
        if special.mean() > 0.25:  # odd marks everywhere: not a scale's pattern
            return None
        pattern = "alike marks (1 cm assumed)" if not special.any() else "alike marks, a few odd ones (1 cm assumed)"
        if special.any() and len(idx) < MIN_MARKS_WITH_ODD:  # odd marks and no pattern: scale-like only when long
            return None
    if odd.any() and "bigger" in pattern:  # the odd marks off the pattern are not the scale's
        keep = ~odd
        if keep.sum() < MIN_MARKS:
            return None
        return _judge(cand, idx[keep], ks[keep])
    minor = ~(major | odd)
    if minor.sum() < 3:
        return None
    # steps that grow or shrink along the row (the odd marks left out): a photo of the screen taken at a
    # slant (perspective); its spacing is no one pixel size, and no rectification is tried: refused
    if (~odd).sum() >= 4:
        o2, u2, s2 = _fit(xy[~odd], ks[~odd])
        k2 = ks[~odd]
        st = np.diff((xy[~odd] - o2) @ u2) / np.diff(k2)
        trend = np.polyfit((k2[1:] + k2[:-1]) / 2, st, 1)[0] * (k2.max() - k2.min()) / s2
        if abs(trend) > MAX_STEP_TREND:
            return None
    pm = perp[minor] - np.median(perp[minor])
    if np.sqrt(np.mean(pm ** 2)) > MAX_LINE_RMS_PX or np.sqrt(np.mean(along_res ** 2)) > max(MAX_LINE_RMS_PX, 0.03 * s):
        return None
    if np.median(along_extent[minor]) > max_duty * s:  # bands of a colour bar, letters of text
        return None
    # alike minor marks (text is not: its letters differ in size)
    for ext in (along_extent[minor], across_extent[minor]):
        m = np.median(ext)
        if np.mean(np.abs(ext - m) <= max(1.5, 0.3 * m)) < 0.8:
            return None
    if np.linalg.norm(tint[minor] - np.median(tint[minor], axis=0), axis=1).mean() > 30:
        return None
    fill = area / np.maximum(wh[:, 0] * wh[:, 1], 1)
    if np.median(fill[minor]) < MIN_FILL and np.median(area[minor]) > 12:  # letters: strokes in an open box
        return None
    kind = "dots" if np.median(across_extent[minor]) <= 1.5 * np.median(along_extent[minor]) + 1 else "ticks"
    return Row(points=xy, steps=ks, spacing_px=s, direction=u, spacing_cv=cv, kind=kind, step_cm=step_cm,
               pattern=pattern, major=major)


#: Share of the marks at the pattern's phase that must stand out (one of four may be cut by the image's edge).
MIN_PATTERN_SHARE = 0.75
PATTERNS = ((2, 0.5, "bigger mark every 2nd step: 0.5 cm steps"),
            (5, 1.0, "bigger mark every 5th step: 1 cm steps"),
            (10, 0.5, "bigger mark every 10th step: 0.5 cm steps, 5 cm marks"))


def _pattern(ki, features, off_colour):
    """What one step is worth, from which marks stand out.

    Every split of a size feature at a clear jump (the bigger at least 1.5 times and 2 units more than the
    smaller), fewest special marks first, and the marks of another colour, are tried against the
    patterns of :data:`PATTERNS`: most marks at one phase of the period are special, and at most one
    other mark is (a focus marker or a cursor touching the scale: ``odd``).

    Returns ``(step_cm, words or None, major mask, odd mask)``.
    """
    n = len(ki)
    specials = [off_colour] if off_colour.sum() >= 2 else []
    for v in features:
        vals = np.unique(v)
        for lo, hi in zip(vals[:-1], vals[1:]):
            if hi >= 1.5 * lo and hi - lo >= 2:
                specials.append((v >= hi) | off_colour)
    specials.sort(key=lambda m: m.sum())
    for special in specials:
        if special.sum() < 2:
            continue
        for period, cm, words in PATTERNS:
            for phase in range(period):
                at_phase = ki % period == phase
                hits = (special & at_phase).sum()
                if hits >= 2 and hits >= np.ceil(MIN_PATTERN_SHARE * at_phase.sum()) \
                        and (special & ~at_phase).sum() <= max(1, 0.1 * n):
                    return cm, words, at_phase, special & ~at_phase
    # no pattern: the marks that stand out most (by the median rule) are odd ones
    big = np.zeros(n, bool)
    for v in features:
        big |= v > 1.5 * np.median(v) + 1
    return 1.0, None, np.zeros(n, bool), big | off_colour


def _confidence(row: Row) -> float:
    """0-1 from the number of marks, the regularity and whether the step's worth was shown."""
    c = min(1.0, (row.n - 2) / 6.0)
    c *= max(0.0, 1.0 - row.spacing_cv / (2 * MAX_SPACING_CV))
    c *= 1.0 if "assumed" not in row.pattern else 0.85
    return float(np.clip(c, 0.0, 1.0))


def read_screen_scale(image: np.ndarray) -> ScreenScale:
    """Read the depth scale a scanner drew on a screen picture.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array, RGB, uint8 or floats in 0-1

    Returns
    -------
    ScreenScale
        ``mm_per_px`` (x, y) in mm per pixel or ``None``, the confidence (0-1), the marks' centres
        (pixels), the reason in words.
    """
    picture = _as_u8(image)
    rows = find_rows(mark_candidates(picture))
    if not rows:
        return ScreenScale(None, 0.0, f"no scale: no row of at least {MIN_MARKS} regularly spaced, alike marks")
    rows = [r for r in rows if _confidence(r) >= MIN_CONFIDENCE]
    if not rows:
        return ScreenScale(None, 0.0, "no scale: the rows of marks found are too short or too irregular")
    # rows of 1 cm steps that are half-cm steps or the reverse: the patterned row decides the others
    patterned = [r for r in rows if "assumed" not in r.pattern]
    for r in rows:
        if "assumed" in r.pattern and patterned:
            ref = patterned[0].mm_per_px
            for cm in (0.5, 1.0):
                if abs(10 * cm / r.spacing_px / ref - 1) <= AGREEMENT:
                    r.step_cm, r.pattern = cm, f"alike marks ({cm:g} cm steps, as the patterned row)"
    depth = [r for r in rows if r.orientation != "horizontal"]
    lateral = [r for r in rows if r.orientation == "horizontal"]
    main = depth or lateral
    best = main[0]
    agree = [r for r in main if abs(r.mm_per_px / best.mm_per_px - 1) <= AGREEMENT]
    if len(agree) < len(main):
        other = next(r for r in main if r not in agree)
        return ScreenScale(None, 0.0, f"no scale: two scales disagree ({best.mm_per_px:.4f} and "
                           f"{other.mm_per_px:.4f} mm/px); cannot tell which one is the image's")
    w = np.array([r.n for r in agree], float)
    mm = float(np.average([r.mm_per_px for r in agree], weights=w))
    how = "sector-scale" if best.orientation == "oblique" else "depth-scale"
    used = list(agree)
    ignored = ""
    if depth and lateral:
        lat = lateral[0]
        if abs(lat.mm_per_px / mm - 1) <= AGREEMENT:
            used.append(lat)
        else:  # square pixels: a lateral row that disagrees is something else (text, a menu bar)
            ignored = f"; a lateral row at {lat.mm_per_px:.4f} mm/px ignored"
    conf = float(max(_confidence(r) for r in used))
    marks = [tuple(map(float, p)) for r in used for p in r.points]
    desc = (f"{best.n} {best.kind} {best.orientation}, 1 cm = {10 / mm:.1f} px ({best.pattern})"
            + (f"; {len(used) - 1} more row(s) agree" if len(used) > 1 else "") + ignored)
    label, why = _check_label(picture, best, mm)
    if why:
        return ScreenScale(None, 0.0, f"no scale: {why}")
    if label is not None:
        desc += f"; the depth label {label.text} fits the marks"
    return ScreenScale((mm, mm), conf, desc, marks=marks, label=None if label is None else label.text, how=how,
                       rows=used)


#: A depth label fits the marks when the depth it says is at least the marks' extent less this (cm: a
#: label rounded down, a last mark at the very bottom) ...
LABEL_SLACK_CM = 0.5
#: ... and that depth, at the marks' spacing, fits on the picture (share of its height; the width for a
#: scale drawn along the top).
LABEL_FIT = 1.02


def _check_label(picture: np.ndarray, row: Row, mm: float):
    """The depth label that fits the marks (a cross-check, never a source: the pixel size is the marks'),
    and the reason to refuse when the only depth labels read say that assumed 1 cm steps are half
    centimetres. Returns ``(DepthLabel or None, reason or "")``."""
    labels = read_depth_labels(picture)
    if not labels:
        return None, ""
    extent_cm = float(row.steps.max() - row.steps.min()) * row.step_cm
    room_px = picture.shape[1] if row.orientation == "horizontal" else picture.shape[0]

    def fits(depth, extent, px_per_cm):
        return depth >= extent - LABEL_SLACK_CM and depth * px_per_cm <= LABEL_FIT * room_px

    for lab in labels:
        if fits(lab.depth_cm, extent_cm, 10.0 / mm):
            return lab, ""
    if "assumed" in row.pattern and row.step_cm == 1.0:
        for lab in labels:
            if fits(lab.depth_cm, extent_cm / 2, 20.0 / mm):
                return None, (f"the depth label {lab.text} does not fit {extent_cm:.0f} steps of 1 cm (assumed), "
                              f"but fits half-centimetre steps: cannot tell which the marks are")
    return None, ""

