"""Screenshots of TensorBoard showing what each tbimg command logs, for the README.

    python scripts/screenshots.py [--data-dir DIR] [--out docs]

Each command runs with `--serve` on its own fresh logdir and a free port;
headless Chromium (Debian's `chromium`) loads the images dashboard once the
data is there and saves a PNG. Look at the results before committing them:
they must show the images, not a loading page.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
SHOTS = [
    # (file, tbimg arguments, dashboard, window size)
    ("single.png", ["single", "--index", "0"], "images", "1200,700"),
    ("grid.png", ["grid", "--count", "25"], "images", "1400,900"),
    ("plot.png", ["plot", "--count", "25"], "images", "1200,760"),
    ("train-cm.png", ["train-cm", "--epochs", "5", "--seed", "0"], "images", "1300,1280"),
    ("train-cm-scalars.png", None, "scalars", "1400,900"),  # same server as the previous shot
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_data(url: str, timeout: float = 300) -> None:
    """Until the images dashboard has every tag, and the run has stopped growing."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "data/plugin/images/tags", timeout=5) as response:
                tags = json.loads(response.read())
            if tags and tags == last:
                return
            last = tags
        except OSError:
            pass
        time.sleep(3)
    raise SystemExit(f"no data at {url} after {timeout} s")


def screenshot(url: str, target: Path, size: str) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("headless Chromium is needed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={size}",
                "--virtual-time-budget=20000",
                f"--screenshot={target}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def serve(args: list[str], logdir: Path, data_dir: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    extra = ["--logdir", str(logdir), "--serve", "--port", str(port)] + (["--data-dir", data_dir] if data_dir else [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tbimg_cli", *args, *extra, "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if match := re.search(r"http://\S+?/", line):
            return proc, match.group(0)
    raise SystemExit(f"tbimg {' '.join(args)} did not start TensorBoard")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TBIMG_DATA_DIR"))
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    parser.add_argument("--only", choices=["own-images"], help="only this shot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.only == "own-images":
        own_images_shot(args.data_dir, args.out)
        return
    proc = url = None
    with tempfile.TemporaryDirectory() as work:
        for name, command, dashboard, size in SHOTS:
            if command is not None:
                if proc is not None:
                    stop(proc)
                logdir = Path(work) / Path(name).stem
                proc, url = serve(command, logdir, args.data_dir)
                wait_for_data(url)
            screenshot(f"{url}#{dashboard}", args.out / name, size)
            print(f"wrote {args.out / name}")
        stop(proc)
        export_last_confusion_matrix(logdir, args.out / "confusion-matrix.png")
        example_shots(Path(work) / "cnn", args.data_dir, args.out)
    own_images_shot(args.data_dir, args.out)


def own_images_shot(data_dir: str | None, out: Path) -> None:
    """`tbimg log samples/ --serve` on a folder of per-epoch PNGs a numpy training loop saved: the step slider."""
    import numpy as np
    from PIL import Image

    from tbimg_cli.tutorial import data

    images, labels = data.load("train", data_dir)
    x, one_hot = images.reshape(len(images), -1)[:6000] / 255, np.eye(10)[labels[:6000]]
    weights = np.zeros((784, 10))
    with tempfile.TemporaryDirectory() as work:
        samples = Path(work) / "samples" / "class_weights"
        samples.mkdir(parents=True)
        for epoch in range(1, 13):
            for batch in np.array_split(np.arange(len(x)), 40):
                scores = np.exp(x[batch] @ weights)
                weights -= 0.1 * x[batch].T @ (scores / scores.sum(1, keepdims=True) - one_hot[batch]) / len(batch)
            tiles = weights.T.reshape(2, 5, 28, 28).transpose(0, 2, 1, 3).reshape(56, 140)
            scaled = (tiles - tiles.min()) / (tiles.max() - tiles.min()) * 255
            Image.fromarray(np.kron(scaled, np.ones((4, 4))).astype(np.uint8)).save(samples / f"epoch_{epoch:03d}.png")
        proc, url = serve(["log", str(Path(work) / "samples")], Path(work) / "logs", None)
        try:
            wait_for_data(url)
            screenshot(f"{url}#images", out / "own-images.png", "1000,620")
            print(f"wrote {out / 'own-images.png'}")
        finally:
            stop(proc)


# The Keras CNN example (docs/examples/keras_cnn.py) with ConfusionMatrixCallback: its matrix and table.
EXAMPLE_SHOTS = [
    ("cnn-confusion-matrix.png", "images&tagFilter=Confusion", "1100,1100"),
    ("cnn-confusion-table.png", "text", "1300,620"),
]


def example_shots(logdir: Path, data_dir: str | None, out: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            str(REPO / "docs" / "examples" / "keras_cnn.py"),
            "--logdir",
            str(logdir),
            "--epochs",
            "3",
            *(["--data-dir", data_dir] if data_dir else []),
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "tensorboard"),
            "--logdir",
            str(logdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--samples_per_plugin",
            "images=100,text=100",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_data(url)
        for name, dashboard, size in EXAMPLE_SHOTS:
            screenshot(f"{url}#{dashboard}", out / name, size)
            print(f"wrote {out / name}")
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, which tbimg treats as Ctrl-C (SIGINT may be ignored in background jobs)."""
    proc.terminate()
    proc.wait(timeout=10)


def export_last_confusion_matrix(logdir: Path, target: Path) -> None:
    """The last epoch's matrix at full size, as `tbimg export` gives it back."""
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "tbimg_cli", "export", str(logdir), "--out", out, "--tag", "^Confusion Matrix$"],
            check=True,
            capture_output=True,
        )
        last = max(Path(out).rglob("step-*-0.png"), key=lambda p: int(p.name.split("-")[1]))
        shutil.copy(last, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
