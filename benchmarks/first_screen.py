"""What a visitor waits for: the seconds from opening the page to the default example's tokens on
screen, served as `python app.py` serves them (the example encoded into the cache before serving)
and seen in a real headless browser (Debian's chromium, driven by playwright).

    python benchmarks/first_screen.py [--runs 3]

Prints the app's start-up (until it answers), then per run: the page's own load (its HTML and
scripts) and the first result after it (the reconstruction and the strip shown). Goal: the first
result within 2 s of the page's load.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, cache: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "VLE_CACHE_DIR": str(cache),
    }
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    return subprocess.Popen(
        [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_until_up(url: str, timeout_s: float = 300) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout_s:
        try:
            urllib.request.urlopen(url, timeout=2)
            return time.perf_counter() - start
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"the app did not answer at {url} within {timeout_s:.0f} s")


def first_result(browser, url: str) -> tuple[float, float]:
    """(seconds to the page's load event, seconds from it to the first result on screen)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    start = time.perf_counter()
    page.goto(url, wait_until="load")
    loaded = time.perf_counter()
    page.wait_for_function(
        "() => document.querySelector('#recon img')?.complete && document.querySelector('#strip img')",
        timeout=120_000,
        polling=50,
    )
    shown = time.perf_counter()
    page.close()
    return loaded - start, shown - loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="page loads to time, each in a new page (default 3)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as cache:
        app = start_app(port, Path(cache))
        try:
            print(
                f"app answering after {wait_until_up(url):.1f} s "
                "(the default example encoded into an empty cache first)"
            )
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
                )
                for run in range(1, args.runs + 1):
                    page_load, result = first_result(browser, url)
                    print(f"run {run}: page loaded in {page_load:.2f} s, first result {result:.2f} s after it")
                browser.close()
        finally:
            app.terminate()
            app.wait(timeout=30)


if __name__ == "__main__":
    main()
