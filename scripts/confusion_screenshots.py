"""README's pictures of the confusion explorer, on Fashion-MNIST: `python scripts/confusion_screenshots.py`.

Trains the tutorial's classifier with `tbimg train-cm --epochs 3 --limit-train 6000 --seed 0` (TensorFlow:
the `[train]` extra) into a temporary logdir, serves it with `tbimg serve`, and has headless Chromium
(Debian's `chromium`, driven by Playwright) open the tab's confusion view: the last epoch with its most
confused cell clicked, then the last epoch against the first with the Shirt cell's fixed and newly wrong
examples. The shots go into docs/.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from viewer_screenshots import CHROMIUM, FLAGS, REPO, free_port

SHIRT = 6


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "fashion-mnist")
    args = parser.parse_args()
    logs = Path(tempfile.mkdtemp(prefix="tbimg-confusion-shots-")) / "logs"
    train = [sys.executable, "-m", "tbimg_cli", "train-cm", "--epochs", "3", "--limit-train", "6000"]
    train += ["--seed", "0", "--data-dir", str(args.data_dir), "--logdir", str(logs), "--run-name", "fashion"]
    subprocess.run(train, check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "tbimg_cli", "serve", str(logs), "--port", str(port)])
    try:
        for _ in range(300):
            try:
                listed = json.loads(
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/tbimg/confusions").read()
                )
                if listed["matrices"]:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.goto(f"http://127.0.0.1:{port}/#tbimg")
            frame = page.frame_locator("iframe")
            frame.locator(".cm-open:visible").wait_for(timeout=60_000)
            frame.locator(".cm-open").click()
            frame.locator(".tbimg.cm[data-shown]").wait_for()
            frame.locator(".cm-pairs li").first.click()  # the most confused pair
            frame.locator(".cm-cell figure img").first.wait_for()
            page.wait_for_timeout(800)
            page.screenshot(path=str(REPO / "docs" / "confusion-explorer.png"))
            vs = frame.locator(".vs-step")
            vs.fill("0")
            vs.press("Enter")
            frame.locator(".cm-readout", has_text="difference").wait_for()
            canvas = frame.locator(".cm-canvas")
            margin, cell, scale = canvas.evaluate(
                "c => [Number(c.dataset.margin), Number(c.dataset.cell), c.clientWidth / c.width]"
            )
            middle = (margin + SHIRT * cell + cell / 2) * scale
            canvas.click(position={"x": middle, "y": middle})
            frame.locator(f".cm-cell[data-shown='{SHIRT},{SHIRT}'] figure img").first.wait_for()
            page.wait_for_timeout(800)
            page.screenshot(path=str(REPO / "docs" / "confusion-compare.png"))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    for folder in sorted(logs.rglob("cm")):
        print(f"{folder.relative_to(logs)}: {sum(p.stat().st_size for p in folder.glob('*')) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
