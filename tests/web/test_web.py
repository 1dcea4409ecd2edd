"""The REST API with FastAPI's test client: results, every error path, concurrency."""

import html
import json
import threading

import cv2
import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

import fetalhead  # noqa: E402
import fetalhead.outputs.report  # noqa: E402
from fetalhead.web.app import create_app, sniff_type  # noqa: E402

PS = 0.134737677


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(max_upload_bytes=3_000_000), base_url="http://127.0.0.1")


@pytest.fixture(scope="module")
def scan_bytes(samples_dir):
    return (samples_dir / "358_HC.png").read_bytes()


def post_scan(client, data, name="358_HC.png", **form):
    return client.post("/api/v1/measure", files={"file": (name, data, "application/octet-stream")},
                       data={k: str(v) for k, v in form.items()})


def test_health_model_i18n_chart(client):
    assert client.get("/api/v1/health").json()["status"] == "ok"
    card = client.get("/api/v1/model").json()
    assert card["version"] and card["sha256"] and card["training"]["command"]
    for lang in ("en", "hi", "te"):
        t = client.get(f"/api/v1/i18n/{lang}").json()
        assert t["hc"] and t["review_statement"]
    assert client.get("/api/v1/i18n/fr").status_code == 404
    chart = client.get("/api/v1/growth-chart").json()
    i20 = chart["weeks"].index(20.0)
    assert chart["50"][i20] == pytest.approx(172.5, abs=0.1)
    assert chart["3"][i20] < chart["10"][i20] < chart["50"][i20] < chart["90"][i20] < chart["97"][i20]


def test_measure_matches_the_python_api(client, scan_bytes, samples_dir):
    r = post_scan(client, scan_bytes, pixel_size_mm=PS, ga_weeks=20.5)
    assert r.status_code == 200
    j = r.json()
    ref = fetalhead.measure(samples_dir / "358_HC.png", PS, ga_weeks=20.5)
    assert j["hc_mm"] == pytest.approx(ref.head_circumference_mm, abs=0.01)
    assert j["hc_centile"] == pytest.approx(ref.hc_centile, abs=0.1)
    assert j["unit"] == "mm" and j["spacing_source"] == "entered on the page"
    assert j["image_width"] == 800 and len(j["image_png_base64"]) > 1000
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_measure_without_pixel_size_gives_pixels(client, scan_bytes):
    j = post_scan(client, scan_bytes).json()
    assert j["unit"] == "px" and j["hc_mm"] is None and "no_pixel_spacing" in j["notes"] and not j["flags"]
    assert j["pixel_spacing_mm"] is None and j["hc_px"] > 0


@pytest.mark.parametrize("data, status, code", [
    (b"", 400, "empty"),
    (b"hello, this is text", 415, "unsupported_type"),
    (b"GIF89a" + b"\0" * 100, 415, "unsupported_type"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 422, "unreadable_scan"),
])
def test_bad_uploads(client, data, status, code):
    r = post_scan(client, data, name="x.png")
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


def test_type_is_judged_by_content_not_name(client, scan_bytes):
    assert post_scan(client, scan_bytes, name="scan.exe").status_code == 200
    assert post_scan(client, b"MZ\x90\x00" * 100, name="scan.png").status_code == 415
    assert sniff_type(scan_bytes) == "png" and sniff_type(b"\0" * 128 + b"DICM" + b"\0" * 10) == "dicom"


