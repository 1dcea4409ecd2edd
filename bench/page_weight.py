"""What the clinic page downloads: first load per language, and after measuring a scan.

Starts the app on a free loopback port, opens the page in Debian's Chromium (Playwright) with an empty
cache, once per language (en, hi, te), and prints every response's size, the total of the first load,
and what measuring the bundled scan 358_HC.png adds. Bytes are as sent (no compression is configured).
The font files are the WOFF2 subsets made by tools/subset_fonts.py; for comparison the full TTFs the
page loaded before are listed too.

    python bench/page_weight.py
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _serve():
    import uvicorn

    from fetalhead.web.app import create_app
    from fetalhead.web.serving import free_loopback_port

    port = free_loopback_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(base + "/api/v1/health", timeout=1)
            return server, base
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def main() -> int:
    from playwright.sync_api import sync_playwright

    from fetalhead.assets import FONTS_DIR

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("Debian's chromium is needed (make test installs it)", file=sys.stderr)
        return 1
    server, base = _serve()
    totals = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for lang in ("en", "hi", "te"):
            ctx = browser.new_context()
            page = ctx.new_page()
            page.add_init_script(f"localStorage.setItem('fetalhead-lang', '{lang}')")
            sizes: dict[str, int] = {}
            page.on("response", lambda r: sizes.__setitem__(r.url.replace(base, ""), len(r.body())) if r.ok else None)
            page.goto(base + "/", wait_until="networkidle")
            page.wait_for_timeout(300)
            first = dict(sizes)
            page.set_input_files("#file", str(ROOT / "samples" / "358_HC.png"))
            page.fill("#pixel-size", "0.1347")
            page.fill("#ga-weeks", "20+3")
            page.click("#measure")
            page.wait_for_selector("#result:not([hidden])")
            page.wait_for_load_state("networkidle")
            after = sum(sizes.values()) - sum(first.values())
            totals[lang] = (sum(first.values()), after)
            print(f"\n{lang}: first load")
            for url, n in sorted(first.items(), key=lambda kv: -kv[1]):
                print(f"  {n / 1024:8.1f} KB  {url}")
            print(f"  {sum(first.values()) / 1024:8.1f} KB  total; measuring 358_HC.png adds {after / 1024:.1f} KB "
                  "(the scan picture and the answers)")
            ctx.close()
        browser.close()
    server.should_exit = True
    ttf = sum((FONTS_DIR / n).stat().st_size for n in ("NotoSans-Regular.ttf", "NotoSans-Bold.ttf",
                                                       "NotoSansDevanagari-Regular.ttf", "NotoSansTelugu-Regular.ttf"))
    print(f"\nfirst load: en {totals['en'][0] / 1024:.0f} KB, hi {totals['hi'][0] / 1024:.0f} KB, "
          f"te {totals['te'][0] / 1024:.0f} KB (target: English under 300 KB); "
          f"the four full TTFs the page loaded before: {ttf / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
