"""The clinical validation kit: manual.csv checks, the agreement figures, the reports."""

import json
from types import SimpleNamespace

import pytest

from fetalhead.studies.validation import ManualCsvError, compare, read_manual

pytest.importorskip("matplotlib")

SAMPLES_HC = {"011_HC.png": (69.9, 0.055484126), "192_HC.png": (146.2, 0.145568225),
              "358_HC.png": (170.2, 0.134737677), "495_4HC.png": (194.6, 0.187924372),
              "590_HC.png": (179.04, 0.166405956), "785_HC.png": (311.16, 0.214313345)}


def write(tmp_path, text, name="manual.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, match", [
    ("name,hc_mm\na.png,170\n", "no 'filename' column"),
    ("filename,ga_weeks\na.png,20\n", "no manual measurement"),
    ("filename,hc_mm,weight_g\na.png,170,300\n", "unknown column"),
    ("filename,hc_mm\na.png,1700\n", "line 2: hc_mm 1700 is outside 40-400 mm"),
    ("filename,hc_mm\na.png,abc\n", "line 2: hc_mm 'abc' is not a number"),
    ("filename,hc_mm,pixel_size_mm\na.png,170,1.66\n", "pixel_size_mm 1.66 is outside"),
    ("filename,hc_mm,ga_weeks\na.png,170,50\n", "ga_weeks 50 is outside"),
    ("filename,hc_mm\na.png,170\na.png,171\n", "line 3: a.png is already on line 2"),
    ("filename,hc_mm,bpd_mm\na.png,,\n", "has no manual measurement"),
])
def test_manual_csv_errors_name_the_file_line_and_problem(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(ManualCsvError, match=match) as err:
        read_manual(p)
    assert str(p) in str(err.value)




def test_compare_with_known_differences(tmp_path):
    p = write(tmp_path, "filename,hc_mm,hc_mm_2,bpd_mm,ga_weeks\n"
                        + "".join(f"s{i}.png,{150 + 10 * i},{151 + 10 * i},{40 + 2 * i},{18 + 2 * i}\n"
                                  for i in range(8)))
    rows = read_manual(p)
    assert rows[0].observer_1 == {"hc": 150.0, "bpd": 40.0} and rows[0].observer_2 == {"hc": 151.0}
    # fetalhead 2 mm above observer 1 on HC; BPD equal; one scan failed
    ms = {r.filename: SimpleNamespace(head_circumference_mm=r.observer_1["hc"] + 2.0, status="ok",
                                      biparietal_diameter_mm=r.observer_1["bpd"], occipitofrontal_diameter_mm=None)
          for r in rows}
    ms["s7.png"] = SimpleNamespace(head_circumference_mm=None, status="failed", biparietal_diameter_mm=None,
                                   occipitofrontal_diameter_mm=None)
    fig = compare(rows, ms)
    assert fig["n_scans"] == 8 and fig["n_compared"] == 7 and fig["n_failed"] == 1
    hc = fig["measurements"]["hc"]
    assert hc["n"] == 7 and hc["bias_mm"] == pytest.approx(2.0) and hc["mad_mm"] == pytest.approx(2.0)
    assert hc["loa_low_mm"] == pytest.approx(2.0) and hc["loa_high_mm"] == pytest.approx(2.0)
    o2 = hc["comparisons"]["fetalhead_vs_observer_2"]
    assert o2["bias_mm"] == pytest.approx(1.0)
    assert hc["comparisons"]["observer_1_vs_observer_2"]["bias_mm"] == pytest.approx(-1.0)
    tri = hc["comparisons"]["fetalhead_vs_observer_1"]["mad_mm_by_trimester"]
    assert tri["second"]["n"] == 5 and tri["third"]["n"] == 2  # GA 18..28 by dates: 18-26 second, 28-30 third
    assert fig["measurements"]["bpd"]["bias_mm"] == pytest.approx(0.0) and fig["measurements"]["bpd"]["icc"] == 1.0
    assert "ofd" not in fig["measurements"]
    assert fig["ga_difference_days"]["mean"] > 0  # 2 mm more HC reads older


def _manual_for_samples(tmp_path, extra_row=""):
    lines = ["filename,hc_mm,hc_mm_2,pixel_size_mm"]
    for i, (name, (hc, ps)) in enumerate(SAMPLES_HC.items()):
        lines.append(f"{name},{hc},{hc + (1.5 if i % 2 else -1.0)},{ps}")
    return write(tmp_path, "\n".join(lines) + "\n" + extra_row)


def test_validate_command_writes_the_report_json_and_csv(samples_dir, tmp_path, capsys):
    from fetalhead.cli import main

    manual = _manual_for_samples(tmp_path)
    out = tmp_path / "study" / "report.html"
    code = main(["validate", str(samples_dir), "--manual", str(manual), "--out", str(out)])
    assert code in (0, 1)
    doc = json.loads((out.parent / "report.json").read_text())
    hc = doc["hc"]
    assert set(hc) >= {"bias_mm", "loa_low_mm", "loa_high_mm", "icc", "mad_mm", "n"} and hc["n"] == 6
    assert hc["loa_low_mm"] < hc["bias_mm"] < hc["loa_high_mm"] and 0.95 < hc["icc"] <= 1.0
    assert set(hc["comparisons"]) == {"fetalhead_vs_observer_1", "fetalhead_vs_observer_2", "observer_1_vs_observer_2"}
    page = out.read_text()
    assert page.count("<img") >= 6 and "Bland-Altman" in page and "ICC(2,1)" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched when it is viewed
    flagged = [x["filename"] for x in doc["flagged_or_failed"]]
    assert all(f"{name}: what was measured" in page for name in flagged)
    summary = (out.parent / "agreement_summary.csv").read_text().splitlines()
    assert len(summary) == 4 and summary[1].startswith("hc,fetalhead_vs_observer_1,6,")
    csv_text = (out.parent / "agreement.csv").read_text().splitlines()
    assert len(csv_text) == 7 and csv_text[0].startswith("filename,status,ga_weeks,hc_fetalhead_mm")
    assert "bias" in capsys.readouterr().out
    pdf = tmp_path / "study" / "report.pdf"
    main(["validate", str(samples_dir), "--manual", str(manual), "--out", str(pdf)])
    assert pdf.read_bytes().startswith(b"%PDF")


def test_validate_refuses_a_manual_row_of_a_file_not_given(samples_dir, tmp_path, capsys):
    from fetalhead.cli import main

    manual = _manual_for_samples(tmp_path, "999_HC.png,170,,0.1\n")
    assert main(["validate", str(samples_dir), "--manual", str(manual), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert "line 8: 999_HC.png is not among the scans given" in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()


def test_evaluate_draws_the_same_plots(samples_dir, tmp_path, capsys):
    from fetalhead.cli import main

    results = tmp_path / "results.csv"
    main(["measure", str(samples_dir), "--pixel-size-csv", str(samples_dir / "pixel_size_and_HC.csv"),
          "--out", str(results), "--no-progress"])
    ref = tmp_path / "ellipses.csv"
    import csv

    rows = list(csv.DictReader(open(results)))
    with open(ref, "w", newline="") as f:  # a reference (the shared layout's columns) 1 % larger than the results
        w = csv.writer(f)
        w.writerow(["filename", "pixel_size_mm", "center_x_px", "center_y_px", "semi_major_px", "semi_minor_px",
                    "angle_deg"])
        for r in rows:
            w.writerow([r["filename"], r["pixel_size_mm"], r["center_x_px"], r["center_y_px"],
                        float(r["semi_major_px"]) * 1.01, float(r["semi_minor_px"]) * 1.01, r["angle_deg"]])
    plots = tmp_path / "plots"
    main(["evaluate", str(results), str(ref), "--plots", str(plots)])
    names = sorted(p.name for p in plots.iterdir())
    assert names == sorted(f"bland_altman_{m}{s}.png" for m in ("hc", "bpd", "ofd") for s in ("", "_percent"))
    assert all((plots / n).read_bytes().startswith(b"\x89PNG") for n in names)
