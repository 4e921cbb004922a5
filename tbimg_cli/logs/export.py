"""`tbimg export`: everything in a logdir back out as ordinary files, written as it is read.

Per run (the logdir's own events go straight into `--out`):

    <out>/<run>/<tag>/step-<step>-<sample>.<ext>   each image sample, its stored bytes (PNG, JPEG, GIF...)
    <out>/<run>/<tag>/step-<step>.md               each text summary (the confusion matrix's table...)
    <out>/<run>/scalars.csv                        tag,step,wall_time,value: one row per scalar event
    <out>/<run>/<tag>.gif                          with --animate: sample 0 of every step, in step order
    <out>/<run>/<matrix tag>/confusion-<step>.csv  a confusion matrix's counts (tbimg's explorer data): a
                                                   header of predicted classes, a row per true class

Filters compose: `--run` and `--tag` are regular expressions searched in the
name, as TensorBoard's filter boxes do (a string that is not a valid
expression matches itself), `--step` is N, A:B, A: or :B (inclusive).

Safety: names come from tags and runs, which are arbitrary strings
("../../etc/x", "/abs", "con:", 300 characters...): each "/"-separated part
becomes one safe folder name, the resolved path must stay under `--out`, and
names that collide (after cleaning, or a file where another needs a folder)
get a numeric suffix. Nothing is overwritten without `--force`: when `--out`
already holds files, a first pass works out every path and checks them before
anything is written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from tbimg_cli.errors import InputError, LogReadError
from tbimg_cli.logs.columns import Block, ScalarRows, run_blocks, scalar_rows
from tbimg_cli.logs.export_paths import SCALARS_FILE, ExportPaths, distinct_run_folders, safe_component
from tbimg_cli.logs.readback import (
    CONFUSION,
    COUNTS_SUFFIX,
    IMAGES,
    SCALARS,
    TEXT,
    FileProblem,
    Logdir,
    Value,
    map_runs,
    open_logdir,
)
from tbimg_cli.words import counted

__all__ = ["SCALARS_FILE", "ExportPaths", "distinct_run_folders", "export_logdir", "safe_component"]

GIF_FRAME_MS = 500  # two frames a second: an epoch at a glance
GIF_LAST_FRAME_MS = 2000  # hold the final state before the loop starts again


@dataclass(frozen=True)
class ExportFilter:
    """Which runs, tags and steps to export."""

    run: str | None = None
    tag: str | None = None
    steps: tuple[int | None, int | None] = (None, None)  # inclusive; None is open

    def run_matches(self, run: str) -> bool:
        return _matches(self.run, run)

    def describe(self) -> str:
        parts = [f"{name} {value!r}" for name, value in (("run", self.run), ("tag", self.tag)) if value is not None]
        if self.steps != (None, None):
            low, high = self.steps
            parts.append(
                f"step {low}" if low == high else f"steps {'' if low is None else low}:{'' if high is None else high}"
            )
        return " and ".join(parts)


def parse_steps(text: str | None) -> tuple[int | None, int | None]:
    """`--step`: N, A:B, A: or :B, inclusive."""
    if text is None:
        return None, None
    try:
        if ":" not in text:
            return int(text), int(text)
        low, high = text.split(":", 1)
        bounds = (int(low) if low.strip() else None, int(high) if high.strip() else None)
    except ValueError:
        raise InputError(f"--step {text!r} must be a step (5) or a range (2:8, 2:, :8)") from None
    if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
        raise InputError(f"--step {text!r} is an empty range: the first step comes after the last")
    return bounds


@dataclass
class RunExport:
    """What one run's export wrote (or, when planning, would write)."""

    files: list[Path] = field(default_factory=list)
    images: int = 0
    texts: int = 0
    matrices: int = 0  # confusion-<step>.csv files
    scalar_rows: int = 0
    animations: int = 0
    tags: set[str] = field(default_factory=set)
    problems: list[FileProblem] = field(default_factory=list)
    tag_folders: dict[str, Path] = field(default_factory=dict)  # where each tag's files went


