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

`BackgroundLogger` draws and writes on one worker thread, so matplotlib's
drawing overlaps training instead of stalling it; it is the only
user of its writer and of matplotlib, so neither needs locking.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import InputError
from tbimg_cli.writer import EventWriter, check_step

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


@dataclass(frozen=True)
class Evaluation:
    """One step's checked inputs: class ids, names, and the misclassified images to show."""

    y_true: NDArray[np.int64]  # (N,)
    y_pred: NDArray[np.int64]  # (N,)
    class_names: list[str]
    gallery: NDArray[np.uint8] | None  # (k, H, W) or (k, H, W, 3): the first misclassified inputs
    gallery_indices: list[int]

    @property
    def accuracy(self) -> float:
        return float((self.y_true == self.y_pred).mean())


def evaluate(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    class_names: Sequence[str] | None = None,
    images: ArrayLike | None = None,
    max_misclassified: int = 25,
) -> Evaluation:
    """Check and normalise one step's inputs; every mistake is one `InputError` that names it.

    Labels may be class ids or one-hot rows; predictions may be class ids,
    probabilities or logits (one column per class), or one sigmoid output or
    logit per example for a binary classifier.
    """
    import numpy as np

    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    if truth.shape[:1] != pred.shape[:1]:
        raise InputError(f"y_true and y_pred must have one entry per example, got {len(truth)} and {len(pred)}")
    if len(truth) == 0:
        raise InputError("no examples to evaluate: y_true and y_pred are empty")
    classes = _class_count(truth, pred, class_names)
    true_ids = class_ids_from_labels(truth)
    pred_ids = class_ids_from_predictions(pred)
    for name, ids in (("y_true", true_ids), ("y_pred", pred_ids)):
        bad = ids[(ids < 0) | (ids >= classes)]
        if len(bad):
            raise InputError(
                f"{name} holds class {bad[0]}, outside 0 to {classes - 1}"
                + (f" ({classes} class_names)" if class_names is not None else "")
            )
    names = [str(n) for n in class_names] if class_names is not None else [str(i) for i in range(classes)]
    wrong = np.flatnonzero(true_ids != pred_ids)[:max_misclassified]
    gallery = None
    if images is not None:
        inputs = np.asarray(images)
        if len(inputs) != len(truth):
            raise InputError(f"images must have one entry per example, got {len(inputs)} for {len(truth)} labels")
        if len(wrong):
            gallery = displayable_images(inputs[wrong])
    return Evaluation(true_ids, pred_ids, names, gallery, wrong.tolist() if gallery is not None else [])


def class_ids_from_labels(labels: ArrayLike) -> NDArray[np.int64]:
    """Class ids from sparse labels ((N,) or (N, 1)) or one-hot rows ((N, classes))."""
    import numpy as np

    values = _ids_or_scores(labels, "labels must be class ids (N,) or one-hot rows (N, classes)")
    if values.ndim == 2:
        return values.argmax(axis=1).astype(np.int64)
    if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
        raise InputError("labels must be whole class ids (or one-hot rows), got fractions")
    return values.astype(np.int64)


def class_ids_from_predictions(predictions: ArrayLike) -> NDArray[np.int64]:
    """Class ids from ids, per-class scores (probabilities or logits), or one binary score per example."""
    import numpy as np

    scores = _ids_or_scores(predictions, "predictions must be (N,), (N, 1) or (N, classes)")
    if scores.ndim == 2:
        return scores.argmax(axis=1).astype(np.int64)
    if scores.dtype.kind in "iub" or (np.all(np.mod(scores, 1) == 0) and scores.max() > 1):
        return scores.astype(np.int64)  # class ids
    # One score per example: a sigmoid probability in [0, 1], else a logit.
    threshold = 0.5 if scores.min() >= 0 and scores.max() <= 1 else 0.0
    return np.asarray(scores > threshold).astype(np.int64)


def _ids_or_scores(values: ArrayLike, shapes: str) -> NDArray[Any]:
    """(N, classes) for one column per class, else the one column as (N,)."""
    import numpy as np

    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] > 1:
        return array
    column = array.reshape(len(array), -1)[:, 0] if array.ndim == 2 else array
    if column.ndim != 1:
        raise InputError(f"{shapes}, got shape {array.shape}")
    return column


def displayable_images(images: ArrayLike) -> NDArray[np.uint8] | None:
    """uint8 (N, H, W) or (N, H, W, 3) for drawing, or None when these inputs are not images.

    uint8 is kept; other numbers in [0, 1] are scaled by 255, anything else
    stretched per image to its own minimum and maximum (standardised inputs).
    """
    import numpy as np

    array = np.asarray(images)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3)) or min(array.shape[1:3]) < 2:
        return None  # feature vectors, sequences...: no gallery, and no error
    if array.dtype == np.uint8:
        return array
    array = array.astype(np.float64)
    if array.min() < 0 or array.max() > 1:
        axes = tuple(range(1, array.ndim))
        low, high = array.min(axis=axes, keepdims=True), array.max(axis=axes, keepdims=True)
        array = (array - low) / np.where(high > low, high - low, 1)
    return np.clip(np.round(array * 255), 0, 255).astype(np.uint8)


