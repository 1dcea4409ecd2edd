"""Ultrasound DICOM: the image of one frame and the pixel spacing the file itself justifies.

Needs the optional extra ``dicom`` (pydicom, and pillow / pylibjpeg decoders for
compressed transfer syntaxes).

Pixel spacing comes from the Sequence of Ultrasound Regions (DICOM PS3.3
C.8.5.5): a region qualifies when its Region Spatial Format is 1 (2D) and its
Physical Units X and Y Direction are both 3 (cm); then mm per pixel is Physical
Delta x 10. The region that contains the measured head (its centre) is used.
No millimetres are given (and the reason is said) when no region qualifies and
the file has no Pixel Spacing, when the qualifying regions that hold the head
disagree, when that region's box lies outside the pixel matrix, when the head
lies outside every qualifying region, or when x and y spacing differ by more than
1 % (unless anisotropic spacing is accepted). Pixel Spacing (0028,0030) is the
fallback only when no region qualifies. Spacing is read per file and per frame.

Identifying fields (patient name, id, birth date...) are never returned unless
``include_identifying=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .imageio import ScanReadError, check_scan_array, has_dicom_preamble

__all__ = ["UltrasoundRegion", "DicomScan", "SpacingDecision", "read_dicom", "is_dicom_file",
           "ultrasound_regions", "choose_spacing", "ANISOTROPY_TOLERANCE", "ULTRASOUND_SOP_CLASSES",
           "frames_in_file", "check_inflated_size", "not_ultrasound_reason", "MAX_DICOM_FRAMES", "MAX_INFLATED_BYTES"]

#: x and y spacing may differ by this share before a scan counts as anisotropic
#: (then no mm unless accepted): 1 % moves HC by at most about 0.5 %.
ANISOTROPY_TOLERANCE = 0.01
#: Calibrated regions that both hold the head must agree to this share (rounding
#: of Physical Delta in the file), or the calibration is ambiguous.
REGION_AGREEMENT_TOLERANCE = 0.001
_UNITS_CM = 3
_SPATIAL_2D = 1
#: Most frames a DICOM loop may declare: the same cap as a video's (``cine.MAX_VIDEO_FRAMES``), 5.5 min
#: at 30 frames/s; a header value above it is refused before anything is sized by it.
MAX_DICOM_FRAMES = 10_000
#: Most bytes a deflated DICOM file may inflate to (a 4K RGB loop of about 20 frames): inflated in
#: bounded chunks and refused past it *before* the dataset is parsed (a deflate bomb).
MAX_INFLATED_BYTES = 512 * 1024 * 1024
_DEFLATED_TS = "1.2.840.10008.1.2.1.99"
#: Longest text kept from a header field: UIDs and LO values are at most 64 characters (PS3.5 6.2),
#: a PN at most 64 per component group; past twice that a value is no identifier but a payload.
MAX_HEADER_TEXT = 128
IDENTIFIER_FIELDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
                     "InstanceNumber", "Modality", "Manufacturer", "ManufacturerModelName")
IDENTIFYING_FIELDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                      "InstitutionName", "ReferringPhysicianName", "StudyDate", "StudyTime")


@dataclass(frozen=True)
class UltrasoundRegion:
    """One item of the Sequence of Ultrasound Regions (box in pixels, inclusive)."""

    index: int
    spatial_format: int | None
    units_x: int | None
    units_y: int | None
    delta_x: float | None
    delta_y: float | None
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def qualifies(self) -> bool:
        """2D region calibrated in cm on both axes, with positive deltas."""
        return (self.spatial_format == _SPATIAL_2D and self.units_x == _UNITS_CM and self.units_y == _UNITS_CM
                and bool(self.delta_x) and bool(self.delta_y) and self.delta_x > 0 and self.delta_y > 0)

    @property
    def spacing_mm(self) -> tuple[float, float]:
        return (float(self.delta_x) * 10.0, float(self.delta_y) * 10.0)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 - 0.5 <= x <= self.x1 + 0.5 and self.y0 - 0.5 <= y <= self.y1 + 0.5

    def inside_matrix(self, rows: int, cols: int) -> bool:
        """The box lies in the pixel matrix; a box that ends one past the last pixel (its max equal to
        Columns or Rows, as Philips CX50 / ClearVue 650 and Mindray DC-30 write it) is taken as
        ending at the edge (:data:`REGION_EDGE_TOLERANCE_PX`); further out, it is not trusted."""
        edge = REGION_EDGE_TOLERANCE_PX
        return 0 <= self.x0 <= self.x1 < cols + edge and 0 <= self.y0 <= self.y1 < rows + edge


#: How far past the last pixel a region's max may lie and still be read as "to the edge" (pixels):
#: several scanners write max = Columns (or Rows), one past the last pixel index.
REGION_EDGE_TOLERANCE_PX = 1


@dataclass
class SpacingDecision:
    spacing_mm: tuple[float, float] | None
    source: str
    note: str = ""


@dataclass
class DicomScan:
    """The grey image of one frame and what is needed to turn pixels into mm."""

    path: str
    image: np.ndarray
    frame: int
    n_frames: int
    rows: int
    cols: int
    regions: list[UltrasoundRegion]
    pixel_spacing_tag_mm: tuple[float, float] | None
    identifiers: dict = field(default_factory=dict)
    accept_anisotropic: bool = False
    header: object = None  # the pydicom Dataset without its pixel data (for the SR and overlay going back)

    def spacing_for(self, ellipse) -> SpacingDecision:
        """The spacing for a head whose ellipse (pixels) is ``ellipse`` (``None``: no head found)."""
        point = None if ellipse is None else (ellipse.center_x, ellipse.center_y)
        return choose_spacing(self.regions, self.rows, self.cols, point, self.pixel_spacing_tag_mm,
                              self.accept_anisotropic)


def is_dicom_file(path: str | Path) -> bool:
    """True for a file with the DICOM preamble ('DICM' at byte 128) or a .dcm/.dicom suffix."""
    path = Path(path)
    if path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return has_dicom_preamble(head)


def _int(item, name):
    v = item.get(name)
    return None if v is None or v == "" else int(v)


def _float(item, name):
    v = item.get(name)
    return None if v is None or v == "" else float(v)


def ultrasound_regions(ds) -> list[UltrasoundRegion]:
    """The regions of a pydicom dataset's Sequence of Ultrasound Regions (empty when absent)."""
    seq = ds.get("SequenceOfUltrasoundRegions") or []
    out = []
    for i, item in enumerate(seq):
        try:
            out.append(_region(i, item))
        except (TypeError, ValueError):  # a damaged region: it cannot qualify
            out.append(UltrasoundRegion(index=i, spatial_format=None, units_x=None, units_y=None, delta_x=None,
                                        delta_y=None, x0=0, y0=0, x1=0, y1=0))
    return out


