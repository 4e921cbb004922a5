"""The `tbimg` command line: parse options, call one module, hand the result to `output.py`.

No work happens here, and nothing heavy is imported at module level:
`tbimg --help` must not pay for numpy, matplotlib or TensorFlow. Options that
several commands share are `Annotated` aliases defined once below; defaults
come from the module that owns them. One error boundary (`ErrorBoundary`)
wraps every command, so none can forget it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from tbimg_cli import __version__, serve
from tbimg_cli.image_files import DEFAULT_MAX_PIXELS
from tbimg_cli.runs import DEFAULT_LOGDIR
from tbimg_cli.words import counted

if TYPE_CHECKING:
    from tbimg_cli.image_values import ValueRange
    from tbimg_cli.images import WrittenRun
    from tbimg_cli.output import DownloadBars

EXIT_ERROR = 1  # a mistake the user can fix (usage errors keep Click's 2)
EXIT_USAGE = 2  # a bad option or value, as Click reports it
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it
_VERBOSE, _JSON = "tbimg.verbose", "tbimg.json"  # keys in the Click context's shared `meta`

EXAMPLES = """\
[bold]Examples[/]

  tbimg single --index 0              one image

  tbimg grid --count 25               25 images, one summary

  tbimg plot --class Sneaker          a 5x5 figure with class names

  tbimg train-cm --epochs 5 --serve   train + confusion matrix

  tbimg log samples/ --serve          your own images: a folder, per-epoch files as steps

  tbimg log samples/ --watch --serve  and each new file as it is written

  tbimg grid --logdir s3://bucket/logs  straight into a bucket (pip install 'tbimg[cloud]')

  tbimg inspect logs                  what a logdir holds

  tbimg export logs --out out         images, text and scalars (CSV) as files

  tbimg export logs -o out --animate  and a GIF per image tag, over steps
"""


class ErrorBoundary(TyperGroup):
    """Runs every command inside the one place that turns exceptions into exit codes.

    A `TbimgError` is one red line and exit 1; Ctrl-C exits 130; anything else
    is a bug, still one line unless --verbose or TBIMG_DEBUG=1 asks for the
    traceback. Being the app's group, it cannot be left off a command.
    """

    def invoke(self, ctx):  # unannotated: its Context type is Typer's private Click's
        from tbimg_cli.errors import TbimgError

        _json_printed.clear()
        if "--json" in ctx.args:  # seen before parsing, so that a usage error can answer in JSON too
            ctx.meta[_JSON] = True
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt as exc:
            _fail(ctx, str(exc) or "Interrupted.", EXIT_INTERRUPTED, note=True)
        except Exception as exc:
            if ctx.meta.get(_VERBOSE) or os.environ.get("TBIMG_DEBUG") not in (None, "", "0"):
                raise
            if isinstance(exc, TbimgError):
                _fail(ctx, str(exc), EXIT_ERROR)
            if _is_usage_error(exc):
                command = getattr(getattr(exc, "ctx", None), "command_path", None) or ctx.command_path
                _fail(ctx, f"{exc.format_message()} (see '{command} --help')", EXIT_USAGE)  # type: ignore[attr-defined]
            _fail(ctx, f"unexpected {type(exc).__name__}: {exc} (run with TBIMG_DEBUG=1 for the traceback)", EXIT_ERROR)


def _is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (a bad option or value), known by their shape: Typer keeps its Click private."""
    return type(exc).__module__.startswith("typer") and getattr(exc, "exit_code", None) == EXIT_USAGE


def _json_asked(ctx: typer.Context) -> bool:
    return bool(ctx.meta.get(_JSON))


def _fail(ctx: typer.Context, message: str, code: int, *, note: bool = False) -> NoReturn:
    """The one line on stderr, and with --json the same as a JSON object on stdout; then exit `code`."""
    from tbimg_cli import output

    (output.note if note else output.error)(message)
    if _json_asked(ctx) and not _json_printed:  # one JSON object on stdout, whatever happens
        output.emit_json({"error": message, "exit_code": code})
    raise typer.Exit(code)


