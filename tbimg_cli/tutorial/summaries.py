"""The image commands (`single`, `grid`, `plot`): which images, under which tag, into which run.

Each command selects its images first, so a bad option fails before any run
directory exists and never leaves an empty run behind; then it claims a run
directory and writes through the shared writer. Nothing here prints: `cli/`
hands the `WrittenRun` to `output.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import InputError
from tbimg_cli.events import storage
from tbimg_cli.events.png import png_size
from tbimg_cli.events.runs import DEFAULT_LOGDIR, IMAGES_FOLDER, PLOTS_FOLDER, TEST_IMAGES_FOLDER, new_run_dir
from tbimg_cli.events.writer import EventWriter
from tbimg_cli.tutorial import data
from tbimg_cli.tutorial.data import CLASS_NAMES
from tbimg_cli.words import counted

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from tbimg_cli.tutorial.download import BytesCallback


@dataclass(frozen=True)
class DataSource:
    """Where the images come from: the options every image command shares."""

    split: str = "train"
    data_dir: Path | None = None
    offline: bool = False
    on_download: BytesCallback | None = None

    def files(self) -> data.SplitFiles:
        return data.locate(self.split, self.data_dir, offline=self.offline, on_download=self.on_download)


@dataclass(frozen=True)
class RunTarget:
    """Where the run goes: the log root and, optionally, a name instead of a timestamp."""

    logdir: str | Path = DEFAULT_LOGDIR
    run_name: str | None = None


@dataclass
class WrittenRun:
    run_dir: str | Path  # a URL for a bucket
    logdir: str | Path
    tags: list[str]
    images: int
    shape: list[int]
    classes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        result = asdict(self)
        result["run_dir"] = str(self.run_dir)
        result["logdir"] = str(self.logdir)
        return result


@dataclass(frozen=True)
class ChosenImages:
    """The Fashion-MNIST images a command picked, with their dataset indices and labels."""

    split: str
    indices: list[int]
    images: NDArray[np.uint8]  # (N, 28, 28)
    labels: list[int]

    @property
    def class_names(self) -> list[str]:
        return [CLASS_NAMES[label] for label in self.labels]

    def class_counts(self) -> str:
        counts = Counter(self.class_names)
        return ", ".join(f"{name} ×{n}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def single(source: DataSource, target: RunTarget, index: int) -> WrittenRun:
    selection = pick_one(source.files(), index)
    tag = single_tag(source.split)
    return _write_images(target, tag, selection, describe_one(selection))


def grid(
    source: DataSource, target: RunTarget, count: int, start: int = 0, class_name: str | None = None
) -> WrittenRun:
    files, class_id = source.files(), parse_class(class_name)
    if class_id is None:
        files.read_ahead(start + count)  # while numpy is imported
    selection = pick_many(files, count, start, class_id)
    tag = grid_tag(source.split, count)
    return _write_images(target, tag, selection, describe_many(selection))


def plot(
    source: DataSource, target: RunTarget, count: int, start: int = 0, class_name: str | None = None
) -> WrittenRun:
    from tbimg_cli.images.figures import image_grid_png

    selection = pick_many(source.files(), count, start, parse_class(class_name))
    png = image_grid_png(selection.images, selection.class_names)
    width, height = png_size(png)
    tag = single_tag(source.split)
    with new_run_dir(target.logdir, PLOTS_FOLDER, target.run_name) as run_dir, EventWriter(run_dir) as writer:
        writer.png_images(tag, [png], step=0, description=describe_many(selection))
    shown = len(selection.indices)  # images in the figure; the summary itself holds one PNG
    return WrittenRun(run_dir, _location(target.logdir), [tag], shown, [1, height, width, 3], selection.class_names)


def _write_images(target: RunTarget, tag: str, selection: ChosenImages, description: str) -> WrittenRun:
    folder = IMAGES_FOLDER if selection.split == "train" else TEST_IMAGES_FOLDER
    with new_run_dir(target.logdir, folder, target.run_name) as run_dir, EventWriter(run_dir) as writer:
        count = writer.image(tag, selection.images, step=0, description=description)
    shape = [count, *selection.images.shape[1:], 1]
    return WrittenRun(run_dir, _location(target.logdir), [tag], count, shape, selection.class_names)


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


def pick_one(files: data.SplitFiles, index: int) -> ChosenImages:
    total = files.count()
    if not 0 <= index < total:
        raise InputError(f"--index {index} is out of range for the {files.split} split: use 0 to {total - 1}")
    labels = files.labels()
    images = files.images(stop=index + 1)
    return ChosenImages(files.split, [index], images[index : index + 1], [int(labels[index])])


def pick_many(files: data.SplitFiles, count: int, start: int = 0, class_id: int | None = None) -> ChosenImages:
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
        what = counted(len(candidates), f"{CLASS_NAMES[class_id]} image" if class_id is not None else "image")
        raise InputError(
            f"--count {count} asks for more than the {what} of the {files.split} split from index {start} on"
        )
    chosen = candidates[:count]
    images = files.images(stop=int(chosen[-1]) + 1)[chosen]
    return ChosenImages(files.split, chosen.tolist(), images, labels[chosen].tolist())


def split_noun(split: str) -> str:
    return "training" if split == "train" else "test"


def single_tag(split: str) -> str:
    """The tutorial's tag ("Training data"), naming the test split when that is shown."""
    return "Training data" if split == "train" else "Test data"


def grid_tag(split: str, count: int) -> str:
    return f"{count} {split_noun(split)} data examples"


def describe_one(selection: ChosenImages) -> str:
    index = selection.indices[0]
    return f"Fashion-MNIST **{selection.split}** image #{index}: *{selection.class_names[0]}*."


def describe_many(selection: ChosenImages) -> str:
    first, last = selection.indices[0], selection.indices[-1]
    return (
        f"{len(selection.indices)} Fashion-MNIST **{selection.split}** images "
        f"(dataset indices {first}–{last}). Classes shown: {selection.class_counts()}."
    )


def _location(logdir: str | Path) -> str | Path:
    return logdir if isinstance(logdir, str) and storage.is_url(logdir) else Path(logdir)
