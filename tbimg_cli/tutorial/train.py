"""`train-cm`: the tutorial's classifier, with scalars and a confusion matrix every epoch.

The only module that imports TensorFlow, and only inside `run`. Run layout
(one run directory under the tutorial's `image` folder):

    <run>/train, <run>/validation   Keras's TensorBoard callback: loss and accuracy
    <run>/cm                        `ConfusionMatrixCallback`: the matrix, its table, the gallery
                                    of mistakes, per-class accuracy and precision

Faster than the tutorial without changing what is learned: the same model,
optimiser and batch size, but Keras runs `classifier.STEPS_PER_EXECUTION` batches per call
into TensorFlow, images stay uint8 until a tf.data pipeline scales each batch
to float32 in [0, 1] (a quarter of the memory of a float copy of the training
set), validation comes from the confusion matrix's predictions (one pass over
the test set per epoch, in large batches), and the figures are drawn on a
worker thread while the next epoch trains.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from tbimg_cli import shortcuts
from tbimg_cli.errors import InputError, UploadError
from tbimg_cli.events import storage
from tbimg_cli.events.runs import DEFAULT_LOGDIR, TRAINING_FOLDER, new_run_dir
from tbimg_cli.tutorial import classifier, data

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from tbimg_cli.tutorial.download import BytesCallback

# (train images, train labels, test images, test labels)
TrainingArrays = tuple["NDArray[np.uint8]", "NDArray[np.uint8]", "NDArray[np.uint8]", "NDArray[np.uint8]"]

EVAL_BATCH_SIZE = 2048


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 5
    batch_size: int = 32
    seed: int | None = None
    limit_train: int | None = None
    limit_test: int | None = None  # validate (and explore) on the first N test images only
    max_misclassified: int = 25
    data_dir: Path | None = None
    offline: bool = False
    logdir: str | Path = DEFAULT_LOGDIR
    run_name: str | None = None
    verbose: bool = False
    strategy: str = "default"  # or "mirrored", "multi-worker" (reads TF_CONFIG)
    on_download: BytesCallback | None = None  # progress of a Fashion-MNIST download, if one is needed


@dataclass
class EpochRecord:
    epoch: int  # counted from 1, as people count
    step: int  # TensorBoard's step for this epoch's summaries (from 0, as Keras logs them)
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    run_dir: str | Path  # a URL for a bucket
    logdir: str | Path
    tags: list[str]
    epochs: list[EpochRecord] = field(default_factory=list)
    interrupted: bool = False
    writes_logs: bool = True  # False on a multi-worker run's non-chief workers
    # Ctrl-C pressed after the last batch, while fit was finishing: too late to interrupt training, and
    # swallowed by `_CtrlCAtBatchEnd`; it still means "stop", so `--serve` must not wait for another.
    ctrl_c_after_training: bool = False
    # A bucket still unreachable at the end: the one line naming the spool folder (the results still stand).
    upload_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "logdir": str(self.logdir),
            "tags": self.tags,
            "epochs": [asdict(e) for e in self.epochs],
            "test_accuracy": self.epochs[-1].val_accuracy if self.epochs else None,
            "interrupted": self.interrupted,
            "writes_logs": self.writes_logs,
            **({"upload_error": self.upload_error} if self.upload_error else {}),
        }


class TrainingObserver(Protocol):
    """What `run` reports while it trains (`output.TrainingProgress` draws it as progress bars)."""

    def training_started(self, epochs: int, steps_per_epoch: int) -> None: ...

    def epoch_started(self, epoch: int) -> None: ...

    def batch_done(self, batch: int, logs: Mapping[str, Any]) -> None: ...

    def epoch_done(self, epoch: int, logs: Mapping[str, Any]) -> None: ...

    def training_ended(self) -> None: ...


class _Unobserved:
    """A `TrainingObserver` that hears nothing."""

    def training_started(self, epochs: int, steps_per_epoch: int) -> None:
        pass

    def epoch_started(self, epoch: int) -> None:
        pass

    def batch_done(self, batch: int, logs: Mapping[str, Any]) -> None:
        pass

    def epoch_done(self, epoch: int, logs: Mapping[str, Any]) -> None:
        pass

    def training_ended(self) -> None:
        pass


def run(
    settings: TrainSettings,
    observer: TrainingObserver | None = None,
    on_run_created: Callable[[str | Path], None] | None = None,
) -> TrainResult:
    """Train and log; Ctrl-C ends training early with everything written so far intact.

    The data files are found and checked and the run folder claimed before
    TensorFlow is imported, so a missing file or an unwritable logdir fails in
    milliseconds, not after TensorFlow's import; the images are decompressed while
    it imports. Interrupted before the first epoch ends, nothing is kept.
    Under `--strategy multi-worker` only the chief writes; the other workers
    train in a throwaway folder.
    """
    if settings.strategy == "multi-worker" and not os.environ.get("TF_CONFIG"):
        raise InputError("--strategy multi-worker needs TF_CONFIG describing the cluster and this worker's task")
    classifier.require_tensorflow(legacy_keras=settings.strategy == "multi-worker")
    observer = observer or _Unobserved()
    shortcuts.cap_malloc_arenas()
    files = _locate(settings)
    chief = settings.strategy != "multi-worker" or classifier.is_chief(os.environ.get("TF_CONFIG"))
    logdir = settings.logdir if chief else tempfile.mkdtemp(prefix="tbimg-worker-")
    try:
        reader = ThreadPoolExecutor(1, thread_name_prefix="tbimg-data")
        upload_failures: list[str] = []
        with reader, _run_folder(logdir, settings.run_name, upload_failures) as (run_dir, location):
            # Decompressing the images (zlib lets go of the GIL) overlaps TensorFlow's import;
            # only `_train` holds the arrays, so that it can let them go.
            result = _train(
                settings,
                observer,
                on_run_created if chief else None,
                (run_dir, location),
                reader.submit(_read, files, settings.limit_train, settings.limit_test),
            )
            result.tags = _tags_written(run_dir)
        result.upload_error = upload_failures[0] if upload_failures else None
    finally:
        if not chief:
            shutil.rmtree(logdir, ignore_errors=True)
    result.logdir = settings.logdir if storage.is_url(settings.logdir) else Path(settings.logdir)
    result.writes_logs = chief
    return result


@contextlib.contextmanager
def _run_folder(
    logdir: str | Path, run_name: str | None, upload_failures: list[str]
) -> Iterator[tuple[Path, str | Path]]:
    """(the local folder Keras and tbimg write, where the run shows): the same folder, or for a bucket
    a staging folder whose new records are uploaded as new objects every few seconds, at each epoch's
    end and at the end (`mirror.Mirror`), since TensorFlow's writer cannot write to most buckets and
    rewrites whole files on the others. A bucket still failing at the end leaves its line in
    `upload_failures`, so that training's results are reported before it."""
    with new_run_dir(logdir, TRAINING_FOLDER, run_name) as run_dir:
        if not storage.is_url(run_dir):
            yield run_dir, run_dir
            return
        staging = storage.staged(run_dir)
        try:
            yield staging, run_dir
        except BaseException:
            with contextlib.suppress(UploadError):  # the error under way matters more
                storage.release(run_dir)
            raise
        try:
            storage.release(run_dir)
        except UploadError as exc:
            upload_failures.append(str(exc))


