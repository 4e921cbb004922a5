"""What `tbimg inspect` reports about a logdir: per run and tag, steps, samples, image size, last value.

Reading is `readback.py`'s; this keeps a few numbers per tag, whatever the
number of events, so a log of millions of events is summarised in flat memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tbimg_cli.logs.readback import (
    IMAGES,
    SCALARS,
    FileProblem,
    Logdir,
    Value,
    map_pieces,
    map_runs,
    open_logdir,
    piece_values,
    pieces,
    run_values,
)


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
    return _summarise(run, run_values(Logdir(location), run, files, problems, {IMAGES, SCALARS})), problems


def _inspect_piece(
    location: str, run: str, path: str, piece: tuple[int, int | None]
) -> tuple[list[TagSummary], list[FileProblem]]:
    problems: list[FileProblem] = []
    return _summarise(run, piece_values(Logdir(location), run, path, piece, problems, {IMAGES, SCALARS})), problems


def _summarise(run: str, values: Iterable[Value]) -> list[TagSummary]:
    summaries: dict[str, TagSummary] = {}
    for value in values:
        summary = summaries.get(value.tag)
        if summary is None:
            summary = summaries[value.tag] = TagSummary(run, value.tag, value.plugin or "?", value.step, value.step)
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
    return list(summaries.values())


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
