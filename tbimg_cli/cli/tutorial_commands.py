"""The tutorial's commands: `single`, `grid`, `plot` (Fashion-MNIST images) and `train-cm`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tbimg_cli.cli.app import (
    EXIT_ERROR,
    app,
    check_bucket,
    download_bars,
    emit_json,
    finish,
    serve_settings,
    start_server,
)
from tbimg_cli.cli.options import (
    ClassOpt,
    CountOpt,
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
    Strategy,
    VerboseOpt,
)
from tbimg_cli.errors import UploadError
from tbimg_cli.events.runs import DEFAULT_LOGDIR
from tbimg_cli.serve import tensorboard as serve
from tbimg_cli.words import counted

if TYPE_CHECKING:
    from tbimg_cli.tutorial.summaries import WrittenRun


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
    from tbimg_cli.tutorial import summaries as images

    serving = serve_settings(host, port, then_serve=then_serve, open_browser=open_browser)
    check_bucket(logdir)
    with download_bars(as_json=as_json) as on_download:
        source = images.DataSource(split.value, data_dir, offline=offline, on_download=on_download)
        result = images.single(source, images.RunTarget(logdir, run_name), index)
    finish(result, f"{split.value} image #{index} ({result.classes[0]})", as_json=as_json, serving=serving)


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
        from tbimg_cli.tutorial import summaries as images

        serving = serve_settings(host, port, then_serve=then_serve, open_browser=open_browser)
        check_bucket(logdir)
        with download_bars(as_json=as_json) as on_download:
            source = images.DataSource(split.value, data_dir, offline=offline, on_download=on_download)
            result = write(source, images.RunTarget(logdir, run_name), count, start, class_name)
        finish(result, what(result.images, split.value), as_json=as_json, serving=serving)

    command.__name__ = name
    app.command(name, help=help_text)(command)


def _grid(*args: Any) -> WrittenRun:
    from tbimg_cli.tutorial import summaries as images

    return images.grid(*args)


def _plot(*args: Any) -> WrittenRun:
    from tbimg_cli.tutorial import summaries as images

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
    limit_test: Annotated[
        int | None,
        typer.Option("--limit-test", help="Validate on the first N test images only.", min=1, show_default=False),
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
    from tbimg_cli.cli import output
    from tbimg_cli.tutorial import classifier, train

    classifier.require_tensorflow(legacy_keras=strategy is Strategy.multi_worker)  # before anything, in one line
    serving = serve_settings(host, port, then_serve=then_serve, open_browser=open_browser, image_steps=epochs)
    check_bucket(logdir)
    # TensorBoard starts as soon as the run exists, so every epoch shows up while it trains.
    on_run_created = (lambda run_dir: start_server(logdir, serving)) if serving else None
    with download_bars(as_json=as_json) as on_download:
        settings = train.TrainSettings(
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            limit_train=limit_train,
            limit_test=limit_test,
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
        payload = result.to_json()
        if result.upload_error:
            payload.update(error=result.upload_error, exit_code=EXIT_ERROR)
        emit_json(payload)
    else:
        output.training_summary(result, serving=serving is not None)
    if result.upload_error:  # after the results, the one line naming the spool folder
        if as_json:
            raise typer.Exit(EXIT_ERROR)
        raise UploadError(result.upload_error)
    if result.interrupted:
        raise KeyboardInterrupt(
            f"Interrupted after {counted(len(result.epochs), 'epoch')}; what was logged is complete and readable."
        )
    if serving is not None and not result.ctrl_c_after_training:
        serve.wait_for_ctrl_c()
    serve.stop_children()  # Ctrl-C came as training ended: it stops the server it would have waited on
