"""Your own images into TensorBoard (issue 19): `ImageLogger` and `tbimg log` against tensorboardX and TensorFlow.

    pip install tensorboardX && python bench/bench_own_images.py --runs 5

Three comparisons, each contender in a fresh process, alternating, medians over `--runs` rounds:

1. Blocking: how long one `log` call of a 256x256x3 uint8 array holds the caller, in a training loop that
   spends ~10 ms of CPU per step: `ImageLogger.log` against tensorboardX's `add_image(dataformats="HWC")` and
   `tf.summary.image` (both encode before they return).
2. Throughput: 1,000 such arrays logged back to back, until the writer is closed (everything on disk).
3. A folder of 1,000 640x480 JPEGs, end to end as a user runs each: `tbimg log DIR` against a TensorFlow
   script (read, decode, `tf.summary.image`) and a tensorboardX script (Pillow, `add_image`). Then the
   peak RSS of `tbimg log` on 10,000 such files.

The arrays are photograph-like (smooth shapes, fine noise), 16 of them in turn, so that neither zlib nor
Pillow meets the same bytes twice in a row.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PYTHON, QUIET_TF, TBIMG, alternate, print_table, row, run_measured, save

PICTURES = """
import numpy as np

def pictures(count, height, width, seed=0):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    out = []
    for _ in range(count):
        f = rng.uniform(2, 9, 3)
        base = np.stack([np.sin(f[c] * x + 3 * y * (c + 1)) + np.cos(f[c] * y * x * 4) for c in range(3)], -1)
        noisy = 100 + 60 * base + rng.normal(0, 6, (height, width, 3))
        out.append(np.clip(noisy, 0, 255).astype(np.uint8))
    return out
"""

CALLER = (
    PICTURES
    + """
import json, sys, tempfile, time

way, mode, calls = sys.argv[1], sys.argv[2], int(sys.argv[3])
images = pictures(16, 256, 256)
logdir = tempfile.mkdtemp()
weights = np.random.default_rng(1).random((300, 300))

def training_step():  # about 10 ms of CPU, as a small model's step takes
    for _ in range(4):
        weights @ weights

if way == "tbimg":
    from tbimg_cli import ImageLogger
    writer = ImageLogger(logdir)
    log = lambda image, step: writer.log("samples", image, step)
    close = writer.close
elif way == "tensorboardx":
    from tensorboardX import SummaryWriter
    writer = SummaryWriter(logdir)
    log = lambda image, step: writer.add_image("samples", image, step, dataformats="HWC")
    close = writer.close
else:
    import tensorflow as tf
    writer = tf.summary.create_file_writer(logdir)
    writer.set_as_default()
    log = lambda image, step: tf.summary.image("samples", image[None], step=step)
    close = writer.close
log(images[0], 0)  # first call: imports, threads, file
blocked = []
started = time.perf_counter()
for step in range(1, calls + 1):
    if mode == "loop":
        training_step()
    before = time.perf_counter()
    log(images[step % 16], step)
    blocked.append(time.perf_counter() - before)
