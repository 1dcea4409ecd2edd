"""A photo of the scanner's screen taken at an angle: found from the screen's straight edges, and refused
(issue 22: "never more than 3 % off").

A phone held at a slant to the screen sees it in perspective: the pixel size differs from place to place
(a 3 degree tilt with a phone's wide lens already changes it by about 7 % from one side of the screen to
the other; bench/screen_scale.py --photos) and with the direction. The depth scale's marks lie along one
line, so their spacing shows the change along that line only (and
:data:`fetalhead.scans.screen_scale.MAX_STEP_TREND` refuses such a row); a tilt about the axis *along* the
scale leaves the marks evenly spaced while a head beside them is measured up to 30 % off.

The screen's straight edges show both: lines that are parallel on the screen (the monitor's outline,
the image box, menu frames) meet at a vanishing point in a slanted photo. :func:`perspective_variation`
finds the long straight edges near the picture's horizontal and vertical, the vanishing point of each
family, and from its distance the share by which the pixel size changes across the picture.
:func:`check_screen_photo` refuses the screen's scale when that share is over
:data:`MAX_SCALE_VARIATION`, with a reason a user can act on.

No rectification is tried: rectifying needs the screen's aspect ratio, which a quadrilateral seen by a
camera of unknown focal length does not give to within the 3 % allowed (the foreshortening cos(tilt)
alone is 3.4 % at 15 degrees); refusing reliably is better than rectifying badly.

Pure functions on arrays (numpy and OpenCV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

__all__ = ["Perspective", "perspective_variation", "looks_like_a_photo", "check_screen_photo", "read_picture_scale",
           "MAX_SCALE_VARIATION", "MIN_EDGE_SHARE", "FAMILY_TOLERANCE_DEG", "MIN_BLACK_SHARE",
           "TILTED_PHOTO_REASON", "UNCHECKED_PHOTO_REASON", "PHOTO_REFUSED"]

#: An edge counts when it is at least this share of the picture's smaller side long: the monitor's outline
#: and the image box are (0.5-1); text baselines, speckle and the marks are not (under 0.1).
MIN_EDGE_SHARE = 0.25
#: Edges within this many degrees of the picture's horizontal or vertical belong to that family: a
#: 15 degree tilt with a phone's lens turns a screen's edges by at most about 8 degrees, a phone's roll adds
#: a few; a sector's sides (30-45 degrees off the vertical on the screens seen) stay out.
FAMILY_TOLERANCE_DEG = 15.0
#: Two edges of a family only tell a vanishing point when they lie at least this share of the picture's
#: extent apart (across the family).
MIN_SPREAD_SHARE = 0.3
#: The share by which the pixel size may change across the picture (every direction, anywhere) before the
#: screen's scale is refused: the 3 % allowed (issue 22) less the reading's own error (JPEG'd and resized
#: screens read within 2 %, tests/scans/test_screen_scale.py) leaves 1 %; an un-tilted screen's edges
#: measure 0.0-0.3 % here (bench/screen_scale.py --photos, tilt 0).
MAX_SCALE_VARIATION = 0.015
#: A screenshot, a capture or a DICOM file's pixels show the scanner's black background as black: at least
#: this share of the picture at or below :data:`BLACK_LEVEL` (0.37-0.86 on the four real screens, 0.69 on the
#: drawn ones). A photo of a lit LCD does not: its black glows (the backlight) and carries the camera's
#: noise (0 % of the photos of bench/screen_photo.py). Such a picture is taken for a photo, and its scale is
#: only kept when its edges show it square.
MIN_BLACK_SHARE = 0.05
BLACK_LEVEL = 8

#: ``ScreenScale.how`` of a scale refused here (the one way in says the reason to the user).
PHOTO_REFUSED = "photo-refused"

TILTED_PHOTO_REASON = ("this looks like a photo of the screen taken at an angle (its straight edges converge: "
                       "the pixel size changes by about {pct:.0f} % across the picture, so no one scale fits "
                       "the whole image): hold the phone square to the screen, or send a screenshot or the "
                       "DICOM file")
UNCHECKED_PHOTO_REASON = ("this looks like a photo of the screen, and too few of the screen's straight edges show "
                          "to check that it was taken square (a slanted photo's scale is not the same across the "
                          "picture): photograph the whole screen with its frame, holding the phone square to "
                          "it, or send a screenshot or the DICOM file")


@dataclass
class Perspective:
    """What the straight edges say: ``variation`` is the estimated share by which the pixel size changes
    across the picture (largest over directions; 0 when the edges are parallel, ``None`` when too few edges
    were found to tell); ``edges`` the segments used ((n, 4) x1, y1, x2, y2 pixels) per family."""

    variation: float | None
    horizontal: float | None = None
    vertical: float | None = None
    edges: dict = field(default_factory=dict)


def _grey(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float64) * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    if a.ndim == 3:
        a = a[..., :3].max(axis=2)
    if a.ndim != 2:
        raise ValueError(f"expected a (H, W) or (H, W, 3) image, got shape {a.shape}")
    return np.ascontiguousarray(a)


def long_edges(image: np.ndarray) -> np.ndarray:
    """The long straight edges of a picture: (n, 4) segments x1, y1, x2, y2 in pixels (OpenCV's line
    segment detector on the brightness, segments of at least :data:`MIN_EDGE_SHARE` of the smaller side)."""
    g = _grey(image)
    g = cv2.GaussianBlur(g, (0, 0), 1.0)  # moire and JPEG blocks break edges into pieces
    lsd = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    segs = lsd.detect(g)[0]
    if segs is None:
        return np.zeros((0, 4))
    segs = segs.reshape(-1, 4).astype(np.float64)
    length = np.hypot(segs[:, 2] - segs[:, 0], segs[:, 3] - segs[:, 1])
    return segs[length >= MIN_EDGE_SHARE * min(g.shape)]


def _family_variation(segs: np.ndarray, shape, horizontal: bool) -> float | None:
    """How much the pixel size changes across the picture, from one family's vanishing point."""
    h, w = shape
    d = segs[:, 2:] - segs[:, :2]
    ang = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 180.0
    off = np.minimum(ang, 180 - ang) if horizontal else np.abs(ang - 90)
    fam = segs[off <= FAMILY_TOLERANCE_DEG]
    if len(fam) < 2:
        return None
    mid = (fam[:, :2] + fam[:, 2:]) / 2
    across = mid[:, 1] if horizontal else mid[:, 0]
    extent_across = h if horizontal else w
    if across.max() - across.min() < MIN_SPREAD_SHARE * extent_across:
        return None
    # lines in coordinates centred on the picture and scaled by its size; the vanishing point is the
    # point nearest to all of them (each weighted by its length)
    c = np.array([w / 2, h / 2])
    s = max(h, w) / 2
    p1 = np.column_stack([(fam[:, :2] - c) / s, np.ones(len(fam))])
    p2 = np.column_stack([(fam[:, 2:] - c) / s, np.ones(len(fam))])
    lines = np.cross(p1, p2)
    lines /= np.linalg.norm(lines[:, :2], axis=1, keepdims=True)
    length = np.hypot(*(fam[:, 2:] - fam[:, :2]).T)
    _, _, vt = np.linalg.svd(lines * np.sqrt(length)[:, None])
    v = vt[-1]
    if np.hypot(v[0], v[1]) < 1e-12:
        return None
    # the vanishing point's distance from the centre, in units of half the picture's larger side; the
    # pixel size across the picture (2 such units) changes by about 2 / distance along the edges' normal and
    # twice that along the edges (a projective map stretches as 1 / w^2 along the direction to its vanishing
    # line and 1 / w across)
    inv_dist = abs(v[2]) / np.hypot(v[0], v[1])
    return float(2 * 2 * inv_dist)


