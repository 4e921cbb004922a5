"""The face: Typer commands, the one error boundary (`app.py`) and everything the terminal shows (`output.py`).

May import every other concern; nothing imports it. Importing this package registers
every command on `app`, in the order `tbimg --help` lists them.
"""

from tbimg_cli.cli import log_commands, read_commands, tutorial_commands
from tbimg_cli.cli.app import app, main

__all__ = ["app", "log_commands", "main", "read_commands", "tutorial_commands"]
