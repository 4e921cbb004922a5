"""Everything tbimg prints: results on stdout, progress and errors on stderr.

Keeping stdout for results alone is what makes `--json` safe to pipe.
"""

from __future__ import annotations

import json
import shlex
import sys

from rich.console import Console
from rich.markup import escape

stdout = Console(highlight=False)
stderr = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """One red line on stderr: the whole user-facing report of a failure."""
    stderr.print(f"[bold red]Error:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    stderr.print(f"[yellow]{escape(message)}[/]", soft_wrap=True)


def emit_json(payload: dict) -> None:
    """Exactly one JSON object on stdout, nothing else."""
    sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    sys.stdout.flush()


def view_hint(logdir) -> str:
    return f"tensorboard --logdir {shlex.quote(str(logdir))}"


def wrote(result, what: str) -> None:
    """The short summary that ends every writing command, with the command to view it."""
    stdout.print(f"[green]✓[/] Wrote {escape(what)} to [bold]{escape(str(result.run_dir))}[/]", soft_wrap=True)
    stdout.print(f"  tags: {escape(', '.join(result.tags))}", soft_wrap=True)
    stdout.print(f"  view: [cyan]{escape(view_hint(result.logdir))}[/]  (or add --serve)", soft_wrap=True)
