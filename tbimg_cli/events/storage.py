"""Where logs go: a local folder, or a bucket (any fsspec URL) as new objects per flush, never rewritten.

Object stores cannot append, and the usual ways around that cost more the
longer training runs: TensorFlow's GCS and S3 file systems and tensorboardX's
S3 writer upload the whole event file again at every flush; fsspec's
`open(path, "ab")` re-uploads on S3 and overwrites on GCS. Here writers write
as they always do, into a local staging folder, and a `Mirror` uploads only
what they added since the last flush, as a new object:

    <run>/events.out.tfevents.<time>.<host>.<pid>.<n>.<random>.<piece:06d>.v2

Each piece ends at a record boundary, so every object is a whole event file
(the first one begins with the `file_version` record), and the names of one
file's pieces sort in write order, as TensorBoard's loader reads them. Objects
are created with a create-only condition (`mode="create"`: S3 `If-None-Match: *`,
GCS `ifGenerationMatch=0`) where the store supports it, and the random part
keeps names apart where it does not: nothing is ever overwritten.

Flushes come on a timer (`FLUSH_SECONDS`), when a writer asks (each epoch's
end) and at close. A failed upload is retried with backoff while the writers
go on (a writer's flush does not cut a backoff short); at most `MAX_PIECE_BYTES`
of it is in memory at once. Every request has an overall deadline
(`request_seconds`), not only connect and read timeouts: a store that accepts
connections and never answers (a network partition; botocore's
`Expect: 100-continue` waits for an answer with no timeout of its own) fails
the request like any other error, and `close` ends within its give-up time. What cannot be
uploaded by close stays in the staging folder, which is then the spool:
`tbimg upload <folder>` finishes the job (its state file says what is
uploaded already), as it does after a killed process.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tbimg_cli import shortcuts
from tbimg_cli.errors import RunDirError, TbimgError, UploadError
from tbimg_cli.events.mirror import (
    STATE_FILE,
    Mirror,
    _State,
    bounded,
    file_system,
    first_line,
    flush_seconds,
)

_URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def is_url(location: object) -> bool:
    """True for a bucket or other fsspec URL (`s3://`, `gs://`...), False for a local path (or `file://`)."""
    match = _URL.match(str(location)) if isinstance(location, str) else None
    return match is not None and match.group(1) != "file"


def join(location: str | Path, *parts: str) -> str | Path:
    """`location/parts...`, keeping a URL a URL (`Path` would fold `s3://` into `s3:/`)."""
    if isinstance(location, str) and is_url(location):
        return "/".join([location.rstrip("/"), *(part.strip("/") for part in parts)])
    return Path(location).joinpath(*parts)


def check_destination(url: str) -> None:
    """Refuse, in one line and before any work, a bucket that is missing or whose credentials are refused.

    A bucket that passed is not asked again in this process: a command checks it first thing, then claims
    a run folder and starts a writer in it, and each of those would otherwise ask the store once more.
    """
    fs, path = file_system(url)
    bucket = path.split("/", 1)[0]
    key = f"{url.split('://', 1)[0]}://{bucket}"
    if key in _checked_buckets:
        return
    try:
        bounded(fs, "ls", bucket, refresh=True)
    except FileNotFoundError as exc:
        raise UploadError(f"bucket {bucket!r} of {url} does not exist ({first_line(exc)}); create it first") from None
    except Exception as exc:
        raise remote_error(url, exc, UploadError) from None
    _checked_buckets.add(key)


_checked_buckets: set[str] = set()


def free_run_url(parent: str, candidates: list[str]) -> str:
    """The first candidate run name with nothing under it in the bucket (a run is never reused).

    The bucket is checked first, so a missing one or refused credentials is one line before any work."""
    check_destination(parent)
    fs, path = file_system(parent)
    for name in candidates:
        try:
            taken = bool(bounded(fs, "ls", f"{path.rstrip('/')}/{name}", refresh=True))
        except FileNotFoundError:
            taken = False
        except Exception as exc:
            raise remote_error(parent, exc, UploadError) from None
        if not taken:
            return f"{parent.rstrip('/')}/{name}"
    raise RunDirError(f"could not find a free run name under {parent}")


# Staging folders and their mirrors, one per bucket folder in this process


@dataclass
class _Shared:
    mirror: Mirror
    users: int = 0
    keep_open: bool = False


_shared: dict[str, _Shared] = {}
_shared_lock = threading.Lock()


def staged(destination: str, *, keep_open: bool = False) -> Path:
    """The local staging folder for bucket folder `destination`, with its mirror started (shared in this process).

    Call `release(destination)` when done writing; a folder asked for with
    `keep_open` (calls that append, like `log_images`) is uploaded at exit.
    """
    with _shared_lock:
        shared = _shared.get(destination)
        if shared is None:
            check_destination(destination)
            staging = Path(tempfile.mkdtemp(prefix="tbimg-spool-"))
            shared = _shared[destination] = _Shared(Mirror(staging, destination, flush_seconds=flush_seconds()))
        shared.users += 1
        shared.keep_open = shared.keep_open or keep_open
        return shared.mirror.staging


def flush_soon(destination: str) -> None:
    with _shared_lock:
        shared = _shared.get(destination)
    if shared is not None:
        shared.mirror.request_flush()


def flush_now(destination: str) -> bool:
    """Upload what the writers of `destination` have written so far, now (one attempt); True when all is up.

    Writers flush their files first (`EventWriter.flush`); this waits for the upload."""
    with _shared_lock:
        shared = _shared.get(destination)
    return shared is None or shared.mirror.flush()


def uploaded_bytes(destination: str) -> int:
    """Bytes uploaded so far for `destination` by this process's mirror (what the benchmarks count)."""
    with _shared_lock:
        shared = _shared.get(destination)
    return 0 if shared is None else shared.mirror.uploaded_bytes


