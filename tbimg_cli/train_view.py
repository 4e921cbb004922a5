"""What `train-cm` shows in the terminal: live progress while it trains, a table at the end.

Progress goes to stderr so `--json` keeps stdout to its one JSON object.
"""

from __future__ import annotations

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tbimg_cli import output


class TrainingProgress:
    """Two bars: epochs, and batches within the current epoch, with the latest metrics."""

    def __init__(self, epochs: int, steps_per_epoch: int, enabled: bool = True):
        self.steps = steps_per_epoch
        self._progress = Progress(
            TextColumn("{task.description:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=output.stderr,
            disable=not enabled,
        )
        self._epochs = self._progress.add_task("epochs", total=epochs, metrics="")
        self._batches = self._progress.add_task("batches", total=steps_per_epoch, metrics="")

    def __enter__(self) -> TrainingProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._progress.stop()

    def epoch_started(self, epoch: int) -> None:
        self._progress.reset(self._batches, total=self.steps, metrics="")
        self._progress.update(self._batches, description=f"epoch {epoch + 1}")

    def batch_done(self, batch: int, logs: dict) -> None:
        self._progress.update(self._batches, completed=batch + 1, metrics=_metrics(logs, ("loss", "accuracy")))

    def epoch_done(self, epoch: int, logs: dict) -> None:
        self._progress.update(self._batches, completed=self.steps)
        self._progress.update(
            self._epochs, completed=epoch + 1, metrics=_metrics(logs, ("loss", "accuracy", "val_accuracy"))
        )


def _metrics(logs: dict, keys: tuple[str, ...]) -> str:
    return "  ".join(f"{key} {float(logs[key]):.4f}" for key in keys if key in (logs or {}))


def print_summary(result) -> None:
    """Per-epoch table, where the run went, and how to look at it."""
    table = Table(title="train-cm", title_justify="left")
    for column in ("epoch", "loss", "accuracy", "val loss", "val accuracy", "seconds"):
        table.add_column(column, justify="right")
    for row in result.epochs:
        table.add_row(
            str(row.epoch + 1),
            f"{row.loss:.4f}",
            f"{row.accuracy:.4f}",
            f"{row.val_loss:.4f}",
            f"{row.val_accuracy:.4f}",
            f"{row.seconds:.1f}",
        )
    output.stdout.print(table)
    if result.interrupted:
        output.note(f"Interrupted after {len(result.epochs)} epoch(s); what was logged is complete and readable.")
    output.wrote(result, f"{len(result.epochs)} epoch(s) of scalars and confusion matrices")
    if result.epochs:
        output.stdout.print(f"  final test accuracy: {escape(f'{result.epochs[-1].val_accuracy:.4f}')}")
