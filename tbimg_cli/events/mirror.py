"""The mirror: what writers add to a staging folder's files, uploaded as new objects, retried, bounded in time.

`storage.py` says where logs go and keeps one mirror per bucket folder in a process; this module does the
uploading. Each piece ends at a record boundary (`_whole_part`), every request has an overall deadline
(`bounded`), and the state file (`STATE_FILE`) says what is uploaded already, so that `tbimg upload` can
finish a spool folder a process left behind. An event file's image index (`records.index_name`) is not
uploaded as it is: each event piece gets an index of its own, its offsets the piece's, uploaded after it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tbimg_cli import shortcuts
from tbimg_cli.errors import LogReadError, UploadError
from tbimg_cli.events.records import EVENT_FILE_MARKER, INDEX_MARKER, index_name, index_piece

FLUSH_SECONDS = 5.0  # the commands' timer; training also flushes at each epoch's end
GIVE_UP_SECONDS = 60.0  # at close, how long a store that fails is retried before the spool keeps the rest
REQUEST_SECONDS = 20.0  # one request's deadline, plus a second per MiB it sends
MAX_PIECE_BYTES = 64 * 2**20  # one upload's size, and so the memory a mirror holds (or one record, if larger)
STATE_FILE = "tbimg-upload.json"
_BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
_RECORD_HEADER = struct.Struct("<Q")


def file_system(url: str, *, reading: bool = False) -> tuple[Any, str]:
    """(fsspec file system, path inside it) for a URL; one line when the `cloud` extra is missing."""
    protocol, kind = url.split("://", 1)[0], LogReadError if reading else UploadError
    try:
        import fsspec

        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        verb = "reading" if reading else "writing"
        raise kind(
            f"{verb} {protocol}:// logs needs fsspec and its {protocol} package ({exc}): pip install 'tbimg[cloud]'"
        ) from None
    except ValueError as exc:
        raise kind(f"{url}: {exc}") from None


def bounded(fs: Any, method: str, *args: Any, seconds: float | None = None, **kwargs: Any) -> Any:
    """`fs.<method>(*args, **kwargs)` with an overall deadline, for an asynchronous file system (s3fs, gcsfs).

    fsspec runs their calls on its own event loop and cancels one that outlives the `timeout`
    its blocking wrappers take; the cancelled request is then a `TimeoutError` (an `OSError`)
    with a message that says so. A synchronous file system's call runs as it is.
    """
    seconds = _request_seconds() if seconds is None else seconds
    if not getattr(fs, "async_impl", False):
        return getattr(fs, method)(*args, **kwargs)
    shortcuts.quiet_abandoned_requests(getattr(fs, "loop", None))
    try:
        return getattr(fs, method)(*args, timeout=seconds, **kwargs)
    except TimeoutError as exc:  # fsspec's FSTimeoutError says nothing of its own
        if str(exc):
            raise
        raise TimeoutError(f"the store did not answer within {seconds:.0f} s") from None


@dataclass
class _FileState:
    offset: int = 0  # bytes of the local file uploaded so far
    pieces: int = 0
    stem: str = ""  # the object name before the piece number


@dataclass
class _State:
    destination: str
    files: dict[str, _FileState] = field(default_factory=dict)
    pid: int = field(default_factory=os.getpid)  # the process uploading this folder now

    def save(self, staging: Path) -> None:
        files = {k: vars(v) for k, v in self.files.items()}
        text = json.dumps({"destination": self.destination, "pid": self.pid, "files": files})
        temporary = staging / f".{STATE_FILE}.tmp"
        temporary.write_text(text)
        os.replace(temporary, staging / STATE_FILE)

    @classmethod
    def load(cls, staging: Path) -> _State:
        try:
            raw = json.loads((staging / STATE_FILE).read_text())
        except FileNotFoundError:
            raise UploadError(f"{staging} is not a tbimg spool folder (it has no {STATE_FILE})") from None
        except (OSError, ValueError) as exc:
            raise UploadError(f"cannot read {staging / STATE_FILE}: {exc}") from None
        files = {k: _FileState(**v) for k, v in raw["files"].items()}
        return cls(raw["destination"], files, raw.get("pid", 0))

    def owner_alive(self) -> bool:
        """Whether the process that last uploaded this folder is still running (and may still write to it)."""
        if self.pid in (0, os.getpid()):
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class Mirror:
    """Uploads what writers add to the files of a local staging folder, as new objects under `destination`.

    A thread of its own uploads every `flush_seconds`, when asked
    (`request_flush`) and at `close`, retrying with backoff when the store
    fails, so the writers never wait for the network.
    """

    def __init__(
        self,
        staging: Path,
        destination: str,
        *,
        flush_seconds: float = FLUSH_SECONDS,
        give_up_seconds: float | None = None,
        on_retry: Callable[[Exception], None] | None = None,
    ) -> None:
        self.staging = staging
        self.destination = destination.rstrip("/")
        self.flush_seconds = flush_seconds
        self.give_up_seconds = _give_up_seconds() if give_up_seconds is None else give_up_seconds
        self.request_seconds = _request_seconds()
        self._deadline: float | None = None  # set by close: no request outlives it
        self.uploaded_bytes = 0
        self.uploads = 0
        self.failures = 0
        self._fs, self._root = file_system(self.destination)
        self._state = _State(self.destination)
        if (staging / STATE_FILE).exists():
            self._state = _State.load(staging)
            self._state.pid = os.getpid()
        self._state.save(staging)
        self._on_retry = on_retry
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._pending_requests = 0
        self._lock = threading.Lock()  # one sync at a time
        self._thread = threading.Thread(target=self._run, name="tbimg-upload", daemon=True)
        self._thread.start()

    def request_flush(self) -> None:
        """Upload what is new soon, without waiting for it."""
        self._wake.set()

    def flush(self) -> bool:
        """Upload what is new now (one attempt); True when nothing is left to upload."""
        return self._sync(raise_errors=False)

    def close(self) -> None:
        """Upload everything, retrying for up to `give_up_seconds`; then keep the rest in the spool.

        Raises:
            UploadError: naming the spool folder and the command that finishes the upload.
        """
        deadline = self._deadline = time.monotonic() + self.give_up_seconds
        self._stop.set()
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))  # an upload under way ends by its deadline
        attempt = 0
        while self._thread.is_alive() or not self._sync(raise_errors=False):
            if time.monotonic() >= deadline:
                raise self._gave_up()
            time.sleep(min(_BACKOFF[min(attempt, len(_BACKOFF) - 1)], max(0.0, deadline - time.monotonic())))
            attempt += 1
        shutil.rmtree(self.staging, ignore_errors=True)

    def _gave_up(self) -> UploadError:
        return UploadError(
            f"could not upload {self.pending_bytes():,} bytes of logs to {self.destination} ({self._last_error}); "
            f"they are kept in {self.staging}: upload them later with: tbimg upload {self.staging}"
        )

    def _request_timeout(self, size: int = 0) -> float:
        """A request's deadline: `request_seconds` and a second per MiB, never past close's give-up time."""
        seconds = self.request_seconds + size / 2**20
        if self._deadline is not None:
            seconds = min(seconds, max(1.0, self._deadline - time.monotonic()))
        return seconds

    def pending_bytes(self) -> int:
        total = 0
        for local in self._local_files():
            state = self._state.files.get(local.relative_to(self.staging).as_posix(), _FileState())
            with contextlib.suppress(OSError):
                total += max(0, local.stat().st_size - state.offset)
        return total

    _last_error = "no error"

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            if attempt == 0:
                self._wake.wait(self.flush_seconds)  # a writer's flush wakes it early
            else:  # backing off: flushes wait too, or a failing store is asked back to back
                self._stop.wait(_BACKOFF[min(attempt - 1, len(_BACKOFF) - 1)])
            self._wake.clear()
            if self._stop.is_set():
                return
            attempt = 0 if self._sync(raise_errors=False) else attempt + 1

    def _local_files(self) -> list[Path]:
        return sorted(
            p
            for p in self.staging.rglob("*")
            if p.is_file() and not p.name.endswith((STATE_FILE, ".tmp")) and INDEX_MARKER not in p.name
        )

    def _sync(self, *, raise_errors: bool) -> bool:
        """Upload every file's new whole records (or lines); True when all is uploaded."""
        with self._lock:
            try:
                for local in self._local_files():
                    self._upload_new(local)
            except Exception as exc:
                self.failures += 1
                self._last_error = f"{type(exc).__name__}: {first_line(exc)}"
                if self._on_retry is not None:
                    self._on_retry(exc)
                if raise_errors:
                    raise
                return False
            return True

    def _upload_new(self, local: Path) -> None:
        relative = local.relative_to(self.staging).as_posix()
        state = self._state.files.setdefault(relative, _FileState(stem=_object_stem(relative)))
        events = EVENT_FILE_MARKER in local.name
        while True:
            with open(local, "rb") as file:
                file.seek(state.offset)
                chunk = file.read(MAX_PIECE_BYTES)
                if events and len(chunk) == MAX_PIECE_BYTES and not _whole_part(chunk, events=True):
                    chunk += file.read(_RECORD_HEADER.unpack_from(chunk)[0] + 16 - len(chunk))  # one record, larger
            whole = _whole_part(chunk, events=events)
            if not whole:
                return
            name = self._put(state, relative, chunk[:whole])
            start = state.offset
            state.offset += whole
            state.pieces += 1
            self._state.save(self.staging)  # before the index: a retry must never upload these records again
            if events:
                self._put_index(local, name, start, state.offset)
            if len(chunk) < MAX_PIECE_BYTES:
                return

    def _put_index(self, local: Path, piece: str, start: int, end: int) -> None:
        """The image index of the piece just uploaded, when its event file has one (a hint: none is no harm)."""
        index = local.with_name(index_name(local.name))
        try:
            lines = index.read_bytes()
        except OSError:
            return
        folder, _, name = piece.rpartition("/")
        data = index_piece(lines, start, end)
        seconds = self._request_timeout(len(data))
        target = f"{folder}/{index_name(name)}"
        try:
            try:  # create-only too: a request the store got but whose answer was lost is retried by the client
                bounded(self._fs, "pipe_file", target, data, mode="create", seconds=seconds)
            except TypeError:  # a file system without create-only writes
                bounded(self._fs, "pipe_file", target, data, seconds=seconds)
        except Exception as exc:  # a piece without its index is read record by record: slower, never lost
            if not _already_there(exc):  # the piece's name is new, so an index already there is this one
                self.failures += 1

    def _put(self, state: _FileState, relative: str, data: bytes) -> str:
        """One new object, and its name; create-only where the store can, and never over another object."""
        for _ in range(5):
            name = f"{self._root.rstrip('/')}/{state.stem}.{state.pieces + 1:06d}{_object_suffix(relative)}"
            try:
                seconds = self._request_timeout(len(data))
                try:
                    bounded(self._fs, "pipe_file", name, data, mode="create", seconds=seconds)
                except TypeError:  # a file system without create-only writes: the random part keeps names apart
                    if bounded(self._fs, "exists", name, seconds=seconds):
                        raise FileExistsError(name) from None
                    bounded(self._fs, "pipe_file", name, data, seconds=seconds)
            except (FileExistsError, OSError) as exc:
                if not _already_there(exc):
                    raise
                if bounded(self._fs, "size", name, seconds=self._request_timeout()) == len(data):
                    return name  # an earlier attempt's upload did arrive (its answer was lost)
                state.stem = _object_stem(relative)  # someone else's object: a fresh random part
                continue
            self.uploads += 1
            self.uploaded_bytes += len(data)
            return name
        raise UploadError(f"could not find a free object name for {relative} under {self.destination}")


