"""Labels and predictions into class ids: every input rule of `log_confusion_matrix` and the callback.

What is accepted (each refusal is one `InputError` that names the argument):

- `y_true`: class ids (N,) or (N, 1), one-hot rows (N, classes), or labels as strings (a NumPy
  string or object array, a list, a pandas string or categorical Series), as scikit-learn's
  classifiers return them;
- `y_pred`: the same kinds, or per-class probabilities or logits (N, classes), or one sigmoid
  output or logit per example (N,) for a binary classifier;
- `class_names` names every class, in class-id order, each once. With ids, every id seen must be
  below its length (classes absent from this batch get empty rows); with one column per class,
  the columns must be as many as the names. With string labels it gives the order, and must hold
  every label seen; without it the order is the sorted labels seen in `y_true` and `y_pred`, as
  `sklearn.metrics.confusion_matrix` does.

NaN or infinity anywhere is refused, never read as a class: a NaN would otherwise turn a column
of ids into 0/1 "probabilities" or make a row of scores class 0, and give a wrong matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import InputError, InputTypeError
from tbimg_cli.events.png import as_numpy, guess_layout
from tbimg_cli.words import counted

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

MAX_POSITIONS_NAMED = 5  # in a message about NaNs or unknown labels


@dataclass(frozen=True)
class Evaluation:
    """One step's checked inputs: class ids, names, and the misclassified images to show."""

    y_true: NDArray[np.int64]  # (N,)
    y_pred: NDArray[np.int64]  # (N,)
    class_names: list[str]
    gallery: NDArray[np.uint8] | None  # (k, H, W) or (k, H, W, 3): the first misclassified inputs
    gallery_indices: list[int]
    inputs: Any = None  # every input as given (numpy), for the explorer's thumbnails; None without images
    channels_first: bool = False
    scores: NDArray[np.float32] | None = None  # (N,): the predicted class's probability, when predictions had one

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
    """Check and normalise one step's inputs (the rules are in this module's docstring).

    Raises:
        InputError: for inputs those rules refuse.
        InputTypeError: for inputs that are not arrays of numbers or strings.
    """
    import numpy as np

    truth, pred = _array(y_true, "y_true"), _array(y_pred, "y_pred")
    if truth.shape[:1] != pred.shape[:1]:
        raise InputError(f"y_true and y_pred must have one entry per example, got {len(truth)} and {len(pred)}")
    if len(truth) == 0:
        raise InputError("no examples to evaluate: y_true and y_pred are empty")
    names = checked_class_names(class_names)
    if _is_text(truth) or _is_text(pred):
        true_ids, pred_ids, names = _ids_of_text_labels(truth, pred, names)
    else:
        true_ids, pred_ids, names = _ids_of_numbers(truth, pred, names)
    wrong = np.flatnonzero(true_ids != pred_ids)[:max_misclassified]
    gallery = inputs = None
    channels_first = False
    if images is not None:
        inputs, channels_first = as_numpy(images)
        if len(inputs) != len(truth):
            raise InputError(f"images must have one entry per example, got {len(inputs)} for {len(truth)} labels")
        if len(wrong):
            gallery = displayable_images(inputs[wrong], channels_first=channels_first)
    indices = wrong.tolist() if gallery is not None else []
    scores = None if _is_text(pred) else predicted_class_scores(pred)
    return Evaluation(true_ids, pred_ids, names, gallery, indices, inputs, channels_first, scores)


def predicted_class_scores(predictions: NDArray[Any]) -> NDArray[np.float32] | None:
    """The predicted class's probability per example, from probabilities or logits; None for class ids."""
    import numpy as np

    scores = np.asarray(predictions)
    if scores.dtype.kind != "f":
        return None
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim == 1:
        if np.all(np.mod(scores, 1) == 0) and scores.max(initial=0) > 1:
            return None  # class ids in a float array
        p = scores if scores.min(initial=0) >= 0 and scores.max(initial=0) <= 1 else 1 / (1 + np.exp(-scores))
        return np.maximum(p, 1 - p).astype(np.float32)
    if scores.ndim != 2:
        return None
    rows = scores.astype(np.float64)
    if not (rows.min() >= 0 and np.allclose(rows.sum(axis=1), 1, atol=1e-3)):  # logits: a softmax
        rows = np.exp(rows - rows.max(axis=1, keepdims=True))
        rows /= rows.sum(axis=1, keepdims=True)
    return rows.max(axis=1).astype(np.float32)


