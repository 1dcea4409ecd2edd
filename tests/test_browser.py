"""The page in a real browser: Playwright driving Debian's Chromium against a live server on 127.0.0.1."""

import json
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

import fetalhead  # noqa: E402
from fetalhead.report import translations  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (make test installs it)")
PS = 0.134737677
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def server():
    import uvicorn

    from fetalhead.web.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
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


def test_measure_in_the_page(server, browser, samples_dir):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server + "/")
    page.set_input_files("#file", str(samples_dir / "358_HC.png"))
    page.fill("#pixel-size", str(PS))
    page.fill("#ga-weeks", "20.5")
    page.click("#measure")
    sync_api.expect(page.locator("#val-hc")).to_contain_text("mm", timeout=30000)
    expected = fetalhead.measure(samples_dir / "358_HC.png", PS, ga_weeks=20.5)
    assert page.text_content("#val-hc") == f"{expected.head_circumference_mm:.1f} mm"
    assert page.text_content("#val-bpd") == f"{expected.biparietal_diameter_mm:.1f} mm"
    assert page.text_content("#val-ofd") == f"{expected.occipitofrontal_diameter_mm:.1f} mm"
    assert page.text_content("#val-centile") == f"{expected.hc_centile:.0f}"
    assert "reliable" in page.text_content("#status") or "Check" in page.text_content("#status")
    assert page.locator("#fetus-point").count() == 1
    # the API answers the same figures the page shows
    api = json.loads(urllib.request.urlopen(server + "/api/v1/health").read())
    assert api["status"] == "ok"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # dragging a BPD caliper outwards makes the BPD larger and the figures are recomputed
    before = float(page.text_content("#val-bpd").split()[0])
    box = page.locator("#view").bounding_box()
    e = expected.ellipse
    x, y = expected.landmarks["bpd_2"]
    sx, sy = box["width"] / 800, box["height"] / 540
    cx, cy = expected.ellipse.center_x, expected.ellipse.center_y
    nx, ny = x + (x - cx) / e.semi_minor * 15, y + (y - cy) / e.semi_minor * 15
    page.mouse.move(box["x"] + x * sx, box["y"] + y * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + nx * sx, box["y"] + ny * sy, steps=5)
    page.mouse.up()
    deadline = time.time() + 10
    while float(page.text_content("#val-bpd").split()[0]) <= before + 1 and time.time() < deadline:
        time.sleep(0.1)
    assert float(page.text_content("#val-bpd").split()[0]) > before + 1
    assert "Adjusted by hand" in page.text_content("#flags")

    # languages: every label changes
    for lang in ("hi", "te"):
        page.select_option("#lang", lang)
        t = translations(lang)
        sync_api.expect(page.locator("[data-i18n=hc]").first).to_have_text(t["hc"])
        assert page.text_content("[data-i18n=app_title]") == t["app_title"]
        assert page.text_content("[data-i18n=review_statement]") == t["review_statement"]
        assert page.text_content("#val-hc").endswith("mm")  # numbers and units stay international
    page.select_option("#lang", "en")

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