def _train(
    settings: TrainSettings,
    observer: TrainingObserver,
    on_run_created: Callable[[str | Path], None] | None,
    folders: tuple[Path, str | Path],
    arrays: Future[TrainingArrays],
) -> TrainResult:
    run_dir, location = folders
    tf, keras = classifier.import_tensorflow(verbose=settings.verbose, legacy_keras=settings.strategy == "multi-worker")

    train_images, train_labels, test_images, test_labels = arrays.result()
    del arrays  # from here on the images live only in TensorFlow's copies (below): a lower peak

    if settings.seed is not None:
        keras.utils.set_random_seed(settings.seed)
    strategy = classifier.distribute_strategy(tf, settings.strategy)
    steps = -(-len(train_images) // settings.batch_size)
    with strategy.scope():
        model = classifier.build_model(keras, steps_per_execution=classifier.steps_per_execution(steps))
    train_batches = classifier.batches(
        tf, train_images, train_labels, settings.batch_size, shuffle=True, seed=settings.seed
    )
    test_batches = classifier.batches(tf, test_images, test_labels, EVAL_BATCH_SIZE)
    del train_images, train_labels, test_images, test_labels
    result = TrainResult(location, Path(settings.logdir), [])
    if on_run_created is not None:
        on_run_created(location)
    board = keras.callbacks.TensorBoard(log_dir=str(run_dir), write_graph=False)
    confusion, validation_data = _confusion_callback(keras, board, run_dir, test_batches, settings.max_misclassified)
    ctrl_c = _CtrlCAtBatchEnd()
    hooks = _TrainingHooks(observer, result, ctrl_c)
    if isinstance(location, str):  # a bucket: upload at each epoch's edges (the last epoch's matrix too)
        hooks.at_epoch_edges = lambda: storage.flush_soon(location)
    epoch_hooks = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: hooks.epoch_begin(epoch),
        on_train_batch_end=lambda batch, logs: hooks.batch_end(batch, logs or {}),
        on_epoch_end=lambda epoch, logs: hooks.epoch_end(epoch, logs or {}),
    )
    observer.training_started(settings.epochs, steps)
    try:
        with ctrl_c:
            model.fit(
                train_batches,
                epochs=settings.epochs,
                shuffle=False,  # the pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
                verbose=0,
                validation_data=validation_data,
                callbacks=[confusion, board, epoch_hooks],  # `confusion` may validate: before `board` logs
            )
        result.ctrl_c_after_training = ctrl_c.pressed
    except KeyboardInterrupt:
        result.interrupted = True
        board.on_train_end()  # Keras only closes its writers when training ends normally
    except tf.errors.OpError as exc:
        # TensorFlow's own event writer reports a full disk as an OpError; make it the OSError
        # it is, so the run folder is cleaned up like any other writer's.
        if "No space left on device" in str(exc):
            raise OSError(errno.ENOSPC, "No space left on device") from exc
        raise
    finally:
        observer.training_ended()
        confusion.close()
    if result.interrupted and not result.epochs:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise KeyboardInterrupt("Interrupted before the first epoch ended; nothing was kept.")
    return result