def checked_class_names(class_names: Sequence[object] | None) -> list[str] | None:
    """The names as strings: at least two, none twice."""
    if class_names is None:
        return None
    if isinstance(class_names, str | bytes):
        raise InputTypeError("class_names must be a sequence of names, not one string")
    names = [str(name) for name in class_names]
    if len(names) < 2:
        raise InputError(f"class_names must name at least 2 classes, got {len(names)}")
    seen: set[str] = set()
    twice = [name for name in names if name in seen or seen.add(name)]  # type: ignore[func-returns-value]  # set.add is None
    if twice:
        raise InputError(f"class_names must name each class once; {', '.join(map(repr, dict.fromkeys(twice)))} twice")
    return names


def class_ids_from_labels(labels: ArrayLike, name: str = "labels") -> NDArray[np.int64]:
    """Class ids from sparse labels ((N,) or (N, 1)) or one-hot rows ((N, classes)); `name` is what errors call them."""
    import numpy as np

    values = _ids_or_scores(_array(labels, name), f"{name} must be class ids (N,) or one-hot rows (N, classes)")
    _check_finite(values, name)
    if values.ndim == 2:
        return values.argmax(axis=1).astype(np.int64)
    if values.dtype.kind == "f" and not np.all(np.mod(values, 1) == 0):
        raise InputError("labels must be whole class ids (or one-hot rows), got fractions")
    return values.astype(np.int64)


def class_ids_from_predictions(predictions: ArrayLike, name: str = "predictions") -> NDArray[np.int64]:
    """Class ids from ids, per-class scores (probabilities or logits), or one binary score per example."""
    import numpy as np

    scores = _ids_or_scores(_array(predictions, name), f"{name} must be (N,), (N, 1) or (N, classes)")
    _check_finite(scores, name)
    if scores.ndim == 2:
        return scores.argmax(axis=1).astype(np.int64)
    if scores.dtype.kind in "iub" or (np.all(np.mod(scores, 1) == 0) and scores.max() > 1):
        return scores.astype(np.int64)  # class ids
    # One score per example: a sigmoid probability in [0, 1], else a logit.
    threshold = 0.5 if scores.min() >= 0 and scores.max() <= 1 else 0.0
    return np.asarray(scores > threshold).astype(np.int64)


def displayable_images(images: ArrayLike, *, channels_first: bool = False) -> NDArray[np.uint8] | None:
    """uint8 (N, H, W) or (N, H, W, 3) for drawing, or None when these inputs are not images.

    A batch of 4 axes reads as every entry point reads one (`events.png.guess_layout`): PyTorch's
    (N, C, H, W), or a numpy one whose last axis cannot be channels, is channels first.

    uint8 is kept; other numbers in [0, 1] are scaled by 255, anything else
    stretched per image to its own minimum and maximum (standardised inputs).
    Inputs with NaN or infinity are not shown (they are not pictures).
    """
    import numpy as np

    array = np.asarray(images)
    if array.ndim == 4 and guess_layout(array.shape, channels_first=channels_first) == "NCHW":
        array = array.transpose(0, 2, 3, 1)
    if array.ndim == 4 and array.shape[-1] == 1:
        array = array[..., 0]
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[-1] == 3)) or min(array.shape[1:3]) < 2:
        return None  # feature vectors, sequences...: no gallery, and no error
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "iufb" or not np.isfinite(array).all():
        return None
    array = array.astype(np.float64)
    if array.min() < 0 or array.max() > 1:
        axes = tuple(range(1, array.ndim))
        low, high = array.min(axis=axes, keepdims=True), array.max(axis=axes, keepdims=True)
        array = (array - low) / np.where(high > low, high - low, 1)
    return np.clip(np.round(array * 255), 0, 255).astype(np.uint8)


