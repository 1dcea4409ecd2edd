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
    frame number burnt into the top-left corner.
    """
    h, w = grey_u8.shape
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
        f = grey_u8.copy()
        if frames > 1:
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