close()
total = time.perf_counter() - started
print(json.dumps({"blocked_median_s": sorted(blocked)[len(blocked) // 2], "total_s": total, "calls": calls}))
"""
)

MAKE_FOLDER = (
    PICTURES
    + """
import sys
from PIL import Image
folder, count = sys.argv[1], int(sys.argv[2])
for i, image in enumerate(pictures(count, 480, 640, seed=2)):
    Image.fromarray(image).save(f"{folder}/frame_{i:05d}.jpg", quality=90)
"""
)

TF_FOLDER = """
import os, sys
import tensorflow as tf
folder, logdir = sys.argv[1], sys.argv[2]
with tf.summary.create_file_writer(logdir).as_default():
    for step, name in enumerate(sorted(os.listdir(folder))):
        image = tf.io.decode_image(tf.io.read_file(os.path.join(folder, name)), channels=3)
        tf.summary.image("frames", image[None], step=step)
"""

TBX_FOLDER = """
import os, sys
import numpy as np
from PIL import Image
from tensorboardX import SummaryWriter
folder, logdir = sys.argv[1], sys.argv[2]
with SummaryWriter(logdir) as writer:
    for step, name in enumerate(sorted(os.listdir(folder))):
        with Image.open(os.path.join(folder, name)) as image:
            writer.add_image("frames", np.asarray(image.convert("RGB")), step, dataformats="HWC")
"""


def caller_cases(mode: str, calls: int) -> dict[str, dict]:
    return {
        way: {"cmd": [PYTHON, "-c", CALLER, way, mode, str(calls)], "env": QUIET_TF}
        for way in ("tbimg", "tensorboardx", "tf.summary.image")
    }


def folder_cases(folder: Path, scratch: Path) -> dict[str, dict]:
    """Each case writes into a fresh folder of `scratch` (its name is made per run by the shell)."""
    out = f'"$(mktemp -d -p {scratch})"'
    return {
        "tbimg log": {"cmd": ["sh", "-c", f"{TBIMG[0]} log {folder} --logdir {out}"]},
        "tf.summary.image": {"cmd": ["sh", "-c", f'{PYTHON} -c "$0" {folder} {out}', TF_FOLDER], "env": QUIET_TF},
        "tensorboardx": {"cmd": ["sh", "-c", f'{PYTHON} -c "$0" {folder} {out}', TBX_FOLDER]},
    }


def medians(result: dict, key: str) -> float:
    return statistics.median(json.loads(out)[key] for out in result["stdout"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--folder-runs", type=int, default=3, help="rounds of the folder comparison (slow peers)")
    parser.add_argument("--calls", type=int, default=200, help="log calls in the blocking comparison")
    args = parser.parse_args()

    print("1. blocking, in a training loop", file=sys.stderr)
    loop = alternate(caller_cases("loop", args.calls), args.runs)
    blocked = {name: medians(result, "blocked_median_s") for name, result in loop.items()}
    print("2. throughput, 1,000 arrays", file=sys.stderr)
    burst = alternate(caller_cases("burst", 1000), args.runs)
    rate = {name: 1000 / medians(result, "total_s") for name, result in burst.items()}

    scratch = Path(tempfile.mkdtemp(prefix="bench-own-images-"))
    try:
        folder = scratch / "frames"
        folder.mkdir()
        run_measured([PYTHON, "-c", MAKE_FOLDER, str(folder), "1000"])
        folder_bytes = sum(path.stat().st_size for path in folder.iterdir())
        print("3. a folder of 1,000 JPEGs", file=sys.stderr)
        folder_result = alternate(folder_cases(folder, scratch), args.folder_runs)
        seconds = {name: result["median_s"] for name, result in folder_result.items()}
        many = scratch / "many"
        many.mkdir()
        for i in range(10_000):
            os.link(folder / f"frame_{i % 1000:05d}.jpg", many / f"frame_{i:05d}.jpg")
        peak = [
            run_measured([*TBIMG, "log", str(many), "--logdir", str(scratch / f"many-out-{k}")])[1] for k in range(2)
        ]
        print("   10,000 files: peak RSS", peak, file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    ours = blocked["tbimg"]

    def faster(label: str, measured: str, ratio: float, minimum: float) -> str:
        return row(label, f"{measured} ({ratio:.1f}x)", f">= {minimum:g}x", ratio >= minimum)

    slowdown = {way: seconds[way] / seconds["tbimg log"] for way in ("tf.summary.image", "tensorboardx")}
    rows = [
        row("ImageLogger.log, blocked per call", f"{ours * 1e6:,.0f} µs"),
        row("tensorboardX add_image, blocked", f"{blocked['tensorboardx'] * 1e3:.2f} ms"),
        row("tf.summary.image, blocked", f"{blocked['tf.summary.image'] * 1e3:.2f} ms"),
        row(
            "blocked: tbimg / tensorboardX",
            f"1/{blocked['tensorboardx'] / ours:.0f}",
            "<= 1/20",
            blocked["tensorboardx"] / ours >= 20,
        ),
        row("1,000 arrays to close(): tbimg", f"{rate['tbimg']:,.0f} img/s"),
        *(
            faster(f"  {way}", f"{rate[way]:,.0f} img/s", rate["tbimg"] / rate[way], 2)
            for way in ("tensorboardx", "tf.summary.image")
        ),
        row("tbimg log, 1,000 640x480 JPEGs", f"{seconds['tbimg log']:.2f} s ({folder_bytes / 2**20:.0f} MiB)"),
        *(faster(f"  {way} script", f"{seconds[way]:.1f} s", slowdown[way], 20) for way in slowdown),
        row("tbimg log, 10,000 files: peak RSS", f"{max(peak):.0f} MiB", "< 150 MB", max(peak) * 2**20 < 150e6),
    ]
    print_table("Your own images (issue 19)", rows)
    save(
        "bench_own_images",
        {
            "runs": args.runs,
            "blocked_median_s": blocked,
            "images_per_second": rate,
            "folder_seconds": seconds,
            "folder_mib": folder_bytes / 2**20,
            "peak_rss_10000_files_mib": peak,
            "cases": {**{f"loop {k}": v for k, v in loop.items()}, **{f"burst {k}": v for k, v in burst.items()}},
        },
    )


if __name__ == "__main__":
    main()
