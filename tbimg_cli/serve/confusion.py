"""The confusion explorer's answers: a matrix's counts, a cell's examples and their thumbnails, from the log.

Read from the tensors `confusion.explorer` writes (found by the index, read a record at a time): nothing
is computed from pixels. A matrix is named by its run (the folder it was written to, `cm` for train-cm)
and the tag the user sees it under (`Confusion Matrix`); a step without its own thumbnails uses the
nearest earlier step's (they are written once while the inputs stay the same).
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import LogReadError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from tbimg_cli.serve.index import ImageIndex

PLUGIN = "tbimg.confusion"  # as `confusion.explorer` writes it (not imported: serving needs no drawing code)
SUFFIXES = {
    "counts": " (counts)",
    "examples": " (examples)",
    "scores": " (examples) scores",
    "thumbnails": " (thumbnails)",
}
_cache_lock = threading.Lock()
_thumbnails: dict[tuple[str, str, int], Any] = {}  # (run, tag, record offset) -> array: the last two read
THUMBNAILS_KEPT = 2


def listing(index: ImageIndex) -> list[dict[str, Any]]:
    """Every confusion matrix with explorer data: run, tag, its steps, and what else was logged."""
    found = []
    suffix = SUFFIXES["counts"]
    for (run, tag), series in sorted(index.data.items()):
        if index.plugins.get((run, tag)) != PLUGIN or not tag.endswith(suffix):
            continue
        matrix = tag[: -len(suffix)]
        steps = sorted({entry.step for entry in series.entries})
        found.append(
            {
                "run": run,
                "tag": matrix,
                "steps": steps,
                "examples": (run, matrix + SUFFIXES["examples"]) in index.data,
                "scores": (run, matrix + SUFFIXES["scores"]) in index.data,
                "thumbnails": (run, matrix + SUFFIXES["thumbnails"]) in index.data,
            }
        )
    return found


def pictures_only(index: ImageIndex) -> list[dict[str, str]]:
    """Matrices logged as pictures only (by a tbimg older than the explorer): shown as images, with a note."""
    explored = {(item["run"], item["tag"]) for item in listing(index)}
    return [
        {"run": run, "tag": tag}
        for (run, tag) in sorted(index.series)
        if tag.endswith("Confusion Matrix") and (run, tag) not in explored
    ]


def _tensor(index: ImageIndex, run: str, tag: str, kind: str, step: int) -> tuple[NDArray[Any], dict[str, Any], int]:
    """(array, metadata content, the step it was written at) of one explorer tensor."""
    from tensorboard.util import tensor_util

    event, number = index.data_record(run, tag + SUFFIXES[kind], step)
    value = event.summary.value[number]
    try:
        content = json.loads(value.metadata.plugin_data.content or b"{}")
    except ValueError:
        content = {}
    return tensor_util.make_ndarray(value.tensor), content, int(event.step)


def counts(index: ImageIndex, run: str, tag: str, step: int, *, with_counts: bool = True) -> dict[str, Any]:
    """`classes`, `counts` (rows true, columns predicted) and the `step` they are of (the nearest earlier)."""
    matrix, classes, at = _matrix(index, run, tag, step)
    answer: dict[str, Any] = {"run": run, "tag": tag, "step": at, "classes": classes}
    if with_counts:
        answer["counts"] = matrix.tolist()
    return answer


def counts_bytes(index: ImageIndex, run: str, tag: str, step: int) -> bytes:
    """The counts as little-endian int32, row after row: what the page draws from (a 1,000-class matrix is
    4 MB this way, against 5 MB of JSON that Python takes a tenth of a second to write)."""
    import numpy as np

    matrix, _, _ = _matrix(index, run, tag, step)
    return np.clip(matrix, -(2**31), 2**31 - 1).astype("<i4").tobytes()


def _matrix(index: ImageIndex, run: str, tag: str, step: int) -> tuple[NDArray[Any], list[str], int]:
    matrix, content, at = _tensor(index, run, tag, "counts", step)
    classes = content.get("classes") or [str(i) for i in range(len(matrix))]
    if matrix.ndim != 2 or matrix.shape != (len(classes), len(classes)):
        raise LogReadError(f"the counts of {tag!r} at step {at} are not a {len(classes)}-class matrix")
    return matrix, [str(name) for name in classes], at


def cell(index: ImageIndex, run: str, tag: str, step: int, true: int | None, pred: int | None) -> dict[str, Any]:
    """The examples of one cell (both classes given), of one true class's row or one predicted class's column.

    `indices` into the evaluation set in order, or sorted by `scores` (the predicted class's probability,
    most confident first) when those were logged; `thumbnail` the route of each one's thumbnail when
    thumbnails were logged (`{index}` to fill in).
    """
    import numpy as np

    if true is None and pred is None:
        raise LogReadError("give true, pred or both")
    examples, _, at = _tensor(index, run, tag, "examples", step)
    if examples.ndim != 2 or examples.shape[0] != 2:
        raise LogReadError(f"the examples of {tag!r} at step {at} are not [2, N]")
    chosen = np.ones(examples.shape[1], bool)
    if true is not None:
        chosen &= examples[0] == true
    if pred is not None:
        chosen &= examples[1] == pred
    indices = np.flatnonzero(chosen)
    answer: dict[str, Any] = {"run": run, "tag": tag, "step": at, "true": true, "pred": pred, "count": len(indices)}
    if (run, tag + SUFFIXES["scores"]) in index.data:
        scores, _, _ = _tensor(index, run, tag, "scores", step)
        if scores.shape == (examples.shape[1],):
            order = np.argsort(-scores[indices], kind="stable")
            indices = indices[order]
            answer["scores"] = [round(float(s), 5) for s in scores[indices]]
    answer["indices"] = indices.tolist()
    answer["predicted"] = examples[1][indices].tolist()
    answer["truth"] = examples[0][indices].tolist()
    if (run, tag + SUFFIXES["thumbnails"]) in index.data:
        answer["thumbnail"] = f"thumbnail?run={_quoted(run)}&tag={_quoted(tag)}&step={at}&index={{index}}"
    return answer


def thumbnail(index: ImageIndex, run: str, tag: str, step: int, example: int) -> bytes:
    """One example's thumbnail as a PNG, from the thumbnails written at `step` or the nearest earlier."""
    from tbimg_cli.events.png import encode_pngs

    event, number = index.data_record(run, tag + SUFFIXES["thumbnails"], step)
    key = (run, tag, int(event.step))
    with _cache_lock:
        images = _thumbnails.get(key)
    if images is None:
        from tensorboard.util import tensor_util

        images = tensor_util.make_ndarray(event.summary.value[number].tensor)
        with _cache_lock:
            while len(_thumbnails) >= THUMBNAILS_KEPT:
                _thumbnails.pop(next(iter(_thumbnails)))
            _thumbnails[key] = images
    if not 0 <= example < len(images):
        raise LogReadError(f"no thumbnail of example {example} (the log holds {len(images)})")
    picture = images[example : example + 1]
    return encode_pngs(picture if picture.ndim == 4 else picture[..., None])[0]


def _quoted(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")
