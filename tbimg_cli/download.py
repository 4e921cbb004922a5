"""Fetch missing Fashion-MNIST files into the Keras cache, safely.

Each file streams into a hidden temporary file beside its destination, is
checked against the official MD5, and only then renamed into place: an
interrupted, cut or corrupted transfer never leaves a file that a later run
would take for valid.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tbimg_cli.data import OFFICIAL_MD5
from tbimg_cli.errors import DataError

# The origin keras.datasets.fashion_mnist uses; TBIMG_DATA_URL overrides it
# (the tests point it at a server on 127.0.0.1).
DEFAULT_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
TIMEOUT_SECONDS = 30.0
CHUNK_BYTES = 1 << 16


def base_url() -> str:
    url = os.environ.get("TBIMG_DATA_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


def download_files(names: list[str], dest: Path) -> None:
    """Download `names` into `dest` with one progress bar per file."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the Keras cache {dest} ({exc.strerror}); pass --data-dir DIR") from exc
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        for name in names:
            task = progress.add_task(f"Downloading {name}", total=None)
            fetch(base_url() + name, dest / name, lambda n, total, t=task: progress.update(t, advance=n, total=total))


def fetch(url: str, target: Path, on_bytes=lambda n, total: None) -> None:
    """Stream `url` into `target` via a temporary file; MD5-check, then rename."""
    name = target.name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    digest = hashlib.md5()
    received = 0
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                on_bytes(len(chunk), total)
        if total is not None and received != total:
            raise DataError(f"download of {name} was cut short ({received} of {total} bytes); nothing was saved, try again")
        expected = OFFICIAL_MD5.get(name)
        if expected and digest.hexdigest() != expected:
            raise DataError(
                f"download of {name} is corrupt (MD5 {digest.hexdigest()}, expected {expected}); nothing was saved"
            )
        os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        raise _as_download_error(name, url, received, exc) from exc


def _as_download_error(name: str, url: str, received: int, exc: BaseException) -> BaseException:
    if isinstance(exc, DataError | KeyboardInterrupt):
        return exc
    if isinstance(exc, urllib.error.HTTPError):
        return DataError(f"download of {name} failed: {url} answered HTTP {exc.code}; nothing was saved")
    if isinstance(exc, socket.timeout | TimeoutError):
        return DataError(f"download of {name} timed out after {TIMEOUT_SECONDS:.0f} s; nothing was saved")
    if isinstance(exc, urllib.error.URLError):
        return DataError(
            f"cannot download {name} from {url} ({exc.reason}); "
            "pass --data-dir DIR with the four Fashion-MNIST files to work offline"
        )
    if isinstance(exc, OSError | http.client.HTTPException):
        # IncompleteRead and connection resets: the server went away mid-file.
        return DataError(f"download of {name} was cut short after {received} bytes ({exc}); nothing was saved, try again")
    return exc
