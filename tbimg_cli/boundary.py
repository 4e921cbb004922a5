"""The one error boundary every command runs inside.

User-fixable failures (`TbimgError`) become one red line and exit code 1;
Ctrl-C exits 130; anything else is a bug, still one line unless --verbose or
TBIMG_DEBUG=1 asks for the traceback.
"""

from __future__ import annotations

import functools
import os

import typer


def error_boundary(command):
    """Wrap a command so no exception reaches the user as a traceback unless asked."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        from tbimg_cli import output
        from tbimg_cli.errors import TbimgError

        debug = kwargs.get("verbose") or os.environ.get("TBIMG_DEBUG") not in (None, "", "0")
        try:
            return command(*args, **kwargs)
        except TbimgError as exc:
            if debug:
                raise
            output.error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            output.note("Interrupted.")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:  # a bug: still one line unless asked for more
            if debug:
                raise
            output.error(f"unexpected {type(exc).__name__}: {exc} (run with TBIMG_DEBUG=1 for the traceback)")
            raise typer.Exit(1) from None

    return run
