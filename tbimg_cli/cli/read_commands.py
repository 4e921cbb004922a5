"""Reading any logdir back without TensorFlow: `inspect`, `export`, and `serve` (TensorBoard with the tbimg tab)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tbimg_cli.cli.app import (
    EXIT_ERROR,
    app,
    check_bucket,
    emit_json,
    start_server,
)
from tbimg_cli.cli.options import (
    HostOpt,
    JsonOpt,
    LogdirArg,
    OpenOpt,
    PortOpt,
    VerboseOpt,
)
from tbimg_cli.serve.tensorboard import DEFAULT_HOST

if TYPE_CHECKING:
    pass


@app.command()
def inspect(logdir: LogdirArg, as_json: JsonOpt = False, verbose: VerboseOpt = False) -> None:
    """List runs and tags of a logdir: steps, samples, image sizes, scalar values.

    Example: tbimg inspect logs
    """
    from tbimg_cli.cli import output
    from tbimg_cli.logs import inspection

    found = inspection.inspect_logdir(logdir)
    if as_json:
        emit_json(found.to_json())
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
    from tbimg_cli.cli import output
    from tbimg_cli.logs import export as exporting

    wanted = exporting.ExportFilter(run, tag, exporting.parse_steps(step))
    with output.ExportProgress(enabled=not as_json) as on_run:
        result = exporting.export_logdir(logdir, out, wanted, animate=animate, force=force, on_run=on_run)
    if as_json:
        emit_json(result.to_json())
    else:
        output.exported(result)
    if result.corrupt:
        raise typer.Exit(EXIT_ERROR)  # after exporting what was valid


@app.command("serve")
def serve_logdir(
    logdir: LogdirArg,
    host: HostOpt = DEFAULT_HOST,
    port: PortOpt = None,
    open_browser: OpenOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """TensorBoard on any logdir, a local folder or a bucket URL, with the tbimg tab: every step of every run.

    Example: tbimg serve logs --port 6006
    """
    from tbimg_cli.logs.readback import open_logdir
    from tbimg_cli.serve import tensorboard as serve

    check_bucket(str(logdir))
    open_logdir(str(logdir))  # a missing folder, or a file, is one line before the server starts
    # The tbimg tab shows every step from its index; TensorBoard's own image dashboard keeps the last 3 per
    # tag (its default 10 held 36 MB more on a 30-run log), so the server's memory is the index, not the images.
    settings = dataclasses.replace(
        serve.checked_settings(host, port, open_browser=open_browser),
        image_steps=serve.DASHBOARD_STEPS,
        load_fast="auto",
    )
    start_server(logdir, settings)
    serve.wait_for_ctrl_c()
