"""The `tbimg` command line: parse options, call one module, print the result.

No work happens here, and nothing heavy is imported at module level:
`tbimg --help` must not pay for numpy, matplotlib or TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from tbimg_cli import __version__
from tbimg_cli.boundary import error_boundary
from tbimg_cli.options import (
    ClassOpt,
    DataDirOpt,
    HostOpt,
    JsonOpt,
    LogdirOpt,
    OfflineOpt,
    OpenOpt,
    PortOpt,
    RunNameOpt,
    ServeOpt,
    Split,
    SplitOpt,
    StartOpt,
    VerboseOpt,
)

EXAMPLES = """\
[bold]Examples[/]

  tbimg single --index 0              one image

  tbimg grid --count 25               25 images, one summary

  tbimg plot --class Sneaker          a 5x5 figure with class names

  tbimg train-cm --epochs 5 --serve   train + confusion matrix

  tbimg inspect logs                  what a logdir holds

  tbimg export logs --out images      images back out as PNGs
"""

app = typer.Typer(
    name="tbimg",
    help="Fashion-MNIST images into TensorBoard: TensorBoard's image-summary tutorial as commands.",
    epilog=EXAMPLES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version_callback(value: bool) -> None:
    if value:
        typer.echo(f"tbimg {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Fashion-MNIST images into TensorBoard: TensorBoard's image-summary tutorial as commands."""


def _finish(result, what: str, as_json: bool, serving) -> None:
    """Print a writing command's result, then serve its log root until Ctrl-C when asked."""
    from tbimg_cli import output

    if as_json:
        output.emit_json(result.to_json())
    else:
        output.wrote(result, what)
    if serving is not None:
        from tbimg_cli import serve as server

        server.start_and_announce(result.logdir, serving)
        server.wait_for_ctrl_c()


@app.command()
@error_boundary
def single(
    index: Annotated[int, typer.Option("--index", "-i", help="Dataset index of the image.")] = 0,
    split: SplitOpt = Split.train,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    logdir: LogdirOpt = Path("logs"),
    run_name: RunNameOpt = None,
    as_json: JsonOpt = False,
    serve: ServeOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = None,
    open_browser: OpenOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """One image as an image summary (tag "Training data").

    Example: tbimg single --index 0
    """
    from tbimg_cli import jobs

    serving = _serving(serve, host, port, open_browser)
    source = jobs.Source(split.value, data_dir, offline, logdir, run_name)
    result = jobs.single(source, index)
    _finish(result, f"{split.value} image #{index} ({result.classes[0]})", as_json, serving)


def _many_images_command(name: str, what: str, doc: str) -> None:
    """Register `grid` or `plot`: the same options over a selection of images, `jobs.<name>` to run."""

    @app.command(name, help=doc)
    @error_boundary
    def command(
        count: Annotated[int, typer.Option("--count", "-n", help="How many images.")] = 25,
        start: StartOpt = 0,
        class_name: ClassOpt = None,
        split: SplitOpt = Split.train,
        data_dir: DataDirOpt = None,
        offline: OfflineOpt = False,
        logdir: LogdirOpt = Path("logs"),
        run_name: RunNameOpt = None,
        as_json: JsonOpt = False,
        serve: ServeOpt = False,
        host: HostOpt = "127.0.0.1",
        port: PortOpt = None,
        open_browser: OpenOpt = False,
        verbose: VerboseOpt = False,
    ) -> None:
        from tbimg_cli import jobs

        serving = _serving(serve, host, port, open_browser)
        source = jobs.Source(split.value, data_dir, offline, logdir, run_name)
        result = getattr(jobs, name)(source, count, start, class_name)
        _finish(result, what.format(count=result.images, split=split.value), as_json, serving)


_many_images_command(
    "grid",
    "{count} {split} images",
    "Many images as one summary with COUNT samples (TensorBoard's max_outputs).\n\n"
    "Example: tbimg grid --count 25 --class Sneaker",
)
_many_images_command(
    "plot",
    "a figure of {count} {split} images",
    "A matplotlib figure of COUNT images with their class names, logged as one image.\n\n"
    "Example: tbimg plot --count 25",
)


@app.command("train-cm")
@error_boundary
def train_cm(
    epochs: Annotated[int, typer.Option("--epochs", "-e", help="Training epochs.", min=1)] = 5,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Training batch size.", min=1)] = 32,
    seed: Annotated[
        Optional[int], typer.Option("--seed", help="Seed for weights and shuffling (repeatable runs).", show_default=False)
    ] = None,
    limit_train: Annotated[
        Optional[int],
        typer.Option("--limit-train", help="Train on the first N images only (quick runs).", min=1, show_default=False),
    ] = None,
    max_misclassified: Annotated[
        int, typer.Option("--max-misclassified", help="Images in the per-epoch gallery of mistakes.", min=0)
    ] = 25,
    data_dir: DataDirOpt = None,
    offline: OfflineOpt = False,
    logdir: LogdirOpt = Path("logs"),
    run_name: RunNameOpt = None,
    as_json: JsonOpt = False,
    serve: ServeOpt = False,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = None,
    open_browser: OpenOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Train the tutorial's classifier with scalars and a confusion matrix every epoch.

    Example: tbimg train-cm --epochs 5 --serve
    """
    from tbimg_cli import output, train, train_view
    from tbimg_cli import serve as server

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
    )
    serving = _serving(serve, host, port, open_browser, image_steps=epochs)
    on_ready = (lambda root: server.start_and_announce(root, serving)) if serving else None  # live while training
    result = train.run(settings, show_progress=not as_json, on_run_dir=on_ready)
    if as_json:
        output.emit_json(result.to_json())
    else:
        train_view.print_summary(result)
    if result.interrupted:
        raise typer.Exit(130)
    if serving is not None:
        server.wait_for_ctrl_c()


@app.command()
@error_boundary
def inspect(
    logdir: Annotated[Path, typer.Argument(help="A TensorBoard log directory (any writer's).")],
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List runs and tags of a logdir: steps, samples, image sizes, scalar values.

    Example: tbimg inspect logs
    """
    from tbimg_cli import readback, report

    summary = readback.inspect_logdir(logdir)
    if as_json:
        from tbimg_cli import output

        output.emit_json(summary.to_json())
    else:
        report.print_inspection(summary)
    if summary.corrupt:
        raise typer.Exit(1)


@app.command()
@error_boundary
def export(
    logdir: Annotated[Path, typer.Argument(help="A TensorBoard log directory (any writer's).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the image files into.")],
    tag: Annotated[Optional[str], typer.Option("--tag", help="Only this tag.", show_default=False)] = None,
    run: Annotated[Optional[str], typer.Option("--run", help="Only this run (as inspect names it).", show_default=False)] = None,
    step: Annotated[Optional[int], typer.Option("--step", help="Only this step.", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write every image sample of a logdir as a file, with its original bytes.

    Example: tbimg export logs --out images --tag "Confusion Matrix"
    """
    from tbimg_cli import readback, report

    result = readback.export_images(logdir, out, tag=tag, run=run, step=step, force=force)
    if as_json:
        from tbimg_cli import output

        output.emit_json(result.to_json())
    else:
        report.print_export(result)


def _serving(serve: bool, host: str, port: int | None, open_browser: bool, image_steps: int = 0):
    """Checked serve settings when --serve is given (before any work, so a taken port fails fast)."""
    if not serve:
        return None
    from tbimg_cli import serve as server

    return server.prepare(host, port, open_browser, image_steps)


def main() -> None:
    app()
