"""Fetch missing Fashion-MNIST files into the Keras cache, safely.

Knows HTTP and files, not the dataset: `data.py` says which files and which
MD5 each must have. Progress goes out through a callback, never to the
terminal.

Each file streams into a hidden `.part` file beside its destination (named
with our process id, so a later run can tell a dead download's leftovers from
a live one's and clean them), is checked against its MD5, and only then
renamed into place: an interrupted, cut or corrupted transfer never leaves a
file that a later run would take for valid, and a failed first download leaves
no empty cache folder. A transfer must keep moving: a server that trickles a
byte at a time fails after `stall_seconds()` with too little progress, however
often each single read succeeds.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tbimg_cli.errors import DataError

# The origin keras.datasets.fashion_mnist uses; TBIMG_DATA_URL overrides it
# (the tests point it at a server on 127.0.0.1).
DEFAULT_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DEFAULT_STALL_SECONDS = 30.0
MIN_BYTES_PER_STALL_WINDOW = 64 * 1024  # less than this in a whole window is a stalled transfer
CHUNK_BYTES = 1 << 16
PART_SUFFIX = ".part"

# Called as on_bytes(file name, bytes just received, total bytes or None).
BytesCallback = Callable[[str, int, "int | None"], None]


def base_url() -> str:
    url = os.environ.get("TBIMG_DATA_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def stall_seconds() -> float:
    """How long a transfer may go without `MIN_BYTES_PER_STALL_WINDOW` (TBIMG_DOWNLOAD_TIMEOUT, for slow links)."""
    try:
        return max(0.1, float(os.environ.get("TBIMG_DOWNLOAD_TIMEOUT") or DEFAULT_STALL_SECONDS))
    except ValueError:
        return DEFAULT_STALL_SECONDS


def download_files(expected_md5: dict[str, str], dest: Path, on_bytes: BytesCallback | None = None) -> None:
    """Download each named file into `dest`, refusing any whose MD5 is not the expected one."""
    created = _missing_folders(dest)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the Keras cache {dest} ({exc.strerror}); pass --data-dir DIR") from exc
    remove_dead_parts(dest)
    try:
        for name, md5 in expected_md5.items():
            fetch(base_url() + name, dest / name, md5, on_bytes or (lambda name, n, total: None))
    except BaseException:
        for folder in reversed(created):  # only the folders this call made, and only while empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def fetch(url: str, target: Path, expected_md5: str | None, on_bytes: BytesCallback) -> None:
    """Stream `url` into `target` via a `.part` file; MD5-check, then rename."""
    name = target.name
    on_bytes(name, 0, None)  # announce the file before the first byte arrives
    part = target.with_name(f".{name}.{os.getpid()}{PART_SUFFIX}")
    digest = hashlib.md5()
    received = 0
    window = stall_seconds()
    try:
        # 0o666 and the user's umask, like any file the user makes (mkstemp would force 0600).
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=window) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            window_start, window_bytes = time.monotonic(), 0
            # read1 returns what has arrived; read(n) would wait, byte by slow byte, for all n.
            while chunk := response.read1(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                window_bytes += len(chunk)
                on_bytes(name, len(chunk), total)
                now = time.monotonic()
                if now - window_start >= window:
                    if window_bytes < MIN_BYTES_PER_STALL_WINDOW and received != total:
                        raise TimeoutError("stalled")
                    window_start, window_bytes = now, 0
        if total is not None and received != total:
            raise DataError(
                f"download of {name} was cut short ({received} of {total} bytes); nothing was saved, try again"
            )
        if expected_md5 and digest.hexdigest() != expected_md5:
            raise DataError(
                f"download of {name} is corrupt (MD5 {digest.hexdigest()}, expected {expected_md5}); nothing was saved"
            )
        os.replace(part, target)
    except BaseException as exc:
        part.unlink(missing_ok=True)
        raise _as_download_error(name, url, received, window, exc) from exc


def remove_dead_parts(folder: Path) -> None:
    """Delete `.part` files whose download process is gone (killed, or the machine restarted)."""
    for part in folder.glob(f".*{PART_SUFFIX}"):
        pid = part.name[: -len(PART_SUFFIX)].rsplit(".", 1)[-1]
        if not pid.isdigit() or not _process_alive(int(pid)):
            part.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # ours from an earlier, failed attempt in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _missing_folders(path: Path) -> list[Path]:
    """The folders `mkdir(parents=True)` would create for `path`, outermost first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return list(reversed(missing))


def _as_download_error(name: str, url: str, received: int, window: float, exc: BaseException) -> BaseException:
    if isinstance(exc, DataError | KeyboardInterrupt):
        return exc
    if isinstance(exc, urllib.error.HTTPError):
        return DataError(f"download of {name} failed: {url} answered HTTP {exc.code}; nothing was saved")
    if isinstance(exc, socket.timeout | TimeoutError) or (
        isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, socket.timeout | TimeoutError)
    ):
        return DataError(
            f"download of {name} stalled (less than {MIN_BYTES_PER_STALL_WINDOW // 1024} KiB in {window:.0f} s, "
            f"{received} bytes in all); nothing was saved: try again, or set TBIMG_DOWNLOAD_TIMEOUT for a slow link"
        )
    if isinstance(exc, urllib.error.URLError):
        return DataError(
            f"cannot download {name} from {url} ({exc.reason}); "
            "pass --data-dir DIR with the four Fashion-MNIST files to work offline"
        )
    if isinstance(exc, OSError | http.client.HTTPException):
        # IncompleteRead and connection resets: the server went away mid-file.
        return DataError(
            f"download of {name} was cut short after {received} bytes ({exc}); nothing was saved, try again"
        )
    return exc
