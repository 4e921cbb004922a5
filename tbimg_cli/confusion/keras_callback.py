"""`ConfusionMatrixCallback`: the confusion-matrix logging of `train-cm` for any Keras model.

Importing this module imports Keras (a Keras callback must subclass
`keras.callbacks.Callback`), so `tbimg_cli` loads it only when
`tbimg_cli.ConfusionMatrixCallback` is first used. The drawing and writing
are `matrix.py`'s, on its worker thread.

Under `tf.distribute`: predictions are made on the whole validation set by
calling the model directly (no collective ops, so it cannot deadlock waiting
for other workers), and only the chief predicts and writes; the others do
nothing, so no duplicate or clashing event files appear. The callback works
with Keras 3 and with tf_keras (Keras 2), whose `fit` multi-worker training
needs until Keras 3's can run MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import keras
import numpy as np

from tbimg_cli.confusion.labels import class_ids_from_labels, displayable_images, evaluate
from tbimg_cli.confusion.matrix import DEFAULT_SUBDIR, BackgroundLogger, check_options
from tbimg_cli.errors import InputError, InputTypeError
from tbimg_cli.events.writer import run_folder
from tbimg_cli.shortcuts import NoKerasBatchHooks

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

PREDICT_BATCH_SIZE = 1024


class BatchedDataset(Protocol):
    """What the callback needs of a `tf.data.Dataset`: its `element_spec`, and (x, y) batches when iterated."""

    @property
    def element_spec(self) -> Any: ...

    def __iter__(self) -> Iterator[tuple[Any, Any]]: ...


ValidationData = tuple["ArrayLike", "ArrayLike"] | Sequence["ArrayLike"] | BatchedDataset
# (labels, scores, [(index, input)...] of the first mistakes, every input or None)
Predictions = tuple["NDArray[Any]", "NDArray[Any]", list[tuple[int, "NDArray[Any]"]], "NDArray[Any] | None"]


class ConfusionMatrixCallback(NoKerasBatchHooks, keras.callbacks.Callback):
    """Log a confusion matrix, its table, a gallery of mistakes and per-class scalars every N epochs.

    The summaries are those of `log_confusion_matrix`, drawn and written on a
    worker thread while the next epoch trains; the end of training (and
    `close()`) writes everything queued. Steps are epochs counted from 0, like
    Keras's own TensorBoard scalars.

    Args:
        log_dir: the run folder, as for `keras.callbacks.TensorBoard`; the
            summaries go to `<log_dir>/<subdir>`.
        validation_data: `(x, y)` arrays, or a `tf.data.Dataset` of `(x, y)`
            batches, read in order at each logged epoch's end.
        class_names: one name per class, in class-id order; default the ids.
        every_n_epochs: log at epochs 0, n, 2n... (Keras's `histogram_freq` convention),
            and always at the last epoch, so the final model's matrix is written.
        max_misclassified: how many mistakes the gallery shows (0 for none).
        normalize: "rows" (each true class sums to 1) or "none" (counts).
        subdir: folder under `log_dir` (`""` for `log_dir` itself).
        batch_size: batch size of the callback's own predictions on arrays.

    Raises:
        InputError: at construction, for bad options, inputs and labels of
            different lengths, empty validation data, or labels outside the
            classes of `class_names`.
        InputTypeError: for validation data that is neither arrays nor a dataset.

    Example:
        >>> model.fit(x, y, epochs=5, callbacks=[
        ...     keras.callbacks.TensorBoard("logs/run1"),
        ...     ConfusionMatrixCallback("logs/run1", (x_val, y_val), class_names=names),
        ... ])
    """

    def __init__(
        self,
        log_dir: str | Path,
        validation_data: ValidationData,
        class_names: Sequence[str] | None = None,
        *,
        every_n_epochs: int = 1,
        max_misclassified: int = 25,
        normalize: str = "rows",
        subdir: str = DEFAULT_SUBDIR,
        batch_size: int = PREDICT_BATCH_SIZE,
    ) -> None:
        super().__init__()
        check_options(max_misclassified, normalize, every_n_epochs)
        self.folder = run_folder(log_dir, subdir)
        self.class_names = list(class_names) if class_names is not None else None
        self.every_n_epochs = every_n_epochs
        self.max_misclassified = max_misclassified
        self.normalize = normalize
        self.batch_size = batch_size
        self._arrays = _checked_arrays(validation_data, self.class_names)
        self._dataset: BatchedDataset | None = None if self._arrays else _batched(validation_data, batch_size)
        self._logger: BackgroundLogger | None = None
        # A dataset's inputs are kept for one pass, the first logged, for the explorer's thumbnails (written
        # once while they stay the same); arrays are there already.
        self._inputs_for_thumbnails = self._dataset is not None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Check what needs the model (its outputs and inputs) before the first epoch trains."""
        outputs = _static_width(getattr(self.model, "outputs", None))
        if self.class_names is not None and outputs is not None and outputs > 1 and outputs != len(self.class_names):
            raise InputError(
                f"class_names names {len(self.class_names)} classes but the model has {outputs} outputs: "
                "give one name per output"
            )
        if self._dataset is not None:
            inputs = getattr(self.model, "inputs", None)
            model_rank = len(inputs[0].shape) if inputs else None
            data_rank = _spec_rank(self._dataset.element_spec, 0)
            if model_rank is not None and data_rank is not None and data_rank == model_rank - 1:
                self._dataset = self._dataset.batch(self.batch_size)  # type: ignore[attr-defined]  # unbatched

    def logs_at(self, epoch: int) -> bool:
        """Whether `epoch` (from 0) is logged: every `every_n_epochs` from 0, and the last epoch."""
        last = (self.params or {}).get("epochs")
        return epoch % self.every_n_epochs == 0 or (last is not None and epoch == last - 1)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.logs_at(epoch) or not self._is_chief():
            return
        self._submit(epoch, *self._predict())

    def _submit(
        self,
        epoch: int,
        y_true: NDArray[Any],
        scores: NDArray[Any],
        mistakes: list[tuple[int, NDArray[Any]]],
        every_input: NDArray[Any] | None,
    ) -> None:
        """Queue one epoch's predictions for drawing and writing on the worker thread."""
        if every_input is None and self._arrays is not None:
            every_input = self._arrays[0]  # for the thumbnails: the explorer writes them once, unchanged
        self._inputs_for_thumbnails = False
        evaluation = evaluate(y_true, scores, self.class_names, every_input, self.max_misclassified)
        if mistakes:  # the gallery, from the inputs kept while predicting
            indices = [index for index, _ in mistakes]
            gallery = displayable_images(np.stack([inputs for _, inputs in mistakes]))
            evaluation = replace(evaluation, gallery=gallery, gallery_indices=indices if gallery is not None else [])
        if self._logger is None:
            self._logger = BackgroundLogger(self.folder, self.normalize)
        self._logger.submit(evaluation, step=epoch, when=f"after epoch {epoch + 1} (step {epoch})")

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Write what is queued and close the event file (the end of training does this)."""
        if self._logger is not None:
            logger, self._logger = self._logger, None
            logger.close()

    def _is_chief(self) -> bool:
        import tensorflow as tf

        strategy = getattr(self.model, "distribute_strategy", None) or tf.distribute.get_strategy()
        return bool(strategy.extended.should_save_summary)

    def _predict(self) -> Predictions:
        """Labels, scores, the first mistakes and (for one binary score) every input, over the whole
        validation set, in its order.

        With a score per class, only the inputs of the first misclassified
        examples are kept, batch by batch, not a copy of every input: a gallery
        needs a few dozen. A single binary score's threshold depends on the
        whole set's range, so then every input is kept and `evaluate` picks.
        """
        batches: Iterator[tuple[Any, Any]]
        if self._arrays is not None:
            x, y = self._arrays
            size = self.batch_size
            batches = ((x[i : i + size], y[i : i + size]) for i in range(0, len(x), size))
        else:
            assert self._dataset is not None
            batches = iter(self._dataset)
        labels: list[NDArray[Any]] = []
        scores: list[NDArray[Any]] = []
        every_input: list[NDArray[Any]] = []
        mistakes: list[tuple[int, NDArray[Any]]] = []
        seen = 0
        for x_batch, y_batch in batches:
            batch_scores = keras.ops.convert_to_numpy(self.model(x_batch, training=False))
            batch_labels = keras.ops.convert_to_numpy(y_batch)
            scores.append(batch_scores)
            labels.append(batch_labels)
            if batch_scores.ndim != 2 or batch_scores.shape[1] < 2 or self._inputs_for_thumbnails:
                every_input.append(keras.ops.convert_to_numpy(x_batch))
            elif len(mistakes) < self.max_misclassified:
                wrong = np.flatnonzero(class_ids_from_labels(batch_labels) != batch_scores.argmax(axis=1))
                if len(wrong):
                    inputs = keras.ops.convert_to_numpy(x_batch)
                    mistakes += [(seen + int(i), inputs[i]) for i in wrong[: self.max_misclassified - len(mistakes)]]
            seen += len(batch_labels)
        if not labels:
            raise InputError("validation_data holds no examples")
        inputs_kept = np.concatenate(every_input) if every_input else None
        return np.concatenate(labels), np.concatenate(scores), mistakes, inputs_kept


def _batched(dataset: Any, batch_size: int) -> BatchedDataset:
    """A dataset of (x, y) pairs; one whose labels are single values (rank 0) is batched here."""
    if _spec_rank(dataset.element_spec, 1) == 0 and hasattr(dataset, "batch"):
        return dataset.batch(batch_size)
    return dataset


def _spec_rank(element_spec: Any, index: int) -> int | None:
    """The rank of part `index` of a dataset's (x, y) element spec, when it is known."""
    try:
        shape = element_spec[index].shape
        return len(shape) if shape.rank is not None else None
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def _static_width(tensors: Any) -> int | None:
    """The last dimension of a model's single output, when the model is built and has one."""
    try:
        (output,) = tensors
        width = output.shape[-1]
    except (TypeError, ValueError, IndexError):
        return None
    return int(width) if width is not None else None


def _checked_arrays(
    validation_data: ValidationData, class_names: Sequence[str] | None
) -> tuple[NDArray[Any], NDArray[Any]] | None:
    """(x, y) as arrays when given as arrays, checked now rather than at the first epoch's end; None for a dataset."""
    if isinstance(validation_data, tuple | list) and len(validation_data) == 2:
        x, y = (np.asarray(part) for part in validation_data)
        if len(x) != len(y):
            raise InputError(f"validation_data has {len(x)} inputs but {len(y)} labels")
        if len(x) == 0:
            raise InputError("validation_data holds no examples")
        ids = class_ids_from_labels(y)
        if class_names is not None and (ids.min() < 0 or ids.max() >= len(class_names)):
            last = len(class_names) - 1
            raise InputError(f"validation labels run from {ids.min()} to {ids.max()}, outside 0 to {last}")
        return x, y
    if hasattr(validation_data, "element_spec") and hasattr(validation_data, "__iter__"):
        return None  # a tf.data.Dataset: read at each epoch's end
    raise InputTypeError("validation_data must be (x, y) arrays or a tf.data.Dataset of (x, y) batches")
