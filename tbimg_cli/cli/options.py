"""Options that several commands share, as `Annotated` aliases defined once.

Defaults come from the module that owns them; help panels group them the same
way in every command's `--help`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin

import typer

from tbimg_cli.cli.app import VERBOSE_KEY

DATA, OUTPUT, SERVING = "Data", "Output", "Serving"


class Split(str, Enum):
    train = "train"
    test = "test"


class StepsFrom(str, Enum):
    name = "name"
    folder = "folder"
    order = "order"


class Layout(str, Enum):
    auto = "auto"
    HW = "HW"
    HWC = "HWC"
    CHW = "CHW"
    NHW = "NHW"
    NHWC = "NHWC"
    NCHW = "NCHW"


class Strategy(str, Enum):
    default = "default"
    mirrored = "mirrored"
    multi_worker = "multi-worker"


def _remember_verbose(ctx: typer.Context, value: bool) -> bool:
    ctx.meta[VERBOSE_KEY] = ctx.meta.get(VERBOSE_KEY) or value
    return value


def _checked_logdir(value: str) -> str:
    if not value.strip():
        raise typer.BadParameter("must name a folder (it is empty)")
    return value


DataDirOpt = Annotated[
    Path | None,
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
    typer.Option(
        "--offline", envvar="TBIMG_OFFLINE", help="Never download the dataset.", metavar="", rich_help_panel=DATA
    ),
]
SplitOpt = Annotated[Split, typer.Option("--split", help="Which Fashion-MNIST split to read.", rich_help_panel=DATA)]
CountOpt = Annotated[int, typer.Option("--count", "-n", help="How many images.")]
StartOpt = Annotated[int, typer.Option("--start", help="Dataset index to start from.", rich_help_panel=DATA, min=0)]
ClassOpt = Annotated[
    str | None,
    typer.Option(
        "--class", help="Only images of this class (name or id 0-9).", rich_help_panel=DATA, show_default=False
    ),
]
LogdirOpt = Annotated[
    str,
    typer.Option(
        "--logdir",
        help="Root log directory; each run gets its own folder below it.",
        rich_help_panel=OUTPUT,
        callback=_checked_logdir,
    ),
]
RunNameOpt = Annotated[
    str | None,
    typer.Option(
        "--run-name", help="Name the run folder instead of a timestamp.", rich_help_panel=OUTPUT, show_default=False
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON object describing the result, nothing else (on failure: its error and exit code).",
        metavar="",
        rich_help_panel=OUTPUT,
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option(
        "--verbose",
        "-v",
        help="Show tracebacks and library logs.",
        metavar="",
        rich_help_panel=OUTPUT,
        callback=_remember_verbose,
    ),
]
ServeOpt = Annotated[
    bool,
    typer.Option(
        "--serve",
        help="Start TensorBoard on the log root and keep serving until Ctrl-C.",
        metavar="",
        rich_help_panel=SERVING,
    ),
]
HostOpt = Annotated[
    str,
    typer.Option("--host", help="Address TensorBoard binds (0.0.0.0 for every interface).", rich_help_panel=SERVING),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        "--port",
        help="Port for TensorBoard. Default: 6006, or the next free one.",
        rich_help_panel=SERVING,
        show_default=False,
        min=0,
        max=65535,
    ),
]
OpenOpt = Annotated[
    bool, typer.Option("--open", help="Open TensorBoard in a browser.", metavar="", rich_help_panel=SERVING)
]
LogdirArg = Annotated[
    str,
    typer.Argument(
        help="A TensorBoard log directory (any writer's): a folder, or a URL such as s3://bucket/logs.",
        metavar="LOGDIR",
    ),
]


def plain_conversion(annotation: Any, info: Any) -> Callable[[Any], Any] | None:
    """How an option's value in its plain form becomes what Typer's own adapter makes of it (for
    `shortcuts.plain_typer_values`): a str, a bool, a decimal int within its range, a non-empty Path with
    nothing to check, an Enum's exact value, lists of these. The function raises ValueError for any other
    value, which Typer then converts or refuses; None for an option that has no plain form."""
    if getattr(info, "parser", None) or getattr(info, "click_type", None) or info.clamp:
        return None
    if get_origin(annotation) is list and (each := plain_conversion(get_args(annotation)[0], info)):
        return lambda value: [each(item) for item in value] if type(value) in (list, tuple) else _not_plain(value)
    if annotation in (str, bool):
        return lambda value: value if type(value) is annotation else _not_plain(value)
    if annotation is int:
        return lambda value: _plain_int(value, info.min, info.max)
    if isinstance(annotation, type) and issubclass(annotation, Enum) and info.case_sensitive:
        members = {str(member.value): member for member in annotation}
        exact = lambda value: members.get(value if type(value) is str else "") or _not_plain(value)  # noqa: E731
        return lambda value: value if isinstance(value, annotation) else exact(value)
    checks = (info.exists, info.resolve_path, info.allow_dash, info.writable, info.path_type, not info.dir_okay)
    if isinstance(annotation, type) and issubclass(annotation, Path) and info.file_okay and not any(checks):
        return lambda value: annotation(value) if type(value) is str and value else _not_plain(value)
    return None


def _plain_int(value: Any, low: int | None, high: int | None) -> int:
    if type(value) is str and value.isascii() and value.removeprefix("-").isdigit():
        value = int(value)
    if type(value) is not int or (low is not None and value < low) or (high is not None and value > high):
        _not_plain(value)
    return value


def _not_plain(value: Any) -> Any:
    raise ValueError(f"{value!r} is left to Typer")
