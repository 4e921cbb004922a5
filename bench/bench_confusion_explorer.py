"""The confusion explorer's cost (issue 27): train-cm's time and log size, and a slider move in Chromium.

    pip install -e '.[train,test]' && apt-get install chromium
    python bench/bench_confusion_explorer.py --data-dir ../shared/fashion-mnist --runs 3

1. `tbimg train-cm --epochs 5` on all of Fashion-MNIST (60,000 training and 10,000 test images), alternating
   with the same command where the explorer's tensors are not written (its writing function replaced by
   one that does nothing: the way train-cm was before the explorer): the process's wall time and the `cm`
   run's size, medians of `--runs` pairs.
2. The confusion view in headless Chromium on `tbimg serve`: a matrix of 10 classes (10,000 examples) and
   one of 1,000 classes (50,000 examples), 10 steps each; the slider moved to a random step `--moves`
   times, the time from the move to the matrix drawn (in the page, `window.tbimgCmTimings`): median, p95.
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
from bench_viewer import free_port, get
from bench_viewer_browser import CHROMIUM, FLAGS, MOVE, percentile

WITHOUT_EXPLORER = (
    "import sys, tbimg_cli.confusion.matrix as m; m.write_explorer_data = lambda *a, **k: None; "
    "from tbimg_cli.cli import main; sys.argv[0] = 'tbimg'; main()"
)


def train(data_dir: Path, logs: Path, *, explorer: bool) -> tuple[float, float]:
    """(seconds, MiB of the cm run) of one train-cm --epochs 5."""
    command = ["-m", "tbimg_cli"] if explorer else ["-c", WITHOUT_EXPLORER]
    args = ["train-cm", "--epochs", "5", "--seed", "0", "--data-dir", str(data_dir), "--logdir", str(logs), "--json"]
    began = time.perf_counter()
    subprocess.run([sys.executable, *command, *args], check=True, stdout=subprocess.DEVNULL)
    took = time.perf_counter() - began
    (cm,) = [folder for folder in logs.rglob("cm") if folder.is_dir()]
    return took, sum(p.stat().st_size for p in cm.glob("*")) / 2**20


def write_matrices(logs: Path) -> None:
    import numpy as np

    from tbimg_cli import log_confusion_matrix

    rng = np.random.default_rng(0)
    for classes, examples in ((10, 10_000), (1000, 50_000)):
        truth = rng.integers(0, classes, examples)
        images = rng.integers(0, 256, (examples, 8, 8), dtype=np.uint8) if classes == 10 else None
        for step in range(10):
            right = rng.random(examples) < 0.5 + 0.04 * step
            predicted = np.where(right, truth, rng.integers(0, classes, examples))
            names = [f"class {k}" for k in range(classes)]
            log_confusion_matrix(logs / f"c{classes}", truth, predicted, step, names, images=images)


def slider_moves(logs: Path, moves: int) -> dict[str, tuple[float, float]]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tbimg_cli", "serve", str(logs), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    found = {}
    try:
        for _ in range(600):
            try:
                get(f"http://127.0.0.1:{port}/data/plugin/tbimg/confusions")
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for run in ("c10/cm", "c1000/cm"):
                fragment = f"view=confusion&cm_run={run.replace('/', '%2F')}&cm_tag=Confusion+Matrix&cm_step=9"
                page.goto(f"http://127.0.0.1:{port}/#tbimg")
                page.wait_for_timeout(500)
                page.evaluate(
                    "f => { const w = document.querySelector('iframe').contentWindow; w.location.hash = f;"
                    " w.location.reload(); }",
                    fragment,
                )
                frame = page.frame_locator("iframe")
                frame.locator(".tbimg.cm[data-shown='9']").wait_for(timeout=120_000)
                frame.locator("body").evaluate("() => { window.tbimgCmTimings.length = 0; }")
                chance = random.Random(0)
                slider = frame.locator(".cm-slider")
                for _ in range(moves):
                    step = chance.randrange(10)
                    while frame.locator(f".tbimg.cm[data-shown='{step}']").count():
                        step = chance.randrange(10)
                    slider.evaluate(MOVE, step)
                    frame.locator(f".tbimg.cm[data-shown='{step}']").wait_for()
                timings = frame.locator("body").evaluate("() => window.tbimgCmTimings.slice()")
                found[run] = (statistics.median(timings), percentile(timings, 0.95))
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--moves", type=int, default=100)
    parser.add_argument("--skip-train", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tbimg-confusion-bench-"))
    if not args.skip_train:
        rows: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for n in range(args.runs):
            for explorer in (False, True) if n % 2 == 0 else (True, False):
                rows[explorer].append(train(args.data_dir, root / f"train-{n}-{explorer}", explorer=explorer))
        for explorer in (False, True):
            took = statistics.median(t for t, _ in rows[explorer])
            size = statistics.median(s for _, s in rows[explorer])
            state = "on" if explorer else "off"
            print(f"train-cm --epochs 5, explorer data {state}: {took:.1f} s, cm run {size:.2f} MiB")
        ratio = statistics.median(t for t, _ in rows[True]) / statistics.median(t for t, _ in rows[False])
        print(f"time with / without: {ratio:.3f}")
    write_matrices(root / "logs")
    for run, (median, p95) in slider_moves(root / "logs", args.moves).items():
        print(f"{run}: slider move to the matrix drawn, median {median:.1f} ms, p95 {p95:.1f} ms")


if __name__ == "__main__":
    main()
