"""What the confusion explorer (the tbimg tab's confusion view) reads: exact numbers, not pixels.

Beside a step's matrix picture and table (which stay as they are), three tensor summaries of tbimg's own
plugin (`PLUGIN`), which TensorBoard's dashboards do not show:

    <tag> (counts)       int64 [classes, classes]: rows true, columns predicted; the class names and the
                         matrix's tag in the summary's metadata (JSON)
    <tag> (examples)     int32 [2, N]: each evaluation example's true and predicted class, so every cell's
                         examples are exact and uncapped (the cells partition the evaluation set);
                         with float32 scores when the predictions were probabilities or logits: the
                         predicted class's probability, for sorting a cell's examples
    <tag> (thumbnails)   uint8 [K, h, w] or [K, h, w, 3]: the inputs, small (at most `THUMBNAIL_SIDE`
                         pixels a side, the first `THUMBNAIL_BYTES` of them), written once per event file
                         while the inputs stay the same, not once per epoch; example i's is row i (i < K)

Fashion-MNIST's 10,000 test images: 80 KB of examples and 120 B of counts a step, 7.8 MB of thumbnails once.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import TYPE_CHECKING

from tbimg_cli.confusion.labels import Evaluation, displayable_images
from tbimg_cli.events.writer import EventWriter

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

PLUGIN = "tbimg.confusion"
VERSION = 1
KINDS = ("counts", "examples", "thumbnails")
THUMBNAIL_SIDE = 48  # larger inputs are shrunk by a whole factor (a block mean) to at most this
THUMBNAIL_BYTES = 32 << 20  # pixels kept at most: the first examples' when an evaluation set is larger

# Event file -> digest of the thumbnails last written into it: an unchanged evaluation set is written once.
_written_thumbnails: dict[str, bytes] = {}
_lock = threading.Lock()


def data_tag(matrix_tag: str, kind: str) -> str:
    return f"{matrix_tag} ({kind})"


def write_explorer_data(
    writer: EventWriter, evaluation: Evaluation, matrix: NDArray[np.int64], step: int, tag: str
) -> None:
    """One step's counts and examples, and the thumbnails when the inputs are new to this event file."""
    import numpy as np

    def content(kind: str, **more: object) -> bytes:
        return json.dumps({"version": VERSION, "kind": kind, "matrix": tag, **more}).encode()

    names = evaluation.class_names
    writer.tensor(data_tag(tag, "counts"), matrix.astype(np.int64), step, PLUGIN, content("counts", classes=names))
    examples = np.stack([evaluation.y_true, evaluation.y_pred]).astype(np.int32)
    scores = evaluation.scores
    writer.tensor(data_tag(tag, "examples"), examples, step, PLUGIN, content("examples", scores=scores is not None))
    if scores is not None:
        writer.tensor(data_tag(tag, "examples") + " scores", scores.astype(np.float32), step, PLUGIN, content("scores"))
    if evaluation.inputs is None:
        return
    inputs = np.ascontiguousarray(evaluation.inputs)
    digest = hashlib.blake2b(inputs.data, digest_size=16).digest()  # ~1 GB/s: epochs cost little
    key = str(writer.path)
    with _lock:
        if _written_thumbnails.get(key) == digest:
            return
    shown = displayable_images(inputs, channels_first=evaluation.channels_first)
    if shown is None:  # not images: no thumbnails, and no error
        return
    writer.tensor(data_tag(tag, "thumbnails"), small(shown), step, PLUGIN, content("thumbnails"))
    with _lock:
        _written_thumbnails[key] = digest


def small(images: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """(N, H, W[, 3]) uint8 shrunk by a whole factor to at most `THUMBNAIL_SIDE` a side, and cut to
    `THUMBNAIL_BYTES`."""
    import numpy as np

    factor = -(-max(images.shape[1:3]) // THUMBNAIL_SIDE)
    if factor > 1:
        height, width = (images.shape[1] // factor) * factor, (images.shape[2] // factor) * factor
        cut = images[:, :height, :width].astype(np.float32)
        shape = (len(images), height // factor, factor, width // factor, factor, *images.shape[3:])
        images = np.rint(cut.reshape(shape).mean(axis=(2, 4))).astype(np.uint8)
    per_image = max(1, images[0].nbytes) if len(images) else 1
    return np.ascontiguousarray(images[: max(1, THUMBNAIL_BYTES // per_image)])
