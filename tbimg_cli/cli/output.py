"""Everything tbimg shows in the terminal: results, tables, progress bars, banners and errors.

The one module that prints. Results go to stdout and everything else
(progress, notes, errors, the TensorBoard banner) to stderr, which is what
keeps `--json` safe to pipe. Library modules report progress through
callbacks; the objects here are those callbacks.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from tbimg_cli.images.sources import LogResult
    from tbimg_cli.images.sources import Problem as LogProblem
    from tbimg_cli.logs.export import ExportResult
    from tbimg_cli.logs.inspection import Inspection, TagSummary
    from tbimg_cli.logs.readback import FileProblem
    from tbimg_cli.tutorial.train import TrainResult

from tbimg_cli.words import counted

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


class RunReport(Protocol):
    """What a writing command's result tells the terminal: `images.WrittenRun` and `train.TrainResult` both do."""

    @property
    def run_dir(self) -> str | Path: ...

    @property
    def logdir(self) -> str | Path: ...

    @property
    def tags(self) -> list[str]: ...


# Messages


SAME_REASON_SHOWN = 3  # files named with one reason before the rest are counted


def error(message: str) -> None:
    """One red line on stderr: the whole user-facing report of a failure."""
    stderr.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    stderr.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)


def emit_json(payload: dict[str, Any]) -> None:
    """Exactly one JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    sys.stdout.flush()


def view_hint(logdir: str | Path) -> str:
    return f"tensorboard --logdir {shlex.quote(str(logdir))}"


def wrote(result: RunReport, what: str, *, serving: bool = False) -> None:
    """The short summary that ends every writing command, with the command to view it unless it is being served."""
    stdout.print(f"[green]✓[/] Wrote {escape(what)} to [bold]{escape(str(result.run_dir))}[/]", soft_wrap=True)
    stdout.print(f"  tags: {escape(', '.join(_grouped(result.tags)))}", soft_wrap=True)
    if not serving:
        stdout.print(f"  view: [cyan]{escape(view_hint(result.logdir))}[/]  (or add --serve)", soft_wrap=True)


def _grouped(tags: list[str]) -> list[str]:
    """Tags for reading: a family of more than three (`per_class_accuracy/...`) as `prefix/* (n)`."""
    families: dict[str, list[str]] = {}
    for tag in tags:
        families.setdefault(tag.split("/", 1)[0] + "/*" if "/" in tag else tag, []).append(tag)
    return [
        f"{name} ({len(members)})" if len(members) > 3 else ", ".join(members) for name, members in families.items()
    ]


def serving(url: str, logdir: str | Path, moved_port_note: str | None, *, exposed: bool = False) -> None:
    """Where TensorBoard is, that the port moved if it did, and that others can see it if they can."""
    if moved_port_note:
        note(moved_port_note)
    if exposed:
        note("TensorBoard listens on every network interface: anyone who can reach this machine can read these logs.")
    stderr.print(f"TensorBoard at [bold cyan]{url}[/] serving {escape(str(logdir))}  (Ctrl-C to stop)", soft_wrap=True)


# Progress


class DownloadBars:
    """One bar per downloaded file; a `download.BytesCallback`. Starts drawing only if a download happens."""

    def __init__(self, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._bars: Progress | None = None  # made at the first download: most commands never download
        self._tasks: dict[str, TaskID] = {}
        self._drawing = False

    @property
    def _progress(self) -> Progress:
        if self._bars is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            self._bars = Progress(*columns, console=stderr, disable=not (self._enabled and stderr.is_terminal))
        return self._bars

    def __enter__(self) -> DownloadBars:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def __call__(self, name: str, received: int, total: int | None) -> None:
        if name not in self._tasks:
            self._tasks[name] = self._progress.add_task(f"Downloading {name}", total=total)
        if not self._drawing:
            self._progress.start()
            self._drawing = True
        self._progress.update(self._tasks[name], advance=received, total=total)
        if all(task.finished for task in self._progress.tasks):
            self._stop()  # off the screen between files, so training's bars can follow

    def _stop(self) -> None:
        if self._drawing:
            self._progress.stop()
            self._drawing = False


class ExportProgress:
    """Runs exported so far, and files written; `export`'s `on_run(done, total, files)` callback."""

    def __init__(self, *, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("Exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("runs, {task.fields[files]} files"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not (enabled and stderr.is_terminal),
        )
        self._task = self._progress.add_task("export", total=None, files=0)

    def __enter__(self) -> ExportProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int, files: int) -> None:
        self._progress.update(self._task, completed=done, total=total, files=f"{files:,}")


