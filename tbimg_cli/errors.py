"""Errors a user can act on.

Every failure a user can cause or fix is a `TbimgError` whose message is one
line naming the fix; the CLI prints it in red and exits 1. Anything else is a
bug and keeps its traceback (shown with --verbose or TBIMG_DEBUG=1).
"""


class TbimgError(Exception):
    """A mistake or missing resource the user can fix; the message says how."""


class DataError(TbimgError):
    """The Fashion-MNIST files are missing, corrupt or could not be fetched."""


class InputError(TbimgError):
    """An option value that cannot be honoured (index out of range, bad class...)."""


class RunDirError(TbimgError):
    """The log directory or run name cannot be used."""


class ServeError(TbimgError):
    """TensorBoard could not be started as asked."""


class LogReadError(TbimgError):
    """An event file could not be read back (corrupt record, missing logdir)."""


def counted(count: int, noun: str) -> str:
    """ "1 image", "25 images": messages never say "the 1 images" or "image(s)"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
