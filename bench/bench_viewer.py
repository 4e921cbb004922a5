"""The tbimg tab against TensorBoard's image dashboard (issue 26): every step listed, and the server's memory.

    python -m venv /tmp/tb && /tmp/tb/bin/pip install tensorboard==2.21.0     # TensorBoard alone, no TensorFlow
    python bench/bench_viewer.py --tensorboard /tmp/tb/bin/tensorboard --runs 3

A logdir of 3 runs x 1,000 steps x 4 JPEG samples of 256x256 (made once, by tbimg's writer, photograph-like
so the JPEGs are of a real size), then, alternating, medians over `--runs`:

- `tbimg serve LOGDIR`: from the process's start until `series` and every run's `steps` list all 1,000
  steps; then the server's RSS, and again after 100 random steps' images were fetched; the same on hard
  links of the event files without tbimg's image indexes (a log another writer wrote: every record walked);
- TensorBoard with every step kept (`--samples_per_plugin images=1000`), its Rust loader
  (`--load_fast=true`) and its Python one (`--load_fast=false`): from start until its images route lists
  1,000 steps for every run; its RSS (the data server's added for the Rust loader).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

RUNS, STEPS, SAMPLES, SIZE = 3, 1000, 4, 256


def make_logdir(root: Path, steps: int, runs: int = RUNS) -> None:
    import numpy as np
    from PIL import Image

    from tbimg_cli.events.writer import EncodedImage, EventWriter

    rng = np.random.default_rng(0)
    base = [rng.random((SIZE // 8, SIZE // 8, 3)) for _ in range(8)]
    for run in range(runs):
        with EventWriter(root / f"run{run}") as writer:
            for step in range(steps):
                images = []
                for sample in range(SAMPLES):
                    small = base[(step + sample + run) % len(base)]
                    pixels = np.kron(small, np.ones((8, 8, 1))) * 200 + rng.random((SIZE, SIZE, 3)) * 55
                    buffer = io.BytesIO()
                    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=90)
                    images.append(EncodedImage(buffer.getvalue(), SIZE, SIZE, "jpeg"))
                writer.encoded_images("samples", images, step)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def rss_mb(pid: int) -> float:
    """The process's resident memory and its children's (TensorBoard's Rust data server is a child)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for one in pids:
        try:
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def wait_listed(check, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)  # finer than the differences measured
    raise TimeoutError("the server did not list every step in time")


def measure_tbimg(logdir: Path, steps: int, runs: int, python: str = sys.executable) -> dict[str, float]:
    port = free_port()
    began = time.monotonic()
    proc = subprocess.Popen(
        [python, "-m", "tbimg_cli", "serve", str(logdir), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/data/plugin/tbimg/"
    try:

        def listed() -> bool:
            series = json.loads(get(base + "series"))
            if len(series) < runs or any(s["steps"]["count"] < steps for s in series):
                return False
            for s in series:
                query = urllib.parse.urlencode({"run": s["run"], "tag": s["tag"]})
                if len(json.loads(get(base + "steps?" + query))) < steps:
                    return False
            return True

        wait_listed(listed, began + 600)
        found = {"listed_s": time.monotonic() - began, "rss_listed_mb": rss_mb(proc.pid)}
        chance = random.Random(1)
        for _ in range(100):
            query = {"run": f"run{chance.randrange(runs)}", "tag": "samples", "step": chance.randrange(steps)}
            for sample in range(SAMPLES):
                get(base + "image?" + urllib.parse.urlencode({**query, "sample": sample}))
        found["rss_shown_mb"] = rss_mb(proc.pid)
        return found
    finally:
        proc.terminate()
        proc.wait(30)


def measure_tensorboard(tensorboard: str, logdir: Path, steps: int, runs: int, load_fast: bool) -> dict[str, float]:
    port = free_port()
    began = time.monotonic()
    args = [tensorboard, "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"]
    args += ["--samples_per_plugin", f"images={steps}", "--load_fast", "true" if load_fast else "false"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/data/plugin/images/"
    try:

        def listed() -> bool:
            for run in range(runs):
                query = urllib.parse.urlencode({"run": f"run{run}", "tag": "samples", "sample": 0})
                if len(json.loads(get(base + "images?" + query))) < steps:
                    return False
            return True

        wait_listed(listed, began + 900)
        return {"listed_s": time.monotonic() - began, "rss_listed_mb": rss_mb(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(30)


def without_index(logdir: Path) -> Path:
    """The same event files (hard links) without tbimg's image indexes: what a log of another writer costs."""
    walked = logdir.with_name(logdir.name + "-no-index")
    for event_file in logdir.rglob("*tfevents*"):
        linked = walked / event_file.relative_to(logdir)
        if not linked.exists():
            linked.parent.mkdir(parents=True, exist_ok=True)
            os.link(event_file, linked)
    return walked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tensorboard", required=True, help="a `tensorboard` script of a venv without TensorFlow")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--run-count", type=int, default=RUNS, help="runs in the logdir (30: the 10x log)")
    parser.add_argument("--logdir", type=Path, help="reuse this logdir (made there when missing)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the tbimg install to serve with")
    parser.add_argument("--skip", action="append", default=[], choices=["rust", "python"], help="leave a loader out")
    args = parser.parse_args()
    logdir = args.logdir or Path(tempfile.mkdtemp(prefix="tbimg-viewer-bench-"))
    if not any(logdir.glob("run*/events.out.tfevents*")):
        made = time.monotonic()
        make_logdir(logdir, args.steps, args.run_count)
        size = sum(p.stat().st_size for p in logdir.rglob("*tfevents*")) / 2**20
        took = time.monotonic() - made
        shape = f"{args.run_count} runs x {args.steps} steps x {SAMPLES} JPEGs"
        print(f"logdir: {shape}, {size:.0f} MiB, made in {took:.0f} s")
    steps, runs = args.steps, args.run_count
    walked = without_index(logdir)
    contenders = {
        "tbimg serve (tbimg tab)": lambda: measure_tbimg(logdir, steps, runs, args.python),
        "tbimg serve, no image index (another writer's log)": lambda: measure_tbimg(walked, steps, runs, args.python),
        "TensorBoard, Rust loader": lambda: measure_tensorboard(args.tensorboard, logdir, steps, runs, True),
        "TensorBoard, Python loader": lambda: measure_tensorboard(args.tensorboard, logdir, steps, runs, False),
    }
    for skipped in args.skip:
        contenders.pop(f"TensorBoard, {skipped.capitalize()} loader")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    for _ in range(args.runs):
        for name, run in contenders.items():
            results[name].append(run())
    print(f"medians of {args.runs} alternating runs, {os.cpu_count()} cores")
    for name, rows in results.items():
        line = ", ".join(f"{key} {statistics.median(r[key] for r in rows):.2f}" for key in rows[0])
        print(f"{name}: {line}")


if __name__ == "__main__":
    main()
