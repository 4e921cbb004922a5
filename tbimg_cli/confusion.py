"""The confusion-matrix logging: what `train-cm` logs after each epoch, from predictions alone.

No TensorFlow here: it takes labels and predicted classes as arrays. The
confusion matrix, the gallery of mistakes and the per-class accuracies are
drawn and written on one worker thread, so matplotlib's ~0.2 s per epoch
overlaps the next epoch's training instead of stalling it. The worker is the
only user of its writer and of matplotlib, so neither needs locking.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from tbimg_cli.data import CLASS_NAMES
from tbimg_cli.writer import EventWriter

CM_TAG = "Confusion Matrix"
MISCLASSIFIED_TAG = "Misclassified"
PER_CLASS_PREFIX = "per_class_accuracy/"
CM_SUBDIR = "cm"


def per_class_tag(class_name: str) -> str:
    return PER_CLASS_PREFIX + class_name


class ConfusionMatrixLogger:
    """Queue one epoch's predictions; draw and write them in the background."""

    def __init__(self, run_dir: Path, test_images, test_labels, max_misclassified: int = 25):
        import numpy as np

        self.writer = EventWriter(Path(run_dir) / CM_SUBDIR)
        self.images = test_images
        self.labels = np.asarray(test_labels)
        self.max_misclassified = max_misclassified
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tbimg-confusion-matrix")
        self._pending: list[Future] = []
        self._warm = self._pool.submit(_import_drawing_libraries)

    def submit(self, epoch: int, predicted, accuracy: float) -> None:
        self._raise_worker_errors()
        self._pending.append(self._pool.submit(self._write_epoch, epoch, predicted, accuracy))

    def close(self) -> None:
        """Wait for queued epochs, then close the event file; re-raise a worker failure."""
        self._pool.shutdown(wait=True)
        try:
            self._raise_worker_errors(wait=True)
        finally:
            self.writer.close()

    def _raise_worker_errors(self, wait: bool = False) -> None:
        for future in [self._warm, *self._pending]:
            if (wait or future.done()) and future.exception() is not None:
                raise future.exception()

    def _write_epoch(self, epoch: int, predicted, accuracy: float) -> None:
        from sklearn.metrics import confusion_matrix

        from tbimg_cli.figures import confusion_matrix_png, misclassified_png

        matrix = confusion_matrix(self.labels, predicted, labels=range(len(CLASS_NAMES)))
        title = f"Confusion matrix after epoch {epoch + 1} (step {epoch}): test accuracy {accuracy:.3f}"
        png = confusion_matrix_png(matrix, CLASS_NAMES, title)
        self.writer.png_images(CM_TAG, [png], step=epoch, description=_cm_description(epoch, accuracy))

        wrong = (predicted != self.labels).nonzero()[0][: self.max_misclassified]
        if len(wrong):
            titles = [f"{CLASS_NAMES[self.labels[i]]} → {CLASS_NAMES[predicted[i]]}" for i in wrong]
            gallery = misclassified_png(self.images[wrong], titles)
            description = f"The first {len(wrong)} misclassified test images after epoch {epoch + 1} (true → predicted)."
            self.writer.png_images(MISCLASSIFIED_TAG, [gallery], step=epoch, description=description)

        totals = matrix.sum(axis=1)
        for class_id, name in enumerate(CLASS_NAMES):
            if totals[class_id]:
                self.writer.scalar(per_class_tag(name), matrix[class_id, class_id] / totals[class_id], step=epoch)
        self.writer.flush()  # so a TensorBoard watching the run sees this epoch now


def _import_drawing_libraries() -> None:
    """Pay matplotlib's and sklearn's import cost while the first epoch trains."""
    import matplotlib.figure  # noqa: F401
    import sklearn.metrics  # noqa: F401


def _cm_description(epoch: int, accuracy: float) -> str:
    return (
        f"Test-set confusion matrix after epoch {epoch + 1} (test accuracy {accuracy:.4f}). "
        "Cells and colour scale are the fraction of each true class predicted as each label."
    )
