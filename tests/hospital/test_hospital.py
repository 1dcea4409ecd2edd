"""Hospital hand-off: DICOM SR and overlay capture read by DCMTK, FHIR R4 validated by fhir.resources,
and the DICOM node between DCMTK's dcmsend (the scanner) and Debian's Orthanc (the PACS)."""

import io
import os
import json
import shutil
import subprocess
import sys
import time
import urllib.request

import cv2
import pytest

pytest.importorskip("highdicom")
pytest.importorskip("pynetdicom")
pydicom = pytest.importorskip("pydicom")

import fetalhead  # noqa: E402
from fetalhead.measurement import load_scan, measure_scan  # noqa: E402
from fetalhead.model.runtime import load_model  # noqa: E402
from fetalhead.web.serving import free_loopback_port  # noqa: E402

from ..dicom_fixtures import region, write_us_dicom  # noqa: E402
from ..hospital_fixtures import DCIODVFY, DCMSEND, DSRDUMP, ORTHANC, Orthanc  # noqa: E402

PS_CM = 0.0134737677


@pytest.fixture(scope="module")
def model():
    return load_model()


@pytest.fixture()
def us_dicom(samples_dir, tmp_path):
    img = cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE)
    h, w = img.shape
    path = tmp_path / "us.dcm"
    write_us_dicom(path, img, regions=[region(0, 0, w - 1, h - 1, PS_CM)])
    return path


def measured(path, model, ga=20.5):
    scan = load_scan(path, path.name)
    return measure_scan(scan, ga_weeks=ga, model=model), scan


def test_sr_and_overlay_in_the_source_study(us_dicom, model, tmp_path):
    from fetalhead.hospital.handoff import write_hand_off

    m, scan = measured(us_dicom, model)
    paths = write_hand_off(m, scan, model, sr_dir=tmp_path / "sr")
    src = pydicom.dcmread(us_dicom, stop_before_pixels=True)
    sr, sc = (pydicom.dcmread(p) for p in paths)
    assert sr.SOPClassUID == pydicom.uid.ComprehensiveSRStorage and sc.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    for ds in (sr, sc):  # same study and patient, a new series
        assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.SeriesInstanceUID != src.SeriesInstanceUID
        assert ds.PatientName == src.PatientName and ds.PatientID == src.PatientID
    assert sr.SeriesInstanceUID != sc.SeriesInstanceUID  # each in a series of its own (issue 24 #1)
    root = sr.ContentTemplateSequence[0]
    assert (root.MappingResource, root.TemplateIdentifier) == ("DCMR", "5000")
    assert sr.ConceptNameCodeSequence[0].CodeValue == "125000"
    text = str(sr)
    for code in ("11984-2", "11820-8", "11851-3", "11823-2", "11932-1", "11902-4", "125012", "125013"):
        assert code in text, code
    assert sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[
        0].ReferencedSOPInstanceUID == src.SOPInstanceUID
    # measured again with the same model: the same UIDs (a PACS stores a resent result once)
    again = write_hand_off(*measured(us_dicom, model), model, sr_dir=tmp_path / "sr2")
    assert pydicom.dcmread(again[0]).SOPInstanceUID == sr.SOPInstanceUID


