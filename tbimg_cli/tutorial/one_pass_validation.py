"""train-cm's validation and confusion matrix from one pass over the test set per epoch.

Not public: it assumes the tutorial's model (softmax outputs, sparse
categorical cross-entropy, accuracy) and tells Keras's TensorBoard callback
of a validation pass it did not run (`shortcuts.report_validation`).
`train.py` uses it only when `shortcuts.can_report_validation` allows, and
otherwise lets `fit` validate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tbimg_cli.confusion.keras_callback import ConfusionMatrixCallback
from tbimg_cli.confusion.labels import class_ids_from_labels
from tbimg_cli.shortcuts import report_validation


class ValidationAndConfusionMatrixCallback(ConfusionMatrixCallback):
    """train-cm's validation and confusion matrix from one pass over the test set.

    `fit` is given no `validation_data`: its own pass would read the test set
    a second time each epoch and first trace a test function. This
    computes what that pass reports, from the predictions the matrix needs
    anyway: sparse categorical cross-entropy, as Keras computes it (clipped
    to [1e-7, 1 - 1e-7]), and accuracy. It puts them in the epoch's logs as
    `val_loss` and `val_accuracy`, where the TensorBoard callback `board`
    (next in the list) logs them under `validation/`, and gives `board` the
    end of an evaluation, so its `evaluation_*_vs_iterations` scalars appear
    as they would. Every worker validates; only the chief draws and writes.
    For a softmax classifier compiled with that loss and accuracy.
    """

    def __init__(
        self, log_dir: Any, validation_data: Any, class_names: Any = None, *, board: Any, **options: Any
    ) -> None:
        super().__init__(log_dir, validation_data, class_names, **options)
        self.board = board

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        y_true, scores, mistakes, every_input = self._predict()
        labels = class_ids_from_labels(y_true)
        chosen = np.clip(scores[np.arange(len(labels)), labels].astype(np.float64), 1e-7, 1 - 1e-7)
        metrics = {"loss": float(-np.log(chosen).mean()), "accuracy": float((scores.argmax(axis=1) == labels).mean())}
        report_validation(self.board, metrics)
        if logs is not None:
            logs.update({f"val_{name}": value for name, value in metrics.items()})
        if self.logs_at(epoch) and self._is_chief():
            self._submit(epoch, y_true, scores, mistakes, every_input)
