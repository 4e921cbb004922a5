"""Confusion-matrix logging for anyone's classifier: labels and predictions in, TensorBoard summaries out.

No TensorFlow here: inputs are anything `numpy.asarray` takes (NumPy, lists,
PyTorch or JAX tensors moved to the CPU), so PyTorch, JAX and scikit-learn
users call `log_confusion_matrix` directly, and `ConfusionMatrixCallback`
(in `keras_callback.py`) feeds Keras predictions through the same code.

What one step writes, into `<log_dir>/cm` unless told otherwise:

    Confusion Matrix              image: the matrix as a figure (cells and colour bar agree)
    Confusion Matrix (table)      text: its numbers as a Markdown table, or past 30 classes the
                                  most confused pairs, so values can be read and copied exactly
    Misclassified                 image: the first misclassified inputs, "true → predicted"
                                  (only when the inputs are images)
    per_class_accuracy/<class>    scalar: the fraction of each class predicted right (recall)
    per_class_precision/<class>   scalar: the fraction of each class's predictions that are right
    Confusion Matrix (counts), (examples), (thumbnails)
                                  tensors for the tbimg tab's confusion explorer (`explorer.py`)

`BackgroundLogger` draws and writes on one worker thread, so matplotlib's
drawing overlaps training instead of stalling it; it is the only
user of its writer and of matplotlib, so neither needs locking.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from tbimg_cli.confusion.explorer import write_explorer_data
from tbimg_cli.confusion.labels import Evaluation, evaluate
from tbimg_cli.errors import InputError, InputTypeError
from tbimg_cli.events.writer import EventWriter, appending, check_step, run_folder

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

CM_TAG = "Confusion Matrix"
TABLE_TAG = "Confusion Matrix (table)"
MISCLASSIFIED_TAG = "Misclassified"
ACCURACY_PREFIX = "per_class_accuracy/"
PRECISION_PREFIX = "per_class_precision/"
DEFAULT_SUBDIR = "cm"
NORMALIZE_CHOICES = ("rows", "none")
MAX_CLASSES_IN_TABLE = 30  # past this, the text lists the most confused pairs instead
MOST_CONFUSED_PAIRS = 20
_CM_DESCRIPTION = {
    normalize: "The confusion matrix at each step: rows are the true classes, columns the predicted ones; "
    f"cells and colour scale are the {scale}. The title gives the step's accuracy."
    for normalize, scale in (("rows", "fraction of each true class"), ("none", "number of examples"))
}
TABLE_DESCRIPTION = "The confusion matrix's counts at each step, to read and copy exactly."
MISCLASSIFIED_DESCRIPTION = "The first misclassified examples at each step, each titled true → predicted."


def write_summaries(writer: EventWriter, evaluation: Evaluation, step: int, when: str, normalize: str = "rows") -> None:
    """Draw and write one step's summaries (the tags in this module's docstring)."""
    import numpy as np

    from tbimg_cli.confusion.figures import confusion_matrix_png, misclassified_png

    names = evaluation.class_names
    matrix = count_matrix(evaluation.y_true, evaluation.y_pred, len(names))
    accuracy = evaluation.accuracy
    # The step's own numbers go in the image's title and the table; a description belongs to the
    # tag (TensorBoard shows one per tag, under every step), so it says what the tag is.
    title = f"Confusion matrix {when}: accuracy {accuracy:.3f}"
    writer.png_images(
        CM_TAG,
        [confusion_matrix_png(matrix, names, title, normalize)],
        step=step,
        description=_CM_DESCRIPTION[normalize],
    )
    writer.text(TABLE_TAG, confusion_table(matrix, names), step=step, description=TABLE_DESCRIPTION)
    write_explorer_data(writer, evaluation, matrix, step, CM_TAG)
    if evaluation.gallery is not None:
        titles = [f"{names[evaluation.y_true[i]]} → {names[evaluation.y_pred[i]]}" for i in evaluation.gallery_indices]
        gallery = misclassified_png(evaluation.gallery, titles)
        writer.png_images(MISCLASSIFIED_TAG, [gallery], step=step, description=MISCLASSIFIED_DESCRIPTION)
    true_totals, predicted_totals = matrix.sum(axis=1), matrix.sum(axis=0)
    hits = np.diag(matrix)
    for class_id, name in enumerate(names):
        if true_totals[class_id]:
            writer.scalar(ACCURACY_PREFIX + name, hits[class_id] / true_totals[class_id], step=step)
        if predicted_totals[class_id]:
            writer.scalar(PRECISION_PREFIX + name, hits[class_id] / predicted_totals[class_id], step=step)
    writer.flush()  # so a TensorBoard watching the run sees this step now


def count_matrix(true_ids: NDArray[np.int64], predicted_ids: NDArray[np.int64], classes: int) -> NDArray[np.int64]:
    """Counts: row = true class, column = predicted class, as `sklearn.metrics.confusion_matrix`
    gives them (the tests check that it agrees). One `bincount` over checked class ids: importing
    scikit-learn for this would bring SciPy along, seconds and a hundred megabytes, in
    every process that logs a matrix."""
    import numpy as np

    return np.bincount(true_ids * classes + predicted_ids, minlength=classes * classes).reshape(classes, classes)


def confusion_table(matrix: ArrayLike, class_names: Sequence[str]) -> str:
    """The matrix's counts as Markdown: the whole table up to 30 classes, else the most confused pairs."""
    import numpy as np

    matrix = np.asarray(matrix)
    names = [_markdown_cell(n) for n in class_names]
    total = int(matrix.sum())
    accuracy = np.trace(matrix) / total if total else 0.0
    right = int(np.trace(matrix))
    summary = f"{total} examples, {right} right (accuracy {accuracy:.4f})."
    if len(names) <= MAX_CLASSES_IN_TABLE:
        summary += " Rows: true class; columns: predicted."
        lines = ["| true \\ predicted | " + " | ".join(names) + " | total |", "|---" * (len(names) + 2) + "|"]
        for name, row in zip(names, matrix, strict=True):
            lines.append(f"| **{name}** | " + " | ".join(str(int(v)) for v in row) + f" | {int(row.sum())} |")
        return summary + "\n\n" + "\n".join(lines)
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    order = np.argsort(off_diagonal, axis=None)[::-1][:MOST_CONFUSED_PAIRS]
    totals = matrix.sum(axis=1)
    lines = ["| true | predicted | examples | of the true class |", "|---|---|---|---|"]
    for flat in order:
        true_id, pred_id = divmod(int(flat), len(names))
        count = int(off_diagonal[true_id, pred_id])
        if count == 0:
            break
        lines.append(f"| {names[true_id]} | {names[pred_id]} | {count} | {count / totals[true_id]:.3f} |")
    return (
        f"{summary}\n\n{len(names)} classes are too many for a table; the {len(lines) - 2} most confused pairs:\n\n"
        + "\n".join(lines)
    )


