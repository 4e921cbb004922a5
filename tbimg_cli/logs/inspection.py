"""What `tbimg inspect` reports about a logdir: per run and tag, steps, samples, image size, last value.

Reading is `readback.py`'s; this keeps a few numbers per tag, whatever the
number of events, so a log of millions of events is summarised in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tbimg_cli.logs.columns import Block, file_blocks, run_blocks
from tbimg_cli.logs.readback import IMAGES, SCALARS, FileProblem, Logdir, map_pieces, map_runs, open_logdir, pieces


@dataclass
class TagSummary:
    run: str
    tag: str
    plugin: str
    first_step: int = 0
    last_step: int = 0
    count: int = 0
    samples: int = 0  # most samples seen in one step (images)
    width: int | None = None
    height: int | None = None
    last_value: float | None = None  # scalars

    @property
    def image_size(self) -> str:
        return f"{self.width}x{self.height}" if self.width is not None else ""

    def to_json(self) -> dict[str, Any]:
        result = asdict(self)
        for name in ("first_step", "last_step", "count"):
            del result[name]
        result["steps"] = {"first": self.first_step, "last": self.last_step, "count": self.count}
        return result


@dataclass
class Inspection:
    logdir: str
    tags: list[TagSummary]
    problems: list[FileProblem] = field(default_factory=list)

    @property
    def corrupt(self) -> bool:
        """A cut last record is what a running writer leaves; anything else is damage."""
        return any(not p.note for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {
            "logdir": self.logdir,
            "runs": sorted({t.run for t in self.tags}),
            "tags": [t.to_json() for t in self.tags],
            "problems": [asdict(p) for p in self.problems],
        }


def inspect_logdir(location: str | Path) -> Inspection:
    """Every run's tag summaries: read on every core when the log is large (`readback.pieces`)."""
    logdir = open_logdir(location)
    problems: list[FileProblem] = []
    runs = logdir.runs(problems)
    tags: list[TagSummary] = []
    jobs = pieces(logdir, runs)
    results = map_pieces(logdir, _inspect_piece, jobs) if jobs else None
    if jobs is None or results is None:
        for run_tags, run_problems in map_runs(logdir, runs, _inspect_run):
            tags.extend(run_tags)
            problems.extend(run_problems)
        return Inspection(str(location), tags, problems)
    by_run: dict[str, dict[str, TagSummary]] = {}
    for (run, _, _), (piece_tags, piece_problems) in zip(jobs, results, strict=True):
        merged = by_run.setdefault(run, {})
        for summary in piece_tags:
            _merge(merged, summary)
        problems.extend(piece_problems)
    return Inspection(str(location), [tag for run in by_run.values() for tag in run.values()], problems)


def _inspect_run(location: str, run: str, files: list[str]) -> tuple[list[TagSummary], list[FileProblem]]:
    """One run's tag summaries: a few numbers per tag, whatever the number of events."""
    problems: list[FileProblem] = []
    return _summarise(run, run_blocks(Logdir(location), run, files, problems, {IMAGES, SCALARS})), problems


def _inspect_piece(
    location: str, run: str, path: str, piece: tuple[int, int | None]
) -> tuple[list[TagSummary], list[FileProblem]]:
    problems: list[FileProblem] = []
    # A piece knows the plugins only of the tags whose metadata it holds: TF 1 writers name a tag's plugin
    # on its first value only, so a later piece reads their other tensor values as of an unknown plugin.
    blocks = file_blocks(Logdir(location), run, path, {}, problems, {IMAGES, SCALARS}, piece)
    return _summarise(run, blocks), problems


def _summarise(run: str, blocks: Iterable[Block]) -> list[TagSummary]:
    """A few numbers per tag, block by block: the values parsed one by one, then the columns, whose
    numbers numpy sums up (a column's values are in file order, so its last is its latest)."""
    summaries: dict[str, TagSummary] = {}
    for block in blocks:
        _add_new_tags(run, block, summaries)
        latest: dict[str, int] = {}  # per scalar tag, the order of the value that set last_value
        for order, value in block.values:
            summary = summaries[value.tag]
            summary.count += 1
            if value.step < summary.first_step:
                summary.first_step = value.step
            elif value.step > summary.last_step:
                summary.last_step = value.step
            if value.plugin == IMAGES:
                summary.width, summary.height, samples = value.data
                summary.samples = max(summary.samples, len(samples))
            elif value.plugin == SCALARS:
                summary.last_value = value.data
                latest[value.tag] = order
        for column in block.columns:
            summary = summaries[column.tag]
            summary.count += len(column.orders)
            summary.first_step = min(summary.first_step, int(column.steps.min()))
            summary.last_step = max(summary.last_step, int(column.steps.max()))
            last = int(column.orders[-1])
            if column.plugin == SCALARS and column.data is not None and last > latest.get(column.tag, -1):
                summary.last_value = float(column.data[-1])
                latest[column.tag] = last
    return list(summaries.values())


def _add_new_tags(run: str, block: Block, summaries: dict[str, TagSummary]) -> None:
    """A summary for each tag the block holds first, in the order of their first values, as reading one
    value at a time would make them (with the plugin and step of that first value)."""
    firsts: dict[str, tuple[int, str, int]] = {}
    for order, value in block.values:
        if value.tag not in summaries and value.tag not in firsts:
            firsts[value.tag] = (order, value.plugin, value.step)
    for column in block.columns:
        if column.tag not in summaries:
            first = (int(column.orders[0]), column.plugin, int(column.steps[0]))
            if column.tag not in firsts or first < firsts[column.tag]:
                firsts[column.tag] = first
    for tag, (_, plugin, step) in sorted(firsts.items(), key=lambda item: item[1][0]):
        summaries[tag] = TagSummary(run, tag, plugin or "?", step, step)


def _merge(merged: dict[str, TagSummary], later: TagSummary) -> None:
    """Fold the summary of a tag in a later piece of its run into what the earlier pieces gave."""
    summary = merged.get(later.tag)
    if summary is None:
        merged[later.tag] = later
        return
    if summary.plugin == "?":
        summary.plugin = later.plugin
    summary.first_step = min(summary.first_step, later.first_step)
    summary.last_step = max(summary.last_step, later.last_step)
    summary.count += later.count
    summary.samples = max(summary.samples, later.samples)
    if summary.width is None:
        summary.width, summary.height = later.width, later.height
    if later.last_value is not None:
        summary.last_value = later.last_value
