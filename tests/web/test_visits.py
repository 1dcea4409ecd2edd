"""The visit record's API with real SQLite files in temporary folders: every route and its bad inputs."""
import base64
import datetime as dt
import itertools
import sqlite3
from pathlib import Path

import cv2

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from fetalhead.web.app import create_app  # noqa: E402

PS = 0.134737677
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "358_HC.png"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return create_app(db_path=tmp_path_factory.mktemp("rec") / "records.sqlite")


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, base_url="http://127.0.0.1")


_PICTURES = itertools.count()


def biometry(client, semi_major=228.0, semi_minor=182.0):
    """A measurement this server issued of a scan of its own (358_HC.png with one pixel changed: another file
    each call), its outline set by hand (a visit counts a scan once)."""
    grey = cv2.imread(str(SAMPLE), cv2.IMREAD_GRAYSCALE)
    k = next(_PICTURES)
    grey[k // 800, k % 800] ^= 1
    png = cv2.imencode(".png", grey)[1].tobytes()
    m = client.post("/api/v1/measure", files={"file": ("scan.png", png, "image/png")},
                    data={"pixel_size_mm": str(PS), "include_image": "false"})
    assert m.status_code == 200, m.text
    r = client.post("/api/v1/biometry", json={"ellipse": {"center_x": 400, "center_y": 270, "semi_major": semi_major,
                                                          "semi_minor": semi_minor, "angle_deg": 10},
                                              "measurement": m.json()})
    assert r.status_code == 200, r.text
    return r.json()


def new_visit(client, pid, date="2024-05-20", **body):
    r = client.post(f"/api/v1/patients/{pid}/visits", json={"date": date, **body})
    assert r.status_code == 201, r.text
    return r.json()


def code(r):
    return r.json()["error"]["code"]


def test_create_and_list_visits_newest_first(client):
    a = new_visit(client, "P-100", "2024-03-01", lmp="2024-01-01", sonographer="Dr A", name="Asha", age=27)
    b = new_visit(client, "P-100", "2024-04-01", lmp="2024-01-01")
    assert a["id"] and a["ga_by_lmp_weeks"] == pytest.approx(60 / 7, abs=1e-3) and a["due_date"] == "2024-10-07"
    r = client.get("/api/v1/patients/P-100/visits")
    assert r.status_code == 200
    j = r.json()
    assert [v["id"] for v in j["visits"]] == [b["id"], a["id"]]
    assert j["patient"]["name"] == "Asha" and j["patient"]["age_years"] == 27
    assert j["visits"][0]["previous"]["id"] == a["id"]


def test_bad_visit_input(client):
    assert code(client.get("/api/v1/patients/NOBODY/visits")) == "unknown_patient"
    assert client.get("/api/v1/patients/NOBODY/visits").status_code == 404
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    r = client.post("/api/v1/patients/P-1/visits", json={"date": dt.date.today().isoformat(), "lmp": future})
    assert r.status_code == 422 and code(r) == "lmp_in_future"
    r = client.post("/api/v1/patients/P-1/visits", json={"date": "2024-01-01", "lmp": "2024-02-01"})
    assert r.status_code == 422 and code(r) == "lmp_after_exam"
    r = client.post("/api/v1/patients/P-1/visits", json={"date": future})
    assert code(r) == "exam_in_future"
    r = client.post("/api/v1/patients/bad%20id!/visits", json={"date": "2024-01-01"})
    assert r.status_code == 422 and code(r) == "invalid_patient_id"
    r = client.post("/api/v1/patients/P-1/visits", json={"date": "not a date"})
    assert r.status_code == 422 and code(r) == "invalid_request"


def test_save_three_measurements_mean_and_spread(client):
    v = new_visit(client, "P-200", "2024-05-20", lmp="2024-01-01")
    for semi in (228.0, 229.0, 230.0):  # HC about 175 mm at 20 weeks
        r = client.post(f"/api/v1/visits/{v['id']}/measurements", json=biometry(client, semi_major=semi))
        assert r.status_code == 201, r.text
    j = client.get(f"/api/v1/visits/{v['id']}").json()
    hcs = [m["hc_mm"] for m in j["measurements"]]
    assert len(hcs) == 3 and j["mean_hc_mm"] == pytest.approx(sum(hcs) / 3, abs=0.01)
    assert j["mean_bpd_mm"] and j["mean_ofd_mm"] and j["review_notes"] == []
    assert j["ga_by_lmp_weeks"] == 20.0 and j["centiles"]["hc"] is not None and j["ga_by_hc_hadlock_weeks"]
    r = client.post(f"/api/v1/visits/{v['id']}/measurements", json=biometry(client, semi_major=250.0))
    assert [n["code"] for n in r.json()["review_notes"]] == ["hc_spread"]


def test_only_measurements_this_server_issued(client):
    v = new_visit(client, "P-300")
    m = biometry(client)
    m["hc_mm"] = 999.0  # changed after signing
    r = client.post(f"/api/v1/visits/{v['id']}/measurements", json=m)
    assert r.status_code == 409 and code(r) == "measurement_not_issued"
    m = biometry(client)
    m.pop("signature")
    assert code(client.post(f"/api/v1/visits/{v['id']}/measurements", json=m)) == "measurement_not_issued"
    r = client.post("/api/v1/visits/99999/measurements", json=biometry(client))
    assert r.status_code == 404 and code(r) == "unknown_visit"


def test_a_measurement_in_pixels_is_not_saved_to_a_visit(client):
    """A scan measured without a pixel size (lengths in pixels) has no figure for the patient's file: refused
    with a code the page words ("set the scale, measure, then save"), and the visit keeps nothing of it."""
    v = new_visit(client, "P-PX")
    r = client.post("/api/v1/biometry", json={"ellipse": {"center_x": 400, "center_y": 270, "semi_major": 150,
                                                          "semi_minor": 120, "angle_deg": 10}})
    assert r.status_code == 200 and r.json()["hc_mm"] is None
    r = client.post(f"/api/v1/visits/{v['id']}/measurements", json=r.json())
    assert r.status_code == 422 and code(r) == "measurement_not_in_mm" and "set the scale" in r.json()["error"]["message"]
    assert client.get(f"/api/v1/visits/{v['id']}").json()["measurements"] == []
    from fetalhead.outputs.report import translations

    assert all(translations(lang)["error_measurement_not_in_mm"] for lang in ("en", "hi", "te"))


def test_the_ga_by_dates_of_a_saved_measurement_dates_a_visit_that_had_none(client):
    """A visit opened without LMP or GA by dates, a measurement made with the GA by dates typed: the visit
    takes that GA (its mean gets a centile, its report the dating) instead of losing it; a visit dated by its
    LMP keeps its own dating."""
    m = biometry(client, semi_major=300, semi_minor=240)
    r = client.post("/api/v1/biometry", json={"ellipse": m["ellipse"], "measurement": m, "ga_weeks": 20.5})
    assert r.status_code == 200 and r.json()["ga_by_dates_weeks"] == 20.5
    v = new_visit(client, "P-GA")
    saved = client.post(f"/api/v1/visits/{v['id']}/measurements", json=r.json()).json()
    assert saved["ga_by_dates_weeks"] == 20.5 and saved["centiles"]["hc"] is not None
    dated = new_visit(client, "P-GA2", lmp="2024-01-01")
    saved = client.post(f"/api/v1/visits/{dated['id']}/measurements", json=r.json()).json()
    assert saved["ga_by_dates_weeks"] == pytest.approx(20.0) and saved["lmp"] == "2024-01-01"


def test_visit_of_another_patient_refused(client):
    mine = new_visit(client, "P-400")
    new_visit(client, "P-401")
    for r in (client.get(f"/api/v1/visits/{mine['id']}", params={"patient_id": "P-401"}),
              client.post(f"/api/v1/visits/{mine['id']}/measurements", params={"patient_id": "P-401"},
                          json=biometry(client)),
              client.patch(f"/api/v1/visits/{mine['id']}", params={"patient_id": "P-401"}, json={"ac_mm": 200}),
              client.get(f"/api/v1/visits/{mine['id']}/report", params={"patient_id": "P-401"})):
        assert r.status_code == 409 and code(r) == "visit_of_another_patient"
    assert client.get(f"/api/v1/visits/{mine['id']}", params={"patient_id": "P-400"}).status_code == 200


def test_typed_ac_fl_give_efw_and_growth(client):
    first = new_visit(client, "P-500", "2024-04-22", lmp="2023-10-16")  # 27+0 weeks
    r = client.post(f"/api/v1/visits/{first['id']}/measurements", json=biometry(client, 45 / PS, 35 / PS))  # OFD 90, BPD 70
    assert r.status_code == 201, r.text
    client.patch(f"/api/v1/visits/{first['id']}", json={"ac_mm": 225.0, "fl_mm": 50.0})
    second = new_visit(client, "P-500", "2024-05-20", lmp="2023-10-16")  # 31+0 weeks
    r = client.post(f"/api/v1/visits/{second['id']}/measurements", json=biometry(client, 50 / PS, 39.5 / PS))
    assert r.status_code == 201 and r.json()["mean_hc_mm"] > 250, r.text
    r = client.patch(f"/api/v1/visits/{second['id']}", json={"ac_mm": 265.0, "fl_mm": 58.0, "notes": "cephalic"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["ac_mm"] == 265.0 and j["notes"] == "cephalic"
    assert j["efw_g"] == j["efw_hadlock1985_g"] and 1000 < j["efw_g"] < 2500 and j["efw_intergrowth2017_g"]
    assert j["centiles"]["ac"] is not None and j["centiles"]["efw"] is not None
    assert j["previous"]["id"] == first["id"] and j["growth"]["days"] == 28
    assert j["growth"]["ac_mm_per_week"] == 10.0 and j["growth"]["hc_mm_per_week"] > 0
    assert j["growth"]["centile_change"]["ac"] is not None
    r = client.patch(f"/api/v1/visits/{second['id']}", json={"ac_mm": 26.5})  # cm typed for mm
    assert r.status_code == 422 and code(r) == "ac_out_of_range"
    r = client.patch(f"/api/v1/visits/{second['id']}", json={"fl_mm": 580})
    assert r.status_code == 422 and code(r) == "fl_out_of_range"
    cleared = client.patch(f"/api/v1/visits/{second['id']}", json={"fl_mm": None}).json()
    assert cleared["fl_mm"] is None and cleared["efw_hadlock1985_g"] is None and cleared["efw_intergrowth2017_g"]


def test_measurement_with_its_picture_and_reports(client, samples_dir, app):
    scan = (samples_dir / "358_HC.png").read_bytes()
    m = client.post("/api/v1/measure", files={"file": ("358_HC.png", scan, "application/octet-stream")},
                    data={"pixel_size_mm": str(PS)}).json()
    v = new_visit(client, "P-600", "2024-05-20", lmp="2024-01-01", name="Lakshmi Devi", sonographer="Dr B")
    r = client.post(f"/api/v1/visits/{v['id']}/measurements", json=m)
    assert r.status_code == 201, r.text
    assert r.json()["measurements"][0]["has_picture"]
    conn = sqlite3.connect(app.state.records.path)
    blob = conn.execute("SELECT picture_png FROM measurements WHERE visit_id = ?", (v["id"],)).fetchone()[0]
    conn.close()
    assert blob == base64.b64decode(m["image_png_base64"])
    for lang in ("en", "hi", "te"):
        pdf = client.get(f"/api/v1/visits/{v['id']}/report", params={"format": "pdf", "lang": lang})
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        assert "P-600" not in pdf.headers["content-disposition"] and "Lakshmi" not in pdf.headers["content-disposition"]
    page = client.get(f"/api/v1/visits/{v['id']}/report", params={"format": "html"})
    assert page.status_code == 200
    assert "Lakshmi Devi" in page.text and "P-600" in page.text and "Dr B" in page.text
    assert "Hadlock" in page.text and "Stirnemann" in page.text and "Naegele" in page.text
    assert client.get(f"/api/v1/visits/{v['id']}/report", params={"lang": "fr"}).status_code == 400
    actions = [a["action"] for a in app.state.records.audit_rows() if a["visit_id"] == v["id"]]
    assert actions.count("view_report") == 4 and "save_measurement" in actions


def test_without_a_record_the_routes_say_so(tmp_path):
    c = TestClient(create_app(), base_url="http://127.0.0.1")
    r = c.get("/api/v1/patients/P-1/visits")
    assert r.status_code == 503 and code(r) == "no_record"


def test_serve_db_option_and_default(tmp_path, monkeypatch):
    import fetalhead.web.serving as serving
    from fetalhead.cli import main

    served = []
    monkeypatch.setattr(serving, "run", lambda app, host, port: served.append(app))
    assert main(["serve", "--db", str(tmp_path / "clinic.sqlite"), "--efw-method", "intergrowth2017",
                 "--patient-id-system", "urn:oid:2.16.356.1"]) == 0
    assert served[-1].state.records.path == tmp_path / "clinic.sqlite"
    assert served[-1].state.efw_method == "intergrowth2017"
    assert served[-1].state.patient_id_system == "urn:oid:2.16.356.1"  # the FHIR subject's identifier system
    assert not (tmp_path / "clinic.sqlite").exists()  # created on first use, not at start
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert main(["serve"]) == 0
    assert served[-1].state.records.path == tmp_path / "data" / "fetalhead" / "records.sqlite"


def test_the_login_names_the_audit_and_the_sonographer(tmp_path):
    from fetalhead.web.serving import hash_password

    app = create_app(db_path=tmp_path / "r.sqlite", users={"anu": hash_password("correct horse battery")})
    c = TestClient(app, base_url="http://127.0.0.1")
    assert c.post("/api/v1/patients/P-1/visits", json={"date": "2024-05-01"}).status_code == 401
    auth = ("anu", "correct horse battery")
    v = c.post("/api/v1/patients/P-1/visits", json={"date": "2024-05-01"}, auth=auth).json()
    assert v["sonographer"] == "anu"
    c.patch(f"/api/v1/visits/{v['id']}", json={"notes": "x"}, auth=auth)
    assert [(a["action"], a["user"]) for a in app.state.records.audit_rows()] == [("create_visit", "anu"),
                                                                                  ("change_visit", "anu")]


def test_the_page_learns_the_login_to_prefill_the_sonographer(tmp_path, client):
    # issue 23: "sonographer (from the login when there is one)": /api/v1/me names the login for the page;
    # a sonographer typed over it wins, and a field left empty saves the login's name
    from fetalhead.web.serving import hash_password

    app = create_app(db_path=tmp_path / "r.sqlite", users={"ravi.k": hash_password("correct horse battery")})
    c = TestClient(app, base_url="http://127.0.0.1")
    auth = ("ravi.k", "correct horse battery")
    assert c.get("/api/v1/me").status_code == 401
    assert c.get("/api/v1/me", auth=auth).json() == {"user": "ravi.k"}
    typed = c.post("/api/v1/patients/P-2/visits", json={"date": "2024-05-01", "sonographer": "Dr Rao"}, auth=auth)
    assert typed.json()["sonographer"] == "Dr Rao"
    empty = c.post("/api/v1/patients/P-3/visits", json={"date": "2024-05-01", "sonographer": ""}, auth=auth)
    assert empty.json()["sonographer"] == "ravi.k"
    assert app.state.records.visit(empty.json()["id"])["sonographer"] == "ravi.k"  # saved so, not only answered
    # without a login there is no one to name, and nothing is prefilled
    assert client.get("/api/v1/me").json() == {"user": None}


def test_patient_fields_never_logged(client, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    v = new_visit(client, "SECRET-ID-77", "2024-05-01", name="Secret Name")
    client.post(f"/api/v1/visits/{v['id']}/measurements", json=biometry(client))
    client.get("/api/v1/patients/SECRET-ID-77/visits")
    client.get(f"/api/v1/visits/{v['id']}/report", params={"format": "html"})
    # the server's loggers (the test client's own httpx log of its requests is not the server's)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] not in ("httpx", "httpcore"))
    assert any(r.name.startswith("httpx") and "SECRET-ID-77" in r.getMessage() for r in caplog.records)  # seen
    assert "SECRET-ID-77" not in logged and "Secret Name" not in logged


def test_access_log_is_off():
    from fetalhead.web.serving import make_server

    server = make_server(create_app(), "127.0.0.1", 0)
    assert server.config.access_log is False


def test_reopening_a_visit_of_the_same_date(client):
    first = client.post("/api/v1/patients/P-700/visits", json={"date": "2024-05-01", "reuse_same_date": True})
    again = client.post("/api/v1/patients/P-700/visits", json={"date": "2024-05-01", "reuse_same_date": True})
    other = client.post("/api/v1/patients/P-700/visits", json={"date": "2024-05-01"})
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["id"] == first.json()["id"] != other.json()["id"]


def test_reopening_a_visit_keeps_the_lmp_name_and_age_typed_then(client):
    """The page reopens today's visit of a patient: an LMP, a name or an age typed on reopening is kept (it
    was silently dropped), and what is not typed is left as it was."""
    first = client.post("/api/v1/patients/P-710/visits", json={"date": "2024-05-20", "lmp": "2024-01-01",
                                                              "reuse_same_date": True}).json()
    assert first["ga_by_lmp_weeks"] == 20.0
    again = client.post("/api/v1/patients/P-710/visits", json={"date": "2024-05-20", "lmp": "2024-01-08",
                                                              "name": "Asha", "age": 31, "reuse_same_date": True})
    assert again.status_code == 200 and again.json()["id"] == first["id"]
    assert again.json()["lmp"] == "2024-01-08" and again.json()["ga_by_lmp_weeks"] == 19.0
    patient = client.get("/api/v1/patients/P-710/visits").json()["patient"]
    assert patient["name"] == "Asha" and patient["age_years"] == 31
    third = client.post("/api/v1/patients/P-710/visits", json={"date": "2024-05-20", "reuse_same_date": True}).json()
    assert third["lmp"] == "2024-01-08"
    assert client.get("/api/v1/patients/P-710/visits").json()["patient"]["name"] == "Asha"


def test_visit_chart_shows_each_visit(client):
    a = new_visit(client, "P-800", "2024-04-22", lmp="2023-12-04")
    client.post(f"/api/v1/visits/{a['id']}/measurements", json=biometry(client, 45 / PS, 35 / PS))
    b = new_visit(client, "P-800", "2024-05-20", lmp="2023-12-04")
    client.post(f"/api/v1/visits/{b['id']}/measurements", json=biometry(client, 50 / PS, 39 / PS))
    r = client.get(f"/api/v1/visits/{b['id']}/chart.svg", params={"lang": "hi"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert r.text.count('class="visit-point"') == 2 and "2024-04-22" in r.text
    assert client.get(f"/api/v1/visits/{a['id']}/chart.svg").text.count('class="visit-point"') == 1
    client.patch(f"/api/v1/visits/{b['id']}", json={"ac_mm": 260.0, "fl_mm": 50.0})  # 24 weeks: on the EFW chart
    efw = client.get(f"/api/v1/visits/{b['id']}/chart.svg", params={"measure": "efw"})
    assert efw.status_code == 200 and "EFW (g)" in efw.text and efw.text.count('class="visit-point"') == 1
    assert client.get(f"/api/v1/visits/{b['id']}/chart.svg", params={"measure": "ac"}).status_code == 422
    assert code(client.get(f"/api/v1/visits/{b['id']}/chart.svg", params={"patient_id": "P-100"})) == \
        "visit_of_another_patient"


def test_two_browsers_saving_to_one_visit_both_land(client):
    import threading

    v = new_visit(client, "P-900")
    bodies = [biometry(client, semi_major=150.0 + i) for i in range(8)]
    codes = []

    def browser(part):
        for body in part:
            codes.append(client.post(f"/api/v1/visits/{v['id']}/measurements", json=body).status_code)

    threads = [threading.Thread(target=browser, args=(bodies[i::2],)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * 8
    assert client.get(f"/api/v1/visits/{v['id']}").json()["n_measurements"] == 8


@pytest.fixture(scope="module")
def dicom_answer(client, samples_dir, tmp_path_factory):
    """/measure's answer for an ultrasound DICOM naming patient ID-12345 (its own calibration)."""
    import cv2

    from ..dicom_fixtures import region, write_us_dicom

    grey = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    h, w = grey.shape
    path = tmp_path_factory.mktemp("dcm") / "head.dcm"
    write_us_dicom(path, grey, regions=[region(0, 0, w - 1, h - 1, PS / 10)])
    r = client.post("/api/v1/measure", files={"file": ("head.dcm", path.read_bytes(), "application/dicom")},
                    data={"include_image": "false"})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_dicom_of_another_patient_is_saved_only_when_asked(client, app, dicom_answer):
    """The scan names ID-12345: saving it to another patient's visit is refused (its answer carries a keyed
    digest of the ID, never the ID); asked for, it is saved and the audit log says so; the patient's own visit
    takes it; a hand adjustment keeps the digest."""
    assert "ID-12345" not in str(dicom_answer) and len(dicom_answer["dicom_patient_key"]) == 32
    other = new_visit(client, "KGH-OTHER")
    url = f"/api/v1/visits/{other['id']}/measurements"
    r = client.post(url, json=dicom_answer)
    assert r.status_code == 409 and code(r) == "dicom_of_another_patient"
    assert "ID-12345" not in r.text
    e = dicom_answer["ellipse"]
    adjusted = client.post("/api/v1/biometry", json={"ellipse": {**e, "semi_major": e["semi_major"] + 3},
                                                     "measurement": dicom_answer}).json()
    assert adjusted["dicom_patient_key"] == dicom_answer["dicom_patient_key"]
    assert code(client.post(url, json=adjusted)) == "dicom_of_another_patient"
    r = client.post(url + "?other_patient_id=true", json=dicom_answer)
    assert r.status_code == 201, r.text
    actions = [a["action"] for a in app.state.records.audit_rows() if a["visit_id"] == other["id"]]
    assert "saved_dicom_of_another_patient" in actions
    (row,) = client.get(f"/api/v1/visits/{other['id']}").json()["measurements"]
    assert row["saved_with_other_patient_id"] is True  # the visit shows it, not only the audit log
    from fetalhead.outputs.report import translations
    from fetalhead.records.report import visit_report_html

    summary = client.get(f"/api/v1/visits/{other['id']}").json()
    page = visit_report_html(summary, {"patient_id": "KGH-OTHER"}, [summary], [], "en")
    assert translations("en")["saved_other_patient_id"] in page
    own = new_visit(client, "ID-12345")
    assert client.post(f"/api/v1/visits/{own['id']}/measurements", json=dicom_answer).status_code == 201
    forged = dict(dicom_answer, dicom_patient_key="0" * 32)  # changed after signing
    assert code(client.post(f"/api/v1/visits/{own['id']}/measurements", json=forged)) == "measurement_not_issued"


def test_the_same_measurement_is_saved_once(client):
    """A second save of the same measurement (a double tap, a page reloaded) would count twice in the visit's
    means: refused, naming the one saved; another measurement of the same scan is saved."""
    v = new_visit(client, "P-DUP")
    url = f"/api/v1/visits/{v['id']}/measurements"
    m = biometry(client)
    first = client.post(url, json=m)
    assert first.status_code == 201
    r = client.post(url, json=m)
    assert r.status_code == 409 and code(r) == "measurement_already_saved"
    assert f"measurement {first.json()['saved_measurement_id']}" in r.json()["error"]["message"]
    assert client.post(url, json=biometry(client, semi_major=151.0)).status_code == 201
    assert client.get(f"/api/v1/visits/{v['id']}").json()["n_measurements"] == 2


def test_a_scan_counts_once_in_a_visit_and_an_adjustment_replaces_it(client, app, dicom_answer):
    """The same scan measured again with other options (another chart, a GA, the identifiers) or adjusted by
    hand is another answer but the same scan: saved twice it counted twice in the visit's mean. Refused, it
    names the saved one; replace=true puts the adjustment in its place (audited); identifiers are not kept."""
    v = new_visit(client, "ID-12345")
    url = f"/api/v1/visits/{v['id']}/measurements"
    first = client.post(url, json=dicom_answer)
    assert first.status_code == 201
    mid = first.json()["saved_measurement_id"]
    e = dicom_answer["ellipse"]
    adjusted = client.post("/api/v1/biometry", json={"ellipse": {**e, "semi_major": e["semi_major"] + 4},
                                                     "measurement": dicom_answer}).json()
    r = client.post(url, json=adjusted)
    assert r.status_code == 409 and code(r) == "scan_already_saved" and f"measurement {mid}" in r.text
    r = client.post(url + "?replace=true", json=adjusted)
    assert r.status_code == 200 and r.json()["saved_measurement_id"] == mid
    j = client.get(f"/api/v1/visits/{v['id']}").json()
    assert j["n_measurements"] == 1
    assert j["measurements"][0]["hc_mm"] == pytest.approx(adjusted["hc_mm"], abs=0.01)
    assert "replace_measurement" in [a["action"] for a in app.state.records.audit_rows() if a["visit_id"] == v["id"]]
    assert "identifiers" not in app.state.records.measurement(mid)["measurement"]


def test_an_ellipse_drawn_with_no_scan_is_not_kept_with_a_visit(client):
    """/biometry without a measurement answers figures of a hand-drawn ellipse, traced to no scan (and so to no
    patient: it passed the other-patient check): a visit does not keep it."""
    v = new_visit(client, "P-NOSCAN")
    drawn = client.post("/api/v1/biometry", json={"ellipse": {"center_x": 400, "center_y": 270, "semi_major": 150,
                                                              "semi_minor": 120, "angle_deg": 10},
                                                  "pixel_spacing_mm": PS}).json()
    r = client.post(f"/api/v1/visits/{v['id']}/measurements", json=drawn)
    assert r.status_code == 422 and code(r) == "measurement_without_scan"


def test_saves_sent_at_once_keep_one_row_of_a_scan(client):
    """Eight saves of one scan sent at once (a double tap, two tabs): one row; the others 409."""
    import threading

    v = new_visit(client, "P-RACE")
    m = biometry(client)
    e = m["ellipse"]
    adjusted = client.post("/api/v1/biometry", json={"ellipse": {**e, "semi_major": e["semi_major"] * 1.03},
                                                     "measurement": m}).json()
    codes = []
    barrier = threading.Barrier(8)

    def save(body):
        barrier.wait()
        codes.append(client.post(f"/api/v1/visits/{v['id']}/measurements", json=body).status_code)

    threads = [threading.Thread(target=save, args=(m if i % 2 else adjusted,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [201] + [409] * 7
    assert client.get(f"/api/v1/visits/{v['id']}").json()["n_measurements"] == 1
