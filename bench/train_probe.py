"""Where one `train-cm` run's time goes, measured from outside the product.

    python bench/train_probe.py [--epochs 5] [--data-dir DIR]

Runs `tbimg_cli.tutorial.train.run` in this process with timers wrapped around its
parts: TensorFlow's import, each epoch, what holds the training thread up at
each epoch's end (the callback's `on_epoch_end`: predicting the test set,
the validation metrics, queueing the epoch), what the worker thread spends
drawing and writing (`write_summaries`), and the wait for the last epoch's
figures after training. Prints one JSON object; `bench_train.py` runs it once.
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
from common import DATA_DIR


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

    from tbimg_cli import shortcuts
    from tbimg_cli.confusion import matrix as confusion
    from tbimg_cli.tutorial import classifier, train

    shortcuts.claim_process()  # measured as the `tbimg` command runs it, process-wide shortcuts and all

    importing: list[float] = []
    blocking: list[float] = []
    worker: list[float] = []
    classifier.import_tensorflow = timed(classifier.import_tensorflow, importing)
    classifier.import_tensorflow(verbose=False)  # so that the callback module can be imported and timed
    from tbimg_cli.tutorial import one_pass_validation

    callback = one_pass_validation.ValidationAndConfusionMatrixCallback
    callback.on_epoch_end = timed(callback.on_epoch_end, blocking)
    confusion.write_summaries = timed(confusion.write_summaries, worker)

    class Clock(train._Unobserved):
        def epoch_done(self, epoch, logs):
            self.last_epoch_end = time.perf_counter()

        def training_ended(self):
            self.fit_end = time.perf_counter()

    clock = Clock()
    settings = train.TrainSettings(epochs=args.epochs, data_dir=args.data_dir, logdir=Path(tempfile.mkdtemp()))
    started = time.perf_counter()
    result = train.run(settings, clock)
    total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "import_seconds": importing[0],  # the first import, outside `run`; `run`'s own finds it done
                "epoch_seconds": [e.seconds for e in result.epochs],
                "blocking_seconds": blocking,
                "worker_seconds": worker,
                "after_last_epoch_seconds": clock.fit_end - clock.last_epoch_end,
                "run_seconds_without_import": total,
            }
        )
    )


if __name__ == "__main__":
    main()
