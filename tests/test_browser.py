"""The page in a real browser: Playwright driving Debian's Chromium against a live server on 127.0.0.1."""

import json
import shutil
import threading
import time
import urllib.request

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

import fetalhead  # noqa: E402
from fetalhead.report import translations  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
PS = 0.134737677


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from fetalhead.web.app import create_app
    from fetalhead.web.serving import free_loopback_port

    port = free_loopback_port()
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(base + "/api/v1/health", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    yield base
    srv.should_exit = True
    th.join(timeout=10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"])
        yield b
        b.close()


def _api_measure(server, path, **form):
    """What the API answers for the same scan and form (multipart by hand: no extra dependency)."""
    boundary = "----fetalheadtest"
    parts = []
    for k, v in form.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode())
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    req = urllib.request.Request(server + "/api/v1/measure", data=b"".join(parts), method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def _figure(page, sel) -> float:
    return float(page.text_content(sel).split()[0])


def _wait_until(fn, timeout=10.0):
    deadline = time.time() + timeout
    while not fn() and time.time() < deadline:
        time.sleep(0.1)
    return fn()


def _drag(page, box, sx, sy, frm, to):
    page.mouse.move(box["x"] + frm[0] * sx, box["y"] + frm[1] * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + to[0] * sx, box["y"] + to[1] * sy, steps=6)
    page.mouse.up()


def test_measure_in_the_page(server, browser, samples_dir, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/")
    page.set_input_files("#file", str(samples_dir / "358_HC.png"))
    page.fill("#pixel-size", str(PS))
    page.fill("#ga-weeks", "20.5")
    page.click("#measure")
    sync_api.expect(page.locator("#val-hc")).to_contain_text("mm", timeout=30000)
    # the page shows what the API answers for the same scan and form, status included
    api = _api_measure(server, samples_dir / "358_HC.png", pixel_size_mm=PS, ga_weeks=20.5, include_image="false")
    assert page.text_content("#val-hc") == f"{api['hc_mm']:.1f} mm"
    assert page.text_content("#val-bpd") == f"{api['bpd_mm']:.1f} mm"
    assert page.text_content("#val-ofd") == f"{api['ofd_mm']:.1f} mm"
    assert page.text_content("#val-centile") == f"{api['hc_centile']:.0f}"
    assert page.get_attribute("#status", "class") == f"status {api['status']}"
    assert page.text_content("#status") == translations("en")[f"status_{api['status']}"]
    assert page.locator("#fetus-point").count() == 1
    # and the Python API gives the same as the REST API
    expected = fetalhead.measure(samples_dir / "358_HC.png", PS, ga_weeks=20.5)
    assert api["hc_mm"] == expected.head_circumference_mm
    # the form's limits come from the server
    assert float(page.get_attribute("#pixel-size", "max")) == 1.0
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
    assert (tmp_path / "page.png").stat().st_size > 10_000

    box = page.locator("#view").bounding_box()
    sx, sy = box["width"] / 800, box["height"] / 540
    e = expected.ellipse
    cx, cy = e.center_x, e.center_y

    # dragging a BPD caliper outwards makes the BPD larger and the figures are recomputed
    before = _figure(page, "#val-bpd")
    x, y = expected.landmarks["bpd_2"]
    _drag(page, box, sx, sy, (x, y), (x + (x - cx) / e.semi_minor * 15, y + (y - cy) / e.semi_minor * 15))
    assert _wait_until(lambda: _figure(page, "#val-bpd") > before + 1)
    assert "Adjusted by hand" in page.text_content("#flags")

    # dragging an OFD caliper outwards makes the OFD (and HC) larger, the BPD stays
    bpd, ofd, hc = _figure(page, "#val-bpd"), _figure(page, "#val-ofd"), _figure(page, "#val-hc")
    x, y = expected.landmarks["ofd_2"]
    _drag(page, box, sx, sy, (x, y), (x + (x - cx) / e.semi_major * 20, y + (y - cy) / e.semi_major * 20))
    assert _wait_until(lambda: _figure(page, "#val-ofd") > ofd + 1)
    assert _figure(page, "#val-hc") > hc and _figure(page, "#val-bpd") == pytest.approx(bpd, abs=0.15)

    # moving the whole ellipse (a drag inside it) changes no length
    ofd, hc = _figure(page, "#val-ofd"), _figure(page, "#val-hc")
    _drag(page, box, sx, sy, (cx, cy), (cx + 30, cy + 10))
    time.sleep(0.6)
    assert _figure(page, "#val-ofd") == pytest.approx(ofd, abs=0.15)
    assert _figure(page, "#val-hc") == pytest.approx(hc, abs=0.15)

    # undo brings back the measured figures, without "adjusted"
    page.click("#reset")
    assert _wait_until(lambda: page.text_content("#val-hc") == f"{api['hc_mm']:.1f} mm")
    assert "Adjusted by hand" not in page.text_content("#flags")

    # languages: every label changes
    for lang in ("hi", "te"):
        page.select_option("#lang", lang)
        t = translations(lang)
        sync_api.expect(page.locator("[data-i18n=hc]").first).to_have_text(t["hc"])
        assert page.text_content("[data-i18n=app_title]") == t["app_title"]
        assert page.text_content("[data-i18n=review_statement]") == t["review_statement"]
        assert page.text_content("#val-hc").endswith("mm")  # numbers and units stay international
    page.select_option("#lang", "en")

    # a new file clears the old result: nothing of scan 358 stays on screen
    page.set_input_files("#file", str(samples_dir / "590_HC.png"))
    assert page.locator("#result").is_hidden()

    # nothing was requested outside this server
    assert requests and all(u.startswith(server) or u.startswith("data:") or u.startswith("blob:")
                            for u in requests), [u for u in requests if not u.startswith(server)]
    page.close()


def test_page_shows_errors_in_words(server, browser, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not an image")
    page = browser.new_page()
    page.goto(server + "/")
    page.set_input_files("#file", str(bad))
    page.click("#measure")
    sync_api.expect(page.locator("#error")).to_be_visible(timeout=10000)
    assert "PNG, JPEG" in page.text_content("#error")
    page.close()


def test_a_late_answer_for_an_older_state_never_overwrites_the_screen(server, browser, samples_dir):
    """Type a new GA (an update of scan 358 goes out and is held back), measure scan 590, then let the
    old update's answer arrive: it must be dropped, and the table keeps 590's figures."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    held = []
    page.goto(server + "/")
    page.set_input_files("#file", str(samples_dir / "358_HC.png"))
    page.fill("#pixel-size", str(PS))
    page.click("#measure")
    sync_api.expect(page.locator("#val-hc")).to_contain_text("mm", timeout=30000)
    page.route("**/api/v1/biometry", lambda route: held.append(route))
    page.fill("#ga-weeks", "21")
    page.dispatch_event("#ga-weeks", "change")  # the update of scan 358 goes out, and is held
    for _ in range(100):  # let Playwright deliver the request to the route handler
        if held:
            break
        page.wait_for_timeout(50)
    assert held
    page.set_input_files("#file", str(samples_dir / "590_HC.png"))
    page.fill("#pixel-size", str(PS))
    page.click("#measure")
    expected = _api_measure(server, samples_dir / "590_HC.png", pixel_size_mm=PS, ga_weeks=21, include_image="false")
    sync_api.expect(page.locator("#val-hc")).to_have_text(f"{expected['hc_mm']:.1f} mm", timeout=30000)
    held[0].continue_()  # now the old answer (scan 358) arrives
    page.wait_for_timeout(1000)
    assert page.text_content("#val-hc") == f"{expected['hc_mm']:.1f} mm"
    page.close()