@dataclass
class ExportResult(RunExport):
    """What the whole export wrote: every run's parts added up."""

    out: Path = Path()
    runs: set[str] = field(default_factory=set)
    run_folders: dict[str, dict[str, Any]] = field(default_factory=dict)  # run -> its folder and its tags' folders

    @property
    def corrupt(self) -> bool:
        return any(not p.note for p in self.problems)

    def add(self, run: str, part: RunExport) -> None:
        self.files += part.files
        self.images += part.images
        self.texts += part.texts
        self.matrices += part.matrices
        self.scalar_rows += part.scalar_rows
        self.animations += part.animations
        self.problems += part.problems
        if part.files:
            self.runs.add(run)
            self.tags |= part.tags
            self.run_folders[run] = {
                "folder": str(self.run_folders.get(run, {}).get("folder", "")),
                "tags": {tag: str(folder) for tag, folder in sorted(part.tag_folders.items())},
            }

    def summary(self) -> str:
        parts = [counted(self.images, "image")]
        if self.texts:
            parts.append(counted(self.texts, "text"))
        if self.matrices:
            parts.append(f"{self.matrices} confusion matri{'x' if self.matrices == 1 else 'ces'}")
        if self.scalar_rows:
            parts.append(counted(self.scalar_rows, "scalar"))
        if self.animations:
            parts.append(counted(self.animations, "animation"))
        return ", ".join(parts) + f" from {counted(len(self.runs), 'run')} and {counted(len(self.tags), 'tag')}"

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "images": self.images,
            "texts": self.texts,
            "matrices": self.matrices,
            "scalar_rows": self.scalar_rows,
            "animations": self.animations,
            "runs": sorted(self.runs),
            "folders": {run: self.run_folders[run] for run in sorted(self.runs)},
            "tags": sorted(self.tags),
            "files": [str(p) for p in self.files],
            "problems": [asdict(p) for p in self.problems],
        }


def export_logdir(
    location: str | Path,
    out: Path,
    wanted: ExportFilter | None = None,
    *,
    animate: bool = False,
    force: bool = False,
    on_run: Callable[[int, int, int], None] | None = None,
) -> ExportResult:
    """Write every wanted image, text and scalar of the logdir under `out`.

    `on_run(runs done, runs in all, files written so far)` hears each run as it is finished.
    """
    out = Path(out)
    wanted = wanted or ExportFilter()
    if out.exists() and not out.is_dir():
        raise LogReadError(f"--out {out} is a file, not a folder")
    logdir = open_logdir(location)
    result = ExportResult(out=out)
    runs = {run: files for run, files in logdir.runs(result.problems).items() if wanted.run_matches(run)}
    folders = distinct_run_folders(out, runs)
    result.run_folders = {run: {"folder": str(folder)} for run, folder in folders.items()}
    if not force and out.is_dir() and any(out.iterdir()):
        planned = _export_runs(logdir, runs, _ExportJob(out, wanted, animate, planning=True, run_folders=folders))
        existing = [path for part in planned for path in part.files if path.exists()]
        if existing:
            raise LogReadError(
                f"{counted(len(existing), 'file')} already exist under {out} (first: {existing[0]}); "
                "use --force to overwrite"
            )
    if on_run is not None:
        on_run(0, len(runs), 0)
    parts = _export_runs(logdir, runs, _ExportJob(out, wanted, animate, planning=False, run_folders=folders))
    for done, (run, part) in enumerate(zip(runs, parts, strict=True), 1):
        result.add(run, part)
        if on_run is not None:
            on_run(done, len(runs), len(result.files))
    if not result.files:
        what = wanted.describe()
        raise LogReadError(
            f"nothing to export from {location}"
            + (f" for {what}" if what else "")
            + "; `tbimg inspect` lists what is there"
        )
    return result


@dataclass(frozen=True)
class _ExportJob:
    """What every run's export shares (sent to worker processes as it is)."""

    out: Path
    wanted: ExportFilter
    animate: bool
    planning: bool  # only name the files, write nothing
    run_folders: dict[str, Path]  # distinct for distinct runs, worked out before any run is exported


