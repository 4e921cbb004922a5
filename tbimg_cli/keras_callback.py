"""`ConfusionMatrixCallback`: the confusion-matrix logging of `train-cm` for any Keras model.

Importing this module imports Keras (a Keras callback must subclass
`keras.callbacks.Callback`), so `tbimg_cli` loads it only when
`tbimg_cli.ConfusionMatrixCallback` is first used. The drawing and writing
are `confusion.py`'s, on its worker thread.

Under `tf.distribute`: predictions are made on the whole validation set by
calling the model directly (no collective ops, so it cannot deadlock waiting
for other workers), and only the chief predicts and writes; the others do
nothing, so no duplicate or clashing event files appear. The callback works
with Keras 3 and with tf_keras (Keras 2), whose `fit` multi-worker training
needs until Keras 3's can run MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import numpy as np

from tbimg_cli.confusion import (
    DEFAULT_SUBDIR, BackgroundLogger, check_options, class_ids_from_labels, displayable_images, prepare,
)  # fmt: skip
from tbimg_cli.errors import InputError

PREDICT_BATCH_SIZE = 1024


class ConfusionMatrixCallback(keras.callbacks.Callback):
    """Log a confusion matrix, its table, a gallery of mistakes and per-class scalars every N epochs.

    `log_dir` is the run folder, as for `keras.callbacks.TensorBoard`; the
    summaries go to `<log_dir>/cm` (`subdir`). `validation_data` is `(x, y)`
    arrays or a `tf.data.Dataset` of `(x, y)` batches, read in order each
    time. `class_names` defaults to the class ids. `normalize` is "rows"
    (each true class sums to 1) or "none" (counts). Steps are epochs counted
    from 0, like Keras's own TensorBoard scalars.
    """

    def __init__(
        self,
        log_dir,
        validation_data,
        class_names=None,
        *,
        every_n_epochs: int = 1,
        max_misclassified: int = 25,
        normalize: str = "rows",
        subdir: str = DEFAULT_SUBDIR,
        batch_size: int = PREDICT_BATCH_SIZE,
    ):
        super().__init__()
        check_options(max_misclassified, normalize, every_n_epochs)
        self.folder = Path(log_dir) / subdir if subdir else Path(log_dir)
        self.class_names = list(class_names) if class_names is not None else None
        self.every_n_epochs = every_n_epochs
        self.max_misclassified = max_misclassified
        self.normalize = normalize
        self.batch_size = batch_size
        self._arrays = _checked_arrays(validation_data, self.class_names)
        self._dataset = None if self._arrays else validation_data
        self._logger: BackgroundLogger | None = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs or not self._is_chief():
            return
        self._submit(epoch, *self._predict())

    def _submit(self, epoch, y_true, scores, mistakes, every_input) -> None:
        """Queue one epoch's predictions for drawing and writing on the worker thread."""
        evaluation = prepare(y_true, scores, self.class_names, every_input, self.max_misclassified)
        if mistakes:  # the gallery, from the inputs kept while predicting
            indices, inputs = zip(*mistakes)
            gallery = displayable_images(np.stack(inputs))
            evaluation = replace(evaluation, gallery=gallery, gallery_indices=list(indices) if gallery is not None else [])
        if self._logger is None:
            self._logger = BackgroundLogger(self.folder, self.normalize)
        self._logger.submit(evaluation, step=epoch, when=f"after epoch {epoch + 1} (step {epoch})")

    def on_train_end(self, logs=None):
        self.close()

    def close(self) -> None:
        """Write what is queued and close the event file (training's end does this; so does Ctrl-C via `fit`'s caller)."""
        if self._logger is not None:
            logger, self._logger = self._logger, None
            logger.close()

    # tf_keras (Keras 2), which multi-worker training needs (Keras 3's `fit` cannot run
    # MultiWorkerMirroredStrategy: keras-team/keras#20585), asks each callback which batch hooks it has.
    def _implements_train_batch_hooks(self) -> bool:
        return False

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False

    def _is_chief(self) -> bool:
        import tensorflow as tf

        strategy = getattr(self.model, "distribute_strategy", None) or tf.distribute.get_strategy()
        return bool(strategy.extended.should_save_summary)

    def _predict(self):
        """(labels, scores, [(index, input)...] of the first mistakes, every input or None) over the
        whole validation set, in its order.

        With a score per class, only the inputs of the first misclassified
        examples are kept, batch by batch, not a copy of every input: a gallery
        needs a few dozen. A single binary score's threshold depends on the
        whole set's range, so then every input is kept and `prepare` picks.
        """
        if self._arrays is not None:
            x, y = self._arrays
            batches = ((x[i : i + self.batch_size], y[i : i + self.batch_size]) for i in range(0, len(x), self.batch_size))
        else:
            batches = iter(self._dataset)
        labels, scores, mistakes, every_input, seen = [], [], [], [], 0
        for x_batch, y_batch in batches:
            batch_scores = keras.ops.convert_to_numpy(self.model(x_batch, training=False))
            batch_labels = keras.ops.convert_to_numpy(y_batch)
            scores.append(batch_scores)
            labels.append(batch_labels)
            if batch_scores.ndim != 2 or batch_scores.shape[1] < 2:
                every_input.append(keras.ops.convert_to_numpy(x_batch))
            elif len(mistakes) < self.max_misclassified:
                wrong = np.flatnonzero(class_ids_from_labels(batch_labels) != batch_scores.argmax(axis=1))
                if len(wrong):
                    inputs = keras.ops.convert_to_numpy(x_batch)
                    mistakes += [(seen + int(i), inputs[i]) for i in wrong[: self.max_misclassified - len(mistakes)]]
            seen += len(batch_labels)
        if not labels:
            raise InputError("validation_data holds no examples")
        return np.concatenate(labels), np.concatenate(scores), mistakes, np.concatenate(every_input) if every_input else None


