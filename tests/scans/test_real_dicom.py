"""Real scanner files: the ultrasound DICOM of the pydicom-data wheel (GE, Philips, ALOKA, SonoSite, ...).
None of them is a fetal head: they test reading, calibration and what fetalhead writes, not accuracy."""

import os
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
data_store = pytest.importorskip("data_store", reason="the pydicom-data wheel (test extra) is not installed")

import fetalhead  # noqa: E402
from fetalhead.scans.dicom import read_dicom  # noqa: E402

ROOT = Path(os.path.dirname(data_store.__file__)) / "data"


def ultrasound_files():
    out = []
    for f in sorted(ROOT.iterdir()):
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except Exception:
            continue
        if str(ds.get("Modality", "")) == "US":
            out.append(f)
    return out


US_FILES = ultrasound_files()


def test_there_are_real_files_from_several_makers():
    makers = {str(pydicom.dcmread(f, stop_before_pixels=True).get("Manufacturer", "")).split()[0] for f in US_FILES}
    assert len(US_FILES) >= 12 and {"Philips", "ALOKA", "G.E."} <= makers


@pytest.mark.parametrize("path", US_FILES, ids=lambda p: p.name)
def test_every_real_file_is_read_and_answered_in_words(path):
    m = fetalhead.measure(path)
    # none shows a fetal head (issue 21): failed, no fetal head found, no figures
    assert m.status == "failed" and m.failure == "no_head_found", (m.status, m.head_circumference_mm, m.flags)
    assert str(path) in m.message and m.head_circumference_mm is None and m.head_circumference_px is None
    assert "single grey level" not in m.message  # every one of them holds a picture


def test_the_sonosite_cardiac_loop_has_no_fetal_head():
    """Issue 21 (found in review): its best frame was measured as HC 467 mm from the file's own calibration
    and only flagged. Now a "head" of impossible size with a measured pixel size is no head, and a loop
    whose frames mostly show no head has none."""
    from fetalhead.measurement import measure_loop

    m = measure_loop(ROOT / "color3d_jpeg_baseline.dcm")[0]
    assert m.status == "failed" and m.failure == "no_head_found" and m.head_circumference_mm is None
    assert "frames: this loop shows no fetal head" in m.message
    assert m.hc_trace and sum(f["status"] == "failed" for f in m.hc_trace) > len(m.hc_trace) / 2


@pytest.mark.parametrize("little, big", [("OBXXXX1A.dcm", "OBXXXX1A_expb.dcm"),
                                         ("gdcm-US-ALOKA-16.dcm", "gdcm-US-ALOKA-16_big.dcm")])
def test_big_endian_palette_files_decode_like_their_little_endian_twins(little, big):
    a, b = read_dicom(ROOT / little).image, read_dicom(ROOT / big).image
    assert a.std() > 0.05 and np.array_equal(a, b)


def test_philips_region_box_ending_at_the_matrix_edge_gives_its_calibration():
    scan = read_dicom(ROOT / "OBXXXX1A.dcm")
    assert scan.regions[0].x1 == scan.cols  # max equal to Columns, as the scanner writes it
    decision = scan.spacing_for(None)
    assert decision.spacing_mm is not None and decision.source.startswith("SequenceOfUltrasoundRegions")


def test_text_outside_the_regions_is_blanked():
    path = ROOT / "JPGLosslessP14SV1_1s_1f_8b.dcm"
    blanked, kept = read_dicom(path), read_dicom(path, blank_outside_regions=False)
    r = blanked.regions[0]
    outside = np.ones(blanked.image.shape, bool)
    outside[r.y0:r.y1 + 1, r.x0:r.x1 + 1] = False
    assert kept.image[outside].max() > 0.5  # the scanner's text is there
    assert blanked.image[outside].max() == 0 and np.array_equal(blanked.image[~outside], kept.image[~outside])