def _region(i: int, item) -> UltrasoundRegion:
    return (UltrasoundRegion(
            index=i, spatial_format=_int(item, "RegionSpatialFormat"),
            units_x=_int(item, "PhysicalUnitsXDirection"), units_y=_int(item, "PhysicalUnitsYDirection"),
            delta_x=_float(item, "PhysicalDeltaX"), delta_y=_float(item, "PhysicalDeltaY"),
            x0=_int(item, "RegionLocationMinX0") or 0, y0=_int(item, "RegionLocationMinY0") or 0,
            x1=_int(item, "RegionLocationMaxX1") or 0, y1=_int(item, "RegionLocationMaxY1") or 0))


def _check_isotropy(spacing, accept_anisotropic, source) -> SpacingDecision:
    sx, sy = spacing
    if abs(sx - sy) / max(sx, sy) > ANISOTROPY_TOLERANCE and not accept_anisotropic:
        return SpacingDecision(None, "none", f"{source}: x and y spacing differ ({sx:.5g} vs {sy:.5g} mm) by more "
                                             f"than {100 * ANISOTROPY_TOLERANCE:.0f}%; accept anisotropic spacing "
                                             "explicitly to measure in mm")
    return SpacingDecision((sx, sy), source)


def choose_spacing(regions: list[UltrasoundRegion], rows: int, cols: int, point_xy=None,
                   pixel_spacing_tag_mm=None, accept_anisotropic: bool = False) -> SpacingDecision:
    """Pick the pixel spacing (mm) for a head centred at ``point_xy``; see the module docstring."""
    qualifying = [r for r in regions if r.qualifies]
    if not qualifying:
        if pixel_spacing_tag_mm:
            why = "no calibrated 2D ultrasound region" if regions else "no ultrasound regions"
            d = _check_isotropy(pixel_spacing_tag_mm, accept_anisotropic, "PixelSpacing")
            if d.spacing_mm:
                d.note = f"spacing from PixelSpacing (0028,0030): the file has {why}"
            return d
        if regions:
            return SpacingDecision(None, "none", "no ultrasound region is a 2D region calibrated in cm, "
                                                 "and the file has no PixelSpacing")
        return SpacingDecision(None, "none", "the file has no calibration (no ultrasound regions, no PixelSpacing)")
    if point_xy is None:
        holding = qualifying
    else:
        holding = [r for r in qualifying if r.contains(*point_xy)]
        if not holding:
            return SpacingDecision(None, "none", "the head lies outside every calibrated ultrasound region")
    bad_box = [r for r in holding if not r.inside_matrix(rows, cols)]
    if bad_box:
        r = bad_box[0]
        return SpacingDecision(None, "none", f"ultrasound region {r.index} box ({r.x0},{r.y0})-({r.x1},{r.y1}) lies "
                                             f"outside the {cols}x{rows} pixel matrix: calibration not trustworthy")
    spacings = [r.spacing_mm for r in holding]
    ref = spacings[0]
    for s in spacings[1:]:
        if (abs(s[0] - ref[0]) / ref[0] > REGION_AGREEMENT_TOLERANCE
                or abs(s[1] - ref[1]) / ref[1] > REGION_AGREEMENT_TOLERANCE):
            return SpacingDecision(None, "none", "the calibrated ultrasound regions holding the head disagree "
                                                 f"({ref[0]:.5g} vs {s[0]:.5g} mm per pixel)")
    return _check_isotropy(ref, accept_anisotropic, f"SequenceOfUltrasoundRegions[{holding[0].index}]")