def _checked_arrays(validation_data, class_names):
    """(x, y) as arrays when given as arrays, checked now rather than at the first epoch's end; None for a dataset."""
    import numpy as np

    if isinstance(validation_data, tuple | list) and len(validation_data) == 2:
        x, y = (np.asarray(part) for part in validation_data)
        if len(x) != len(y):
            raise InputError(f"validation_data has {len(x)} inputs but {len(y)} labels")
        if len(x) == 0:
            raise InputError("validation_data holds no examples")
        ids = class_ids_from_labels(y)
        if class_names is not None and (ids.min() < 0 or ids.max() >= len(class_names)):
            raise InputError(f"validation labels run from {ids.min()} to {ids.max()}, outside 0 to {len(class_names) - 1}")
        return x, y
    if hasattr(validation_data, "element_spec") and hasattr(validation_data, "__iter__"):
        return None  # a tf.data.Dataset: read at each epoch's end
    raise InputError("validation_data must be (x, y) arrays or a tf.data.Dataset of (x, y) batches")


class ValidationAndConfusionMatrixCallback(ConfusionMatrixCallback):
    """train-cm's validation and confusion matrix from one pass over the test set.

    `fit` is given no `validation_data`: its own pass would read the test set
    a second time each epoch and first trace a test function (0.3 s). This
    computes what that pass reports, from the predictions the matrix needs
    anyway: sparse categorical cross-entropy, as Keras computes it (clipped
    to [1e-7, 1 - 1e-7]), and accuracy. It puts them in the epoch's logs as
    `val_loss` and `val_accuracy`, where the TensorBoard callback `board`
    (next in the list) logs them under `validation/`, and gives `board` the
    end of an evaluation, so its `evaluation_*_vs_iterations` scalars appear
    as they would. Every worker validates; only the chief draws and writes.
    For a softmax classifier compiled with that loss and accuracy.
    """

    def __init__(self, log_dir, validation_data, class_names=None, *, board, **options):
        super().__init__(log_dir, validation_data, class_names, **options)
        self.board = board

    def on_epoch_end(self, epoch, logs=None):
        y_true, scores, mistakes, every_input = self._predict()
        labels = class_ids_from_labels(y_true)
        chosen = np.clip(scores[np.arange(len(labels)), labels].astype(np.float64), 1e-7, 1 - 1e-7)
        metrics = {"loss": float(-np.log(chosen).mean()), "accuracy": float((scores.argmax(axis=1) == labels).mean())}
        self.board.on_test_begin()
        self.board.on_test_end(metrics)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in metrics.items()})
        if (epoch + 1) % self.every_n_epochs == 0 and self._is_chief():
            self._submit(epoch, y_true, scores, mistakes, every_input)
