"""Where a `train-cm` epoch's logging time goes, measured from outside the product.

    python bench/train_probe.py [--epochs 5] [--data-dir DIR]

Runs `tbimg_cli.train.run` in this process with timers wrapped around the two
pieces of per-epoch logging: what holds the training thread up (the
callback's `on_epoch_end`: predicting the test set and queueing the epoch) and
what the worker thread spends drawing and writing (`write_summaries`). Prints one JSON object; `bench_train.py` runs it once.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DATA_DIR  # noqa: E402


def timed(function, into: list[float]):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - started)

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    args = parser.parse_args()

    from tbimg_cli import confusion, train

    blocking: list[float] = []
    worker: list[float] = []
    train._import_tensorflow(verbose=False)  # so that the callback module can be imported and timed
    from tbimg_cli import keras_callback

    callback = keras_callback.ConfusionMatrixCallback
    callback.on_epoch_end = timed(callback.on_epoch_end, blocking)
    confusion.write_summaries = timed(confusion.write_summaries, worker)
    settings = train.TrainSettings(epochs=args.epochs, data_dir=args.data_dir, logdir=Path(tempfile.mkdtemp()))
    result = train.run(settings)
    epochs = [e.seconds for e in result.epochs]
    print(json.dumps({"epoch_seconds": epochs, "blocking_seconds": blocking, "worker_seconds": worker}))


if __name__ == "__main__":
    main()