def _export_runs(logdir: Logdir, runs: dict[str, list[str]], job: _ExportJob) -> Iterator[RunExport]:
    """Each run exported into a folder of its own, on every core when it pays (`map_runs`).

    When one run's folder would hold another's (the logdir's own events beside
    runs below it, nested runs) they share one `ExportPaths`, so that no two
    outputs can collide: those export one after another, in this process.
    """
    folders = set(job.run_folders.values())
    if any(parent in folders for folder in folders for parent in folder.parents):
        paths = ExportPaths(job.out, job.run_folders)
        return (_export_run(logdir.location, run, files, job, paths) for run, files in runs.items())
    return map_runs(logdir, runs, _export_run, job)


def _export_run(
    location: str, run: str, files: list[str], job: _ExportJob, paths: ExportPaths | None = None
) -> RunExport:
    """Write (or only name, when planning) one run's files, streaming: its CSV a block of rows at a time,
    its animations when the run ends, so memory holds one run's animation frames at most."""
    exporter = _RunExporter(run, job, paths or ExportPaths(job.out, job.run_folders))
    try:
        wanted = {IMAGES, SCALARS, TEXT, CONFUSION}
        for block in run_blocks(Logdir(location), run, files, exporter.part.problems, wanted):
            exporter.add(block)
    finally:
        if exporter.scalars is not None:
            exporter.scalars.close()
    return exporter.finish()


class _RunExporter:
    """One run's export, a block of values at a time."""

    def __init__(self, run: str, job: _ExportJob, paths: ExportPaths) -> None:
        self.run, self.job, self.paths = run, job, paths
        self.part = RunExport()
        self.scalars: _ScalarsFile | None = None
        self.frames: dict[str, dict[int, bytes]] = {}
        self._kept: dict[tuple[str, str], bool] = {}

    def add(self, block: Block) -> None:
        low, high = self.job.wanted.steps
        rows = scalar_rows(block, lambda tag: self.kept(SCALARS, tag), low, high)
        for order, value in block.values:
            if value.plugin == SCALARS or not self.kept(value.plugin, value.tag):
                continue
            if (low is not None and value.step < low) or (high is not None and value.step > high):
                continue
            if rows is not None and int(rows.orders[0]) < order:  # files are listed in the order they are met
                self._scalars_file()
            self._export(value)
        if rows is not None:
            self._scalars_file().add_rows(rows)
            self.part.scalar_rows += len(rows.orders)
            self.part.tags.update(rows.tags)

    def finish(self) -> RunExport:
        part, run, paths = self.part, self.run, self.paths
        part.animations += _write_animations(run, self.frames, paths, self.write)
        part.tag_folders = {tag: folder for tag in part.tags if (folder := paths.tag_folder(run, tag)) is not None}
        return part

    def kept(self, plugin: str, tag: str) -> bool:
        keep = self._kept.get((plugin, tag))
        if keep is None:
            keep = self._kept[plugin, tag] = _exported(plugin, tag, self.job.wanted.tag)
        return keep

    def write(self, path: Path, contents: Callable[[Path], object] | None) -> None:
        self.part.files.append(path)
        if self.job.planning or contents is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            contents(path)
        except OSError as exc:
            raise LogReadError(f"cannot write {path} ({exc.strerror}); choose another --out") from exc

    def _scalars_file(self) -> _ScalarsFile:
        if self.scalars is None:
            self.scalars = _ScalarsFile(self.paths.for_scalars(self.run), self.write, planning=self.job.planning)
        return self.scalars

    def _export(self, value: Value) -> None:
        part, paths, run, write = self.part, self.paths, self.run, self.write
        tag, step = value.tag, value.step
        part.tags.add(tag)
        if value.plugin == CONFUSION:
            if value.data is not None:
                matrix_tag = tag.removesuffix(COUNTS_SUFFIX)
                write(paths.for_confusion(run, matrix_tag, step), partial(_write_confusion, counts=value.data))
                part.matrices += 1
        elif value.plugin == IMAGES:
            _, _, samples = value.data
            for index, data in enumerate(samples):
                write(paths.for_sample(run, tag, step, index, data), partial(_write_bytes, data=data))
            part.images += len(samples)
            if self.job.animate and samples:
                self.frames.setdefault(tag, {})[step] = samples[0]
        else:
            write(paths.for_text(run, tag, step), partial(_write_text, text=value.data + "\n"))
            part.texts += 1