def release(destination: str) -> None:
    """One writer of `destination` is done: the last one closes the mirror (uploading everything first)."""
    with _shared_lock:
        shared = _shared.get(destination)
        if shared is None:
            return
        shared.users -= 1
        if shared.users > 0 or shared.keep_open:
            shared.mirror.request_flush()
            return
        del _shared[destination]
    shared.mirror.close()


def _close_at_exit() -> None:
    with _shared_lock:
        open_now = list(_shared.values())
        _shared.clear()
    for shared in open_now:
        try:
            shared.mirror.close()
        except UploadError as exc:
            import warnings

            warnings.warn(str(exc), RuntimeWarning, stacklevel=1)


shortcuts.before_threads_end(_close_at_exit)


def _forget_parents_mirrors() -> None:
    """A forked child uploads nothing: the staging folders and their mirrors are its parent's."""
    global _shared_lock
    _shared.clear()
    _shared_lock = threading.Lock()  # the parent's threads may have held it at the fork


os.register_at_fork(after_in_child=_forget_parents_mirrors)


def spool_folders() -> list[Path]:
    """The spool folders left in the temporary directory by tbimg processes that are gone (killed, say)."""
    found = []
    for folder in sorted(Path(tempfile.gettempdir()).glob("tbimg-spool-*")):
        with contextlib.suppress(UploadError):
            if (folder / STATE_FILE).is_file() and not _State.load(folder).owner_alive():
                found.append(folder)
    return found


def upload_spool(staging: Path, *, on_retry: Callable[[Exception], None] | None = None) -> tuple[str, int]:
    """`tbimg upload`: finish uploading a spool folder to the bucket it names; (destination, bytes uploaded)."""
    state = _State.load(staging)
    if state.owner_alive():
        raise UploadError(f"{staging} is still being uploaded by process {state.pid}; let it finish, or stop it first")
    check_destination(state.destination)
    mirror = Mirror(staging, state.destination, flush_seconds=3600, on_retry=on_retry)
    pending = mirror.pending_bytes()
    mirror.close()
    return state.destination, pending


def remote_error(location: str, exc: Exception, kind: type[TbimgError]) -> TbimgError:
    """One line for what object stores say: refused credentials, no such bucket, no connection."""
    text = first_line(exc)
    refused = ("AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch")
    if isinstance(exc, PermissionError) or any(word in text for word in refused) or "credential" in text.lower():
        return kind(f"access to {location} was refused ({text}); check your credentials")
    if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in text:
        return kind(f"log directory {location} does not exist ({text})")
    return kind(f"cannot reach {location}: {type(exc).__name__}: {text}")
