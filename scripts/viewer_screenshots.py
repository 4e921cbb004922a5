"""README's pictures of the tbimg tab, on Fashion-MNIST: `python scripts/viewer_screenshots.py`.

A logdir like a denoising model's: four test images of four classes as three runs
would log them over 40 steps (`small` and `large` reconstructions whose noise fades at their own pace,
and the `clean` originals), plus a 16-bit single-channel tag (the images as 16-bit intensities, as a
microscope or depth sensor gives them). `tbimg serve` serves it; headless Chromium (Debian's `chromium`,
driven by Playwright) opens the tab and takes the shots into docs/.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic"]
PICKED = (0, 2, 22, 9)  # four test images, of four classes
STEPS = 40


def write_logdir(logs: Path) -> None:
    from tbimg_cli import log_images
    from tbimg_cli.tutorial import data

    subset = REPO / "tests" / "data" / "fashion-mnist-subset"
    images, _ = data.load("test", subset, offline=True, stop=max(PICKED) + 1)
    clean = images[list(PICKED)].astype(np.float32) / 255
    rng = np.random.default_rng(0)
    for step in range(STEPS):
        log_images(logs / "clean", "reconstruction", clean, step)
        for run, pace in (("small", 12.0), ("large", 5.0)):
            noise = rng.normal(0, 0.5 * np.exp(-step / pace) + 0.03, clean.shape)
            log_images(logs / run, "reconstruction", np.clip(clean + noise, 0, 1), step)
    intensity = (clean * 40000 + 1200 + rng.normal(0, 300, clean.shape)).clip(0, 65535).astype(np.uint16)
    log_images(logs / "clean", "intensity_16bit", intensity, 0)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    from playwright.sync_api import sync_playwright

    logs = Path(tempfile.mkdtemp(prefix="tbimg-viewer-shots-")) / "logs"
    write_logdir(logs)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tbimg_cli", "serve", str(logs), "--port", str(port)])
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/tbimg/series", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 980})
            page.goto(f"http://127.0.0.1:{port}/#tbimg")
            frame = page.frame_locator("iframe")
            frame.locator(".pane canvas").first.wait_for(timeout=60_000)
            frame.locator(".tag[data-tag='reconstruction']").click()
            frame.locator(".tag.selected", has_text="reconstruction").wait_for()
            frame.locator(".pane[data-bits='8'] canvas").first.wait_for()

            def at(step: int, mode: str) -> None:
                exact = frame.locator(".exact")
                exact.fill(str(step))
                exact.press("Enter")
                frame.locator(".mode").select_option(mode)
                frame.locator(f".tbimg[data-shown='{step}']").wait_for()
                page.wait_for_timeout(300)

            at(6, "side")
            page.screenshot(path=str(REPO / "docs" / "viewer-runs.png"))
            for run in ("clean",):
                frame.locator(f"input[data-run='{run}']").uncheck()
            at(6, "swipe")
            box = frame.locator(".pane.compare").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.5 + 1, box["y"] + 20)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.45, box["y"] + 20, steps=3)
            page.mouse.up()
            page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
            page.screenshot(path=str(REPO / "docs" / "viewer-swipe.png"))
            at(6, "diff")
            page.screenshot(path=str(REPO / "docs" / "viewer-difference.png"))
            frame.locator(".tag[data-tag='intensity_16bit']").click()
            frame.locator(".pane[data-bits='16'] canvas").first.wait_for()
            frame.locator(".cmap").select_option("magma")
            page.wait_for_timeout(300)
            box = frame.locator(".pane").first.bounding_box()
            page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.55)
            page.screenshot(path=str(REPO / "docs" / "viewer-16bit.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