class _ScalarsFile:
    """One run's scalars.csv, opened at its first row and written row by row.

    Rows are formatted here rather than by `csv.writer`: a million rows are
    the common case, and only the tag can need quoting (done once per tag).
    """

    def __init__(self, path: Path, write: Callable[[Path, Callable[[Path], object] | None], None], *, planning: bool):
        self._stream: TextIO | None = None
        self._quoted: dict[str, str] = {}
        write(path, None if planning else self._open)

    def _open(self, path: Path) -> None:
        # Held open across rows and closed by close(): the run's loop writes a row at a time.
        self._stream = open(path, "w", encoding="utf-8", newline="", buffering=1 << 20)  # noqa: SIM115
        self._stream.write("tag,step,wall_time,value\r\n")  # the csv module's dialect, which readers expect

    def add_rows(self, rows: ScalarRows) -> None:
        if self._stream is None:  # only planning
            return
        quoted = [self._quoted.get(tag) or self._quoted.setdefault(tag, _csv_field(tag)) for tag in rows.tags]
        tags = [quoted[k] for k in rows.which.tolist()] if len(quoted) > 1 else [quoted[0]] * len(rows.which)
        lines = zip(tags, rows.steps.tolist(), rows.wall_times.tolist(), rows.values.tolist(), strict=True)
        self._stream.write(
            "".join(f"{tag},{step},{wall_time!r},{value!r}\r\n" for tag, step, wall_time, value in lines)
        )

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _write_text(path: Path, text: str) -> None:
    path.write_text(text)


def _csv_field(text: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([text])
    return buffer.getvalue().rstrip("\r\n")


def _write_animations(
    run: str, frames: dict[str, dict[int, bytes]], paths: ExportPaths, write: Callable[[Path, Any], None]
) -> int:
    """A GIF of sample 0 of every step, per tag of more than one step; how many."""
    written = 0
    for tag, by_step in frames.items():
        if len(by_step) > 1:
            ordered = [by_step[s] for s in sorted(by_step)]
            write(paths.for_animation(run, tag), partial(_write_gif, frames=ordered))
            written += 1
    return written


def _exported(plugin: str, tag: str, pattern: str | None) -> bool:
    """Whether a tag's values are exported: images, scalars, text, a confusion matrix's counts (by its
    matrix's tag, as `--tag` names it)."""
    if plugin not in (IMAGES, SCALARS, TEXT) and not (plugin == CONFUSION and tag.endswith(COUNTS_SUFFIX)):
        return False
    return _matches(pattern, tag.removesuffix(COUNTS_SUFFIX) if plugin == CONFUSION else tag)


def _write_confusion(path: Path, counts: tuple[list[str], Any]) -> None:
    names, matrix = counts
    with open(path, "w", newline="", encoding="utf-8") as stream:
        rows = csv.writer(stream)
        rows.writerow(["true \\ predicted", *names])
        for name, row in zip(names, matrix.tolist(), strict=True):
            rows.writerow([name, *row])


def _write_gif(path: Path, frames: list[bytes]) -> None:
    """An animated GIF of the frames (any format Pillow reads), same size as the first, looping forever."""
    from PIL import Image

    images: list[Image.Image] = []
    for data in frames:
        with Image.open(io.BytesIO(data)) as frame:
            image = frame.convert("RGB")
        if images and image.size != images[0].size:
            image = image.resize(images[0].size)
        images.append(image)
    durations = [GIF_FRAME_MS] * (len(images) - 1) + [GIF_LAST_FRAME_MS]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)


# Safe export paths


def _matches(pattern: str | None, name: str) -> bool:
    if pattern is None:
        return True
    return pattern == name or _compiled(pattern).search(name) is not None


def _compiled(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error:  # not an expression: a name with brackets or backslashes, matched as it is
        return re.compile(re.escape(pattern))
