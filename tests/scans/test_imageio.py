import cv2
import numpy as np
import pytest

from fetalhead.scans.imageio import ScanReadError, check_scan_array, read_scan, to_grey_float


def test_reads_sample_scan(samples_dir):
    img = read_scan(samples_dir / "011_HC.png")
    assert img.dtype == np.float32 and img.shape == (540, 800) and 0 <= img.min() <= img.max() <= 1


@pytest.mark.parametrize("content, match", [
    (b"", "empty"),
    (b"this is not an image", "not a readable image"),
])
def test_bad_files(tmp_path, content, match):
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(ScanReadError, match=match) as exc:
        read_scan(p)
    assert str(p) in str(exc.value)


def test_truncated_png_and_jpeg(tmp_path, samples_dir):
    data = (samples_dir / "011_HC.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[:5000])
    with pytest.raises(ScanReadError, match="truncated"):
        read_scan(tmp_path / "t.png")
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (100, 100), np.uint8))
    (tmp_path / "t.jpg").write_bytes(buf.tobytes()[:2000])
    with pytest.raises(ScanReadError, match="truncated"):
        read_scan(tmp_path / "t.jpg")


def test_missing_file(tmp_path):
    with pytest.raises(ScanReadError, match="no such file"):
        read_scan(tmp_path / "nope.png")


def test_array_checks():
    with pytest.raises(ScanReadError, match="single grey level"):
        check_scan_array(np.full((200, 200), 7, np.uint8))
    with pytest.raises(ScanReadError, match="too small"):
        check_scan_array(np.random.default_rng(0).integers(0, 255, (20, 30), np.uint8))
    with pytest.raises(ScanReadError, match="too large"):
        check_scan_array(np.zeros((100, 9000), np.uint8))
    with pytest.raises(ScanReadError, match="empty"):
        check_scan_array(np.zeros((0, 0), np.uint8))
    img16 = (np.random.default_rng(0).integers(0, 65535, (100, 120))).astype(np.uint16)
    assert check_scan_array(img16).max() <= 1.0
    colour = np.random.default_rng(0).integers(0, 255, (100, 120, 3), np.uint8)
    assert check_scan_array(colour).shape == (100, 120)


def test_jpeg_exif_orientation_is_applied(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    import io

    from fetalhead.scans.imageio import decode_image

    img = np.zeros((120, 200), np.uint8)
    img[:, :20] = 255  # a bright band on the left edge
    buf = io.BytesIO()
    pil = Image.fromarray(img)
    exif = pil.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to display"
    pil.save(buf, "JPEG", quality=95, exif=exif)
    grey = decode_image(buf.getvalue(), "rotated.jpg")
    assert grey.shape == (200, 120)  # shown upright: taller than wide
    assert grey[:20, :].mean() > 0.8  # the left band is now at the top


def test_header_dimensions_without_decoding():
    from fetalhead.scans.imageio import image_dimensions, sniff_type

    ok, png = cv2.imencode(".png", np.zeros((70, 90), np.uint8))
    ok, jpg = cv2.imencode(".jpg", np.zeros((70, 90), np.uint8))
    ok, bmp = cv2.imencode(".bmp", np.zeros((70, 90), np.uint8))
    ok, tif = cv2.imencode(".tif", np.zeros((70, 90), np.uint8))
    for data in (png, jpg, bmp, tif):
        data = data.tobytes()
        assert image_dimensions(data, sniff_type(data)) == (90, 70)
    assert sniff_type(b"\0" * 128 + b"DICM" + b"\0" * 10) == "dicom"
    assert sniff_type(b"II*\0" + b"\0" * 124 + b"DICM" + b"\0" * 10) == "dicom"  # a TIFF header in the preamble


def test_plain_grey_png_is_recognised_and_nothing_else(samples_dir):
    import zlib

    from fetalhead.scans.imageio import is_plain_grey8_png

    data = (samples_dir / "358_HC.png").read_bytes()
    assert is_plain_grey8_png(data)
    grey = np.full((20, 30), 128, np.uint8)
    assert is_plain_grey8_png(cv2.imencode(".png", grey)[1].tobytes())
    assert not is_plain_grey8_png(cv2.imencode(".png", np.dstack([grey] * 3))[1].tobytes())  # colour
    assert not is_plain_grey8_png(cv2.imencode(".png", grey.astype(np.uint16) * 200)[1].tobytes())  # 16-bit
    assert not is_plain_grey8_png(cv2.imencode(".jpg", grey)[1].tobytes())
    # a gamma chunk changes how a browser shows the grey levels: not plain
    gama = b"gAMA" + (45455).to_bytes(4, "big")
    chunk = (4).to_bytes(4, "big") + gama + zlib.crc32(gama).to_bytes(4, "big")
    assert not is_plain_grey8_png(data[:33] + chunk + data[33:])
    assert not is_plain_grey8_png(data[:40])  # cut before its end


def test_to_grey_float_types():
    assert to_grey_float(np.full((4, 4), 255, np.uint8)).max() == 1.0
    assert to_grey_float(np.full((4, 4), 65535, np.uint16)).max() == 1.0
    colour = np.zeros((4, 4, 3), np.uint8)
    colour[..., 1] = 255
    assert to_grey_float(colour)[0, 0] == pytest.approx(0.587, abs=0.01)
    assert to_grey_float(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4)
    with pytest.raises(ValueError):
        to_grey_float(np.zeros((4, 4, 5), np.uint8))
