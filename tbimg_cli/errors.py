"""Errors a user can act on.

Every failure a user can cause or fix is a `TbimgError` whose message is one
line naming the fix; the CLI prints it in red and exits 1. Anything else is a
bug and keeps its traceback (shown with --verbose or TBIMG_DEBUG=1).

Library callers catch them the way they catch Python's own: a bad value is
also a `ValueError`, a value of the wrong type a `TypeError`, a missing extra
an `ImportError`.
"""


class TbimgError(Exception):
    """A mistake or missing resource the user can fix; the message says how."""


class DataError(TbimgError):
    """The Fashion-MNIST files are missing, corrupt or could not be fetched."""


class InputError(TbimgError, ValueError):
    """A value that cannot be honoured (index out of range, bad class, NaN predictions...)."""


class InputTypeError(InputError, TypeError):
    """A value of a type that cannot be used (a dict where arrays are expected...)."""


class RunDirError(TbimgError):
    """The log directory or run name cannot be used."""


class ServeError(TbimgError):
    """TensorBoard could not be started as asked."""


class LogReadError(TbimgError):
    """An event file could not be read back (corrupt record, missing logdir)."""


class WriterClosedError(TbimgError, ValueError):
    """A summary was written after its writer was closed (as with a closed file, a ValueError)."""


class MissingExtraError(TbimgError, ImportError):
    """A feature needs packages of an extra that is not installed; the message names the pip command."""


class UploadError(TbimgError, OSError):
    """Logs that cannot reach their bucket: missing, credentials refused, or out of reach at close."""
