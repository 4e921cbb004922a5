"""Regenerate sample_logs/: one run of each writing command, with fixed names.

    python scripts/make_sample_logs.py [--out sample_logs] [--data-dir DIR]

Runs the installed tbimg exactly as a user would (`python -m tbimg_cli`), so
the committed logs are the tool's own output. A test regenerates them into a
temporary folder and compares runs, tags, steps and image sizes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

# (run folder under the logdir, command line)
RUNS = [
    ("train_data/single", ["single", "--index", "0", "--run-name", "single"]),
    ("train_data/grid-25", ["grid", "--count", "25", "--run-name", "grid-25"]),
    ("plots/plot-25", ["plot", "--count", "25", "--run-name", "plot-25"]),
    (
        "image/train-cm",
        [
            "train-cm",
            "--epochs",
            "3",
            "--limit-train",
            "6000",
            "--limit-test",
            "500",
            "--seed",
            "0",
            "--run-name",
            "train-cm",
        ],
    ),
]


def regenerate(out: Path, data_dir: str | None) -> None:
    extra = ["--logdir", str(out)] + (["--data-dir", data_dir] if data_dir else [])
    for run, args in RUNS:
        shutil.rmtree(out / run, ignore_errors=True)
        subprocess.run(
            [sys.executable, "-m", "tbimg_cli", *args, *extra, "--json"], check=True, stdout=subprocess.DEVNULL
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sample_logs")
    parser.add_argument("--data-dir", default=os.environ.get("TBIMG_DATA_DIR"))
    args = parser.parse_args()
    regenerate(args.out, args.data_dir)
    print(f"regenerated {len(RUNS)} runs in {args.out}")


if __name__ == "__main__":
    main()
