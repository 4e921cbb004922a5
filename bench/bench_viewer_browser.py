"""A step change in the tbimg tab, in headless Chromium (issue 26): slider moved, 4 samples of 3 runs drawn.

    apt-get install chromium && pip install -e '.[test]'
    python bench/bench_viewer_browser.py --logdir /tmp/vbench/logs --changes 200

On bench_viewer.py's logdir (3 runs x 1,000 steps x 4 JPEGs of 256x256; made there when missing), with
`tbimg serve` on 127.0.0.1 and Debian's Chromium driven by Playwright: the slider is moved to a random step
(its value set and its `input` event sent, as a drag does) and the time until every pane of the new step is
drawn is taken twice: inside the page (from the event to the last pane painted, `window.tbimgTimings`), and
from Python (from the call until the page says it shows that step). Medians and 95th percentiles.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_viewer import RUNS, STEPS, free_port, get, make_logdir

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"]
MOVE = "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input', { bubbles: true })); }"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, help="reuse this logdir (made there when missing)")
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="tbimg-viewer-bench-"))
    if not any(logdir.glob("run*/events.out.tfevents*")):
        make_logdir(logdir, STEPS, RUNS)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tbimg_cli", "serve", str(logdir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            try:
                get(f"http://127.0.0.1:{port}/data/plugin/tbimg/series")
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1200})
            page.goto(f"http://127.0.0.1:{port}/#tbimg")
            frame = page.frame_locator("iframe")
            frame.locator(".pane canvas").first.wait_for(timeout=120_000)
            frame.locator("body").evaluate("() => { window.tbimgTimings.length = 0; }")
            slider = frame.locator(".slider")
            chance = random.Random(0)
            outside: list[float] = []
            for _ in range(args.changes):
                index = chance.randrange(STEPS)
                while frame.locator(f".tbimg[data-shown='{index}']").count():
                    index = chance.randrange(STEPS)
                began = time.perf_counter()
                slider.evaluate(MOVE, index)
                frame.locator(f".tbimg[data-shown='{index}']").wait_for()
                outside.append((time.perf_counter() - began) * 1000)
            panes = frame.locator(".pane canvas").count()
            inside = frame.locator("body").evaluate("() => window.tbimgTimings.slice()")
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"{args.changes} step changes, {panes} panes drawn per step, Chromium {CHROMIUM}")
    for name, values in (("in the page", inside), ("from Python, Playwright's round trips included", outside)):
        median, p95 = statistics.median(values), percentile(values, 0.95)
        print(f"{name}: median {median:.1f} ms, p95 {p95:.1f} ms, max {max(values):.1f} ms")


if __name__ == "__main__":
    main()
