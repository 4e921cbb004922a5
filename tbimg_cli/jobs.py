"""The image commands' work, without any terminal output.

Each job selects images (failing early on bad input), then claims a run
directory and writes through the shared writer. `cli.py` only parses options
and prints the `JobResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from tbimg_cli import data, samples
from tbimg_cli.runs import KIND_IMAGES, KIND_PLOTS, new_run_dir
from tbimg_cli.writer import EventWriter


@dataclass
class JobResult:
    run_dir: Path
    logdir: Path
    tags: list[str]
    images: int
    shape: list[int]
    classes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        result = asdict(self)
        result["run_dir"] = str(self.run_dir)
        result["logdir"] = str(self.logdir)
        return result


@dataclass(frozen=True)
class Source:
    """Where the data comes from and where the run goes: the options every image command shares."""

    split: str = "train"
    data_dir: Path | None = None
    offline: bool = False
    logdir: Path = Path("logs")
    run_name: str | None = None

    def files(self) -> data.SplitFiles:
        return data.locate(self.split, self.data_dir, self.offline)


def single(source: Source, index: int) -> JobResult:
    selection = samples.pick_one(source.files(), index)
    tag = samples.single_tag(source.split)
    return _write_images(source, KIND_IMAGES, tag, selection, samples.describe_one(selection))


def grid(source: Source, count: int, start: int = 0, class_name: str | None = None) -> JobResult:
    class_id = samples.parse_class(class_name)
    selection = samples.pick_many(source.files(), count, start, class_id)
    tag = samples.grid_tag(source.split, count)
    return _write_images(source, KIND_IMAGES, tag, selection, samples.describe_many(selection))


def plot(source: Source, count: int, start: int = 0, class_name: str | None = None) -> JobResult:
    from tbimg_cli.figures import image_grid_png
    from tbimg_cli.png import png_size

    class_id = samples.parse_class(class_name)
    selection = samples.pick_many(source.files(), count, start, class_id)
    png = image_grid_png(selection.images, selection.class_names)
    width, height = png_size(png)
    tag = samples.single_tag(source.split)
    with new_run_dir(source.logdir, KIND_PLOTS, source.run_name) as run_dir, EventWriter(run_dir) as writer:
        writer.png_images(tag, [png], width, height, step=0, description=samples.describe_many(selection))
    return JobResult(run_dir, Path(source.logdir), [tag], 1, [1, height, width, 4], selection.class_names)


def _write_images(source: Source, kind: str, tag: str, selection: samples.Selection, description: str) -> JobResult:
    with new_run_dir(source.logdir, kind, source.run_name) as run_dir, EventWriter(run_dir) as writer:
        count = writer.image(tag, selection.images, step=0, description=description)
    shape = [count, *selection.images.shape[1:], 1]
    return JobResult(run_dir, Path(source.logdir), [tag], count, shape, selection.class_names)
