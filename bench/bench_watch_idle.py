"""What an idle `tbimg log --watch` costs (issue 25): CPU seconds over a quiet minute, 20,000 files logged.

    python bench/bench_watch_idle.py --files 20000 --seconds 30 --runs 3

One process per run: log the folder, then watch it with nothing new arriving, and count the CPU time
the watch takes (the first listing and every rescan included). The figure to compare is the same run
on an earlier checkout (`--source DIR`, a checkout's root on PYTHONPATH), since no other tool watches
a folder into TensorBoard; medians over `--runs`, alternating when a source is given.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import _thread, sys, threading, time
from tbimg_cli.images import sources
folder, run, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
session = sources.LogSession(sources.LogSettings(paths=(folder,)), run, folder)
session.log_present()
threading.Timer(seconds, _thread.interrupt_main).start()
began = time.process_time()
session.watch()
print(time.process_time() - began)
"""


def make_folder(folder: Path, files: int) -> None:
    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(buffer, "PNG")
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        (folder / f"frame_{index:05d}.png").write_bytes(buffer.getvalue())


def idle_cpu(source: str | None, folder: Path, seconds: float) -> float:
    env = dict(os.environ)
    if source:
        env["PYTHONPATH"] = source
    with tempfile.TemporaryDirectory() as run:
        out = subprocess.run(  # run from the scratch folder: `-c` puts the current folder first on sys.path
            [sys.executable, "-c", PROBE, str(folder), run, str(seconds)],
            env=env,
            cwd=run,
            capture_output=True,
            text=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", help="an earlier checkout to compare with (its root)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "frames"
        make_folder(folder, args.files)
        contenders = {"this checkout": None, **({"--source": args.source} if args.source else {})}
        found: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.runs):
            for name, source in contenders.items():
                found[name].append(idle_cpu(source, folder, args.seconds))
        for name, values in found.items():
            median = statistics.median(values)
            share = 100 * median / args.seconds
            print(f"{name}: {median:.2f} CPU s in {args.seconds:.0f} s idle ({share:.1f}% of a core)")


if __name__ == "__main__":
    main()