def _whole_part(chunk: bytes, *, events: bool) -> int:
    """How many leading bytes of `chunk` are whole records (event files) or whole lines (anything else)."""
    if not events:
        return chunk.rfind(b"\n") + 1
    position = 0
    while position + 12 <= len(chunk):
        (length,) = _RECORD_HEADER.unpack_from(chunk, position)
        end = position + 12 + length + 4
        if end > len(chunk):
            break
        position = end
    return position


def _object_stem(relative: str) -> str:
    """`dir/events.out.tfevents.T.host.pid.n.v2` -> `dir/events.out.tfevents.T.host.pid.n.<random>`."""
    base = relative.removesuffix(_object_suffix(relative))
    import secrets  # here: it imports hmac and hashlib, which a local logdir never needs

    return f"{base}.{secrets.token_hex(4)}"


def _object_suffix(relative: str) -> str:
    return ".v2" if relative.endswith(".v2") else Path(relative).suffix


def _already_there(exc: Exception) -> bool:
    text = str(exc)
    return isinstance(exc, FileExistsError) or "PreconditionFailed" in text or "412" in text


def _give_up_seconds() -> float:
    return _seconds("TBIMG_UPLOAD_GIVE_UP_SECONDS", GIVE_UP_SECONDS)


def _request_seconds() -> float:
    return _seconds("TBIMG_UPLOAD_REQUEST_SECONDS", REQUEST_SECONDS)


def flush_seconds() -> float:
    return _seconds("TBIMG_FLUSH_SECONDS", FLUSH_SECONDS)


def _seconds(variable: str, default: float) -> float:
    """A duration from the environment (for tests and impatient users), else the default."""
    try:
        return max(0.05, float(os.environ[variable]))
    except (KeyError, ValueError):
        return default


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