def _ids_of_numbers(
    truth: NDArray[Any], pred: NDArray[Any], names: list[str] | None
) -> tuple[NDArray[np.int64], NDArray[np.int64], list[str]]:
    true_ids, pred_ids = class_ids_from_labels(truth, "y_true"), class_ids_from_predictions(pred, "y_pred")
    columns = {name: array.shape[1] for name, array in (("y_true", truth), ("y_pred", pred)) if _per_class(array)}
    if names is not None:
        classes = len(names)
        for name, count in columns.items():
            if count != classes:
                raise InputError(f"{name} has {count} columns (one per class) but class_names names {classes} classes")
    elif columns:
        classes = max(columns.values())
        for name, count in columns.items():
            if count != classes:
                raise InputError(f"{name} has {count} columns but the other has {classes}: one column per class")
    else:
        classes = max(2, int(max(true_ids.max(), pred_ids.max())) + 1)
    for name, ids in (("y_true", true_ids), ("y_pred", pred_ids)):
        bad = ids[(ids < 0) | (ids >= classes)]
        if len(bad):
            named = f" (class_names names {classes})" if names is not None else ""
            raise InputError(f"{name} holds class {bad[0]}, outside 0 to {classes - 1}{named}")
    return true_ids, pred_ids, names if names is not None else [str(i) for i in range(classes)]


def _ids_of_text_labels(
    truth: NDArray[Any], pred: NDArray[Any], names: list[str] | None
) -> tuple[NDArray[np.int64], NDArray[np.int64], list[str]]:
    """Ids of string labels: in `names`' order, else in the sorted order of the labels seen."""
    import numpy as np

    for name, array in (("y_true", truth), ("y_pred", pred)):
        if not _is_text(array) or array.ndim != 1:
            other = "y_pred" if name == "y_true" else "y_true"
            raise InputError(
                f"{other} holds labels as strings, so {name} must too (one label per example), got {array.dtype} "
                f"shaped {array.shape}"
            )
    true_text, pred_text = truth.astype(str), pred.astype(str)
    seen = np.union1d(true_text, pred_text)
    if names is None:
        if len(seen) < 2:
            raise InputError(f"only one label was seen ({seen[0]!r}); pass class_names to name the others")
        names = [str(label) for label in seen]
    unknown = [str(label) for label in seen if label not in set(names)]
    if unknown:
        listed = ", ".join(map(repr, unknown[:MAX_POSITIONS_NAMED])) + (
            ", ..." if len(unknown) > MAX_POSITIONS_NAMED else ""
        )
        raise InputError(f"{counted(len(unknown), 'label')} not in class_names: {listed}")
    index = {name: i for i, name in enumerate(names)}
    lookup = np.vectorize(index.__getitem__, otypes=[np.int64])
    return lookup(true_text), lookup(pred_text), names


def _array(values: ArrayLike, name: str) -> NDArray[Any]:
    import numpy as np

    try:
        array, _ = as_numpy(values)  # a tensor that requires grad is detached, as for images
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputTypeError(f"{name} must be an array of labels or scores ({exc})") from None
    if array.dtype.kind == "O" and not _is_text(array):
        try:
            array = array.astype(np.float64)
        except (TypeError, ValueError):
            raise InputTypeError(
                f"{name} must hold numbers or strings, got objects such as {array.flat[0]!r}"
            ) from None
    if array.dtype.kind not in "biufUSO":
        raise InputTypeError(f"{name} must hold numbers or strings, got {array.dtype}")
    return array


def _is_text(array: NDArray[Any]) -> bool:
    if array.dtype.kind in "US":
        return True
    return array.dtype.kind == "O" and array.size > 0 and all(isinstance(v, str) for v in array.flat)


def _per_class(array: NDArray[Any]) -> bool:
    return array.ndim == 2 and array.shape[1] > 1


def _ids_or_scores(array: NDArray[Any], shapes: str) -> NDArray[Any]:
    """(N, classes) for one column per class, else the one column as (N,)."""
    if _per_class(array):
        return array
    column = array.reshape(len(array), -1)[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array
    if column.ndim != 1:
        raise InputError(f"{shapes}, got shape {array.shape}")
    return column


def _check_finite(array: NDArray[Any], name: str) -> None:
    """NaN or infinity is an error that says how many and where (the first few example indices)."""
    import numpy as np

    if array.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(array)
    if not bad.any():
        return
    rows = np.flatnonzero(bad.reshape(len(array), -1).any(axis=1))
    where = ", ".join(str(int(i)) for i in rows[:MAX_POSITIONS_NAMED]) + (
        ", ..." if len(rows) > MAX_POSITIONS_NAMED else ""
    )
    raise InputError(
        f"{name} holds NaN or infinity in {counted(int(bad.sum()), 'value')} of {counted(len(rows), 'example')} "
        f"(at index {where}): a result built on them would be wrong"
    )
