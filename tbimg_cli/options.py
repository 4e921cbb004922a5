"""Options shared by several commands, defined once as `Annotated` aliases.

Only typer and the standard library here: this module is imported for
`--help`, which must stay fast.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

DATA = "Data"
OUTPUT = "Output"
SERVING = "Serving"


class Split(str, Enum):
    train = "train"
    test = "test"


DataDirOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--data-dir",
        envvar="TBIMG_DATA_DIR",
        help="Folder holding the four Fashion-MNIST .gz files. Default: the Keras cache, downloading if needed.",
        rich_help_panel=DATA,
        show_default=False,
    ),
]
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", envvar="TBIMG_OFFLINE", help="Never download the dataset.", rich_help_panel=DATA),
]
SplitOpt = Annotated[Split, typer.Option("--split", help="Which Fashion-MNIST split to read.", rich_help_panel=DATA)]
StartOpt = Annotated[
    int, typer.Option("--start", help="Dataset index to start from.", rich_help_panel=DATA, min=0)
]
ClassOpt = Annotated[
    Optional[str],
    typer.Option("--class", help="Only images of this class (name or id 0-9).", rich_help_panel=DATA, show_default=False),
]
LogdirOpt = Annotated[
    Path, typer.Option("--logdir", help="Root log directory; each run gets its own folder below it.", rich_help_panel=OUTPUT)
]
RunNameOpt = Annotated[
    Optional[str],
    typer.Option(
        "--run-name", help="Name the run folder instead of a timestamp.", rich_help_panel=OUTPUT, show_default=False
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON object describing the run, nothing else.", rich_help_panel=OUTPUT)
]
VerboseOpt = Annotated[
    bool, typer.Option("--verbose", "-v", help="Show tracebacks and library logs.", rich_help_panel=OUTPUT)
]
ServeOpt = Annotated[
    bool, typer.Option("--serve", help="Start TensorBoard on the log root and keep serving until Ctrl-C.", rich_help_panel=SERVING)
]
HostOpt = Annotated[
    str, typer.Option("--host", help="Address TensorBoard binds (0.0.0.0 for every interface).", rich_help_panel=SERVING)
]
PortOpt = Annotated[
    Optional[int],
    typer.Option(
        "--port",
        help="Port for TensorBoard. Default: 6006, or the next free one.",
        rich_help_panel=SERVING,
        show_default=False,
        min=0,
        max=65535,
    ),
]
OpenOpt = Annotated[bool, typer.Option("--open", help="Open TensorBoard in a browser.", rich_help_panel=SERVING)]
