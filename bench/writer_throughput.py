"""In-process throughput of one 10,000-image summary: tbimg's writer or tf.summary.image.

    python bench/writer_throughput.py tbimg|tf [--runs 5]

Prints one JSON line: images per second for each run (the data is loaded and
the library imported before timing starts; only the write is timed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR  # noqa: E402

COUNT = 10_000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("who", choices=["tbimg", "tf"])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from tbimg_cli import data

    images, _ = data.load("test", DATA_DIR, stop=COUNT)
    images = images.reshape(-1, 28, 28, 1)
    rates = []
    if args.who == "tbimg":
        from tbimg_cli.writer import EventWriter

        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                with EventWriter(folder) as writer:
                    writer.image("10000 examples", images, step=0)
                rates.append(COUNT / (time.perf_counter() - started))
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                writer = tf.summary.create_file_writer(folder)
                with writer.as_default():
                    tf.summary.image("10000 examples", images, step=0, max_outputs=COUNT)
                writer.close()
                rates.append(COUNT / (time.perf_counter() - started))
    print(json.dumps({"who": args.who, "images_per_s": rates}))


if __name__ == "__main__":
    main()