# Set once a command has printed its JSON result: a failure after it (Ctrl-C ending train-cm) adds none.
_json_printed: list[bool] = []


def _emit_json(payload: dict[str, Any]) -> None:
    from tbimg_cli import output

    output.emit_json(payload)
    _json_printed.append(True)


app = typer.Typer(
    name="tbimg",
    cls=ErrorBoundary,
    help="Fashion-MNIST images into TensorBoard: TensorBoard's image-summary tutorial as commands.",
    epilog=EXAMPLES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


# Options shared by several commands

DATA, OUTPUT, SERVING = "Data", "Output", "Serving"


class Split(str, Enum):
    train = "train"
    test = "test"


class StepsFrom(str, Enum):
    name = "name"
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
    ctx.meta[_VERBOSE] = ctx.meta.get(_VERBOSE) or value
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


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tbimg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=version_callback, is_eager=True, help="Show the version and exit.", metavar=""
        ),
    ] = False,
) -> None:
    """Fashion-MNIST images into TensorBoard: TensorBoard's image-summary tutorial as commands."""


# Writing commands


@app.command()
def single(
    index: Annotated[int, typer.Option("--index", "-i", help="Dataset index of the image.")] = 0,
    split: SplitOpt = Split.train,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    logdir: LogdirOpt = DEFAULT_LOGDIR,
    run_name: RunNameOpt = None,
    as_json: JsonOpt = False,
    then_serve: ServeOpt = False,
    host: HostOpt = serve.DEFAULT_HOST,
    port: PortOpt = None,
    open_browser: OpenOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """One image as an image summary (tag "Training data").

    Example: tbimg single --index 0
    """
    from tbimg_cli import images

    serving = _serve_settings(host, port, then_serve=then_serve, open_browser=open_browser)
    _check_bucket(logdir)
    with _download_bars(as_json=as_json) as on_download:
        source = images.DataSource(split.value, data_dir, offline=offline, on_download=on_download)
        result = images.single(source, images.RunTarget(logdir, run_name), index)
    _finish(result, f"{split.value} image #{index} ({result.classes[0]})", as_json=as_json, serving=serving)


def _many_images_command(
    name: str, write: Callable[..., WrittenRun], what: Callable[[int, str], str], help_text: str
) -> None:
    """Register `grid` or `plot`: the same options and the same selection of images, written by
    `images.grid` or `images.plot` (`write`); `what(images, split)` words the result."""

    def command(
        count: CountOpt = 25,
        start: StartOpt = 0,
        class_name: ClassOpt = None,
        split: SplitOpt = Split.train,
        data_dir: DataDirOpt = None,
        offline: OfflineOpt = False,
        logdir: LogdirOpt = DEFAULT_LOGDIR,
        run_name: RunNameOpt = None,
        as_json: JsonOpt = False,
        then_serve: ServeOpt = False,
        host: HostOpt = serve.DEFAULT_HOST,
        port: PortOpt = None,
        open_browser: OpenOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        from tbimg_cli import images

        serving = _serve_settings(host, port, then_serve=then_serve, open_browser=open_browser)
        _check_bucket(logdir)
        with _download_bars(as_json=as_json) as on_download:
            source = images.DataSource(split.value, data_dir, offline=offline, on_download=on_download)
            result = write(source, images.RunTarget(logdir, run_name), count, start, class_name)
        _finish(result, what(result.images, split.value), as_json=as_json, serving=serving)

    command.__name__ = name
    app.command(name, help=help_text)(command)


def _grid(*args: Any) -> WrittenRun:
    from tbimg_cli import images

    return images.grid(*args)


def _plot(*args: Any) -> WrittenRun:
    from tbimg_cli import images

    return images.plot(*args)


_many_images_command(
    "grid",
    _grid,
    lambda n, split: counted(n, f"{split} image"),
    "Many images as one summary with COUNT samples (TensorBoard's max_outputs).\n\n"
    "Example: tbimg grid --count 25 --class Sneaker",
)
_many_images_command(
    "plot",
    _plot,
    lambda n, split: f"a figure of {counted(n, f'{split} image')}",
    "A figure of COUNT images with their class names (drawn with matplotlib), logged as one image.\n\n"
    "Example: tbimg plot --count 25",
)


@app.command("train-cm")
def train_cm(
    epochs: Annotated[int, typer.Option("--epochs", "-e", help="Training epochs.", min=1)] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size.", min=1)] = 32,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed", help="Seed for weights and shuffling (repeatable runs).", show_default=False, min=0, max=2**32 - 1
        ),
    ] = None,
    limit_train: Annotated[
        int | None,
        typer.Option("--limit-train", help="Train on the first N images only (quick runs).", min=1, show_default=False),
    ] = None,
    max_misclassified: Annotated[
        int, typer.Option("--max-misclassified", help="Images in the per-epoch gallery of mistakes.", min=0)
    ] = 25,
    strategy: Annotated[
        Strategy,
        typer.Option(
            "--strategy", help="tf.distribute strategy; multi-worker reads TF_CONFIG and only the chief writes."
        ),
    ] = Strategy.default,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    logdir: LogdirOpt = DEFAULT_LOGDIR,
    run_name: RunNameOpt = None,
    as_json: JsonOpt = False,
    then_serve: ServeOpt = False,
    host: HostOpt = serve.DEFAULT_HOST,
    port: PortOpt = None,
    open_browser: OpenOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train the tutorial's classifier with scalars and a confusion matrix every epoch.

    Example: tbimg train-cm --epochs 5 --serve
    """
    from tbimg_cli import output, train

    train.require_tensorflow(legacy_keras=strategy is Strategy.multi_worker)  # before anything, in one line
    serving = _serve_settings(host, port, then_serve=then_serve, open_browser=open_browser, image_steps=epochs)
    _check_bucket(logdir)
    # TensorBoard starts as soon as the run exists, so every epoch shows up while it trains.
    on_run_created = (lambda run_dir: _start_server(logdir, serving)) if serving else None
    with _download_bars(as_json=as_json) as on_download:
        settings = train.TrainSettings(
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            limit_train=limit_train,
            max_misclassified=max_misclassified,
            data_dir=data_dir,
            offline=offline,
            logdir=logdir,
            run_name=run_name,
            verbose=verbose,
            strategy=strategy.value,
            on_download=on_download,
        )
        result = train.run(settings, output.TrainingProgress(enabled=not as_json), on_run_created)
    if as_json:
        _emit_json(result.to_json())
    else:
        output.training_summary(result, serving=serving is not None)
    if result.interrupted:
        raise KeyboardInterrupt(
            f"Interrupted after {counted(len(result.epochs), 'epoch')}; what was logged is complete and readable."
        )
    if serving is not None and not result.ctrl_c_after_training:
        serve.wait_for_ctrl_c()
    serve.stop_children()  # Ctrl-C came as training ended: it stops the server it would have waited on


@app.command("log")
def log_files(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders (recursively), quoted globs, .npy/.npz arrays, or - for one image on stdin.",
            metavar="PATH...",
            show_default=False,
        ),
    ],
    tag: Annotated[
        str | None,
        typer.Option("--tag", "-t", help="Tag for everything. Default: each folder's name.", show_default=False),
    ] = None,
    step: Annotated[
        int | None,
        typer.Option("--step", help="Put everything in one summary at this step.", min=0, show_default=False),
    ] = None,
    steps_from: Annotated[
        StepsFrom | None,
        typer.Option(
            "--steps-from",
            help="name: the last number in each file name (epoch_012.png is step 12); order: 0, 1, 2... "
            "in sort order. Default: name when every file name holds a number, else --step 0.",
            show_default=False,
        ),
    ] = None,
    run_dir: Annotated[
        str | None,
        typer.Option(
            "--run-dir",
            help="Write into this run folder (a training run's, say): created if missing, a new event file.",
            rich_help_panel=OUTPUT,
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="Then log each new file of the folders once it is complete, until Ctrl-C.", metavar=""
        ),
    ] = False,
    layout: Annotated[
        Layout, typer.Option("--layout", help="How the axes of .npy/.npz arrays read (auto: channels last).")
    ] = Layout.auto,
    value_range: Annotated[
        str | None,
        typer.Option(
            "--value-range",
            help="For arrays outside the value rules: LOW,HIGH mapped to 0..255, or auto (each array's min..max).",
            show_default=False,
        ),
    ] = None,
    max_pixels: Annotated[
        int, typer.Option("--max-pixels", help="Refuse images with more pixels (checked before decoding).", min=1)
    ] = DEFAULT_MAX_PIXELS,
    logdir: LogdirOpt = DEFAULT_LOGDIR,
    run_name: RunNameOpt = None,
    as_json: JsonOpt = False,
    then_serve: ServeOpt = False,
    host: HostOpt = serve.DEFAULT_HOST,
    port: PortOpt = None,
    open_browser: OpenOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Your own images into TensorBoard: files, folders and arrays, per-epoch files as a step series.

    PNG, JPEG, GIF and BMP files are stored as they are (checked whole first); other formats become PNGs.
    A file that cannot be logged is one line and exit 1; the rest is still logged.

    Example: tbimg log samples/ --watch --serve
    """
    from tbimg_cli import file_sources, output

    if run_dir is not None and run_name is not None:
        raise typer.BadParameter("give --run-dir or --run-name, not both", param_hint="--run-dir")
    settings = file_sources.LogSettings(
        paths=tuple(paths),
        tag=tag,
        step=step,
        steps_from=steps_from.value if steps_from else None,
        layout=layout.value,
        value_range=_value_range(value_range),
        max_pixels=max_pixels,
    )
    file_sources.check_settings(settings, watch=watch)
    serving = _serve_settings(host, port, then_serve=then_serve, open_browser=open_browser)
    _check_bucket(run_dir or logdir)
    with (
        file_sources.run_folder(logdir, run_name, run_dir) as (folder, root),
        file_sources.LogSession(settings, folder, root) as session,
    ):
        with output.LogProgress(enabled=not as_json) as on_progress:
            result = session.log_present(on_progress)
        if watch:
            report = output.WatchReport(result, enabled=not as_json)
            if serving is not None:
                _start_server(root, serving)
            report.started(session.watched_paths)
            with serve.sigterm_as_ctrl_c():
                result = session.watch(report)
    if as_json:
        _emit_json(result.to_json())
    else:
        output.logged(result, serving=serving is not None)
    if serving is not None and not watch:
        _start_server(root, serving)
        serve.wait_for_ctrl_c()
    if result.problems:
        raise typer.Exit(EXIT_ERROR)


def _value_range(text: str | None) -> ValueRange:
    if text is None:
        return None
    if text == "auto":
        return "auto"
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"{text!r}: give LOW,HIGH (0,4095) or auto", param_hint="--value-range") from None
    return low, high