class LogProgress:
    """Files read, checked and logged so far; `tbimg log`'s `on_progress(done, total)` callback."""

    def __init__(self, *, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("Logging"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files"),
            TimeElapsedColumn(),
            console=stderr,
            transient=True,
            disable=not (enabled and stderr.is_terminal),
        )
        self._task = self._progress.add_task("log", total=None)

    def __enter__(self) -> LogProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._progress.stop()

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)


class WatchReport:
    """`tbimg log --watch`: one line per poll that logged something, each new problem as it is found."""

    def __init__(self, result: LogResult, *, enabled: bool = True) -> None:
        self._enabled = enabled
        self._files, self._problems, self._notices = result.files, len(result.problems), len(result.notices)

    def started(self, paths: list[str]) -> None:
        if self._enabled:
            stderr.print(f"Watching {escape(', '.join(paths))} for new images  (Ctrl-C to stop)", soft_wrap=True)

    def __call__(self, result: LogResult) -> None:
        new_files, new_problems = result.files - self._files, result.problems[self._problems :]
        new_notices = result.notices[self._notices :]
        self._files, self._problems, self._notices = result.files, len(result.problems), len(result.notices)
        if not self._enabled:
            return
        if new_files:
            stderr.print(f"  + {counted(new_files, 'file')} logged ({counted(result.images, 'image')} in all)")
        refused_files(new_problems)
        notices(new_notices)


class TrainingProgress:
    """Two bars, epochs and batches within the current epoch, with the latest metrics.

    A `train.TrainingObserver`: `train.run` calls these methods as it trains.
    """

    def __init__(self, *, enabled: bool = True) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.steps = 0
        self._progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=stderr,
            disable=not (enabled and stderr.is_terminal),  # piped, bars would print as fragments
        )
        self._epochs = self._progress.add_task("epochs", total=None, metrics="", visible=False)
        self._batches = self._progress.add_task("batches", total=None, metrics="", visible=False)

    def training_started(self, epochs: int, steps_per_epoch: int) -> None:
        self.steps = steps_per_epoch
        self._progress.update(self._epochs, total=epochs, visible=True)
        self._progress.update(self._batches, total=steps_per_epoch, visible=True)
        self._progress.start()

    def training_ended(self) -> None:
        self._progress.stop()

    def epoch_started(self, epoch: int) -> None:
        self._progress.reset(self._batches, total=self.steps, metrics="")
        self._progress.update(self._batches, description=f"epoch {epoch + 1}")

    def batch_done(self, batch: int, logs: Mapping[str, Any]) -> None:
        # Keras reports the last batch of each multi-batch call, which can pass the end of the epoch.
        completed = min(batch + 1, self.steps)
        self._progress.update(self._batches, completed=completed, metrics=_metrics(logs, ("loss", "accuracy")))

    def epoch_done(self, epoch: int, logs: Mapping[str, Any]) -> None:
        self._progress.update(self._batches, completed=self.steps)
        self._progress.update(
            self._epochs, completed=epoch + 1, metrics=_metrics(logs, ("loss", "accuracy", "val_accuracy"))
        )


