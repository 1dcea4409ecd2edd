"""Synthetic ultrasound DICOM files for the tests, written with pydicom."""

from __future__ import annotations

import cv2
import numpy as np

pydicom = __import__("pytest").importorskip("pydicom")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.encaps import encapsulate  # noqa: E402
from pydicom.uid import (ExplicitVRLittleEndian, JPEG2000Lossless, JPEGBaseline8Bit, RLELossless,  # noqa: E402
                         UltrasoundImageStorage, UltrasoundMultiFrameImageStorage, generate_uid)


def region(x0, y0, x1, y1, delta_cm_x, delta_cm_y=None, units=3, spatial_format=1):
    r = Dataset()
    r.RegionSpatialFormat = spatial_format
    r.RegionDataType = 1
    r.RegionFlags = 0
    r.RegionLocationMinX0, r.RegionLocationMinY0 = x0, y0
    r.RegionLocationMaxX1, r.RegionLocationMaxY1 = x1, y1
    r.PhysicalUnitsXDirection = units
    r.PhysicalUnitsYDirection = units
    r.PhysicalDeltaX = float(delta_cm_x)
    r.PhysicalDeltaY = float(delta_cm_x if delta_cm_y is None else delta_cm_y)
    return r


def write_us_dicom(path, grey_u8, regions=(), photometric="MONOCHROME2", syntax=ExplicitVRLittleEndian,
                   frames=1, pixel_spacing=None, patient_name="Doe^Jane"):
    """Write ``grey_u8`` (H, W uint8) as an ultrasound DICOM file.

    ``photometric``: MONOCHROME2, MONOCHROME1 (stored inverted), RGB, YBR_FULL (converted from
    RGB), PALETTE COLOR (a grey palette); ``syntax``: explicit little endian, RLE, JPEG 2000
    lossless or JPEG baseline (encapsulated by hand). ``frames`` > 1 repeats the image with the
    frame number burnt into the top-left corner; a (frames, H, W) array gives each frame its own image.
    """
    if grey_u8.ndim == 3:
        frames, own_frames = grey_u8.shape[0], list(grey_u8)
    else:
        own_frames = None
    h, w = grey_u8.shape[-2:]
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage if frames > 1 else UltrasoundImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 3, 7
    ds.Modality = "US"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient_name, "ID-12345", "19900101"
    ds.Rows, ds.Columns = h, w
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    if regions:
        ds.SequenceOfUltrasoundRegions = list(regions)
    if pixel_spacing is not None:
        ds.PixelSpacing = [pixel_spacing[1], pixel_spacing[0]]
    stack = []
    for k in range(frames):
        f = own_frames[k].copy() if own_frames is not None else grey_u8.copy()
        if frames > 1 and own_frames is None:
            f[:20, :20] = 40 * k
        stack.append(f)
    if photometric in ("MONOCHROME2", "MONOCHROME1", "PALETTE COLOR"):
        data = [255 - f if photometric == "MONOCHROME1" else f for f in stack]
        ds.SamplesPerPixel = 1
    else:
        rgb = [np.dstack([f, f, f]) for f in stack]
        if photometric == "YBR_FULL":
            rgb = [cv2.cvtColor(x, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]] for x in rgb]
        data = rgb
        ds.SamplesPerPixel = 3
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    if photometric == "PALETTE COLOR":
        lut = np.arange(256, dtype=np.uint16) * 257
        for c in ("Red", "Green", "Blue"):
            setattr(ds, f"{c}PaletteColorLookupTableDescriptor", [256, 0, 16])
            setattr(ds, f"{c}PaletteColorLookupTableData", lut.tobytes())
    arr = np.stack(data) if frames > 1 else data[0]
    if frames > 1:
        ds.NumberOfFrames = frames
    if syntax == JPEGBaseline8Bit:
        frames_bytes = []
        for x in data:
            img = x if x.ndim == 2 else cv2.cvtColor(x, cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            frames_bytes.append(buf.tobytes())
        ds.PixelData = encapsulate(frames_bytes)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        if ds.SamplesPerPixel == 3:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        ds.LossyImageCompression = "01"
    else:
        ds.PixelData = np.ascontiguousarray(arr).tobytes()
        if syntax in (RLELossless, JPEG2000Lossless):
            ds.compress(syntax, arr)
    ds.save_as(path, enforce_file_format=True)
    return path


# --- a minimal lossless JPEG (process 14, first-order prediction) encoder for the tests ---------
# Huffman table: the standard DC luminance table of ITU-T T.81 Annex K.3 (categories 0-11).
_DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
_DC_VALS = list(range(12))


def _huffman_codes():
    codes, code, k = {}, 0, 0
    for length, count in enumerate(_DC_BITS, start=1):
        for _ in range(count):
            codes[_DC_VALS[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return codes


def encode_jpeg_lossless(img: np.ndarray) -> bytes:
    """8-bit grey image -> JPEG lossless (SOF3, selection value 1) bit stream."""
    h, w = img.shape
    codes = _huffman_codes()
    x = img.astype(np.int32)
    pred = np.empty_like(x)
    pred[0, 0] = 128
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diffs = (x - pred).ravel()
    bits, nbits, out = 0, 0, bytearray()
    for d in diffs.tolist():
        ssss = int(abs(d)).bit_length()
        code, length = codes[ssss]
        bits, nbits = (bits << length) | code, nbits + length
        if ssss:
            extra = d if d > 0 else d - 1
            bits, nbits = (bits << ssss) | (extra & ((1 << ssss) - 1)), nbits + ssss
        while nbits >= 8:
            byte = (bits >> (nbits - 8)) & 0xFF
            out.append(byte)
            if byte == 0xFF:
                out.append(0)
            nbits -= 8
        bits &= (1 << nbits) - 1 if nbits else 0
    if nbits:
        byte = ((bits << (8 - nbits)) | ((1 << (8 - nbits)) - 1)) & 0xFF
        out.append(byte)
        if byte == 0xFF:
            out.append(0)
    seg = bytearray(b"\xff\xd8")
    sof = bytes([8]) + h.to_bytes(2, "big") + w.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])
    seg += b"\xff\xc3" + (len(sof) + 2).to_bytes(2, "big") + sof
    dht = bytes([0x00]) + bytes(_DC_BITS) + bytes(_DC_VALS)
    seg += b"\xff\xc4" + (len(dht) + 2).to_bytes(2, "big") + dht
    sos = bytes([1, 1, 0x00, 1, 0, 0])  # 1 component, tables 0/0, predictor 1, Se 0, Ah/Al 0
    seg += b"\xff\xda" + (len(sos) + 2).to_bytes(2, "big") + sos
    return bytes(seg + out + b"\xff\xd9")


def write_jpeg_lossless_dicom(path, grey_u8, regions=()):
    from pydicom.uid import JPEGLosslessSV1

    write_us_dicom(path, grey_u8, regions)
    ds = pydicom.dcmread(path)
    ds.PixelData = encapsulate([encode_jpeg_lossless(grey_u8)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.save_as(path, enforce_file_format=True)
    return path


def loop_frames(grey_u8, n=12, blurred=(3, 4), seed=0):
    """A synthetic cine loop: the scan drifting 2 px right and 1 px down per frame, with ``blurred`` frames
    (a moment of motion: heavy blur and speckle-like noise)."""
    rng = np.random.default_rng(seed)
    h, w = grey_u8.shape
    frames = []
    for i in range(n):
        f = grey_u8.astype(np.float32)
        if i in blurred:
            f = cv2.GaussianBlur(f, (0, 0), 6) + rng.normal(0, 25, f.shape)
        f = cv2.warpAffine(f, np.float32([[1, 0, 2 * i], [0, 1, i]]), (w, h))
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
    return np.stack(frames)


def write_loop_dicom(path, frames, spacing_cm, frame_time_ms=33.3):
    h, w = frames.shape[1:]
    write_us_dicom(path, frames, regions=[region(0, 0, w - 1, h - 1, spacing_cm)])
    ds = pydicom.dcmread(path)
    ds.FrameTime = frame_time_ms
    ds.save_as(path)
    return path


def write_video(path, frames, fps=30.0, fourcc="MJPG"):
    h, w = frames.shape[1:]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h), False)
    for f in frames:
        out.write(f)
    out.release()
    return path


def write_deflate_bomb(path, inflated_bytes, rows=64, cols=64):
    """A Deflated Explicit VR Little Endian ultrasound file whose data set inflates to about
    ``inflated_bytes`` (a PixelData of zeros that long): small on disk, written in a stream."""
    import struct
    import zlib

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns, ds.SamplesPerPixel = "US", rows, cols, 1
    ds.PhotometricInterpretation, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = \
        "MONOCHROME2", 8, 8, 7, 0
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    n = inflated_bytes + (inflated_bytes % 2)
    head = body.getvalue() + struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, n)
    fm = DicomBytesIO()
    fm.is_little_endian, fm.is_implicit_VR = True, False
    write_file_meta_info(fm, meta, enforce_standard=True)
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + fm.getvalue())
        f.write(comp.compress(head))
        left = n
        while left:
            k = min(left, len(zeros))
            f.write(comp.compress(zeros[:k]))
            left -= k
        f.write(comp.flush())
    return path