def _confusion_callback(
    keras: Any, board: Any, run_dir: Path, test_batches: Any, max_misclassified: int
) -> tuple[Any, Any]:
    """The confusion-matrix callback, and the validation data `fit` must read itself (None when the callback validates).

    Validation comes from the matrix's own predictions when Keras's TensorBoard
    callback can be told of it (`shortcuts.can_report_validation`): one pass
    over the test set per epoch instead of two. Otherwise `fit` validates.
    """
    from tbimg_cli.tutorial.data import CLASS_NAMES

    if shortcuts.can_report_validation(board):
        from tbimg_cli.tutorial.one_pass_validation import ValidationAndConfusionMatrixCallback

        one_pass = ValidationAndConfusionMatrixCallback(
            run_dir,
            test_batches,
            CLASS_NAMES,
            board=board,
            max_misclassified=max_misclassified,
            batch_size=EVAL_BATCH_SIZE,
        )
        return one_pass, None
    from tbimg_cli.confusion.keras_callback import ConfusionMatrixCallback

    callback = ConfusionMatrixCallback(
        run_dir, test_batches, CLASS_NAMES, max_misclassified=max_misclassified, batch_size=EVAL_BATCH_SIZE
    )
    return callback, test_batches


class _CtrlCAtBatchEnd:
    """Turn Ctrl-C during training into a KeyboardInterrupt at the next batch end.

    A KeyboardInterrupt raised wherever the signal lands can land inside
    TensorFlow's own Python code (tracing the first step, building a dataset
    iterator), which then breaks in odd ways or crashes the process. Here the
    signal only sets a flag, and the interrupt is raised from a Keras callback,
    between steps, where unwinding is safe. A second Ctrl-C interrupts at once.
    """

    def __init__(self):
        self.pressed = False
        self._previous = None

    def __enter__(self) -> _CtrlCAtBatchEnd:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.pressed = True
        signal.signal(signal.SIGINT, self._previous)  # the next Ctrl-C is an ordinary one

    def raise_if_pressed(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt


def _tags_written(run_dir: Path) -> list[str]:
    """Every tag in the run, read back from its event files: what the user will find in TensorBoard."""
    from tbimg_cli.logs.inspection import inspect_logdir

    return sorted({tag.tag for tag in inspect_logdir(run_dir).tags})


class _TrainingHooks:
    """Times each epoch, records its metrics, tells the observer, and stops at a batch end on Ctrl-C."""

    def __init__(self, observer, result, ctrl_c):
        self.observer = observer
        self.result = result
        self.ctrl_c = ctrl_c
        self._started = 0.0

    at_epoch_edges: Callable[[], None] = staticmethod(lambda: None)

    def epoch_begin(self, epoch: int) -> None:
        self.at_epoch_edges()
        self._started = time.perf_counter()
        self.observer.epoch_started(epoch)

    def batch_end(self, batch: int, logs: dict) -> None:
        self.ctrl_c.raise_if_pressed()
        self.observer.batch_done(batch, logs)

    def epoch_end(self, epoch: int, logs: dict) -> None:
        self.result.epochs.append(
            EpochRecord(
                epoch=epoch + 1,
                step=epoch,
                loss=float(logs.get("loss", float("nan"))),
                accuracy=float(logs.get("accuracy", float("nan"))),
                val_loss=float(logs.get("val_loss", float("nan"))),
                val_accuracy=float(logs.get("val_accuracy", float("nan"))),
                seconds=time.perf_counter() - self._started,
            )
        )
        self.observer.epoch_done(epoch, logs)
        self.at_epoch_edges()


def _locate(settings: TrainSettings) -> tuple[data.SplitFiles, data.SplitFiles]:
    """Both splits found, checked and if need be downloaded before TensorFlow's import,
    so a data problem fails in milliseconds."""
    train = data.locate("train", settings.data_dir, offline=settings.offline, on_download=settings.on_download)
    test = data.locate("test", settings.data_dir, offline=settings.offline, on_download=settings.on_download)
    for split in (train, test):
        split.count()  # raises when a split's image and label files disagree
    return train, test


def _read(
    files: tuple[data.SplitFiles, data.SplitFiles], limit_train: int | None, limit_test: int | None = None
) -> TrainingArrays:
    """(train images, train labels, test images, test labels) of the located files."""
    train, test = files
    train_images, test_images = train.images(limit_train), test.images(limit_test)
    return train_images, train.labels()[: len(train_images)], test_images, test.labels()[: len(test_images)]