def blank_outside(grey: np.ndarray, regions: list[UltrasoundRegion]) -> np.ndarray:
    """``grey`` with what lies outside every ultrasound region set to black: scanners burn text into the
    pixels there (patient name and ID, the date), which fetalhead must not copy into what it writes
    (overlays, the page, reports, the SR's capture). Unchanged when the file defines no region, or
    when no region box overlaps the image."""
    if not regions:
        return grey
    h, w = grey.shape
    keep = np.zeros((h, w), bool)
    for r in regions:
        x0, y0 = max(0, r.x0), max(0, r.y0)
        x1, y1 = min(w - 1, r.x1), min(h - 1, r.y1)
        if x0 <= x1 and y0 <= y1:
            keep[y0:y1 + 1, x0:x1 + 1] = True
    if not keep.any():
        return grey
    return np.where(keep, grey, 0.0).astype(grey.dtype)


def _palette_in_little_endian(ds):
    """``ds``, or for a big-endian file a small dataset with its palette tables' words swapped: the
    OW table data keep the file's byte order, which pydicom's ``apply_color_lut`` reads as little
    endian (a big-endian palette file then decodes almost black)."""
    little = getattr(ds, "original_encoding", (None, True))[1]
    if little is not False or "RedPaletteColorLookupTableData" not in ds:
        return ds  # (segmented tables are read in the file's byte order by pydicom itself)
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    out = Dataset()
    out.file_meta = FileMetaDataset()
    out.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for elem in ds:
        if "PaletteColorLookupTable" in elem.keyword or elem.keyword in (
                "PhotometricInterpretation", "BitsStored", "BitsAllocated", "PixelRepresentation", "SamplesPerPixel"):
            out.add(elem)
    for colour in ("Red", "Green", "Blue", "Alpha"):
        key = f"{colour}PaletteColorLookupTableData"
        if key in out:
            data = bytes(out[key].value)
            setattr(out, key, np.frombuffer(data[: len(data) // 2 * 2], ">u2").astype("<u2").tobytes())
    return out


def _to_grey(arr: np.ndarray, ds, photometric: str) -> np.ndarray:
    from pydicom.pixels import apply_color_lut

    if photometric == "PALETTE COLOR":
        arr = apply_color_lut(arr, _palette_in_little_endian(ds))
        if arr.dtype != np.uint8:
            arr = (arr.astype(np.float32) / 65535.0)
        photometric = "RGB"
    if photometric.startswith("YBR") and arr.ndim == 3:
        # pydicom.pixels.pixel_array (as_rgb=True) returns YBR_FULL(_422) converted to RGB, and
        # YBR_RCT/YBR_ICT (JPEG 2000) decode to RGB.
        photometric = "RGB"
    if arr.ndim == 3 and arr.shape[-1] == 3:
        # RGB -> grey with BT.601 luma weights (the same as OpenCV for BGR input)
        a = arr.astype(np.float32)
        grey = 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]
        maxval = 1.0 if np.issubdtype(arr.dtype, np.floating) else float(np.iinfo(arr.dtype).max)
        return np.clip(grey / maxval, 0, 1).astype(np.float32)
    if arr.ndim != 2:
        raise ValueError(f"unsupported pixel array shape {arr.shape}")
    a = arr.astype(np.float64)
    bits = int(ds.get("BitsStored", 8) or 8)
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    if bits <= 8 and not signed:
        lo, hi = 0.0, 255.0
    else:  # deeper data: stretch the stored range (the network standardises each view anyway)
        lo, hi = float(a.min()), float(a.max())
    grey = (a - lo) / max(hi - lo, 1e-9)
    if photometric == "MONOCHROME1":
        grey = 1.0 - grey
    return np.clip(grey, 0, 1).astype(np.float32)


#: SOP classes of ultrasound images (DICOM PS3.4 B.5): Ultrasound Image Storage,
#: Ultrasound Multi-frame Image Storage, and their retired predecessors.
ULTRASOUND_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1",
                          "1.2.840.10008.5.1.4.1.1.6", "1.2.840.10008.5.1.4.1.1.3")
#: Secondary captures (PS3.4 B.5: SC, and the multi-frame byte and true-colour SCs): an ultrasound
#: screen may be stored so, with Modality US.
SECONDARY_CAPTURE_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.2",
                                 "1.2.840.10008.5.1.4.1.1.7.4")