@app.command()
def upload(
    spools: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Folders tbimg kept when a bucket could not be reached (the message named them). "
            "Default: every such folder a tbimg process that is gone left in the temporary directory.",
            metavar="[FOLDER]...",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Finish uploading logs that could not reach their bucket: new objects only, nothing overwritten.

    Example: tbimg upload /tmp/tbimg-spool-k2j4x9
    """
    from tbimg_cli import output, storage
    from tbimg_cli.errors import UploadError

    uploaded, failed = [], []
    for folder in spools or storage.spool_folders():  # each on its own: one bucket out of reach stops no other
        try:
            destination, sent = storage.upload_spool(folder)
            uploaded.append({"folder": str(folder), "destination": destination, "bytes": sent})
        except UploadError as exc:
            failed.append({"folder": str(folder), "error": str(exc)})
    if as_json:
        _emit_json({"uploaded": uploaded, "failed": failed})
    else:
        output.uploaded(uploaded, failed)
    if failed:
        raise typer.Exit(EXIT_ERROR)


# Reading commands


@app.command()
def inspect(logdir: LogdirArg, as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List runs and tags of a logdir: steps, samples, image sizes, scalar values.

    Example: tbimg inspect logs
    """
    from tbimg_cli import inspection, output

    found = inspection.inspect_logdir(logdir)
    if as_json:
        _emit_json(found.to_json())
    else:
        output.inspection(found)
    if found.corrupt:
        raise typer.Exit(EXIT_ERROR)


@app.command()
def export(
    logdir: LogdirArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the files into.")],
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only tags matching this regular expression.", show_default=False)
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", help="Only runs matching this regular expression.", show_default=False)
    ] = None,
    step: Annotated[
        str | None, typer.Option("--step", help="Only this step (5) or range (2:8, 2:, :8).", show_default=False)
    ] = None,
    animate: Annotated[
        bool, typer.Option("--animate", help="Also an animated GIF per image tag with several steps.", metavar="")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.", metavar="")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write a logdir's images, text and scalars (CSV) as files; GIFs of images over steps with --animate.

    Example: tbimg export logs --out images --tag "Confusion Matrix" --animate
    """
    from tbimg_cli import export as exporting
    from tbimg_cli import output

    wanted = exporting.ExportFilter(run, tag, exporting.parse_steps(step))
    with output.ExportProgress(enabled=not as_json) as on_run:
        result = exporting.export_logdir(logdir, out, wanted, animate=animate, force=force, on_run=on_run)
    if as_json:
        _emit_json(result.to_json())
    else:
        output.exported(result)
    if result.corrupt:
        raise typer.Exit(EXIT_ERROR)  # after exporting what was valid


# Glue shared by the writing commands


def _download_bars(*, as_json: bool) -> DownloadBars:
    from tbimg_cli import output

    return output.DownloadBars(enabled=not as_json)


def _serve_settings(
    host: str, port: int | None, *, then_serve: bool, open_browser: bool, image_steps: int = 0
) -> serve.ServeSettings | None:
    """Checked serve settings when --serve is given (before any work, so a taken port fails fast)."""
    if not then_serve:
        return None
    return serve.checked_settings(host, port, open_browser=open_browser, image_steps=image_steps)


def _check_bucket(logdir: str) -> None:
    """A bucket logdir that is missing or refuses the credentials: one line before any work."""
    from tbimg_cli import storage

    if storage.is_url(logdir):
        storage.check_destination(logdir)


def _start_server(logdir: str | Path, settings: serve.ServeSettings) -> None:
    from tbimg_cli import output

    url = serve.start(logdir, settings)
    output.serving(url, logdir, serve.moved_port_note(url, settings), exposed=serve.exposed(settings))


def _finish(result: WrittenRun, what: str, *, as_json: bool, serving: serve.ServeSettings | None) -> None:
    """Print a writing command's result, then serve its log root until Ctrl-C when asked."""
    from tbimg_cli import output

    if as_json:
        _emit_json(result.to_json())
    else:
        output.wrote(result, what, serving=serving is not None)
    if serving is not None:
        _start_server(result.logdir, serving)
        serve.wait_for_ctrl_c()


def main() -> None:
    """The `tbimg` script: this process is tbimg's own, so process-wide shortcuts may be taken.

    Once the app returns every command has closed its files, and the process
    ends through `shortcuts.end_process`. Tests call `app` directly and keep
    an ordinary interpreter, as a program using tbimg as a library does.
    """
    import sys

    from tbimg_cli import shortcuts

    shortcuts.claim_process()
    try:
        app()
        code = 0
    except SystemExit as end:
        if end.code is None or isinstance(end.code, int):
            code = end.code or 0
        else:
            print(end.code, file=sys.stderr)  # what `sys.exit("message")` would have printed
            code = 1
    shortcuts.end_process(code)
