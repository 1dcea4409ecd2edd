"""Phone photos of a scanner screen, made for the tests and the benchmark (issue 22): the screen put on a
plane with a bezel and a wall around it, turned by a tilt about its horizontal or vertical axis and seen
by a pinhole camera (a homography), then blurred, JPEG'd, with a glare blob or a moire pattern.

The truth for such a picture is no single number: the mm per photo pixel varies from place to place and
with the direction. :func:`local_mm_per_px` gives it at any photo point (the singular values of the
Jacobian of the photo-to-screen map, times the screen's own mm per pixel); :func:`worst_error` is the
largest relative error of one pixel size over a region of the photo, in every direction: what a head
measured anywhere in that region could be off at most.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

#: The phone's focal length as a share of the photo's width: a 26 mm-equivalent main camera sees about
#: 65 degrees across (36 mm / 2 / tan(32.5 deg) = 28 mm -> f = 0.78 x width).
FOCAL_SHARE = 0.78
#: The screen fills this share of the photo's width when held square (a user frames the screen).
FILL = 0.8
BEZEL = (12, 12, 14)
WALL = (120, 112, 100)
#: A photographed LCD's black is not black: the backlight shows through (a level of about 20-30 of 255).
LCD_BLACK = 22

VARIANTS = ("plain", "blur", "jpeg", "glare", "moire", "all")


def screen_homography(w: int, h: int, tilt_deg: float, axis: str, photo_size: tuple[int, int],
                      roll_deg: float = 0.0) -> np.ndarray:
    """The 3x3 map from screen pixels (x, y) to photo pixels, for a screen of ``w`` x ``h`` pixels turned by
    ``tilt_deg`` about its horizontal (``axis="x"``: the top leans away) or vertical axis (``"y"``: the
    right side leans away), then rolled by ``roll_deg`` in the photo."""
    pw, ph = photo_size
    f = FOCAL_SHARE * pw
    scale = FILL * pw / w  # photo px per screen px at the centre, held square
    dist = f / scale  # the screen's distance, in screen pixels
    t = math.radians(tilt_deg)
    c, s = math.cos(t), math.sin(t)
    R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) if axis == "x" else np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    r = math.radians(roll_deg)
    Rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    R = Rz @ R
    # screen point (x, y) -> centred plane point p = (x - w/2, y - h/2, 0) -> camera R p + (0, 0, dist)
    M = np.column_stack([R[:, 0], R[:, 1], R @ np.array([-w / 2, -h / 2, 0]) + np.array([0, 0, dist])])
    K = np.array([[f, 0, pw / 2], [0, f, ph / 2], [0, 0, 1]])
    H = K @ M
    return H / H[2, 2]


def phone_photo(screen: np.ndarray, tilt_deg: float = 0.0, axis: str = "x", variant: str = "plain",
                seed: int = 0, roll_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A phone photo of ``screen`` (RGB uint8). Returns ``(photo, H)``, ``H`` mapping screen px to photo px."""
    rng = np.random.default_rng(seed)
    h, w = screen.shape[:2]
    pw = int(round(w / FILL * 1.0))
    ph = int(round(h / FILL * 1.0)) + (int(round(h / FILL)) % 2)
    img = screen.astype(np.float32) * (255 - LCD_BLACK) / 255 + LCD_BLACK
    # the monitor: the screen with a bezel around it, on a wall
    b = int(round(0.04 * w))
    plane = np.empty((h + 2 * b, w + 2 * b, 3), np.float32)
    plane[:] = BEZEL
    plane[b:b + h, b:b + w] = img
    H = screen_homography(w, h, tilt_deg, axis, (pw, ph), roll_deg)
    shift = np.array([[1, 0, -b], [0, 1, -b], [0, 0, 1]], float)  # plane px -> screen px
    photo = cv2.warpPerspective(plane, H @ shift, (pw, ph), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=WALL)
    photo = cv2.GaussianBlur(photo, (0, 0), 0.6)  # a phone's optics and demosaicing
    if variant in ("blur", "all"):
        photo = cv2.GaussianBlur(photo, (0, 0), 1.3)
    if variant in ("glare", "all"):
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        cx, cy = rng.uniform(0.25, 0.75) * pw, rng.uniform(0.25, 0.75) * ph
        r = 0.12 * pw
        photo += 110 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None]
    if variant in ("moire", "all"):
        yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
        a = math.radians(rng.uniform(10, 35))
        period = rng.uniform(5, 9)
        photo *= (1 + 0.08 * np.sin(2 * math.pi * (xx * math.cos(a) + yy * math.sin(a)) / period))[..., None]
    photo = np.clip(photo + rng.normal(0, 2.0, photo.shape), 0, 255).astype(np.uint8)
    if variant in ("jpeg", "all"):
        ok, buf = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
        photo = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].copy()
    return photo, H