def read_dicom(source, frame: int = 0, accept_anisotropic: bool = False,
               include_identifying: bool = False, name: str | None = None,
               blank_outside_regions: bool = True) -> DicomScan:
    """Read one frame of an ultrasound DICOM file (decoding only that frame).

    Parameters
    ----------
    source : path, or the file's bytes
    frame : int, the frame of a multi-frame file (cine loop).
    name : str, how messages name the file (default: the path).

    The image size (Rows x Columns x samples) is checked against
    :data:`fetalhead.scans.imageio.MAX_SIDE_PX` before anything is decoded. Files
    whose Modality is not US, or whose SOP class is not an ultrasound image,
    are refused: fetalhead measures fetal heads on ultrasound only.

    Raises
    ------
    ScanReadError
        Naming the file and the problem (not DICOM, not ultrasound, no pixel
        data, too large, no decoder for the transfer syntax, frame out of range, ...).
    """
    ds, name = _open_dataset(source, name)
    return _decode_frame(ds, name, frame, accept_anisotropic, include_identifying, blank=blank_outside_regions)


def _open_dataset(source, name: str | None):
    """The file (a path, or its bytes) parsed whole, and the name messages use; :class:`ScanReadError`
    naming the file when it is not DICOM, is damaged, or the ``dicom`` extra is missing."""
    import io

    if name is None:
        name = "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError:
        raise ScanReadError(f"{name}: reading DICOM needs the 'dicom' extra: pip install 'fetalhead[dicom]'") from None
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source)
    check_inflated_size(source, name)
    try:
        return pydicom.dcmread(fp, stop_before_pixels=False), name
    except InvalidDicomError:
        raise ScanReadError(f"{name}: not a DICOM file") from None
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise ScanReadError(f"{name}: damaged DICOM file ({type(exc).__name__}: {exc})") from None


def check_inflated_size(source, name: str, limit: int = MAX_INFLATED_BYTES) -> None:
    """Refuse a deflated-transfer-syntax file that would inflate past ``limit`` bytes.

    Only the file meta group is read to tell the transfer syntax; a deflated data set is then read and
    inflated in chunks of at most 1 MiB that are counted and dropped, so memory stays small whatever the
    file claims. Other transfer syntaxes are left alone (pydicom names any damage)."""
    import io
    import struct

    try:
        with io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb") as f:
            head = f.read(144)
            if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
                return
            if _DEFLATED_TS.encode() not in f.read(struct.unpack("<I", head[140:144])[0]):
                return
            _count_inflated(f, name, limit)
    except OSError:
        return  # pydicom names the problem


def _count_inflated(f, name: str, limit: int, chunk: int = 1 << 20) -> None:
    """Inflate the raw deflate stream read from ``f`` chunk by chunk, counting what comes out."""
    import zlib

    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total = 0
    try:
        while not inflater.eof:
            data = f.read(chunk)
            if not data:
                return
            while data and not inflater.eof:
                total += len(inflater.decompress(data, chunk))
                if total > limit:
                    raise ScanReadError(f"{name}: the deflated DICOM data inflates to more than {limit // 2**20} "
                                        "MiB: refused (a scan is far smaller)")
                data = inflater.unconsumed_tail
    except zlib.error as exc:
        raise ScanReadError(f"{name}: damaged DICOM file (the deflated data cannot be inflated: {exc})") from None