def write_summaries(writer: EventWriter, evaluation: Evaluation, step: int, when: str, normalize: str = "rows") -> None:
    """Draw and write one step's summaries (the tags in this module's docstring)."""
    import numpy as np

    from tbimg_cli.figures import confusion_matrix_png, misclassified_png

    names = evaluation.class_names
    matrix = count_matrix(evaluation.y_true, evaluation.y_pred, len(names))
    accuracy = evaluation.accuracy
    title = f"Confusion matrix {when}: accuracy {accuracy:.3f}"
    scale = "fraction of each true class" if normalize == "rows" else "number of examples"
    description = f"Confusion matrix {when} (accuracy {accuracy:.4f}). Cells and colour scale are the {scale}."
    writer.png_images(
        CM_TAG, [confusion_matrix_png(matrix, names, title, normalize)], step=step, description=description
    )
    writer.text(
        TABLE_TAG, confusion_table(matrix, names), step=step, description=f"The confusion matrix's counts {when}."
    )
    if evaluation.gallery is not None:
        titles = [f"{names[evaluation.y_true[i]]} → {names[evaluation.y_pred[i]]}" for i in evaluation.gallery_indices]
        gallery = misclassified_png(evaluation.gallery, titles)
        shown = len(evaluation.gallery_indices)
        what = f"The first {shown} misclassified examples {when} (true → predicted)."
        writer.png_images(MISCLASSIFIED_TAG, [gallery], step=step, description=what)
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
    summary = f"{total} examples, {right} right (accuracy {accuracy:.4f}). Rows: true class; columns: predicted."
    if len(names) <= MAX_CLASSES_IN_TABLE:
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

    def __init__(self, folder: Path, normalize: str = "rows") -> None:
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
) -> Path:
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
        images: the inputs, (N, H, W), (N, H, W, 1) or (N, H, W, 3), for the
            gallery of mistakes; inputs that are not images get no gallery.
        max_misclassified: how many mistakes the gallery shows (0 for none).
        normalize: "rows" (each true class sums to 1) or "none" (counts).
        subdir: folder under `log_dir` (`""` for `log_dir` itself).

    Returns:
        The folder the summaries were written to.

    Raises:
        InputError: for labels or predictions that cannot be read as classes,
            of different lengths, or outside `class_names`; bad options; a negative step.
        InputTypeError: for a step that is not an int.

    Example:
        >>> log_confusion_matrix("runs/exp1", y_true, model_probs, step=epoch, class_names=names, images=x_val)
    """
    check_options(max_misclassified, normalize)
    evaluation = evaluate(y_true, y_pred, class_names, images, max_misclassified)
    check_step(step)
    folder = Path(log_dir) / subdir if subdir else Path(log_dir)
    with _writers_lock:
        writer = _writers.setdefault(folder.resolve(), EventWriter(folder))
        write_summaries(writer, evaluation, step, f"at step {step}", normalize)
    return folder


def check_options(max_misclassified: int, normalize: str, every_n_epochs: int = 1) -> None:
    if normalize not in NORMALIZE_CHOICES:
        raise InputError(f"normalize must be one of {', '.join(map(repr, NORMALIZE_CHOICES))}, got {normalize!r}")
    if max_misclassified < 0:
        raise InputError(f"max_misclassified must be 0 or more, got {max_misclassified}")
    if every_n_epochs < 1:
        raise InputError(f"every_n_epochs must be 1 or more, got {every_n_epochs}")


# One open writer per folder for `log_confusion_matrix`, closed when the interpreter exits.
_writers: dict[Path, EventWriter] = {}
_writers_lock = threading.Lock()


@atexit.register
def _close_writers() -> None:
    for writer in _writers.values():
        writer.close()


def _class_count(truth: NDArray[Any], pred: NDArray[Any], class_names: Sequence[str] | None) -> int:
    import numpy as np

    if class_names is not None:
        if len(class_names) < 2:
            raise InputError(f"class_names must name at least 2 classes, got {len(class_names)}")
        count = len(class_names)
    elif pred.ndim == 2 and pred.shape[1] > 1:
        count = pred.shape[1]
    elif truth.ndim == 2 and truth.shape[1] > 1:
        count = truth.shape[1]
    else:
        ids = np.concatenate([class_ids_from_labels(truth), class_ids_from_predictions(pred)])
        count = max(2, int(ids.max()) + 1)
    for name, array in (("y_pred", pred), ("y_true", truth)):
        if array.ndim == 2 and array.shape[1] > 1 and array.shape[1] != count:
            raise InputError(f"{name} has {array.shape[1]} columns but there are {count} classes")
    return count


def _markdown_cell(text: object) -> str:
    return str(text).replace("|", "\\|")


def _import_drawing_libraries() -> None:
    """Pay matplotlib's import cost while the first epoch trains."""
    import matplotlib.figure  # noqa: F401