def perspective_variation(image: np.ndarray) -> Perspective:
    """The share by which a picture's pixel size changes across it, from its straight edges' vanishing points.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) array, uint8 or floats in 0-1

    Returns
    -------
    Perspective
        ``variation`` (the larger of the two families', a share, e.g. 0.07 for 7 %) or ``None`` when neither
        family has two long edges far enough apart to tell.
    """
    g = _grey(image)
    segs = long_edges(g)
    hv = _family_variation(segs, g.shape, True) if len(segs) else None
    vv = _family_variation(segs, g.shape, False) if len(segs) else None
    known = [v for v in (hv, vv) if v is not None]
    return Perspective(max(known) if known else None, hv, vv, {"all": segs})


def looks_like_a_photo(image: np.ndarray) -> bool:
    """Whether a picture is a photo of a screen rather than the screen's own pixels: less than
    :data:`MIN_BLACK_SHARE` of it black (:data:`BLACK_LEVEL`)."""
    a = np.asarray(image)
    if a.ndim == 3:
        a = a[..., :3].max(axis=2)
    if a.ndim != 2:
        raise ValueError(f"expected a (H, W) or (H, W, 3) image, got shape {np.asarray(image).shape}")
    if a.dtype == np.uint8:
        black = a <= BLACK_LEVEL
    else:  # as :func:`_grey` would make it uint8 (x 255 for 0-1 floats, truncated), without the copy
        black = a < (BLACK_LEVEL + 1) / (255.0 if a.max() <= 1.0 else 1.0)
    return float(black.mean()) < MIN_BLACK_SHARE


def check_screen_photo(image: np.ndarray, scale):
    """The screen's scale (a :class:`fetalhead.scans.screen_scale.ScreenScale`) as read, or refused with the
    reason when the picture is a photo of the screen taken at an angle (:func:`perspective_variation` over
    :data:`MAX_SCALE_VARIATION`), or a photo (:func:`looks_like_a_photo`) whose edges do not show both
    directions (so it cannot be checked). A scale already refused takes the photo's reason (one the user can
    act on). Never raises for a picture: an unreadable one leaves the scale as it is."""
    try:
        if not looks_like_a_photo(image):  # a screenshot, a capture, a DICOM file's pixels: no perspective,
            return scale                   # read as it is (and the edges' search, the costly part, skipped)
        p = perspective_variation(image)
    except (cv2.error, ValueError):
        return scale
    if p.variation is not None and p.variation > MAX_SCALE_VARIATION:
        reason = TILTED_PHOTO_REASON.format(pct=100 * p.variation)
    elif (p.horizontal is None or p.vertical is None):
        reason = UNCHECKED_PHOTO_REASON
    else:
        return scale
    return replace(scale, mm_per_px=None, confidence=0.0, reason="no scale: " + reason, marks=[], rows=[],
                   how=PHOTO_REFUSED)


def read_picture_scale(image: np.ndarray):
    """The depth scale of a screen picture, as every edge must read it: read
    (:func:`fetalhead.scans.screen_scale.read_screen_scale`), then refused when the picture is a photo of
    the screen taken at an angle (:func:`check_screen_photo`)."""
    from .screen_scale import read_screen_scale

    return check_screen_photo(image, read_screen_scale(image))
