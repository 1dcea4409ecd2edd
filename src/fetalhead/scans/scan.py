"""The decoded scan: what every reader returns and the measurement takes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Scan"]


@dataclass
class Scan:
    """A decoded scan: the grey image of one frame and what came with it."""

    image: np.ndarray
    name: str
    kind: str  # png, jpeg, bmp, tiff, dicom, video, array
    frame: int = 0
    sha256: str = ""
    dicom: object | None = None  # fetalhead.scans.dicom.DicomScan
    n_frames: int = 1  # frames in the file (a cine loop: more than 1)
    frame_time_s: float | None = None  # this frame's time in the loop, when the file says

    @property
    def is_loop(self) -> bool:
        """A cine loop: a multi-frame DICOM file, or a video (whatever its length)."""
        return self.n_frames > 1 or self.kind == "video"