def _metrics(logs: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    return "  ".join(f"{key} {float(logs[key]):.4f}" for key in keys if key in (logs or {}))


# Command results


def training_summary(result: TrainResult, *, serving: bool = False) -> None:
    """Per-epoch table of `train-cm`, where the run went, and how to look at it."""
    from rich.table import Table

    table = Table(title="train-cm", title_justify="left")
    for column in ("epoch", "step", "loss", "accuracy", "test loss", "test accuracy", "seconds"):
        table.add_column(column, justify="right")
    for row in result.epochs:
        table.add_row(
            str(row.epoch),
            str(row.step),
            f"{row.loss:.4f}",
            f"{row.accuracy:.4f}",
            f"{row.val_loss:.4f}",
            f"{row.val_accuracy:.4f}",
            f"{row.seconds:.1f}",
        )
    stdout.print(table)
    if not result.writes_logs:
        note("This worker is not the chief: it trained its share and wrote no logs (the chief writes them).")
        return
    wrote(result, f"{counted(len(result.epochs), 'epoch')} of scalars and confusion matrices", serving=serving)
    if result.epochs:
        stdout.print(f"  final test accuracy: {escape(f'{result.epochs[-1].val_accuracy:.4f}')}")


def logged(result: LogResult, *, serving: bool = False) -> None:
    """`tbimg log`: what was logged where, then one line per file that could not be."""
    if result.summaries:
        wrote(result, result.summary(), serving=serving)
    else:
        note(f"Nothing logged{' (every file was logged already)' if result.skipped else ''}.")
    refused_files(result.problems)
    notices(result.notices)


def notices(lines: Iterable[str]) -> None:
    """What was logged as asked but may not be what was meant (a name without a step among numbered ones)."""
    for line in lines:
        note(f"Note: {line}")


def uploaded(done: list[dict[str, Any]], failed: list[dict[str, str]]) -> None:
    """`tbimg upload`: where each spool folder's logs went, and one line for each that could not go."""
    if not done and not failed:
        note("No spool folders to upload: every log reached its bucket.")
    for item in done:
        where = escape(item["destination"])
        stdout.print(f"[green]✓[/] Uploaded {item['bytes']:,} bytes of logs to [bold]{where}[/]", soft_wrap=True)
    for item in failed:
        error(item["error"])


INSPECT_COLUMNS = ("run", "tag", "plugin", "steps (n)", "samples", "size / last")


def inspection(found: Inspection) -> None:
    """`inspect`: one row per (run, tag), then any problems with the files.

    A rich table on a terminal wide enough for it; otherwise (piped, or too
    narrow) plain tab-separated rows with a header, for `grep` and `cut`. A
    name or value is never broken across lines.
    """
    if not found.tags:
        note(f"No summaries found in {found.logdir}.")
        file_problems(found.problems)
        return
    rows = [_inspect_row(tag) for tag in found.tags]
    widths = [max(len(cell) for cell in column) for column in zip(INSPECT_COLUMNS, *rows, strict=True)]
    if stdout.is_terminal and sum(widths) + 3 * len(widths) + 1 <= stdout.width:
        from rich.table import Table

        table = Table(title=escape(str(found.logdir)), title_justify="left")
        for name in INSPECT_COLUMNS:
            table.add_column(name, justify="left" if name in ("run", "tag", "plugin") else "right", no_wrap=True)
        for row in rows:
            table.add_row(*map(escape, row))
        stdout.print(table)
    else:
        lines = ["\t".join(INSPECT_COLUMNS), *("\t".join(row) for row in rows)]
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
    file_problems(found.problems)


def _inspect_row(tag: TagSummary) -> tuple[str, ...]:
    if tag.plugin == "images":
        detail, samples = tag.image_size, str(tag.samples)
    elif tag.last_value is not None:
        detail, samples = f"{tag.last_value:.4g}", ""
    else:
        detail, samples = "", ""
    span = f"{tag.first_step}" if tag.first_step == tag.last_step else f"{tag.first_step}..{tag.last_step}"
    return (tag.run, tag.tag, tag.plugin, f"{span} ({tag.count})", samples, detail)


def exported(result: ExportResult) -> None:
    stdout.print(
        f"[green]✓[/] Exported {escape(result.summary())} to [bold]{escape(str(result.out))}[/]", soft_wrap=True
    )
    file_problems(result.problems)


def refused_files(problems: Iterable[LogProblem]) -> None:
    """`tbimg log`: one red line per file (or path) that could not be logged, naming why.

    A reason shared by many files (a folder of timestamped names) is shown for a few, then counted."""
    shown: dict[str, int] = {}
    for problem in problems:
        shown[problem.message] = shown.get(problem.message, 0) + 1
        if shown[problem.message] <= SAME_REASON_SHOWN:
            error(f"{problem.path}: {problem.message}")
    for message, count in shown.items():
        if count > SAME_REASON_SHOWN:
            error(f"... and {counted(count - SAME_REASON_SHOWN, 'more file')} for the same reason: {message}")


def file_problems(problems: Iterable[FileProblem]) -> None:
    """One line per problem: a note for what a running writer or an odd file leaves, an error for damage."""
    for problem in problems:
        where = f"{problem.path} at byte {problem.offset}" if problem.offset else problem.path
        if problem.note:
            note(f"Note: {where}: {problem.message}")
        else:
            error(f"{where}: {problem.message}")