def frames_in_file(ds, name: str) -> int:
    """The number of frames of a parsed file, checked against what its pixel data holds.

    NumberOfFrames must be a whole number from 1 to :data:`MAX_DICOM_FRAMES`, and the pixel data must
    hold that many frames: encapsulated data as many offsets (Basic or Extended Offset Table) or at
    least as many fragments, native data at least frames x rows x columns x samples x bytes per sample.
    A header that declares more frames than the file holds is a damaged file, named as such.
    """
    try:
        declared = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        raise ScanReadError(f"{name}: damaged image header (NumberOfFrames)") from None
    if declared < 1:
        raise ScanReadError(f"{name}: the loop has no frames (NumberOfFrames {declared})")
    if declared > MAX_DICOM_FRAMES:
        raise ScanReadError(f"{name}: the header declares {declared} frames, more than {MAX_DICOM_FRAMES}: "
                            "refused (cut the loop shorter)")
    if "PixelData" not in ds:
        return declared
    present = _frames_present(ds)
    if present is not None and present < declared:
        raise ScanReadError(f"{name}: damaged loop: the header declares {declared} frames, the pixel data "
                            f"holds {present}")
    return declared


def _frames_present(ds) -> int | None:
    from pydicom.encaps import parse_basic_offsets, parse_fragments

    elem = ds["PixelData"]
    value = elem.value
    if value is None:
        return 0
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if ts is not None and getattr(ts, "is_compressed", False):
        ext = ds.get("ExtendedOffsetTable")
        if ext:
            return len(ext) // 8
        offsets = parse_basic_offsets(value)
        if len(offsets) > 0:
            return len(offsets)
        n_items, _ = parse_fragments(value)
        return max(n_items - 1, 0)  # the first item is the (empty) Basic Offset Table
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 8) or 8)
    except (AttributeError, TypeError, ValueError):
        return None
    if bits < 8:
        return None  # bit-packed data: left to the decoder
    per_frame = rows * cols * samples * (bits // 8)
    return len(value) // per_frame if per_frame > 0 else None


def _decode_frame(ds, name, frame, accept_anisotropic, include_identifying, header=None, blank=True,
                  n_frames: int | None = None) -> DicomScan:
    """One frame of a parsed file as a :class:`DicomScan`; every failure a :class:`ScanReadError`.
    ``n_frames``: :func:`frames_in_file` when the caller has it already (a loop checks it once)."""
    from pydicom.pixels import pixel_array

    from .imageio import check_dimensions

    try:
        return _scan_from_dataset(ds, name, frame, accept_anisotropic, include_identifying, pixel_array,
                                  check_dimensions, header=header, blank=blank, n_frames=n_frames)
    except ScanReadError:
        raise
    except Exception as exc:  # a damaged tag read lazily: never a traceback
        raise ScanReadError(f"{name}: damaged DICOM file ({type(exc).__name__}: {exc})") from None


def _header_without_pixels(ds):
    """The dataset's elements (and file meta) without the pixel data: for the SR and overlay."""
    from pydicom.dataset import Dataset

    hdr = Dataset()
    for elem in ds:
        if elem.keyword not in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            hdr.add(elem)
    if getattr(ds, "file_meta", None) is not None:
        hdr.file_meta = ds.file_meta
    return hdr


def read_dicom_frames(source, *, name: str | None = None, accept_anisotropic: bool = False,
                      include_identifying: bool = False, blank_outside_regions: bool = True):
    """Each frame of a (multi-frame) ultrasound DICOM file as ``(DicomScan, time_s)``, the file parsed
    once and one frame decoded at a time; the time from the frame timing (``None`` when absent)."""

    ds, name = _open_dataset(source, name)
    n = frames_in_file(ds, name)
    header = _header_without_pixels(ds)
    times = dicom_frame_times(ds, n)
    for i in range(n):
        scan = _decode_frame(ds, name, i, accept_anisotropic, include_identifying, header, blank_outside_regions,
                             n_frames=n)
        yield scan, times[i]


def _bounded_text(value) -> str:
    """A header value as text of at most :data:`MAX_HEADER_TEXT` characters (a crafted file may carry
    megabytes in a tag that every report, SR and FHIR Bundle would then repeat)."""
    text = str(value)
    return text if len(text) <= MAX_HEADER_TEXT else text[:MAX_HEADER_TEXT - 1] + "…"


def not_ultrasound_reason(ds) -> str:
    """Why a dataset is no ultrasound image to measure ("" when it may be one): its Modality, then its
    SOP class (which decides over a Modality that says US: an MR image labelled US is an MR image), then
    the image itself (signed pixel values are CT- or MR-like). The one decision the reader and the DICOM
    node both use; the reason names no patient data."""
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality and modality != "US":
        return (f"not an ultrasound image (Modality {modality}); fetalhead measures fetal heads on "
                "ultrasound (US) only")
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if sop_class and sop_class not in ULTRASOUND_SOP_CLASSES and (
            modality != "US" or sop_class not in SECONDARY_CAPTURE_SOP_CLASSES):
        return f"not an ultrasound image (SOP class {sop_class}" + (
            ", though labelled Modality US)" if modality == "US" else ")")
    try:
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    except (TypeError, ValueError):
        signed = False
    if signed:
        return "not an ultrasound image (signed pixel values, as CT or MR store them)"
    return ""


def _scan_from_dataset(ds, name, frame, accept_anisotropic, include_identifying, pixel_array, check_dimensions,
                       header=None, blank=True, n_frames=None):
    why = not_ultrasound_reason(ds)
    if why:
        raise ScanReadError(f"{name}: {why}")
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise ScanReadError(f"{name}: the DICOM file holds no image (no pixel data)")
    try:
        rows, cols = int(ds.Rows), int(ds.Columns)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ScanReadError(f"{name}: damaged image header (Rows, Columns, NumberOfFrames: {exc})") from None
    check_dimensions(cols, rows, name, channels=samples)
    if n_frames is None:
        n_frames = frames_in_file(ds, name)
    if not 0 <= frame < n_frames:
        raise ScanReadError(f"{name}: frame {frame} requested, the file has {n_frames} frame(s) (0-{n_frames - 1})")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    try:
        arr = pixel_array(ds, index=frame if n_frames > 1 else None)
    except Exception as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        ts_name = getattr(ts, "name", str(ts))
        raise ScanReadError(f"{name}: cannot decode the pixel data ({ts_name}): {exc}") from None
    try:
        grey = _to_grey(np.asarray(arr), ds, photometric)
    except ValueError as exc:
        raise ScanReadError(f"{name}: {exc}") from None
    grey = check_scan_array(grey, name, allow_blank=n_frames > 1)  # a loop's blank frame: that frame's row
    tag_mm = None
    tag = ds.get("PixelSpacing")
    try:
        if tag is not None and len(tag) == 2 and float(tag[0]) > 0 and float(tag[1]) > 0:
            # PixelSpacing is (row spacing = y, column spacing = x)
            tag_mm = (float(tag[1]), float(tag[0]))
    except (TypeError, ValueError):
        tag_mm = None  # not numbers: no calibration from this tag
    ids = {k: _bounded_text(ds.get(k)) for k in IDENTIFIER_FIELDS if ds.get(k) not in (None, "")}
    if include_identifying:
        ids.update({k: _bounded_text(ds.get(k)) for k in IDENTIFYING_FIELDS if ds.get(k) not in (None, "")})
    regions = ultrasound_regions(ds)
    if blank:
        grey = blank_outside(grey, regions)
    return DicomScan(path=name, image=grey, frame=frame, n_frames=n_frames, rows=rows, cols=cols,
                     regions=regions, pixel_spacing_tag_mm=tag_mm, identifiers=ids,
                     accept_anisotropic=accept_anisotropic,
                     header=header if header is not None else _header_without_pixels(ds))


def dicom_frame_times(header, n_frames: int) -> list[float | None]:
    """Each frame's time (s) from a DICOM header: FrameTimeVector (ms between frames), or FrameTime (ms
    per frame), or the cine rate (frames per second); ``None`` when the file says nothing."""
    try:
        vector = header.get("FrameTimeVector")
        if vector is not None and len(vector) == n_frames:
            return list(np.cumsum([float(v) for v in vector]) / 1000.0)
        frame_ms = header.get("FrameTime")
        if frame_ms not in (None, "") and float(frame_ms) > 0:
            return [i * float(frame_ms) / 1000.0 for i in range(n_frames)]
        rate = header.get("CineRate") or header.get("RecommendedDisplayFrameRate")
        if rate not in (None, "") and float(rate) > 0:
            return [i / float(rate) for i in range(n_frames)]
    except (TypeError, ValueError):
        pass
    return [None] * n_frames
