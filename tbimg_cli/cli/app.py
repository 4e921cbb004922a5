"""The app, its one error boundary and the glue the commands share.

Every command module registers on `app` (importing `tbimg_cli.cli` registers them
all, in the order `--help` lists them). `ErrorBoundary` wraps every command, so
none can forget it; `fail` is the one way a command ends with an error. Nothing
heavy is imported at module level: `tbimg --help` must not pay for numpy,
matplotlib or TensorFlow.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from tbimg_cli import __version__
from tbimg_cli.serve import tensorboard as serve

if TYPE_CHECKING:
    from tbimg_cli.cli.output import DownloadBars
    from tbimg_cli.tutorial.summaries import WrittenRun

EXIT_ERROR = 1  # a mistake the user can fix (usage errors keep Click's 2)
EXIT_USAGE = 2  # a bad option or value, as Click reports it
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report it
VERBOSE_KEY, JSON_KEY = "tbimg.verbose", "tbimg.json"  # keys in the Click context's shared `meta`

EXAMPLES = """\
[bold]Examples[/]

  tbimg single --index 0              one image

  tbimg grid --count 25               25 images, one summary

  tbimg plot --class Sneaker          a 5x5 figure with class names

  tbimg train-cm --epochs 5 --serve   train + confusion matrix

  tbimg log samples/ --serve          your own images: a folder, per-epoch files as steps

  tbimg log samples/ --watch --serve  and each new file as it is written

  tbimg grid --logdir s3://bucket/logs  straight into a bucket (pip install 'tbimg\\[cloud]')

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

        json_printed.clear()
        if "--json" in ctx.args:  # seen before parsing, so that a usage error can answer in JSON too
            ctx.meta[JSON_KEY] = True
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except KeyboardInterrupt as exc:
            fail(ctx, str(exc) or "Interrupted.", EXIT_INTERRUPTED, note=True)
        except Exception as exc:
            if ctx.meta.get(VERBOSE_KEY) or os.environ.get("TBIMG_DEBUG") not in (None, "", "0"):
                raise
            if isinstance(exc, TbimgError):
                fail(ctx, str(exc), EXIT_ERROR)
            if is_usage_error(exc):
                command = getattr(getattr(exc, "ctx", None), "command_path", None) or ctx.command_path
                fail(ctx, f"{usage_message(exc)} (see '{command} --help')", EXIT_USAGE)
            fail(ctx, f"unexpected {type(exc).__name__}: {exc} (run with TBIMG_DEBUG=1 for the traceback)", EXIT_ERROR)


def is_usage_error(exc: Exception) -> bool:
    """Click's usage errors (a bad option or value), known by their shape: Typer keeps its Click private."""
    return type(exc).__module__.startswith("typer") and getattr(exc, "exit_code", None) == EXIT_USAGE


def usage_message(exc: Exception) -> str:
    """Click's message for a usage error, without the "Value error, " that Typer's validation library
    puts before a converter's own words (`--steps-from nam` read "Value error, 'nam' is not one of ...")."""
    message: str = exc.format_message()  # type: ignore[attr-defined]
    return message.replace("Value error, ", "")


def json_asked(ctx: typer.Context) -> bool:
    return bool(ctx.meta.get(JSON_KEY))


def fail(ctx: typer.Context, message: str, code: int, *, note: bool = False) -> NoReturn:
    """The one line on stderr, and with --json the same as a JSON object on stdout; then exit `code`."""
    from tbimg_cli.cli import output

    (output.note if note else output.error)(message)
    if json_asked(ctx) and not json_printed:  # one JSON object on stdout, whatever happens
        output.emit_json({"error": message, "exit_code": code})
    raise typer.Exit(code)


# Set once a command has printed its JSON result: a failure after it (Ctrl-C ending train-cm) adds none.
json_printed: list[bool] = []


def emit_json(payload: dict[str, Any]) -> None:
    from tbimg_cli.cli import output

    output.emit_json(payload)
    json_printed.append(True)


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


# Glue shared by the writing commands


def download_bars(*, as_json: bool) -> DownloadBars:
    from tbimg_cli.cli import output

    return output.DownloadBars(enabled=not as_json)


def serve_settings(
    host: str, port: int | None, *, then_serve: bool, open_browser: bool, image_steps: int = 0
) -> serve.ServeSettings | None:
    """Checked serve settings when --serve is given (before any work, so a taken port fails fast)."""
    if not then_serve:
        return None
    return serve.checked_settings(host, port, open_browser=open_browser, image_steps=image_steps)


def check_bucket(logdir: str) -> None:
    """A bucket logdir that is missing or refuses the credentials: one line before any work."""
    from tbimg_cli.events import storage

    if storage.is_url(logdir):
        storage.check_destination(logdir)


def start_server(logdir: str | Path, settings: serve.ServeSettings) -> None:
    from tbimg_cli.cli import output

    url = serve.start(logdir, settings)
    output.serving(url, logdir, serve.moved_port_note(url, settings), exposed=serve.exposed(settings))


def finish(result: WrittenRun, what: str, *, as_json: bool, serving: serve.ServeSettings | None) -> None:
    """Print a writing command's result, then serve its log root until Ctrl-C when asked."""
    from tbimg_cli.cli import output

    if as_json:
        emit_json(result.to_json())
    else:
        output.wrote(result, what, serving=serving is not None)
    if serving is not None:
        start_server(result.logdir, serving)
        serve.wait_for_ctrl_c()


def main() -> None:
    """The `tbimg` script: this process is tbimg's own, so process-wide shortcuts may be taken.

    Once the app returns every command has closed its files, and the process
    ends through `shortcuts.end_process`. Tests call `app` directly and keep
    an ordinary interpreter, as a program using tbimg as a library does.
    """
    import sys

    from tbimg_cli import shortcuts
    from tbimg_cli.cli.options import plain_conversion

    shortcuts.claim_process()
    shortcuts.plain_typer_values(plain_conversion)
    try:
        invoked_only(sys.argv[1:])()
        code = 0
    except SystemExit as end:
        if end.code is None or isinstance(end.code, int):
            code = end.code or 0
        else:
            print(end.code, file=sys.stderr)  # what `sys.exit("message")` would have printed
            code = 1
    shortcuts.end_process(code)


def invoked_only(arguments: list[str]) -> typer.Typer:
    """The app with only the command that `arguments` start with (`grid` of `tbimg grid ...`), for `main`.

    Typer builds every command's options at each start, 9 ms for the nine where one is used. Anything else (no
    command, an option first, a name that is no command) gets the whole app, and with it the app's own help and
    Typer's "No such command".
    """
    import copy

    from typer.main import get_command_name

    def name(info: Any) -> str:
        return info.name or get_command_name(getattr(info.callback, "__name__", ""))

    chosen = [info for info in app.registered_commands if arguments and name(info) == arguments[0]]
    if len(chosen) != 1 or app.registered_groups:
        return app
    alone = copy.copy(app)  # the same settings, callback and error boundary
    alone.registered_commands = chosen
    return alone
