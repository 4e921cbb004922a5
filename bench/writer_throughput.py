"""In-process throughput of one image summary: tbimg's writer or tf.summary.image.

    python bench/writer_throughput.py tbimg|tf [--count 10000] [--runs 3]

The first COUNT training images (up to 60,000) in one summary. Prints one JSON
line: images per second for each run (the data is loaded and the library
imported before timing starts; only the write, closed file included, is timed).
`bench_images.py` runs it alternately for both peers.
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
from common import DATA_DIR


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("who", choices=["tbimg", "tf"])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from tbimg_cli.tutorial import data

    images, _ = data.load("train", DATA_DIR, stop=args.count)
    images = images.reshape(-1, 28, 28, 1)
    tag = f"{args.count} examples"
    rates = []
    if args.who == "tbimg":
        from tbimg_cli.events.writer import EventWriter

        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                with EventWriter(folder) as writer:
                    writer.image(tag, images, step=0)
                rates.append(args.count / (time.perf_counter() - started))
    else:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                writer = tf.summary.create_file_writer(folder)
                with writer.as_default():
                    tf.summary.image(tag, images, step=0, max_outputs=args.count)
                writer.close()
                rates.append(args.count / (time.perf_counter() - started))
    print(json.dumps({"who": args.who, "count": args.count, "images_per_s": rates}))


if __name__ == "__main__":
    main()
