"""Open the built site in headless Chromium: every page loads without console errors, every
image loads, and the search finds "Score-CAM". Saves a screenshot of each page.

    python -m pip install -e ".[docs]" playwright
    apt-get install chromium                     # Debian's package; no browser download
    mkdocs build --strict -d site
    python docs/scripts/browser_check.py --site site --out browser-check

Not part of CI (it needs a browser): run it after changing the theme, the pages' layout or
their images. Serves ``--site`` on a free local port, drives Chromium through Playwright with
``--chromium`` as the browser, and exits 1 listing every problem it saw.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # one line per page is printed instead
        pass


def serve(site: Path) -> http.server.ThreadingHTTPServer:
    """The built site over HTTP on 127.0.0.1 and a free port, in a daemon thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def pages(site: Path) -> list[str]:
    """Every page of the site as a URL path ("" for the home page)."""
    found = sorted(p.relative_to(site).parent.as_posix() for p in site.rglob("index.html"))
    return ["" if p == "." else p + "/" for p in found]


def check_page(page, url: str, shot: Path) -> list[str]:
    """Problems on one page: console errors, failed requests, images that did not load."""
    problems: list[str] = []

    def console(message) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    response = page.goto(url, wait_until="networkidle")
    if response is None or not response.ok:
        problems.append(f"HTTP {response.status if response else 'no response'}")
    broken = page.eval_on_selector_all(
        "img", "imgs => imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    problems += [f"image did not load: {src}" for src in broken]
    page.screenshot(path=str(shot), full_page=False)
    return problems


def check_search(page, base: str) -> list[str]:
    """Type "Score-CAM" in the search box; the results must list at least one page."""
    page.goto(base, wait_until="networkidle")
    page.keyboard.press("/")  # Material's search shortcut
    page.keyboard.type("Score-CAM")
    try:
        page.wait_for_selector(".md-search-result__item", timeout=10_000)
    except Exception:  # noqa: BLE001 - any failure here is the one problem reported
        return ['search for "Score-CAM" found nothing']
    count = page.locator(".md-search-result__item").count()
    return [] if count else ['search for "Score-CAM" found nothing']


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--site", default="site", help="the folder mkdocs built")
    parser.add_argument("--out", default="browser-check", help="screenshots go here")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    site, out = Path(args.site), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server = serve(site)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    failures = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, headless=True)
        for path in pages(site):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            name = path.strip("/").replace("/", "_") or "home"
            problems = check_page(page, base + path, out / f"{name}.png")
            images = page.locator("img").count()
            print(f"{'ok' if not problems else 'FAIL'}  /{path}  ({images} images)")
            if problems:
                failures[path] = problems
            page.close()
        page = browser.new_page()
        search = check_search(page, base)
        print(f"{'ok' if not search else 'FAIL'}  search for Score-CAM")
        if search:
            failures["search"] = search
        browser.close()
    server.shutdown()
    for path, problems in failures.items():
        for problem in problems:
            print(f"/{path}: {problem}")
    print(f"screenshots in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
