"""Fetch missing Fashion-MNIST files into the Keras cache, safely.

Knows HTTP and files, not the dataset: `data.py` says which files and which
MD5 each must have. Progress goes out through a callback, never to the
terminal. Each file streams into a hidden temporary file beside its destination, is
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
from collections.abc import Callable
from pathlib import Path

from tbimg_cli.errors import DataError

# The origin keras.datasets.fashion_mnist uses; TBIMG_DATA_URL overrides it
# (the tests point it at a server on 127.0.0.1).
DEFAULT_BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
TIMEOUT_SECONDS = 30.0
CHUNK_BYTES = 1 << 16


def base_url() -> str:
    url = os.environ.get("TBIMG_DATA_URL") or DEFAULT_BASE_URL
    return url if url.endswith("/") else url + "/"


# Called as on_bytes(file name, bytes just received, total bytes or None).
BytesCallback = Callable[[str, int, "int | None"], None]


def download_files(expected_md5: dict[str, str], dest: Path, on_bytes: BytesCallback | None = None) -> None:
    """Download each named file into `dest`, refusing any whose MD5 is not the expected one."""
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the Keras cache {dest} ({exc.strerror}); pass --data-dir DIR") from exc
    for name, md5 in expected_md5.items():
        fetch(base_url() + name, dest / name, md5, on_bytes or (lambda name, n, total: None))


def fetch(url: str, target: Path, expected_md5: str | None, on_bytes: BytesCallback) -> None:
    """Stream `url` into `target` via a temporary file; MD5-check, then rename."""
    name = target.name
    on_bytes(name, 0, None)  # announce the file before the first byte arrives
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
                on_bytes(name, len(chunk), total)
        if total is not None and received != total:
            raise DataError(f"download of {name} was cut short ({received} of {total} bytes); nothing was saved, try again")
        if expected_md5 and digest.hexdigest() != expected_md5:
            raise DataError(
                f"download of {name} is corrupt (MD5 {digest.hexdigest()}, expected {expected_md5}); nothing was saved"
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