def local_mm_per_px(H: np.ndarray, screen_mm_per_px: float, points: np.ndarray) -> np.ndarray:
    """(n, 2) the smallest and largest mm per photo pixel at photo ``points`` (n, 2), over all directions."""
    Hi = np.linalg.inv(H)
    out = []
    for x, y in np.atleast_2d(points):
        v = Hi @ np.array([x, y, 1.0])
        w = v[2]
        # d(screen)/d(photo) = (Hi[:2,:2] - screen_xy * Hi[2,:2]) / w
        sx, sy = v[0] / w, v[1] / w
        J = (Hi[:2, :2] - np.outer([sx, sy], Hi[2, :2])) / w
        sv = np.linalg.svd(J, compute_uv=False)
        out.append((sv.min() * screen_mm_per_px, sv.max() * screen_mm_per_px))
    return np.array(out)


def along_mm_per_px(H: np.ndarray, screen_mm_per_px: float, point, direction) -> float:
    """The mm per photo pixel at photo ``point`` along the photo ``direction`` (a unit vector)."""
    Hi = np.linalg.inv(H)
    v = Hi @ np.array([point[0], point[1], 1.0])
    w = v[2]
    J = (Hi[:2, :2] - np.outer(v[:2] / w, Hi[2, :2])) / w
    return float(np.linalg.norm(J @ np.asarray(direction, float)) * screen_mm_per_px)


def region_points(H: np.ndarray, box: tuple[int, int, int, int], n: int = 7) -> np.ndarray:
    """A grid of n x n photo points covering the screen region ``box`` = (x0, y0, x1, y1) in screen pixels."""
    x0, y0, x1, y1 = box
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    p = np.stack([gx.ravel(), gy.ravel(), np.ones(gx.size)])
    q = H @ p
    return (q[:2] / q[2]).T


def worst_error(read_mm: float, H: np.ndarray, screen_mm_per_px: float, box) -> float:
    """The largest |read / truth - 1| over the screen region ``box`` (screen px) and every direction."""
    lm = local_mm_per_px(H, screen_mm_per_px, region_points(H, box))
    return float(np.max(np.abs(read_mm / lm - 1)))


def crop_to_screen(photo: np.ndarray, H: np.ndarray, w: int, h: int, inset: float = 0.02):
    """The photo cropped tight inside the screen (no bezel, no wall: a user who framed the image only), and
    the screen-to-photo map of the crop. ``inset``: share of the screen's size cut off each side."""
    corners = np.array([[0, 0, 1], [w, 0, 1], [w, h, 1], [0, h, 1]], float).T
    q = H @ corners
    x, y = q[0] / q[2], q[1] / q[2]
    x0, x1 = max(x[0], x[3]), min(x[1], x[2])
    y0, y1 = max(y[0], y[1]), min(y[2], y[3])
    dx, dy = inset * (x1 - x0), inset * (y1 - y0)
    x0, x1, y0, y1 = int(math.ceil(x0 + dx)), int(x1 - dx), int(math.ceil(y0 + dy)), int(y1 - dy)
    T = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], float)
    return np.ascontiguousarray(photo[y0:y1, x0:x1]), T @ H


def make_photo(screen: np.ndarray, tilt_deg: float, axis: str, variant: str, seed: int = 0):
    """:func:`phone_photo` for every name of :data:`PHOTO_VARIANTS` ("crop": framed inside the screen;
    "all": blur, JPEG, glare, moire and a 4 degree roll of the phone)."""
    h, w = screen.shape[:2]
    if variant == "crop":
        photo, H = phone_photo(screen, tilt_deg, axis, "plain", seed)
        return crop_to_screen(photo, H, w, h)
    return phone_photo(screen, tilt_deg, axis, variant, seed, roll_deg=4.0 if variant == "all" else 0.0)


PHOTO_VARIANTS = VARIANTS + ("crop",)