def test_upload_size_limit(client):
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * 3_100_000
    r = post_scan(client, big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"


def test_invalid_form_values(client, scan_bytes):
    r = post_scan(client, scan_bytes, pixel_size_mm=-1)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_pixel_size_mm"
    r = post_scan(client, scan_bytes, ga_weeks="abc")
    assert r.status_code == 422
    r = client.post("/api/v1/measure")
    assert r.status_code == 422 and "file" in r.json()["error"]["message"]


def test_filename_is_never_echoed_unescaped(client, scan_bytes):
    r = post_scan(client, scan_bytes, name="<script>alert(1)</script>.png", pixel_size_mm=PS)
    assert r.status_code == 200
    assert "<script>" not in r.text
    rep = client.post("/api/v1/report", files={"file": ("<img src=x onerror=alert(1)>.png", scan_bytes)},
                      data={"format": "html", "pixel_size_mm": str(PS)})
    assert rep.status_code == 200 and "<img src=x" not in rep.text


def test_biometry_recompute(client):
    body = {"ellipse": {"center_x": 400, "center_y": 270, "semi_major": 220, "semi_minor": 180, "angle_deg": 10},
            "pixel_spacing_mm": 0.1, "ga_weeks": 16}  # HC 126 mm: z +0.5 at 16 weeks (at 24, -11: flagged)
    j = client.post("/api/v1/biometry", json=body).json()
    assert j["bpd_mm"] == pytest.approx(36.0) and j["ofd_mm"] == pytest.approx(44.0)
    assert j["hc_centile"] is not None and "adjusted_by_hand" in j["flags"]
    assert j["pixel_spacing_mm"] == [0.1, 0.1] and j["status"] == "adjusted"
    bad = dict(body, ellipse=dict(body["ellipse"], semi_major=-5))
    assert client.post("/api/v1/biometry", json=bad).status_code == 422
    r = client.post("/api/v1/biometry", json=dict(body, pixel_spacing_mm=[0.1]))
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.post("/api/v1/biometry", json=dict(body, pixel_spacing_mm=1.66))  # 0.166 mistyped
    assert r.status_code == 400 and "plausible" in r.json()["error"]["message"]


def test_biometry_adjusts_the_measurement_without_the_network(client, scan_bytes):
    """The page sends its measurement and the moved ellipse: flags, frame, sha256 and quality are kept,
    the figures follow the new ellipse, the status follows the same rules as a fresh measurement."""
    measured = post_scan(client, scan_bytes, pixel_size_mm=PS, include_image="false").json()
    e = dict(measured["ellipse"], semi_minor=measured["ellipse"]["semi_minor"] * 0.9)
    j = client.post("/api/v1/biometry", json={"ellipse": e, "measurement": measured, "ga_weeks": 20.5}).json()
    assert j["sha256"] == measured["sha256"] and j["quality"] == measured["quality"] and j["frame"] == 0
    assert j["bpd_mm"] == pytest.approx(0.9 * measured["bpd_mm"], rel=1e-6)
    assert j["ga_by_dates_weeks"] == 20.5 and j["hc_centile"] is not None
    assert "adjusted_by_hand" in j["flags"] and measured["status"] == "ok" and j["status"] == "adjusted"
    assert j["hc_mm_low"] is None and measured["hc_mm_low"] is not None  # the interval was of the model's outline
    # the same ellipse with only a new GA is no hand adjustment
    same = client.post("/api/v1/biometry", json={"ellipse": measured["ellipse"], "measurement": measured,
                                                  "ga_weeks": 21}).json()
    assert "adjusted_by_hand" not in same["flags"] and same["hc_mm"] == pytest.approx(measured["hc_mm"])
    # an ellipse pushed half out of the image gets the border flag: status decided by the server
    out = dict(measured["ellipse"], center_x=-measured["ellipse"]["semi_major"] * 0.5)
    j = client.post("/api/v1/biometry", json={"ellipse": out, "measurement": measured}).json()
    assert "head_cut_by_image_border" in j["flags"] and j["status"] == "flagged"


@pytest.mark.parametrize("lang", ["en", "hi", "te"])
def test_reports(client, scan_bytes, lang):
    t = client.get(f"/api/v1/i18n/{lang}").json()
    r = client.post("/api/v1/report", files={"file": ("358_HC.png", scan_bytes)},
                    data={"pixel_size_mm": str(PS), "ga_weeks": "20.5", "lang": lang, "format": "html"})
    assert r.status_code == 200
    assert html.escape(t["review_statement"]) in r.text and html.escape(t["hc"]) in r.text and "fetus-point" in r.text
    pdf = client.post("/api/v1/report", files={"file": ("358_HC.png", scan_bytes)},
                      data={"pixel_size_mm": str(PS), "lang": lang})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"


def test_report_is_of_the_measurement_sent(client, scan_bytes, monkeypatch, samples_dir):
    """The report is built from the measurement on screen (adjusted by hand here), not from the form,
    and the network is not run again."""
    measured = post_scan(client, scan_bytes, name="a.png", pixel_size_mm=PS, include_image="false").json()
    e = {"center_x": 400, "center_y": 270, "semi_major": 220, "semi_minor": 180, "angle_deg": 10}
    shown = client.post("/api/v1/biometry", json={"ellipse": e, "measurement": measured}).json()
    import fetalhead.web.api as api

    def no_network(*a, **k):
        raise AssertionError("the report must not run the network")

    monkeypatch.setattr(api, "measure_scan", no_network)
    r = client.post("/api/v1/report", files={"file": ("a.png", scan_bytes)},
                    data={"pixel_size_mm": "0.5", "format": "html", "measurement": json.dumps(shown)})
    assert r.status_code == 200
    assert f"{shown['bpd_mm']:.1f} mm" in r.text and f"{shown['hc_mm']:.1f} mm" in r.text  # the screen's, not 0.5 mm
    r = client.post("/api/v1/report", files={"file": ("a.png", scan_bytes)}, data={"measurement": "{bad json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_measurement"
    other = post_scan(client, (samples_dir / "011_HC.png").read_bytes(), name="a.png", pixel_size_mm=PS,
                      include_image="false").json()  # issued by this server, but of another scan
    r = client.post("/api/v1/report", files={"file": ("a.png", scan_bytes)}, data={"measurement": json.dumps(other)})
    assert r.status_code == 409 and r.json()["error"]["code"] == "measurement_of_another_scan"
    r = client.post("/api/v1/report", files={"file": ("a.png", scan_bytes)}, data={"lang": "xx"})
    assert r.status_code == 400


def test_report_names_in_any_script(client, scan_bytes):
    r = client.post("/api/v1/report", files={"file": ("स्कैन.png", scan_bytes)},
                    data={"pixel_size_mm": str(PS), "format": "html"})
    assert r.status_code == 200
    assert "filename*=UTF-8''%E0%A4%B8" in r.headers["content-disposition"]


def test_frame_is_passed_on_and_refused_for_a_single_image(client, scan_bytes, tmp_path, samples_dir):
    r = post_scan(client, scan_bytes, frame=5)
    assert r.status_code == 422 and "not a loop" in r.json()["error"]["message"]
    pytest.importorskip("pydicom")
    from ..dicom_fixtures import region, write_us_dicom

    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    frames = np.stack([grey, np.roll(grey, 40, axis=1), grey])
    p = write_us_dicom(tmp_path / "loop.dcm", frames, [region(0, 0, 799, 539, PS / 10)])
    j0 = post_scan(client, p.read_bytes(), name="loop.dcm", frame=0, include_image="false").json()
    j1 = post_scan(client, p.read_bytes(), name="loop.dcm", frame=1, include_image="false").json()
    assert j0["frame"] == 0 and j1["frame"] == 1
    assert j1["center_x_px"] == pytest.approx(j0["center_x_px"] + 40, abs=3)
    assert post_scan(client, p.read_bytes(), name="loop.dcm", frame=3).status_code == 422


def test_dicom_with_a_tiff_preamble_is_dicom(client, tmp_path, samples_dir):
    pytest.importorskip("pydicom")
    from ..dicom_fixtures import region, write_us_dicom

    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    data = bytearray(write_us_dicom(tmp_path / "a.dcm", grey, [region(0, 0, 799, 539, PS / 10)]).read_bytes())
    data[:4] = b"II*\x00"  # a TIFF header in the 128-byte preamble (allowed by PS3.10)
    j = post_scan(client, bytes(data), name="a.dcm", include_image="false").json()
    assert j["status"] != "failed" and j["spacing_source"].startswith("dicom:")


def test_limits_come_from_the_formulas(client):
    from fetalhead.clinical.biometry import HADLOCK_GA_RANGE_WEEKS, INTERGROWTH_GA_RANGE_WEEKS
    from fetalhead.clinical.limits import PIXEL_SIZE_RANGE_MM

    j = client.get("/api/v1/limits").json()
    assert j["chart_ga_weeks"] == list(INTERGROWTH_GA_RANGE_WEEKS)
    assert j["ga_weeks"] == [INTERGROWTH_GA_RANGE_WEEKS[0], HADLOCK_GA_RANGE_WEEKS[1]]
    assert j["pixel_size_mm"] == list(PIXEL_SIZE_RANGE_MM)
    assert post_scan(client, b"\x89PNG", pixel_size_mm=PIXEL_SIZE_RANGE_MM[1] * 1.5).status_code == 422


def test_dicom_identifying_fields_only_on_request(client, tmp_path, samples_dir):
    pytest.importorskip("pydicom")
    from ..dicom_fixtures import region, write_us_dicom

    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    p = write_us_dicom(tmp_path / "a.dcm", grey, [region(0, 0, 799, 539, PS / 10)])
    data = p.read_bytes()
    j = post_scan(client, data, name="a.dcm", include_image="false").json()
    assert j["spacing_source"].startswith("dicom:")
    assert "Doe" not in json.dumps(j) and "ID-12345" not in json.dumps(j)
    j2 = post_scan(client, data, name="a.dcm", include_identifying="true").json()
    assert j2["identifiers"]["PatientName"] == "Doe^Jane"


def test_page_and_offline_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "https://" not in r.text
    assert client.get("/static/../app.py").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/v1/measure" in docs.text and "cdn" not in docs.text.lower()
    assert "/api/v1/measure" in client.get("/openapi.json").json()["paths"]


def test_the_caliper_hint_says_what_the_page_draws(client):
    # the calipers' ends are drawn as cyan crosshairs labelled BPD and OFD, no longer as points
    js = client.get("/static/app.js").text
    assert "crosshairs" in js and '"#00ffff"' in js and '"BPD"' in js and '"OFD"' in js
    points = {"en": "point", "hi": "बिंदु", "te": "బిందు"}
    for lang, word in points.items():
        hint = client.get(f"/api/v1/i18n/{lang}").json()["adjust_hint"]
        assert "+" in hint and "BPD" in hint and "OFD" in hint and word not in hint, lang


def test_concurrent_requests_all_answer_right(client, scan_bytes, samples_dir):
    expected = fetalhead.measure(samples_dir / "358_HC.png", PS).head_circumference_mm
    other = (samples_dir / "785_HC.png").read_bytes()
    expected_other = fetalhead.measure(samples_dir / "785_HC.png", 0.214313345).head_circumference_mm
    results, errors = [], []

    def worker(k):
        try:
            if k % 2:
                r = post_scan(client, scan_bytes, pixel_size_mm=PS, include_image="false")
                results.append((r.status_code, r.json()["hc_mm"], expected))
            else:
                r = post_scan(client, other, name="785_HC.png", pixel_size_mm=0.214313345, include_image="false")
                results.append((r.status_code, r.json()["hc_mm"], expected_other))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors and len(results) == 16
    for status, got, want in results:
        assert status == 200 and got == pytest.approx(want, abs=0.01)


def test_answers_carry_the_figures_written_out_in_the_language_asked(client, scan_bytes, samples_dir):
    from fetalhead.outputs.report import display_values, translations

    ref = fetalhead.measure(samples_dir / "358_HC.png", PS, ga_weeks=20 + 3 / 7,
                            spacing_source="entered on the page")
    for lang in ("en", "hi", "te"):
        j = post_scan(client, scan_bytes, pixel_size_mm=PS, ga_weeks=20 + 3 / 7, lang=lang,
                      include_image="false").json()
        assert j["display"] == display_values(ref, translations(lang))
        again = client.post("/api/v1/biometry", json={"ellipse": j["ellipse"], "measurement": j, "lang": lang, "ga_weeks": 20 + 3 / 7}).json()
        assert again["display"] == j["display"] and again["status"] == j["status"]
    assert post_scan(client, scan_bytes, lang="fr").json()["error"]["code"] == "unknown_language"


def test_form_errors_carry_a_code_per_field(client, scan_bytes):
    r = post_scan(client, scan_bytes, pixel_size_mm=1.66)
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_pixel_size_mm"
    assert post_scan(client, scan_bytes, ga_weeks=43).json()["error"]["code"] == "invalid_ga_weeks"
    assert post_scan(client, scan_bytes, frame=-1).json()["error"]["code"] == "invalid_request"
    # every code the API answers with has a translation in each language
    codes = {"too_large", "empty", "unsupported_type", "unreadable_scan", "invalid_pixel_size_mm",
             "invalid_ga_weeks", "busy", "measurement_of_another_scan", "invalid_measurement"}
    for lang in ("en", "hi", "te"):
        t = fetalhead.outputs.report.translations(lang)
        assert {f"error_{c}" for c in codes} <= set(t), lang


def test_growth_chart_picture(client):
    svg = client.get("/api/v1/growth-chart.svg", params={"lang": "hi", "hc_mm": 175, "ga_weeks": 20}).text
    t = fetalhead.outputs.report.translations("hi")
    assert svg.startswith("<svg") and html.escape(t["growth_chart"]) in svg and "fetus-point" in svg
    assert svg.count("<polyline") == 5
    assert "fetus-point" not in client.get("/api/v1/growth-chart.svg", params={"ga_weeks": 20}).text
    assert client.get("/api/v1/growth-chart.svg", params={"ga_weeks": 50}).status_code == 422


def test_the_growth_chart_is_chosen_per_request(client, scan_bytes):
    ig = post_scan(client, scan_bytes, pixel_size_mm=PS, ga_weeks=20.5, include_image="false").json()
    who = post_scan(client, scan_bytes, pixel_size_mm=PS, ga_weeks=20.5, chart="who", include_image="false").json()
    assert ig["chart"] == "intergrowth" and who["chart"] == "who" and ig["hc_mm"] == who["hc_mm"]
    assert who["hc_centile"] != ig["hc_centile"] and who["ofd_centile"] is None
    assert who["withheld"]["ofd_centile"] == "not_in_chart"
    back = client.post("/api/v1/biometry", json={"ellipse": ig["ellipse"], "measurement": ig, "ga_weeks": 20.5,
                                                 "chart": "who"}).json()
    assert back["hc_centile"] == pytest.approx(who["hc_centile"]) and "adjusted_by_hand" not in back["flags"]
    assert post_scan(client, scan_bytes, chart="nichd").json()["error"]["code"] == "unknown_chart"
    curves = client.get("/api/v1/growth-chart", params={"chart": "who"}).json()
    assert curves["50"][curves["weeks"].index(20.0)] == pytest.approx(173.4, abs=0.1)
    assert client.get("/api/v1/growth-chart", params={"chart": "who", "measure": "ofd"}).status_code == 400
    assert "WHO fetal growth charts" in client.get("/api/v1/growth-chart.svg", params={"chart": "who"}).text


def test_the_image_answered_is_the_grey_image_measured(client, scan_bytes, samples_dir):
    import base64

    from fetalhead.scans.imageio import read_scan

    grey = np.round(read_scan(samples_dir / "358_HC.png") * 255).astype(np.uint8)

    def answered(data, name):
        b64 = post_scan(client, data, name=name, pixel_size_mm=PS).json()["image_png_base64"]
        return cv2.imdecode(np.frombuffer(base64.b64decode(b64), np.uint8), cv2.IMREAD_UNCHANGED)

    plain = answered(scan_bytes, "a.png")  # a plain grey PNG goes back as it came
    assert plain.ndim == 2 and np.array_equal(plain, grey)
    colour = cv2.imencode(".png", np.dstack([grey, grey, grey]))[1].tobytes()
    again = answered(colour, "b.png")  # a colour PNG: the grey measured, encoded again
    assert again.ndim == 2 and np.abs(again.astype(int) - grey).max() <= 1


def _forgeries(m: dict) -> dict:
    """A measurement the server answered, changed as a forger would (issue 26 #4)."""
    hw = m.get("interval_half_widths") or {}
    return {
        "flags removed": dict(m, flags=[], status="ok"),
        "narrow intervals": dict(m, interval_half_widths={k: 0.001 for k in hw}),
        "negative half-width": dict(m, interval_half_widths={k: -0.5 for k in hw}),
        "a key missing": dict(m, interval_half_widths={"hc": 0.1}),
        "NaN": dict(m, interval_half_widths={k: float("nan") for k in hw}),
        "huge": dict(m, identifiers={"StudyInstanceUID": 1e308}),
        "no sha256": {k: v for k, v in m.items() if k != "sha256"},
        "ellipse 1.3x": dict(m, ellipse=dict(m["ellipse"], semi_major=m["ellipse"]["semi_major"] * 1.3)),
        "no signature": {k: v for k, v in m.items() if k != "signature"},
        "another server's": dict(m, signature="0" * 64),
    }


@pytest.mark.parametrize("endpoint", ["report", "fhir", "biometry"])
def test_a_changed_or_foreign_measurement_is_refused(client, samples_dir, endpoint):
    data = (samples_dir / "011_HC.png").read_bytes()
    m = post_scan(client, data, name="011_HC.png", pixel_size_mm=PS, include_image="false").json()
    assert m["status"] == "flagged" and m["signature"]
    for what, forged in _forgeries(m).items():
        body = json.dumps(forged)  # NaN written as NaN, as a hand-made request could send it
        if endpoint == "biometry":
            r = client.post("/api/v1/biometry", content=json.dumps({"ellipse": m["ellipse"], "measurement": forged}),
                            headers={"Content-Type": "application/json"})
        else:
            r = client.post(f"/api/v1/{endpoint}", files={"file": ("011_HC.png", data)},
                            data={"measurement": body, "format": "html"})
        assert r.status_code == 409, (what, r.status_code, r.text[:200])
        assert r.json()["error"]["code"] == "measurement_not_issued", what
    # what the server issued, sent back as the page sends it (picture and display dropped), is accepted
    page_copy = {k: v for k, v in m.items() if k != "display"}
    if endpoint == "biometry":
        moved = dict(m["ellipse"], semi_major=m["ellipse"]["semi_major"] + 5)
        r = client.post("/api/v1/biometry", json={"ellipse": moved, "measurement": page_copy})
        assert r.status_code == 200 and "adjusted_by_hand" in r.json()["flags"]
        assert r.json()["signature"] != m["signature"]  # a new measurement, signed anew
    else:
        r = client.post(f"/api/v1/{endpoint}", files={"file": ("011_HC.png", data)},
                        data={"measurement": json.dumps(page_copy), "format": "html"})
        assert r.status_code == 200, r.text[:300]


def test_signature_survives_a_browser_round_trip():
    from fetalhead.web.signing import canonical, new_key, sign, verify

    key = new_key()
    m = {"hc_mm": 170.0, "flags": ["low_quality"], "ellipse": {"center_x": 2.0}, "display": {"x": "y"}}
    m["signature"] = sign(m, key)
    browser = json.loads(json.dumps(m).replace("170.0", "170").replace("2.0", "2"))  # JSON.stringify writes 170
    assert verify(browser, key) and canonical(browser) == canonical(m)
    assert not verify(dict(m, hc_mm=170.1), key) and not verify(m, new_key())
    assert not verify(dict(m, hc_mm=float("inf")), key) and not verify("not a dict", key)


def test_every_static_file_listed_is_served(client):
    # issue 26 #11: /static/docs.js was listed but missing (a 500)
    from fetalhead.web.app import _STATIC_FILES

    for name in _STATIC_FILES:
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and len(r.content) > 100, name
    for name in ("docs.js", "../app.py", "index.html.bak"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 404 and r.json()["error"]["code"] in ("not_found", "http_error"), name


def test_a_loop_that_takes_too_long_is_stopped_with_the_reason(samples_dir, tmp_path):
    # issue 26 #7: the server's loop measurement is bounded in time (the worker is freed)
    import cv2

    from ..dicom_fixtures import loop_frames, write_loop_dicom

    frames = loop_frames(cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE), n=6)
    loop = write_loop_dicom(tmp_path / "loop.dcm", frames, PS / 10).read_bytes()
    quick = TestClient(create_app(loop_time_limit_s=1e-6), base_url="http://127.0.0.1")
    j = post_scan(quick, loop, name="loop.dcm", include_image="false").json()
    assert j["status"] == "failed" and j["failure"] == "too_long" and "measuring stopped after 1 of 6" in j["message"]
    assert j["display"] is not None and j["signature"]


# --- issue 22: a scale set by two points ---------------------------------------------------------------


def test_a_scale_set_by_two_points_measures_in_mm_and_the_report_names_it(client, scan_bytes):
    plain = post_scan(client, scan_bytes, include_image="false").json()
    assert plain["unit"] == "px" and plain["display"]["scale"] == fetalhead.outputs.report.translations("en")["scale_none"]
    j = post_scan(client, scan_bytes, scale_points="100,100,100,268", scale_distance_cm=4, include_image="false").json()
    assert j["spacing_source"] == "two_points" and j["pixel_spacing_mm"] == pytest.approx([40 / 168] * 2)
    assert j["hc_mm"] == pytest.approx(plain["hc_px"] * 40 / 168, rel=1e-6)
    assert j["scale_points"] == [[100.0, 100.0], [100.0, 268.0]] and j["scale_distance_cm"] == 4.0
    assert j["display"]["spacing_source"] == "0.2381 mm (set by two points 4.0 cm apart: 1 cm = 42.0 px)"
    assert j["display"]["scale"] == "Scale set by two points 4.0 cm apart: 1 cm = 42.0 px."
    # the measurement sent back: a hand adjustment keeps the scale, the report names its value and source
    again = client.post("/api/v1/biometry", json={"ellipse": j["ellipse"], "measurement": j}).json()
    assert again["spacing_source"] == "two_points" and again["hc_mm"] == pytest.approx(j["hc_mm"])
    r = client.post("/api/v1/report", files={"file": ("358_HC.png", scan_bytes, "image/png")},
                    data={"measurement": json.dumps(j), "format": "html"})
    assert r.status_code == 200 and "0.2381 mm (set by two points 4.0 cm apart: 1 cm = 42.0 px)" in r.text


@pytest.mark.parametrize("form, code", [
    (dict(scale_points="100,100,100,110", scale_distance_cm=4), "scale_points_too_close"),
    (dict(scale_points="100,100,100,100", scale_distance_cm=4), "scale_points_too_close"),
    (dict(scale_points="100,100,100,900", scale_distance_cm=4), "scale_point_outside_image"),
    (dict(scale_points="100,100,100,268", scale_distance_cm=0.05), "invalid_scale_distance_cm"),
    (dict(scale_points="100,100,100,268", scale_distance_cm=31), "invalid_scale_distance_cm"),
    (dict(scale_points="100,100,100,268", scale_distance_cm="four"), "invalid_scale_distance_cm"),
    (dict(scale_points="100,100,100,268"), "invalid_scale_distance_cm"),
    (dict(scale_distance_cm=4), "invalid_scale_points"),
    (dict(scale_points="100,100,100", scale_distance_cm=4), "invalid_scale_points"),
    (dict(scale_points="100,100,100,130", scale_distance_cm=25), "scale_pixel_size_out_of_range"),
    (dict(scale_points="100,100,100,268", scale_distance_cm=4, pixel_size_mm=0.1), "scale_and_pixel_size"),
])
def test_two_points_that_give_no_scale_are_refused_with_a_code(client, scan_bytes, form, code):
    r = post_scan(client, scan_bytes, **form)
    assert r.status_code == 422 and r.json()["error"]["code"] == code, r.json()
    for lang in ("en", "hi", "te"):  # the page says it in words, in every language
        assert f"error_{code}" in fetalhead.outputs.report.translations(lang)