@pytest.mark.skipif(DSRDUMP is None, reason="DCMTK is not installed (make test installs it)")
def test_dcmtk_reads_the_sr_as_tid_5000(us_dicom, model, tmp_path):
    from fetalhead.hospital.handoff import write_hand_off

    m, scan = measured(us_dicom, model)
    sr_path = write_hand_off(m, scan, model, sr_dir=tmp_path)[0]
    out = subprocess.run([DSRDUMP, "+Pt", str(sr_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = (out.stdout + out.stderr).splitlines()
    assert not [x for x in lines if x.startswith(("E:", "W:", "F:"))], lines[:5]
    dump = out.stdout
    assert "OB-GYN Ultrasound Procedure Report" in dump and "TID 5000 (DCMR)" in dump
    assert f'"{m.head_circumference_mm:.6g}'[:6] in dump and "(mm,UCUM" in dump
    assert "(ELLIPSE," in dump and "Biometry Group" in dump and "Cephalic Index" in dump
    assert "Device Observer Model Name" in dump and model.version in dump
    # TID 5008: the gestational age in days, inferred from its equation (CID 12013); the ratios first
    assert '(d,UCUM,"days")' in dump and '<inferred from CODE:(,,"Table of Values")=(11932-1,LN,"HC, Hadlock 1984")>' \
        in dump
    assert dump.index("Fetal Biometry Ratios") < dump.index('"Fetal Biometry")')
    assert "Verification Flag   : UNVERIFIED" in dump and "Procedure Study Instance UID" in dump


def _children(item, name=None):
    return [c for c in item.get("ContentSequence", [])
            if name is None or c.ConceptNameCodeSequence[0].CodeValue == name]


def _code_value(item):
    return item.ConceptCodeSequence[0].CodeValue


def test_the_sr_reads_as_tid_5000_and_5008_ask(us_dicom, model, tmp_path):
    # issue 24: gestational age as one NUM (18185-9) in days inferred from its equation (CID 12013), not
    # the equation's code as the name; the ratios before the biometry; one percentile or z-score a row,
    # each inferred from its chart; the values those of `fetalhead measure`
    from fetalhead.hospital.handoff import write_hand_off

    m, scan = measured(us_dicom, model)
    sr = pydicom.dcmread(write_hand_off(m, scan, model, sr_dir=tmp_path)[0])
    assert sr.VerificationFlag == "UNVERIFIED" and sr.CompletionFlag == "COMPLETE"
    sections = [c.ConceptNameCodeSequence[0].CodeValue for c in sr.ContentSequence if c.ValueType == "CONTAINER"]
    assert sections == ["125001", "125002"]  # TID 5000: Fetal Biometry Ratios (TID 5004), then Fetal Biometry
    context = {c.ConceptNameCodeSequence[0].CodeValue: c for c in sr.ContentSequence
               if c.RelationshipType == "HAS OBS CONTEXT"}
    assert context["121018"].UID == pydicom.dcmread(us_dicom, stop_before_pixels=True).StudyInstanceUID
    assert context["121005"].ConceptCodeSequence[0].CodeValue == "121007"  # the observer: a device
    expected = fetalhead.measure(us_dicom, ga_weeks=20.5, model=model)
    (biometry,) = _children(sr, "125002")
    groups = _children(biometry, "125005")
    assert len(groups) == 3
    names = [c.ConceptNameCodeSequence[0].CodeValue for c in _content_items(sr)]
    assert "11932-1" not in names and "11902-4" not in names  # equations are values, never names
    for group, measure, ga_attr, equation in ((groups[0], "11984-2", "ga_hc_hadlock_weeks", "11932-1"),
                                              (groups[1], "11820-8", "ga_bpd_hadlock_weeks", "11902-4"),
                                              (groups[2], "11851-3", None, None)):
        assert _children(group)[0].ConceptNameCodeSequence[0].CodeValue == measure
        ga = _children(group, "18185-9")
        if ga_attr is None:
            assert ga == []
            continue
        (ga,) = ga  # one gestational age a group
        assert ga.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue == "d"
        assert float(ga.MeasuredValueSequence[0].NumericValue) == pytest.approx(getattr(expected, ga_attr) * 7,
                                                                               rel=1e-9)
        (table,) = _children(ga, "121424")
        assert table.RelationshipType == "INFERRED FROM" and _code_value(table) == equation
        for rank in ("125012", "125013"):
            assert len(_children(group, rank)) <= 1
    (centile,) = _children(groups[0], "125012")
    assert float(centile.MeasuredValueSequence[0].NumericValue) == pytest.approx(expected.hc_centile, rel=1e-9)
    assert _code_value(_children(centile, "121424")[0]) == "HC-IG21-2014"
    assert float(_children(groups[1], "125012")[0].MeasuredValueSequence[0].NumericValue) == \
        pytest.approx(expected.bpd_centile, rel=1e-9)
    (z,) = _children(groups[0], "125013")
    assert float(z.MeasuredValueSequence[0].NumericValue) == pytest.approx(expected.hc_zscore, rel=1e-9)
    # INTERGROWTH-21st's dating of the same HC: a second gestational age, in the section, its own equation
    (ig,) = _children(biometry, "18185-9")
    assert float(ig.MeasuredValueSequence[0].NumericValue) == pytest.approx(expected.ga_hc_intergrowth_weeks * 7,
                                                                           rel=1e-9)
    assert _code_value(_children(ig, "121424")[0]) == "GA-HC-IG21-2016"
    # the calibrated interval as the lower and upper measurement uncertainty (CID 225)
    hc = _children(groups[0])[0]
    lo, hi = expected.intervals["hc_mm"]
    assert float(_children(hc, "371885007")[0].MeasuredValueSequence[0].NumericValue) == \
        pytest.approx(expected.head_circumference_mm - lo, rel=1e-9)
    assert float(_children(hc, "371886008")[0].MeasuredValueSequence[0].NumericValue) == \
        pytest.approx(hi - expected.head_circumference_mm, rel=1e-9)
    assert _code_value(_children(hc, "370129005")[0]) == "8359006"  # automated
    assert _children(hc, "software-flag") == []  # not flagged: no uncertainty said


def test_patient_characteristics_given_go_where_tid_5000_puts_them(us_dicom, model):
    # the hook for TID 5001's content (height, weight, gravida...): its container, before the sections
    import highdicom as hd
    from pydicom.sr.coding import Code

    from fetalhead.hospital.sr import structured_report

    m, _ = measured(us_dicom, model)
    gravida = hd.sr.NumContentItem(name=Code("11996-6", "LN", "Gravida"), value=2, unit=Code("1", "UCUM", "no units"),
                                   relationship_type="CONTAINS")
    sr = structured_report(m, pydicom.dcmread(us_dicom, stop_before_pixels=True), model_version=model.version,
                           patient_characteristics=[gravida])
    sections = [c.ConceptNameCodeSequence[0].CodeValue for c in sr.ContentSequence if c.ValueType == "CONTAINER"]
    assert sections == ["121118", "125001", "125002"]
    box = sr.ContentSequence[[c.ValueType for c in sr.ContentSequence].index("CONTAINER")]
    assert float(box.ContentSequence[0].MeasuredValueSequence[0].NumericValue) == 2


def _unit(num):
    return num.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodeValue


def _value(num):
    return float(num.MeasuredValueSequence[0].NumericValue)


def _fetus_id(section):
    (subject,) = _children(section, "121030")  # TID 1008 "Subject Context, Fetus": the Fetus ID
    assert subject.RelationshipType == "HAS OBS CONTEXT" and subject.ValueType == "TEXT"
    return subject.TextValue


def test_a_visits_dating_goes_in_the_summary_where_tid_5000_puts_it(us_dicom, model, tmp_path):
    # issue 24: when a visit record gives them, the LMP and GA by dates (and the EDD) where TID 5000 puts
    # them: the OB-GYN Procedure Summary (TID 5002: dates of CID 12003, the fetus summary of CID 12019),
    # after the observation context, before the ratios; each fetal section names its fetus (TID 1008)
    import datetime as dt

    from fetalhead.hospital.handoff import write_hand_off  # noqa: F401 (the default path keeps working)
    from fetalhead.hospital.sr import PregnancyDating, write_hospital_dicom

    m, scan = measured(us_dicom, model)
    dating = PregnancyDating(lmp=dt.date(2026, 6, 10), edd=dt.date(2027, 3, 17), ga_days=171.0, ga_from_lmp=True)
    path = write_hospital_dicom(m, scan, tmp_path, model_version=model.version, dating=dating)[0]
    sr = pydicom.dcmread(path)
    kinds = [(c.RelationshipType, c.ValueType, c.ConceptNameCodeSequence[0].CodeValue) for c in sr.ContentSequence]
    containers = [k[2] for k in kinds if k[1] == "CONTAINER"]
    assert containers == ["121111", "125001", "125002"]  # Summary (TID 5002), ratios (5004), biometry (5005)
    assert max(i for i, k in enumerate(kinds) if k[0] == "HAS OBS CONTEXT") < kinds.index(
        ("CONTAINS", "CONTAINER", "121111"))
    (summary,) = _children(sr, "121111")
    (lmp,) = _children(summary, "8665-2")  # LOINC "Last menstrual period start date" (CID 12003)
    assert lmp.ValueType == "DATE" and lmp.Date == "20260610"
    assert lmp.ConceptNameCodeSequence[0].CodingSchemeDesignator == "LN"
    (edd,) = _children(summary, "11779-6")  # EDD from LMP
    assert edd.ValueType == "DATE" and edd.Date == "20270317"
    (fetus,) = _children(summary, "125008")  # Fetus Summary
    assert _fetus_id(fetus) == "1"
    (ga,) = _children(fetus, "11885-1")  # Gestational Age by LMP (CID 12019), in days
    assert ga.ValueType == "NUM" and _unit(ga) == "d" and _value(ga) == 171
    assert ga.MeasuredValueSequence[0].MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
    for section in ("125001", "125002"):
        assert _fetus_id(_children(sr, section)[0]) == "1"
    # a GA by dates typed without an LMP: (18185-9, LN, "Gestational Age") in the fetus summary, no dates
    typed = write_hospital_dicom(m, scan, tmp_path / "typed", model_version=model.version,
                                 dating=PregnancyDating(ga_days=143.5))[0]
    (summary,) = _children(pydicom.dcmread(typed), "121111")
    assert [c.ValueType for c in summary.ContentSequence] == ["CONTAINER"]
    (ga,) = _children(summary.ContentSequence[0], "18185-9")
    assert _value(ga) == 143.5 and _unit(ga) == "d"
    with pytest.raises(ValueError):
        PregnancyDating(ga_days=171.0, ga_from_lmp=True)  # a GA by LMP without the LMP
    if DSRDUMP is not None:  # DCMTK reads it, no error or warning
        out = subprocess.run([DSRDUMP, "+Pt", str(path)], capture_output=True, text=True)
        assert out.returncode == 0 and not [x for x in (out.stdout + out.stderr).splitlines()
                                            if x.startswith(("E:", "W:", "F:"))]
        assert '<contains DATE:(,,"LMP")="20260610">' in out.stdout
        assert '<contains NUM:(,,"Gestational Age by LMP")="171' in out.stdout and '(d,UCUM,"days")' in out.stdout
        assert '<has obs context TEXT:(,,"Subject ID")="1">' in out.stdout
    if DCIODVFY is not None:
        out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
        assert not [x for x in (out.stdout + out.stderr).splitlines() if x.startswith("Error")]


def test_fhir_names_the_visits_patient_and_its_dating(us_dicom, model):
    # issue 24: a `subject` reference when a visit record gives the patient; its LMP and GA by dates
    import datetime as dt

    from fhir.resources.R4B.bundle import Bundle

    from fetalhead.hospital.fhir import fhir_bundle, patient_reference
    from fetalhead.hospital.sr import PregnancyDating

    m, _ = measured(us_dicom, model)
    dating = PregnancyDating(lmp=dt.date(2026, 6, 10), edd=dt.date(2027, 3, 17), ga_days=171.0, ga_from_lmp=True)
    for kind in ("collection", "transaction"):
        doc = fhir_bundle(m, model_version=model.version, bundle_type=kind, effective="2026-11-28",
                          subject=patient_reference("P-77", "urn:oid:1.2.3.4"), dating=dating)
        bundle = Bundle.model_validate(doc)
        obs = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "Observation"]
        assert obs and all(o.subject.identifier.value == "P-77" and o.subject.identifier.system == "urn:oid:1.2.3.4"
                           and o.subject.type == "Patient" for o in obs)
        by_code = {o.code.coding[0].code: o for o in obs}
        assert str(by_code["8665-2"].valueDateTime) == "2026-06-10"
        assert str(by_code["11779-6"].valueDateTime) == "2027-03-17"
        assert float(by_code["11885-1"].valueQuantity.value) == 171 and by_code["11885-1"].valueQuantity.code == "d"
    # without a visit record: no patient, no dating
    plain = fhir_bundle(m, model_version=model.version)
    assert not any("subject" in e["resource"] for e in plain["entry"])
    assert not {"8665-2", "11885-1"} & {c["code"] for e in plain["entry"]
                                        for c in e["resource"].get("code", {}).get("coding", [])}
    with pytest.raises(ValueError):
        patient_reference(" ")


def test_a_visit_gives_its_saved_measurements_sr_and_fhir(us_dicom, samples_dir, tmp_path):
    # issue 24 / 23: the visit's SR (with the visit's dating) and FHIR (its patient) of a saved measurement
    # of a DICOM source; the record keeps no DICOM, so the file is sent again and must be the one measured
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient
    from fhir.resources.R4B.bundle import Bundle

    from fetalhead.web.app import create_app

    client = TestClient(create_app(db_path=tmp_path / "rec.sqlite", patient_id_system="urn:oid:1.2.3"),
                        base_url="http://127.0.0.1")
    data = us_dicom.read_bytes()
    measured_json = client.post("/api/v1/measure", files={"file": ("us.dcm", data)},
                                data={"include_image": "false"}).json()
    pid = pydicom.dcmread(us_dicom, stop_before_pixels=True).PatientID  # the scanner's ID is the clinic's
    visit = client.post(f"/api/v1/patients/{pid}/visits", json={"date": "2026-11-28", "lmp": "2026-06-10"}).json()
    saved = client.post(f"/api/v1/visits/{visit['id']}/measurements", json=measured_json)
    assert saved.status_code == 201, saved.text
    mid = saved.json()["saved_measurement_id"]
    url = f"/api/v1/visits/{visit['id']}/measurements/{mid}"
    r = client.post(f"{url}/sr?patient_id={pid}", files={"file": ("us.dcm", data)})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/dicom" and pid not in r.headers["content-disposition"]
    sr = pydicom.dcmread(io.BytesIO(r.content))
    (summary,) = _children(sr, "121111")
    assert _children(summary, "8665-2")[0].Date == "20260610"
    assert _children(summary, "11779-6")[0].Date == "20270317"  # Naegele: LMP + 280 days
    (ga,) = _children(_children(summary, "125008")[0], "11885-1")
    assert _value(ga) == 171 and _unit(ga) == "d"  # 2026-06-10 to 2026-11-28 (the source has no study date)
    # the SR's centiles are at that GA by dates (171 days), and say so
    comment = _children(sr, "121106")[0].TextValue
    assert "24.429 weeks" in comment
    overlay = client.post(f"{url}/sr", files={"file": ("us.dcm", data)}, data={"part": "overlay"})
    assert pydicom.dcmread(io.BytesIO(overlay.content)).SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    fhir = client.post(f"{url}/fhir", data={"bundle_type": "transaction"})
    assert fhir.status_code == 200, fhir.text
    bundle = Bundle.model_validate(fhir.json())
    obs = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "Observation"]
    assert all(o.subject.identifier.value == pid and o.subject.identifier.system == "urn:oid:1.2.3" for o in obs)
    assert {"8665-2", "11779-6", "11885-1", "11984-2"} <= {o.code.coding[0].code for o in obs}
    assert all(str(o.effectiveDateTime) == "2026-11-28" for o in obs)
    # with the scan sent: the study's date and time (this one has a study date, and a study time with its zone)
    dated = tmp_path / "dated.dcm"
    ds = pydicom.dcmread(us_dicom)
    ds.StudyDate, ds.StudyTime, ds.TimezoneOffsetFromUTC = "20261127", "101500", "+0530"
    ds.save_as(dated)
    dated_json = client.post("/api/v1/measure", files={"file": ("dated.dcm", dated.read_bytes())},
                             data={"include_image": "false"}).json()
    mid2 = client.post(f"/api/v1/visits/{visit['id']}/measurements", json=dated_json).json()["saved_measurement_id"]
    r = client.post(f"/api/v1/visits/{visit['id']}/measurements/{mid2}/fhir",
                    files={"file": ("dated.dcm", dated.read_bytes())})
    assert r.status_code == 200, r.text
    obs = [e["resource"] for e in r.json()["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert {o["effectiveDateTime"] for o in obs} == {"2026-11-27T10:15:00+05:30"}
    (ga,) = [o for o in obs if o["code"]["coding"][0]["code"] == "11885-1"]
    assert ga["valueQuantity"]["value"] == 170  # by LMP on the study's day, the day before the exam
    # another file than the one measured; a DICOM of another patient; a measurement of another visit
    other = tmp_path / "other.dcm"
    ds = pydicom.dcmread(us_dicom)
    ds.PatientID = "SOMEONE-ELSE"
    ds.save_as(other)
    r = client.post(f"{url}/sr", files={"file": ("other.dcm", other.read_bytes())})
    assert r.status_code == 409 and r.json()["error"]["code"] == "measurement_of_another_scan"
    v2 = client.post("/api/v1/patients/P-OTHER/visits", json={"date": "2026-11-28"}).json()
    assert client.post(f"/api/v1/visits/{v2['id']}/measurements", json=measured_json).json()["error"]["code"] == \
        "dicom_of_another_patient"  # saved only when asked, and its SR made only when asked again
    m2 = client.post(f"/api/v1/visits/{v2['id']}/measurements?other_patient_id=true",
                     json=measured_json).json()["saved_measurement_id"]
    r = client.post(f"/api/v1/visits/{v2['id']}/measurements/{m2}/sr", files={"file": ("us.dcm", data)})
    assert r.status_code == 409 and r.json()["error"]["code"] == "dicom_of_another_patient"
    r = client.post(f"/api/v1/visits/{v2['id']}/measurements/{m2}/sr", files={"file": ("us.dcm", data)},
                    data={"other_patient_id": "true"})
    assert r.status_code == 200 and _children(pydicom.dcmread(io.BytesIO(r.content)), "121111") == []  # no dating
    r = client.post(f"/api/v1/visits/{v2['id']}/measurements/{mid}/sr", files={"file": ("us.dcm", data)})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_measurement"
    png = (samples_dir / "358_HC.png").read_bytes()
    r = client.post(f"{url}/sr", files={"file": ("358_HC.png", png)})
    assert r.status_code == 409  # not the scan measured


@pytest.mark.parametrize("status", ["flagged", "adjusted"])
def test_a_flagged_or_adjusted_result_says_so_in_coded_form(us_dicom, model, tmp_path, status):
    # issue 24: a flagged result said so only in a free-text comment
    from fetalhead.hospital.sr import structured_report

    m, _ = measured(us_dicom, model)
    m.status = status
    m.notes.append("cephalic_index_out_of_range")  # as if the head were too round: BPD dates it unreliably (a note)
    sr = structured_report(m, pydicom.dcmread(us_dicom, stop_before_pixels=True), model_version=model.version)
    assert sr.VerificationFlag == "UNVERIFIED"
    groups = _children(_children(sr, "125002")[0], "125005")
    for group in groups:
        num = _children(group)[0]
        flagged = [_code_value(c) for c in _children(num, "software-flag")]
        assert flagged == (["64957009"] if status == "flagged" else [])  # SCT "Uncertain"
        method = _code_value(_children(num, "370129005")[0])
        assert method == ("87982008" if status == "adjusted" else "8359006")  # Manual: placed by hand
    bpd_ga = _children(groups[1], "18185-9")[0]
    assert [_code_value(c) for c in _children(bpd_ga, "software-flag")] == ["64957009"]  # unreliable either way


@pytest.mark.skipif(DCIODVFY is None, reason="dicom3tools is not installed (make test installs it)")
def test_dciodvfy_finds_no_error_in_the_sr_and_the_capture(us_dicom, model, tmp_path):
    from fetalhead.hospital.handoff import write_hand_off

    ds = pydicom.dcmread(us_dicom)  # a source as scanners write it: with the study's date, time and ID
    ds.StudyDate, ds.StudyTime, ds.StudyID = "20261128", "101500", "S1"
    ds.save_as(us_dicom)
    for path in write_hand_off(*measured(us_dicom, model), model, sr_dir=tmp_path):
        out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
        lines = (out.stdout + out.stderr).splitlines()
        errors = [x for x in lines if x.startswith("Error")]
        assert errors == [], (path.name, errors)
        # the only warnings left: our private coding scheme (99FHEAD) is not one dciodvfy knows
        assert all("99FHEAD" in x for x in lines if x.startswith("Warning")), (path.name, lines)
        # both name the software and its model (issue 25 #2)
        assert list(pydicom.dcmread(path).SoftwareVersions) == [fetalhead.__version__, model.version]


def test_fhir_bundle_is_valid_r4_and_holds_no_patient_data(us_dicom, model, tmp_path):
    from fhir.resources.R4B.bundle import Bundle

    from fetalhead.hospital.handoff import write_hand_off

    m, scan = measured(us_dicom, model)
    path = [p for p in write_hand_off(m, scan, model, fhir_dir=tmp_path) if p.suffix == ".json"][0]
    doc = json.loads(path.read_text())
    bundle = Bundle.model_validate(doc)  # the FHIR definitions (R4B, R4's technical correction)
    obs = {e.resource.code.coding[0].code: e.resource for e in bundle.entry
           if e.resource.__resource_type__ == "Observation" and e.resource.code.coding}
    assert float(obs["11984-2"].valueQuantity.value) == pytest.approx(m.head_circumference_mm, abs=0.01)
    assert obs["11984-2"].valueQuantity.code == "mm" and obs["11984-2"].valueQuantity.system == "http://unitsofmeasure.org"
    assert {"11820-8", "11851-3", "11823-2", "11932-1", "11902-4", "18185-9"} <= set(obs)
    assert "INTERGROWTH-21st" in obs["18185-9"].method.text
    assert all(o.status == "preliminary" for o in obs.values())
    study = pydicom.dcmread(us_dicom, stop_before_pixels=True).StudyInstanceUID
    assert obs["11984-2"].derivedFrom[0].identifier.value == f"urn:oid:{study}"
    device = [e.resource for e in bundle.entry if e.resource.__resource_type__ == "Device"][0]
    assert [v.value for v in device.version] == [fetalhead.__version__, model.version]  # the software, its model
    raw = path.read_text()
    assert "Doe" not in raw and "ID-12345" not in raw and "19900101" not in raw


def test_measure_command_writes_sr_and_fhir(us_dicom, samples_dir, tmp_path):
    from fetalhead.cli import main

    (tmp_path / "in").mkdir()
    us_dicom.rename(tmp_path / "in" / "us.dcm")
    (tmp_path / "in" / "358_HC.png").write_bytes((samples_dir / "358_HC.png").read_bytes())
    assert main(["measure", str(tmp_path / "in"), "--pixel-size", "0.1347", "--sr", str(tmp_path / "sr"),
                 "--fhir", str(tmp_path / "fhir"), "--out", str(tmp_path / "r.csv"), "--no-progress"]) == 0
    assert sorted(p.name for p in (tmp_path / "sr").iterdir()) == ["us_overlay.dcm", "us_sr.dcm"]
    assert sorted(p.name for p in (tmp_path / "fhir").iterdir()) == ["358_HC_fhir.json", "us_fhir.json"]
    assert "no DICOM SR: the source is not a DICOM file" in (tmp_path / "r.csv").read_text()


needs_pacs = pytest.mark.skipif(ORTHANC is None or DCMSEND is None,
                                reason="Orthanc and DCMTK are not installed (make test installs them)")


def _wait(fn, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    return fn()


def _content_items(ds):
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _content_items(item)


def _dcmsend(path, port, calling="SCANNER"):
    return subprocess.run([DCMSEND, "-aet", calling, "-aec", "FETALHEAD", "127.0.0.1", str(port), str(path)],
                          capture_output=True, text=True, timeout=60)


@needs_pacs
def test_scanner_to_node_to_pacs(us_dicom, model, tmp_path):
    from fetalhead.hospital.node import Destination, DicomNode, node_status

    pacs = Orthanc(tmp_path / "pacs", free_loopback_port(), free_loopback_port()).start()
    port = free_loopback_port()
    node = DicomNode(tmp_path / "node", port=port, send_to=Destination("ORTHANC", "127.0.0.1", pacs.dicom_port),
                     allowed_calling_aets=["SCANNER"], model=model).start()
    try:
        echo = subprocess.run(["echoscu", "-aet", "SCANNER", "-aec", "FETALHEAD", "127.0.0.1", str(port)],
                              capture_output=True, text=True, timeout=30)
        assert echo.returncode == 0, echo.stderr
        # a file that is no ultrasound image is answered with a failure status, and the node goes on
        ct = tmp_path / "ct.dcm"
        ds = pydicom.dcmread(us_dicom)
        ds.Modality, ds.SOPInstanceUID = "CT", pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(ct)
        report = tmp_path / "ct-report.txt"
        subprocess.run([DCMSEND, "-aet", "SCANNER", "-aec", "FETALHEAD", "+crf", str(report), "127.0.0.1", str(port),
                        str(ct)], capture_output=True, text=True, timeout=60)
        assert "0xa900" in report.read_text().lower()
        sent = _dcmsend(us_dicom, port)
        assert sent.returncode == 0, sent.stderr + sent.stdout
        stored = _wait(lambda: len(pacs.instances()) >= 2 and pacs.instances())
        assert stored and len(stored) == 2
        # the SR the PACS holds has the HC that fetalhead measure gives for the same file
        sr_id = [i for i in pacs.get("/instances")
                 if pacs.get(f"/instances/{i}/simplified-tags")["SOPClassUID"] == pydicom.uid.ComprehensiveSRStorage][0]
        with urllib.request.urlopen(f"http://127.0.0.1:{pacs.http_port}/instances/{sr_id}/file", timeout=10) as r:
            sr = pydicom.dcmread(io.BytesIO(r.read()))
        hc = [item for item in _content_items(sr) if item.ValueType == "NUM"
              and item.ConceptNameCodeSequence[0].CodeValue == "11984-2"][0]
        expected = fetalhead.measure(us_dicom, model=model)
        assert float(hc.MeasuredValueSequence[0].NumericValue) == pytest.approx(expected.head_circumference_mm,
                                                                                rel=1e-6)
        assert "not an ultrasound image (Modality CT)" in (tmp_path / "node" / "node.log").read_text()
        src = pydicom.dcmread(us_dicom, stop_before_pixels=True)
        classes = sorted(i["SOPClassUID"] for i in stored)
        assert classes == sorted([str(pydicom.uid.ComprehensiveSRStorage), "1.2.840.10008.5.1.4.1.1.7"])
        assert all(i["StudyInstanceUID"] == src.StudyInstanceUID for i in stored)
        # a series-level query for Modality SR finds the SR (issue 24 #1: it shared the capture's OT series)
        query = json.dumps({"Level": "Series", "Query": {"Modality": "SR"}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{pacs.http_port}/tools/find", data=query, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            assert len(json.loads(r.read())) == 1
        assert _wait(lambda: node_status(tmp_path / "node")["sent"] == 1)
        # a store from a calling AE title not allowed is refused, and the refusal is logged (issue 24 #7)
        assert _dcmsend(us_dicom, port, calling="INTRUDER").returncode != 0
        assert _wait(lambda: "association from INTRUDER" in (tmp_path / "node" / "node.log").read_text())
        log = (tmp_path / "node" / "node.log").read_text()
        assert "association from INTRUDER (127.0.0.1) rejected: calling AE title not allowed" in log
        assert src.SOPInstanceUID in log and "Doe" not in log and "ID-12345" not in log
    finally:
        node.stop()
        pacs.stop()


@needs_pacs
def test_results_wait_for_a_pacs_that_is_down_and_survive_a_restart(us_dicom, model, tmp_path):
    """The destination is down: the result stays queued with the reason, through a restart of the
    node, and goes to the PACS once it is up; it is stored once."""
    from fetalhead.hospital.node import Destination, DicomNode, node_status

    pacs_port, http_port, port = free_loopback_port(), free_loopback_port(), free_loopback_port()
    dest = Destination("ORTHANC", "127.0.0.1", pacs_port)
    node = DicomNode(tmp_path / "node", port=port, send_to=dest, model=model, retry_base_s=0.2).start()
    try:
        assert _dcmsend(us_dicom, port).returncode == 0
        status = _wait(lambda: (s := node_status(tmp_path / "node"))["send_retrying"] and s)
        assert status["to_send"] == 1 and status["sent"] == 0
        assert "no association" in status["send_retrying"][0]["last_error"]
    finally:
        node.stop()
    # the CLI's status view shows the same queue
    out = subprocess.run([sys.executable, "-m", "fetalhead.cli", "dicom-node", "--work-dir", str(tmp_path / "node"),
                          "--status"], capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["to_send"] == 1
    pacs = Orthanc(tmp_path / "pacs", pacs_port, http_port).start()
    node = DicomNode(tmp_path / "node", port=port, send_to=dest, model=model, retry_base_s=0.2).start()
    try:
        assert _wait(lambda: node_status(tmp_path / "node")["sent"] == 1)
        assert len(pacs.instances()) == 2 and node_status(tmp_path / "node")["to_send"] == 0
    finally:
        node.stop()
        pacs.stop()


def test_a_received_instance_that_cannot_be_measured_is_recorded(tmp_path, model):
    from fetalhead.hospital.node import DicomNode, node_status

    node = DicomNode(tmp_path / "node", model=model)
    (tmp_path / "node" / "incoming" / "1.2.3.4.dcm").write_bytes(b"not dicom")
    assert node.process_once() == 1
    status = node_status(tmp_path / "node")
    assert status["received_waiting"] == 0 and status["not_measured"][0]["uid"] == "1.2.3.4"
    assert "not a DICOM file" in status["not_measured"][0]["reason"]


def test_destination_parsing():
    from fetalhead.hospital.node import parse_destination

    d = parse_destination("PACS@10.0.0.5:104")
    assert (d.ae_title, d.host, d.port) == ("PACS", "10.0.0.5", 104)
    for bad in ("PACS10.0.0.5:104", "PACS@host", "@h:1", "A" * 17 + "@h:104", "P@h:0"):
        with pytest.raises(ValueError, match="--send-to"):
            parse_destination(bad)


def test_dicom_node_command_runs_answers_echo_and_stops_on_sigterm(tmp_path):
    import shutil
    import signal

    port = free_loopback_port()
    proc = subprocess.Popen([sys.executable, "-m", "fetalhead.cli", "dicom-node", "--port", str(port),
                             "--work-dir", str(tmp_path / "node")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        echoscu = shutil.which("echoscu")
        if echoscu:
            ok = _wait(lambda: subprocess.run([echoscu, "-aec", "FETALHEAD", "127.0.0.1", str(port)],
                                              capture_output=True).returncode == 0, timeout=60)
            assert ok
        else:
            assert _wait(lambda: (tmp_path / "node" / "node.log").exists(), timeout=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in (tmp_path / "node" / "node.log").read_text()
    # beyond this computer only with a list of calling AE titles (DICOM has no login)
    from fetalhead.cli import main

    assert main(["dicom-node", "--host", "0.0.0.0", "--work-dir", str(tmp_path / "n2")]) == 2


def test_the_api_gives_the_sr_the_overlay_and_the_fhir_bundle(us_dicom, samples_dir):
    pytest.importorskip("fastapi")
    import io

    from fastapi.testclient import TestClient
    from fhir.resources.R4B.bundle import Bundle

    from fetalhead.web.app import create_app

    client = TestClient(create_app(), base_url="http://127.0.0.1")
    data = us_dicom.read_bytes()
    measured_json = client.post("/api/v1/measure", files={"file": ("us.dcm", data)},
                                data={"ga_weeks": "20.5", "include_image": "false"}).json()
    sr = client.post("/api/v1/sr", files={"file": ("us.dcm", data)}, data={"measurement": json.dumps(measured_json)})
    assert sr.status_code == 200 and sr.headers["content-type"] == "application/dicom"
    ds = pydicom.dcmread(io.BytesIO(sr.content))
    assert ds.ConceptNameCodeSequence[0].CodeValue == "125000"
    overlay = client.post("/api/v1/sr", files={"file": ("us.dcm", data)}, data={"part": "overlay"})
    assert pydicom.dcmread(io.BytesIO(overlay.content)).SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    fhir = client.post("/api/v1/fhir", files={"file": ("us.dcm", data)}, data={"ga_weeks": "20.5"})
    assert fhir.headers["content-type"] == "application/fhir+json"
    Bundle.model_validate(fhir.json())
    png = (samples_dir / "358_HC.png").read_bytes()
    refused = client.post("/api/v1/sr", files={"file": ("358_HC.png", png)})
    assert refused.status_code in (415, 422) and refused.json()["error"]["code"] in ("not_dicom", "nothing_to_report")


@needs_pacs
def test_a_full_queue_refuses_the_store_so_the_scanner_keeps_it(us_dicom, model, tmp_path):
    from fetalhead.hospital.node import DicomNode

    port = free_loopback_port()
    node = DicomNode(tmp_path / "node", port=port, max_queue=0, model=model, poll_s=60).start()
    try:
        report = tmp_path / "dcmsend.txt"
        subprocess.run([DCMSEND, "-aet", "SCANNER", "-aec", "FETALHEAD", "+crf", str(report), "127.0.0.1",
                        str(port), str(us_dicom)], capture_output=True, text=True, timeout=60)
        assert "0xa700 (Refused: OutOfResources)" in report.read_text()
        assert list((tmp_path / "node" / "incoming").iterdir()) == []
    finally:
        node.stop()


def test_a_cine_loop_received_reports_its_best_frame(samples_dir, tmp_path, model):
    from fetalhead.hospital.node import DicomNode
    from fetalhead.measurement import measure_loop

    from ..dicom_fixtures import loop_frames, write_loop_dicom

    frames = loop_frames(cv2.imread(str(samples_dir / "358_HC.png"), cv2.IMREAD_GRAYSCALE), n=6, blurred=(1,))
    node = DicomNode(tmp_path / "node", model=model)
    loop = write_loop_dicom(tmp_path / "node" / "incoming" / "1.2.3.5.dcm", frames, PS_CM)
    (best,) = measure_loop(loop, model=model)
    assert node.process_once() == 1
    sr = pydicom.dcmread(next((tmp_path / "node" / "outbox" / "1.2.3.5").glob("*_sr.dcm")))
    refs = [int(i.ReferencedSOPSequence[0].ReferencedFrameNumber) for i in _content_items(sr)
            if i.ValueType == "IMAGE"]
    assert refs and set(refs) == {best.frame + 1}


def test_srs_and_captures_have_series_of_their_own_and_unique_numbers(us_dicom, model, tmp_path):
    # issue 24 #1: SR and capture shared one series (Orthanc indexed it as OT), every SR was instance 1
    from fetalhead.hospital.handoff import write_hand_off

    second = tmp_path / "second.dcm"
    ds = pydicom.dcmread(us_dicom)
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(second)
    written = []
    for i, source in enumerate((us_dicom, second)):
        written += [pydicom.dcmread(p) for p in write_hand_off(*measured(source, model), model,
                                                                sr_dir=tmp_path / f"out{i}")]
    srs = [d for d in written if d.Modality == "SR"]
    captures = [d for d in written if d.Modality != "SR"]
    assert len(srs) == len(captures) == 2
    assert len({d.SeriesInstanceUID for d in srs}) == 1 and len({d.SeriesInstanceUID for d in captures}) == 1
    assert srs[0].SeriesInstanceUID != captures[0].SeriesInstanceUID
    assert srs[0].SeriesNumber != captures[0].SeriesNumber
    assert len({(d.SeriesInstanceUID, d.InstanceNumber) for d in written}) == 4
    sources = {str(pydicom.dcmread(p).SOPInstanceUID) for p in (us_dicom, second)}
    assert {c.SourceImageSequence[0].ReferencedSOPInstanceUID for c in captures} == sources


def test_non_conformant_scanner_headers_are_repaired_not_a_lost_sr(us_dicom, model, tmp_path):
    # issue 24 #5: PatientSex "FEMALE", a DA "1990-01-01", a StudyDate "2024/05/01", no Study UID stopped the SR
    from fetalhead.hospital.handoff import write_hand_off

    ds = pydicom.dcmread(us_dicom)
    ds.PatientSex, ds.PatientBirthDate, ds.StudyDate, ds.StudyTime = "FEMALE", "1990-01-01", "2024/05/01", "10:15:00"
    ds.AccessionNumber = "A1"
    del ds.StudyInstanceUID
    ds.save_as(us_dicom)
    m, scan = measured(us_dicom, model)
    paths = write_hand_off(m, scan, model, sr_dir=tmp_path / "sr")
    assert len(paths) == 2 and "sr_not_written" not in m.flags
    for path in paths:
        out = pydicom.dcmread(path)
        assert (out.PatientSex, out.PatientBirthDate, out.StudyDate, out.StudyTime) == \
            ("F", "19900101", "20240501", "101500")
        assert out.StudyInstanceUID.startswith("2.25.")
        if DCIODVFY:
            lines = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True)
            assert not [x for x in (lines.stdout + lines.stderr).splitlines() if x.startswith("Error")]
    said = "\n".join(m.messages)
    assert "PatientSex: written out of the standard" in said and "StudyInstanceUID: missing" in said
    assert "FEMALE" not in said and "1990" not in said  # the notes carry no patient data
    assert len({pydicom.dcmread(p).StudyInstanceUID for p in paths}) == 1


def test_measure_exits_1_when_an_sr_asked_for_cannot_be_written(us_dicom, tmp_path, monkeypatch, capsys):
    # issue 24 #5: `measure --sr` exited 0 with `ok` when the SR could not be written
    import fetalhead.hospital.sr as sr
    from fetalhead.cli import main

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sr, "write_hospital_dicom", full_disk)
    assert main(["measure", str(us_dicom), "--sr", str(tmp_path / "sr"), "--out", str(tmp_path / "r.csv")]) == 1
    assert "not handed off" in capsys.readouterr().err


def test_a_refused_result_is_dead_lettered_and_the_others_are_delivered(us_dicom, model, tmp_path):
    # issue 24 #2: after the first refused store every remaining result was marked failed without a try,
    # and refusals were retried forever
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import ComprehensiveSRStorage, SecondaryCaptureImageStorage

    from fetalhead.hospital.handoff import write_hand_off
    from fetalhead.hospital.node import Destination, DicomNode, node_status

    work = tmp_path / "node"
    node = DicomNode(work, port=free_loopback_port(), send_to=None, model=model)  # not started: queue by hand
    uids = []
    for i in range(4):
        ds = pydicom.dcmread(us_dicom)
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        src = tmp_path / f"src{i}.dcm"
        ds.save_as(src)
        out = work / "outbox" / f"{i}-{ds.SOPInstanceUID}"
        out.mkdir(parents=True)
        write_hand_off(*measured(src, model), model, sr_dir=out)
        (out / "state.json").write_text(json.dumps({"attempts": 0, "next_try": 0.0, "last_error": None}))
        uids.append((out.name, str(ds.SOPInstanceUID)))
    refused_source = uids[0][1]  # the first in the queue: the one that blocked the others before
    stored, classes = [], []

    def on_store(event):
        ds = event.dataset
        refs = [str(r.ReferencedSOPInstanceUID) for r in ds.get("SourceImageSequence", [])]
        refs += [str(i.ReferencedSOPInstanceUID) for s in ds.get("CurrentRequestedProcedureEvidenceSequence", [])
                 for se in s.ReferencedSeriesSequence for i in se.ReferencedSOPSequence]
        if refused_source in refs:
            return 0xC001  # "cannot understand": permanent
        stored.append(str(ds.SOPInstanceUID))
        classes.append(str(ds.SOPClassUID))
        return 0x0000

    scp = AE(ae_title="PACS")
    scp.add_supported_context(ComprehensiveSRStorage)
    scp.add_supported_context(SecondaryCaptureImageStorage)
    pacs_port = free_loopback_port()
    server = scp.start_server(("127.0.0.1", pacs_port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        node.send_to = Destination("PACS", "127.0.0.1", pacs_port)
        assert node.send_once() == 3  # the three good results delivered in the same round
        status = node_status(work)
        assert status["sent"] == 3 and status["to_send"] == 0
        assert [d["uid"] for d in status["dead_letter"]] == [uids[0][0]]
        assert status["dead_letter"][0]["status_code"] == "0xC001"
        assert node.send_once(now=time.time() + 10_000) == 0 and len(stored) == 6  # never retried
        assert set(classes[0::2]) == {pydicom.uid.ComprehensiveSRStorage}  # each result's SR before its capture
        assert "ALERT" in (work / "node.log").read_text()
    finally:
        server.shutdown()


def test_a_local_write_error_keeps_the_received_instance_and_retries(us_dicom, model, tmp_path):
    # issue 24 #3: an unwritable outbox sent the result to failed/, deleted the received instance, and the
    # scanner (which got Success) never sends it again
    import shutil

    from fetalhead.hospital.node import DicomNode, node_status

    work = tmp_path / "node"
    node = DicomNode(work, port=free_loopback_port(), model=model, retry_base_s=5.0)
    shutil.copy(us_dicom, work / "incoming" / "1.2.3.dcm")
    shutil.rmtree(work / "outbox")
    (work / "outbox").write_text("not a folder: every write into it fails")
    assert node.process_once(now=1000.0) == 0
    assert (work / "incoming" / "1.2.3.dcm").is_file() and node_status(work)["not_measured"] == []
    assert "could not write the results of 1.2.3 (try 1, next in 5 s)" in (work / "node.log").read_text()
    assert node.process_once(now=1001.0) == 0  # backing off: not tried again at once
    (work / "outbox").unlink()
    (work / "outbox").mkdir()
    assert node.process_once(now=1006.0) == 1
    assert not (work / "incoming" / "1.2.3.dcm").exists() and (work / "outbox" / "1.2.3" / "state.json").is_file()


@pytest.mark.skipif(DCMSEND is None, reason="DCMTK is not installed (make test installs it)")
def test_a_node_short_of_disk_refuses_new_stores_and_cleans_stale_temporaries(us_dicom, model, tmp_path):
    # issue 24 #4: a full disk deadlocked the node on its own journal, with .part/.tmp files left
    import shutil

    from fetalhead.hospital.node import DicomNode

    work = tmp_path / "node"
    (work / "outbox" / "9.9").mkdir(parents=True)
    (work / "incoming").mkdir()
    (work / "incoming" / "1.2.dcm.part").write_bytes(b"half")
    (work / "outbox" / "9.9" / "x_sr.tmp").write_bytes(b"half")
    free = shutil.disk_usage(tmp_path).free
    port = free_loopback_port()
    node = DicomNode(work, port=port, model=model, min_free_bytes=free * 2).start()  # as if the disk were full
    try:
        assert not list(work.rglob("*.part")) and not list(work.rglob("*.tmp"))
        report = tmp_path / "report.txt"
        subprocess.run([DCMSEND, "-aet", "SCANNER", "-aec", "FETALHEAD", "+crf", str(report), "127.0.0.1",
                        str(port), str(us_dicom)], capture_output=True, text=True, timeout=60)
        assert "0xa700" in report.read_text().lower()  # out of resources: the scanner keeps and retries
        assert not list((work / "incoming").glob("*.dcm"))
        assert "under the" in (work / "node.log").read_text() and "removed 2 unfinished" in (work / "node.log").read_text()
    finally:
        node.stop()


@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MB filesystem (tmpfs), really full after two ultrasound images (root only: skipped elsewhere)."""
    folder = tmp_path / "small"
    folder.mkdir()
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root on Linux")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True).returncode:
        pytest.skip("this machine cannot mount a tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.skipif(DCMSEND is None, reason="DCMTK is not installed (make test installs it)")
def test_a_really_full_disk_refuses_stores_and_leaves_no_partial_file(us_dicom, model, tmp_path, small_disk):
    # issue 24 #4 on a real full filesystem (no margin kept): the store that does not fit is refused with
    # A700 (the scanner keeps it), its half-written journal file removed; the results that do not fit
    # wait, with their temporary files removed, and the node keeps answering
    from fetalhead.hospital.node import DicomNode

    work = small_disk / "node"
    port = free_loopback_port()
    node = DicomNode(work, port=port, model=model, min_free_bytes=0, retry_base_s=30).start()
    try:
        reports = []
        for i in range(4):
            ds = pydicom.dcmread(us_dicom)
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.3.{i + 1}"
            ds.save_as(tmp_path / f"{i}.dcm")
            report = tmp_path / f"report{i}.txt"
            subprocess.run([DCMSEND, "-aet", "SCANNER", "-aec", "FETALHEAD", "+crf", str(report), "127.0.0.1",
                            str(port), str(tmp_path / f"{i}.dcm")], capture_output=True, text=True, timeout=60)
            reports.append(report.read_text().lower())
        # which later store meets the full disk depends on when the worker's SR attempt holds its partial file
        # (it was the third in quiet runs, once the fourth in a busy full run): one of them must be refused
        assert "0xa700" not in reports[0] and any("0xa700" in r for r in reports[1:])
        time.sleep(1.5)  # the worker tried to write the first one's SR and capture (1.3 MB: no room)
        assert not list(work.rglob("*.part")) and not list(work.rglob("*.tmp"))
        log = (work / "node.log").read_text()
        assert "could not journal" in log or "under the 0 MB kept free" in log
        assert log.count("could not write the results of") <= 2  # retried on a schedule, not every 0.3 s
        assert (work / "incoming" / "1.2.3.1.dcm").exists()  # kept until its results can be written
    finally:
        node.stop()


def _certificates(folder):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made by openssl."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ca_key, ca = folder / "ca.key", folder / "ca.pem"
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
        "-subj", "/CN=test CA")
    made = {}
    for who in ("server", "client"):
        key, csr, crt = folder / f"{who}.key", folder / f"{who}.csr", folder / f"{who}.pem"
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={who}")
        ext = folder / f"{who}.ext"
        ext.write_text("subjectAltName=IP:127.0.0.1\n")
        run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-out",
            str(crt), "-days", "2", "-extfile", str(ext))
        made[who] = (key, crt)
    return ca, made


@pytest.mark.skipif(shutil.which("storescu") is None or shutil.which("openssl") is None,
                    reason="DCMTK's storescu and openssl are needed (make test installs DCMTK)")
def test_dicom_tls_with_and_without_client_certificates(us_dicom, model, tmp_path):
    # issue 24: DICOM TLS, tested with DCMTK's storescu +tls / +tla (BCP 195 profile, its default)
    from fetalhead.hospital.node import DicomNode, tls_server_context

    ca, made = _certificates(tmp_path)
    (skey, scrt), (ckey, ccrt) = made["server"], made["client"]

    def store(port, *tls):
        return subprocess.run(["storescu", "-aet", "SCANNER", "-aec", "FETALHEAD", *tls, "127.0.0.1", str(port),
                               str(us_dicom)], capture_output=True, text=True, timeout=60)

    for require_client in (False, True):
        port = free_loopback_port()
        ctx = tls_server_context(scrt, skey, ca if require_client else None)
        node = DicomNode(tmp_path / f"node{require_client}", port=port, model=model, ssl_context=ctx).start()
        try:
            assert store(port).returncode != 0  # plain TCP is refused by a TLS port
            anonymous = store(port, "+tla", "+cf", str(ca))
            assert (anonymous.returncode == 0) is (not require_client), anonymous.stderr[-300:]
            mutual = store(port, "+tls", str(ckey), str(ccrt), "+cf", str(ca))
            assert mutual.returncode == 0, mutual.stderr[-300:]
        finally:
            node.stop()
        received = (tmp_path / f"node{require_client}" / "node.log").read_text()
        assert "(DICOM TLS)" in received and "received" in received
    with pytest.raises(ValueError, match="--tls-cert"):
        tls_server_context(tmp_path / "missing.pem", skey)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd is not installed here")
def test_the_service_unit_verifies(tmp_path):
    # issue 24: a service to run, checked with systemd-analyze verify (the program path made real here)
    from pathlib import Path

    unit = Path(__file__).resolve().parents[2] / "deploy" / "fetalhead-dicom-node.service"
    exe = shutil.which("fetalhead") or sys.executable
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace("/opt/fetalhead/.venv/bin/fetalhead", exe))
    out = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    env = (unit.parent / "fetalhead-dicom-node.env").read_text()
    for name in ("FETALHEAD_HOST", "FETALHEAD_PORT", "FETALHEAD_AE_TITLE", "FETALHEAD_SEND_TO"):
        assert f"${{{name}}}" in unit.read_text() and f"{name}=" in env


def test_the_node_log_rotates_with_copytruncate(tmp_path, model):
    # issue 24: log rotation. The node appends to node.log: emptied in place by logrotate's copytruncate,
    # it goes on at the start of the file (no hole of NUL bytes); the config checks with logrotate -d
    from pathlib import Path

    from fetalhead.hospital.node import DicomNode

    conf = (Path(__file__).resolve().parents[2] / "deploy" / "fetalhead-dicom-node.logrotate").read_text()
    assert "/var/lib/fetalhead/node/node.log" in conf and "copytruncate" in conf
    assert "--work-dir /var/lib/fetalhead/node" in (Path(__file__).resolve().parents[2] / "deploy" /
                                                   "fetalhead-dicom-node.service").read_text()
    port = free_loopback_port()
    node = DicomNode(tmp_path / "node", port=port, model=model).start()
    try:
        log = tmp_path / "node" / "node.log"
        assert log.stat().st_size > 0
        with open(log, "r+b") as f:  # what copytruncate does after copying
            f.truncate(0)
        assert _echo_from("127.0.0.1", port) == 0x0000
        node.log.warning("after the rotation")
        data = log.read_bytes()
        assert data and not data.startswith(b"\0") and b"after the rotation" in data
    finally:
        node.stop()
    if shutil.which("logrotate"):
        copy = tmp_path / "rotate.conf"
        copy.write_text(conf.replace("/var/lib/fetalhead/node/node.log", str(log)).replace(
            "su fetalhead fetalhead", ""))
        out = subprocess.run(["logrotate", "-d", "-s", str(tmp_path / "state"), str(copy)], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0 and "error" not in out.stderr.lower(), out.stderr


def test_fhir_transaction_bundle_is_valid_r4(us_dicom, model, tmp_path):
    # issue 24: a transaction Bundle (entry.request POST) for a FHIR server, from the command line
    from fhir.resources.R4B.bundle import Bundle

    from fetalhead.cli import main

    assert main(["measure", str(us_dicom), "--fhir", str(tmp_path / "fhir"), "--fhir-transaction",
                 "--out", str(tmp_path / "r.csv")]) == 0
    doc = json.loads(next((tmp_path / "fhir").glob("*_fhir.json")).read_text())
    bundle = Bundle.model_validate(doc)
    assert bundle.type == "transaction"
    kinds = [(e.resource.__resource_type__, e.request.method, e.request.url) for e in bundle.entry]
    assert ("Device", "POST", "Device") in kinds and all(m == "POST" and u == k for k, m, u in kinds)
    device = next(e for e in bundle.entry if e.resource.__resource_type__ == "Device")
    assert device.request.ifNoneExist.startswith("identifier=urn:fetalhead:model-sha256|")


def _echo_from(source_ip, port):
    """C-ECHO to the node on 127.0.0.1 from ``source_ip`` (other 127.x addresses work on Linux loopback)."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title="SCANNER")
    ae.add_requested_context(Verification)
    ae.acse_timeout = ae.network_timeout = 5
    assoc = ae.associate("127.0.0.1", port, ae_title="FETALHEAD", bind_address=(source_ip, 0))
    if not assoc.is_established:
        return None
    try:
        return assoc.send_c_echo().Status
    finally:
        assoc.release()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 is a loopback address on Linux")
def test_an_ip_allow_list_refuses_other_addresses_and_logs_them(tmp_path, model):
    # issue 24: an IP allow-list beside the AE titles
    from fetalhead.cli import main
    from fetalhead.hospital.node import DicomNode, parse_networks

    port = free_loopback_port()
    node = DicomNode(tmp_path / "node", port=port, model=model, allowed_ips=["127.0.0.1/32", "10.1.2.0/24"]).start()
    try:
        assert _echo_from("127.0.0.1", port) == 0x0000
        assert _echo_from("127.0.0.2", port) is None
    finally:
        node.stop()
    log = (tmp_path / "node" / "node.log").read_text()
    assert "connection from 127.0.0.2 refused: address not in --allow-ip" in log
    assert "connection from 127.0.0.1 refused" not in log
    port = free_loopback_port()
    node = DicomNode(tmp_path / "node2", port=port, model=model, allowed_ips=["127.0.0.0/30"]).start()
    try:
        assert _echo_from("127.0.0.2", port) == 0x0000  # inside the network now
    finally:
        node.stop()
    with pytest.raises(ValueError, match="--allow-ip '10.1.2/24'"):
        parse_networks(["10.1.2/24"])
    assert main(["dicom-node", "--allow-ip", "nonsense", "--work-dir", str(tmp_path / "n3")]) == 2
    assert main(["dicom-node", "--workers", "0", "--work-dir", str(tmp_path / "n4")]) == 2


def test_several_workers_measure_past_a_long_loop_each_instance_once(us_dicom, model, tmp_path):
    # issue 24 #7: one measuring worker let one big loop hold up everything behind it
    import threading
    from collections import Counter

    from fetalhead.hospital.node import DicomNode, node_status

    work = tmp_path / "node"
    node = DicomNode(work, port=free_loopback_port(), model=model, workers=3, poll_s=0.05)
    uids = []
    for i in range(6):
        ds = pydicom.dcmread(us_dicom)
        ds.SOPInstanceUID = f"1.2.3.{i + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.save_as(work / "incoming" / f"{ds.SOPInstanceUID}.dcm")
        os.utime(work / "incoming" / f"{ds.SOPInstanceUID}.dcm", (1000 + i, 1000 + i))  # 1.2.3.1 is the oldest
        uids.append(ds.SOPInstanceUID)
    measured_uids = Counter()
    others_done = threading.Event()
    real = node._measure

    def measure(path):
        measured_uids[path.stem] += 1
        if path.stem == uids[0]:  # the "long loop": it waits until the others are measured
            others_done.wait(timeout=60)
        return real(path)

    node._measure = measure
    node.start()
    try:
        assert _wait(lambda: all((work / "outbox" / u / "state.json").exists() for u in uids[1:]), timeout=60)
        assert not (work / "outbox" / uids[0]).exists()  # still being measured: the others went past it
        others_done.set()
        assert _wait(lambda: node_status(work)["received_waiting"] == 0 and
                     (work / "outbox" / uids[0] / "state.json").exists(), timeout=120)
    finally:
        others_done.set()
        node.stop()
    assert measured_uids == Counter(dict.fromkeys(uids, 1))  # each instance measured once
    assert "3 measuring worker(s)" in (work / "node.log").read_text()


def test_fhir_observations_carry_the_study_time_and_a_coded_centile(us_dicom, model, tmp_path):
    # issue 24: effectiveDateTime from the study; the centile Observation coded
    from fhir.resources.R4B.bundle import Bundle

    from fetalhead.hospital.fhir import study_effective
    from fetalhead.hospital.handoff import write_hand_off

    ds = pydicom.dcmread(us_dicom)
    ds.StudyDate, ds.StudyTime, ds.TimezoneOffsetFromUTC = "20261128", "101500.123", "+0530"
    ds.save_as(us_dicom)
    m, scan = measured(us_dicom, model)
    path = [p for p in write_hand_off(m, scan, model, fhir_dir=tmp_path) if p.suffix == ".json"][0]
    bundle = Bundle.model_validate(json.loads(path.read_text()))
    observations = {e.fullUrl: e.resource for e in bundle.entry if e.resource.__resource_type__ == "Observation"}
    assert len(observations) >= 8
    raw = [e["resource"] for e in json.loads(path.read_text())["entry"]]
    assert {r.get("effectiveDateTime") for r in raw if r["resourceType"] == "Observation"} == \
        {"2026-11-28T10:15:00+05:30"}
    (centile,) = [o for o in observations.values() if o.code.coding and o.code.coding[0].code == "125012"]
    assert centile.code.coding[0].system == "http://dicom.nema.org/resources/ontology/DCM"
    assert float(centile.valueQuantity.value) == pytest.approx(m.hc_centile, abs=0.05)
    assert centile.component[0].code.coding[0].code == "125013"
    assert float(centile.component[0].valueQuantity.value) == pytest.approx(m.hc_zscore, abs=5e-4)
    hc = observations[centile.derivedFrom[0].reference]
    assert hc.code.coding[0].code == "11984-2" and "INTERGROWTH-21st" in centile.method.text
    assert centile.interpretation is None  # an ok result: no flag on its centile
    far, _ = measured(us_dicom, model, ga=30.0)  # HC 170 mm at 30 weeks: hc_far_from_ga, about the centile itself
    far_path = [p for p in write_hand_off(far, scan, model, fhir_dir=tmp_path / "far") if p.suffix == ".json"][0]
    (far_centile,) = [e["resource"] for e in json.loads(far_path.read_text())["entry"]
                      if e["resource"].get("code", {}).get("coding", [{}])[0].get("code") == "125012"]
    assert far_centile["interpretation"][0]["coding"][0]["code"] == "A"
    assert "hc_far_from_ga" in far_centile["note"][-1]["text"] and "SD from the mean" in far_centile["note"][-1]["text"]
    # the date alone without a timezone (FHIR wants one with a time); nothing from a date that is none
    ds.TimezoneOffsetFromUTC = None
    del ds.TimezoneOffsetFromUTC
    assert study_effective(ds) == "2026-11-28"
    ds.StudyDate = "20261399"
    assert study_effective(ds) is None


@needs_pacs
def test_a_store_wakes_the_measuring_workers_and_the_sender(us_dicom, model, tmp_path):
    # bench/node.py: up to two polling intervals were spent waiting between the store, the measuring and
    # the sending; with a minute between polls the result must still reach the PACS in seconds
    from fetalhead.hospital.node import Destination, DicomNode, node_status

    pacs = Orthanc(tmp_path / "pacs", free_loopback_port(), free_loopback_port()).start()
    port = free_loopback_port()
    node = DicomNode(tmp_path / "node", port=port, send_to=Destination("ORTHANC", "127.0.0.1", pacs.dicom_port),
                     model=model, poll_s=60).start()
    try:
        time.sleep(0.5)  # the first rounds (at start) are over: only a wake-up brings the next
        t = time.time()
        assert _dcmsend(us_dicom, port).returncode == 0
        assert _wait(lambda: node_status(tmp_path / "node")["sent"] == 1, timeout=30)
        assert time.time() - t < 30 and len(pacs.instances()) == 2
    finally:
        node.stop()
        pacs.stop()


@pytest.mark.parametrize("syntaxes", [["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"], ["1.2.840.10008.1.2"]])
def test_results_are_sent_as_written_or_converted_for_a_pacs_that_takes_only_implicit_vr(us_dicom, model, tmp_path,
                                                                                         syntaxes):
    # the files are sent as written (not decoded and encoded again); a PACS that accepts only the default
    # transfer syntax (Implicit VR Little Endian, which every SCP supports) still gets them
    from pynetdicom import AE, evt
    from pynetdicom.sop_class import ComprehensiveSRStorage, SecondaryCaptureImageStorage

    from fetalhead.hospital.handoff import write_hand_off
    from fetalhead.hospital.node import Destination, DicomNode, node_status

    work = tmp_path / "node"
    node = DicomNode(work, port=free_loopback_port(), model=model)
    out = work / "outbox" / "1.2.3"
    out.mkdir(parents=True)
    written = write_hand_off(*measured(us_dicom, model), model, sr_dir=out)
    (out / "state.json").write_text(json.dumps({"attempts": 0, "next_try": 0.0, "last_error": None}))
    originals = [pydicom.dcmread(p) for p in written]  # the outbox folder goes once sent
    received = {}

    def on_store(event):
        ds = event.dataset
        ds.file_meta = event.file_meta
        received[str(ds.SOPInstanceUID)] = (str(event.context.transfer_syntax), ds)
        return 0x0000

    scp = AE(ae_title="PACS")
    for sop in (ComprehensiveSRStorage, SecondaryCaptureImageStorage):
        scp.add_supported_context(sop, syntaxes)
    port = free_loopback_port()
    server = scp.start_server(("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        node.send_to = Destination("PACS", "127.0.0.1", port)
        assert node.send_once() == 1 and node_status(work)["sent"] == 1
    finally:
        server.shutdown()
    for original in originals:
        syntax, got = received[str(original.SOPInstanceUID)]
        own = str(original.file_meta.TransferSyntaxUID)
        assert syntax == (own if own in syntaxes else "1.2.840.10008.1.2")  # as written, else converted
        assert got.ContentSequence == original.ContentSequence if original.Modality == "SR" else \
            got.PixelData == original.PixelData


def test_fhir_says_flags_in_words_and_notes_apart():
    """Issue 21: a flagged result's reasons are in words in the note with the interpretation "abnormal";
    information (a cephalic index outside Hadlock's +/-1 SD) is a note of its own, and alone it never
    makes an observation "abnormal"."""
    from fetalhead.hospital.fhir import fhir_bundle
    from fetalhead.measurement import Measurement

    def made(flagged):
        d = {"path": "a.png", "status": "ok", "pixel_spacing_mm": [0.15, 0.15], "image_width": 800,
             "image_height": 540, "quality": 0.3 if flagged else 0.9,
             "ellipse": {"center_x": 400, "center_y": 270, "semi_major": 190, "semi_minor": 175, "angle_deg": 10},
             "flags": ["low_quality"] if flagged else [], "interval_half_widths": {"hc": 0.05, "bpd": 0.06, "ofd": 0.06}}
        if flagged:
            d["uncertain_arcs"] = [{"from_deg": 150, "to_deg": 210, "share": 0.17, "cause": "faint_echo",
                                    "where": "left"}]
        m = Measurement.from_dict(d)
        assert m.notes == ["cephalic_index_out_of_range"]
        obs = [e["resource"] for e in fhir_bundle(m, model_version="t")["entry"]
               if e["resource"]["resourceType"] == "Observation" and e["resource"]["code"].get("coding")]
        return m, obs[0]

    m, hc = made(flagged=True)
    texts = [n["text"] for n in hc["note"]]
    assert m.status == "flagged" and hc["interpretation"][0]["coding"][0]["code"] == "A"
    assert any("faint or missing on the left of the head" in x and "low_quality" in x for x in texts)
    assert any(x.startswith("information (not a warning): Cephalic index") for x in texts)
    m, hc = made(flagged=False)
    assert m.status == "ok" and "interpretation" not in hc
    assert [n["text"] for n in hc["note"]][-1].startswith("information (not a warning): Cephalic index")



def test_the_sr_is_written_as_pydicom_writes_it(us_dicom, model):
    # the SR is marked as built in Explicit VR Little Endian (its writing twice as fast): the bytes are those
    # pydicom writes for the same dataset unmarked, with its ambiguous-VR correction on every item
    import datetime as dt

    from fetalhead.hospital.sr import PregnancyDating, structured_report

    m, _ = measured(us_dicom, model)
    sr = structured_report(m, pydicom.dcmread(us_dicom, stop_before_pixels=True), model_version=model.version,
                           dating=PregnancyDating(lmp=dt.date(2026, 6, 10), ga_days=171.0, ga_from_lmp=True))
    assert sr.original_encoding == (False, True)
    marked = io.BytesIO()
    sr.save_as(marked, enforce_file_format=True)
    stack = [sr]
    while stack:  # forget the marks: the writer corrects every item again
        item = stack.pop()
        item.set_original_encoding(None, None, None)
        stack.extend(x for e in item.elements() if e.VR == "SQ" for x in e.value)
    plain = io.BytesIO()
    sr.save_as(plain, enforce_file_format=True)
    assert marked.getvalue() == plain.getvalue()
    # an element whose VR only the writer can decide (US or SS): nothing is marked, the writer corrects it
    from pydicom.dataset import Dataset

    from fetalhead.hospital.sr import _encoded_as_built

    item, ds = Dataset(), Dataset()
    item.add_new(0x00280106, "US or SS", 0)  # Smallest Image Pixel Value
    ds.ContentSequence = [item]
    assert _encoded_as_built(ds) is False and ds.original_encoding == (None, None)
