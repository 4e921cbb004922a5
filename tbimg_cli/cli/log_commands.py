"""Your own images and buckets: `tbimg log` (files, folders, arrays, `--watch`) and `tbimg upload`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tbimg_cli.cli.app import (
    EXIT_ERROR,
    app,
    check_bucket,
    emit_json,
    serve_settings,
    start_server,
)
from tbimg_cli.cli.options import (
    OUTPUT,
    HostOpt,
    JsonOpt,
    Layout,
    LogdirOpt,
    OpenOpt,
    PortOpt,
    RunNameOpt,
    ServeOpt,
    StepsFrom,
    VerboseOpt,
)
from tbimg_cli.events.runs import DEFAULT_LOGDIR
from tbimg_cli.images.files import DEFAULT_MAX_PIXELS
from tbimg_cli.serve import tensorboard as serve
from tbimg_cli.words import counted

if TYPE_CHECKING:
    from tbimg_cli.images.sources import LogResult
    from tbimg_cli.images.values import ValueRange


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
            help="name: the number in each file name (epoch_012.png is step 12; iter5000_rank0.png 5000); "
            "folder: the number in its folder's name (epoch_3/a.png is step 3); order: 0, 1, 2... in sort order. "
            "Default: the number in the name, step 0 for names without one; a name with several numbers is refused.",
            show_default=False,
        ),
    ] = None,
    step_pattern: Annotated[
        str | None,
        typer.Option(
            "--step-pattern",
            help="A regular expression searched in each file's path below the folder or glob root given; "
            r"its first group is the step: 'ckpt-(\d+)/', 'it(\d+)_'.",
            metavar="REGEX",
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
    from tbimg_cli.cli import output
    from tbimg_cli.images import sources as file_sources

    if run_dir is not None and run_name is not None:
        raise typer.BadParameter("give --run-dir or --run-name, not both", param_hint="--run-dir")
    _check_step_options(step, steps_from, step_pattern)
    settings = file_sources.LogSettings(
        paths=tuple(paths),
        tag=tag,
        step=step,
        steps_from=steps_from.value if steps_from else None,
        step_pattern=step_pattern,
        layout=layout.value,
        value_range=_value_range(value_range),
        max_pixels=max_pixels,
    )
    file_sources.check_settings(settings, watch=watch)
    serving = serve_settings(host, port, then_serve=then_serve, open_browser=open_browser)
    check_bucket(run_dir or logdir)
    with (
        file_sources.run_folder(logdir, run_name, run_dir) as (folder, root),
        file_sources.LogSession(settings, folder, root) as session,
    ):
        with output.LogProgress(enabled=not as_json) as on_progress:
            result = session.log_present(on_progress, watching=watch)
        if watch:
            report = output.WatchReport(result, enabled=not as_json)
            if serving is not None:
                start_server(root, serving)
            report.started(session.watched_paths)
            with serve.sigterm_as_ctrl_c():
                result = session.watch(report)
    if as_json:
        emit_json(_log_json(result))
    else:
        output.logged(result, serving=serving is not None)
    if serving is not None and not watch:
        start_server(root, serving)
        serve.wait_for_ctrl_c()
    if result.problems:
        raise typer.Exit(EXIT_ERROR)


def _log_json(result: LogResult) -> dict[str, Any]:
    """`--json`'s object: on failure also `error` and `exit_code`, as every command's failures have them,
    and no `run_dir` when every file was refused and the empty run folder is gone."""
    payload = result.to_json()
    if isinstance(result.run_dir, Path) and not result.run_dir.exists():
        del payload["run_dir"]
    if result.problems:
        first = result.problems[0]
        more = f" (and {counted(len(result.problems) - 1, 'more path')})" if len(result.problems) > 1 else ""
        payload.update(error=f"{first.path}: {first.message}{more}", exit_code=EXIT_ERROR)
    return payload


def _check_step_options(step: int | None, steps_from: StepsFrom | None, step_pattern: str | None) -> None:
    """Usage errors in Click's words (exit 2): two ways to find steps, or a pattern that cannot work."""
    from tbimg_cli.errors import InputError
    from tbimg_cli.images.steps import compile_pattern

    given = [
        name
        for name, value in (("--step", step), ("--steps-from", steps_from), ("--step-pattern", step_pattern))
        if value is not None
    ]
    if len(given) > 1:
        raise typer.BadParameter(
            f"cannot be used with {given[1]}: give one way to find the steps", param_hint=f"'{given[0]}'"
        )
    if step_pattern is not None:
        try:
            compile_pattern(step_pattern)
        except InputError as exc:
            raise typer.BadParameter(
                str(exc).removeprefix(f"--step-pattern {step_pattern!r} "), param_hint="'--step-pattern'"
            ) from None


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
    from tbimg_cli.cli import output
    from tbimg_cli.errors import UploadError
    from tbimg_cli.events import storage

    uploaded, failed = [], []
    for folder in spools or storage.spool_folders():  # each on its own: one bucket out of reach stops no other
        try:
            destination, sent = storage.upload_spool(folder)
            uploaded.append({"folder": str(folder), "destination": destination, "bytes": sent})
        except UploadError as exc:
            failed.append({"folder": str(folder), "error": str(exc)})
    if as_json:
        emit_json({"uploaded": uploaded, "failed": failed})
    else:
        output.uploaded(uploaded, failed)
    if failed:
        raise typer.Exit(EXIT_ERROR)