class BackgroundLogger:
    """Queue steps; draw and write them on one worker thread into `folder`."""

    def __init__(self, folder: str | Path, normalize: str = "rows") -> None:
        self.writer = EventWriter(folder)
        self.normalize = normalize
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tbimg-confusion-matrix")
        self._pending: list[Future[None]] = []
        self._warm = self._pool.submit(_import_drawing_libraries)

    def submit(self, evaluation: Evaluation, step: int, when: str) -> None:
        self._raise_worker_errors()
        self._pending.append(self._pool.submit(write_summaries, self.writer, evaluation, step, when, self.normalize))

    def close(self) -> None:
        """Wait for queued steps, then close the event file; re-raise a worker failure."""
        self._pool.shutdown(wait=True)
        try:
            self._raise_worker_errors(wait=True)
        finally:
            self.writer.close()

    def _raise_worker_errors(self, *, wait: bool = False) -> None:
        for future in [self._warm, *self._pending]:
            failure = future.exception() if wait or future.done() else None
            if failure is not None:
                raise failure


def log_confusion_matrix(
    log_dir: str | Path,
    y_true: ArrayLike,
    y_pred: ArrayLike,
    step: int,
    class_names: Sequence[str] | None = None,
    images: ArrayLike | None = None,
    *,
    max_misclassified: int = 25,
    normalize: str = "rows",
    subdir: str = DEFAULT_SUBDIR,
) -> str | Path:
    """Write one step's confusion matrix, table, gallery and per-class scalars.

    Synchronous: when it returns, the step is on disk. Calls for the same
    folder append to one event file per process. Never imports TensorFlow.

    Args:
        log_dir: the run folder (as for `SummaryWriter` or Keras's TensorBoard
            callback); the summaries go to `<log_dir>/<subdir>`.
        y_true: class ids (N,) or one-hot rows (N, classes).
        y_pred: class ids (N,), per-class probabilities or logits (N, classes),
            or one sigmoid output or logit per example (N,) for a binary classifier.
        step: the step to log at (an int, 0 or more), such as the epoch.
        class_names: one name per class, in class-id order; default the ids.
        images: the inputs, (N, H, W), (N, H, W, 1), (N, H, W, 3), or channels first as
            PyTorch keeps them ((N, 1 or 3, H, W); a tensor on any device, requiring grad or
            not), for the gallery of mistakes; inputs that are not images get no gallery.
        max_misclassified: how many mistakes the gallery shows (0 for none).
        normalize: "rows" (each true class sums to 1) or "none" (counts).
        subdir: folder under `log_dir` (`""` for `log_dir` itself).

    Returns:
        The folder the summaries were written to (for a bucket, its URL, as a str).

    Raises:
        InputError: for labels or predictions that cannot be read as classes,
            of different lengths, or outside `class_names`; bad options; a negative step.
        InputTypeError: for a step that is not an int.

    Example:
        >>> log_confusion_matrix("runs/exp1", y_true, model_probs, step=epoch, class_names=names, images=x_val)
    """
    check_options(max_misclassified, normalize)
    check_step(step)
    folder = run_folder(log_dir, subdir)
    evaluation = evaluate(y_true, y_pred, class_names, images, max_misclassified)
    with appending(folder) as writer:
        write_summaries(writer, evaluation, step, f"at step {step}", normalize)
    return folder


def check_options(max_misclassified: int, normalize: str, every_n_epochs: int = 1) -> None:
    for name, value in (("max_misclassified", max_misclassified), ("every_n_epochs", every_n_epochs)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputTypeError(f"{name} must be an int, got {value!r}")
    if normalize not in NORMALIZE_CHOICES:
        raise InputError(f"normalize must be one of {', '.join(map(repr, NORMALIZE_CHOICES))}, got {normalize!r}")
    if max_misclassified < 0:
        raise InputError(f"max_misclassified must be 0 or more, got {max_misclassified}")
    if every_n_epochs < 1:
        raise InputError(f"every_n_epochs must be 1 or more, got {every_n_epochs}")


def _markdown_cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def _import_drawing_libraries() -> None:
    """Pay matplotlib's import cost while the first epoch trains."""
    import matplotlib.figure  # noqa: F401
