"""Which Fashion-MNIST images a command shows, and how it describes them.

Validation happens here, before any run directory exists, so a bad option
never leaves an empty run behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tbimg_cli.data import CLASS_NAMES, SplitFiles
from tbimg_cli.errors import InputError


@dataclass(frozen=True)
class Selection:
    split: str
    indices: list[int]
    images: object  # uint8 (N, 28, 28)
    labels: list[int]

    @property
    def class_names(self) -> list[str]:
        return [CLASS_NAMES[label] for label in self.labels]

    def class_counts(self) -> str:
        counts = Counter(self.class_names)
        return ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def parse_class(value: str | None) -> int | None:
    """A class given by id (0-9) or by name, case-insensitively."""
    if value is None:
        return None
    text = value.strip()
    if text.isdigit() and int(text) < len(CLASS_NAMES):
        return int(text)
    for class_id, name in enumerate(CLASS_NAMES):
        if text.casefold() == name.casefold():
            return class_id
    valid = ", ".join(f"{i}={name}" for i, name in enumerate(CLASS_NAMES))
    raise InputError(f"unknown class {value!r}: use an id or a name ({valid})")


def pick_one(files: SplitFiles, index: int) -> Selection:
    total = files.count()
    if not 0 <= index < total:
        raise InputError(f"--index {index} is out of range for the {files.split} split: use 0 to {total - 1}")
    labels = files.labels()
    images = files.images(stop=index + 1)
    return Selection(files.split, [index], images[index : index + 1], [int(labels[index])])


def pick_many(files: SplitFiles, count: int, start: int = 0, class_id: int | None = None) -> Selection:
    """`count` images from dataset index `start` on, only of `class_id` when given."""
    import numpy as np

    total = files.count()
    if count < 1:
        raise InputError(f"--count must be at least 1, got {count}")
    if not 0 <= start < total:
        raise InputError(f"--start {start} is out of range for the {files.split} split: use 0 to {total - 1}")
    labels = files.labels()
    candidates = np.arange(start, total)
    if class_id is not None:
        candidates = candidates[labels[start:] == class_id]
    if count > len(candidates):
        what = f"{CLASS_NAMES[class_id]} images" if class_id is not None else "images"
        raise InputError(
            f"--count {count} asks for more than the {len(candidates)} {what} of the "
            f"{files.split} split from index {start} on"
        )
    chosen = candidates[:count]
    images = files.images(stop=int(chosen[-1]) + 1)[chosen]
    return Selection(files.split, chosen.tolist(), images, labels[chosen].tolist())


def split_noun(split: str) -> str:
    return "training" if split == "train" else "test"


def single_tag(split: str) -> str:
    """The tutorial's tag ("Training data"), naming the test split when that is shown."""
    return "Training data" if split == "train" else "Test data"


def grid_tag(split: str, count: int) -> str:
    return f"{count} {split_noun(split)} data examples"


def describe_one(selection: Selection) -> str:
    index = selection.indices[0]
    return f"Fashion-MNIST **{selection.split}** image #{index}: *{selection.class_names[0]}*."


def describe_many(selection: Selection) -> str:
    first, last = selection.indices[0], selection.indices[-1]
    return (
        f"{len(selection.indices)} Fashion-MNIST **{selection.split}** images "
        f"(dataset indices {first}–{last}). Classes shown: {selection.class_counts()}."
    )
