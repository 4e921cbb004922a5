"""Shared fixtures: Fashion-MNIST data, an isolated environment per test (no real
Keras cache, no network), the CLI runner. Plain helpers live in `helpers.py`.

`data_dir` is the small real subset committed in tests/data (2,000 training and
1,000 test images), so a fresh clone's tests need nothing else. `full_data_dir`
is the official files, from $TBIMG_DATA_DIR or the Keras cache; tests that need
all 70,000 images skip without them, saying why, unless
TBIMG_REQUIRE_FULL_DATA=1 (as in CI) turns that skip into a failure."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import SUBSET_DIR, Cli, Served, free_port, wait_until

# Read before any test isolates the environment: where the official files may be.
FULL_DATA_CANDIDATES = [
    Path(p).expanduser()
    for p in (
        os.environ.get("TBIMG_DATA_DIR"),
        Path(os.environ.get("KERAS_HOME") or "~/.keras").expanduser() / "datasets" / "fashion-mnist",
    )
    if p
]
REQUIRE_FULL_DATA = os.environ.get("TBIMG_REQUIRE_FULL_DATA") not in (None, "", "0")


@pytest.fixture(scope="session")
def tf():
    """TensorFlow, imported once for the tests that compare against the real thing."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The committed subset: real Fashion-MNIST images, the first 2,000 training and 1,000 test."""
    return SUBSET_DIR


def _label_count(path: Path) -> int:
    with gzip.open(path) as f:
        return int.from_bytes(f.read(8)[4:], "big")


@pytest.fixture(scope="session")
def full_data_dir() -> Path:
    """The official files, all 70,000 images, when this machine has them."""
    for folder in FULL_DATA_CANDIDATES:
        try:
            if (
                _label_count(folder / "train-labels-idx1-ubyte.gz") == 60000
                and _label_count(folder / "t10k-labels-idx1-ubyte.gz") == 10000
            ):
                return folder
        except OSError:
            continue
    message = (
        f"needs the full Fashion-MNIST files: set TBIMG_DATA_DIR (looked in {[str(p) for p in FULL_DATA_CANDIDATES]})"
    )
    if REQUIRE_FULL_DATA:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """No test may touch the user's Keras cache or the internet by accident."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    monkeypatch.setenv("TBIMG_CACHE_DIR", str(tmp_path / "tbimg-cache"))
    monkeypatch.setenv("TBIMG_DATA_URL", "http://127.0.0.1:9/unreachable/")
    for name in ("TBIMG_DATA_DIR", "TBIMG_OFFLINE", "TBIMG_DEBUG", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def test_split(data_dir):
    """(images, labels) of the test split, read independently of tbimg."""
    import numpy as np

    with gzip.open(data_dir / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(data_dir / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    return images, labels


@pytest.fixture
def cli() -> Cli:
    return Cli()


@pytest.fixture
def serve(tmp_path):
    """`serve(*args)` starts `tbimg *args` (with --serve) in tmp_path; killed after the test if still running."""
    started: list[Served] = []

    def start(*args, env=None):
        served = Served(list(args), tmp_path, env)
        started.append(served)
        return served

    yield start
    for served in started:
        served.close()


@pytest.fixture
def s3_server(tmp_path):
    """`s3_server(**env)` starts moto's S3-compatible server on 127.0.0.1 and returns its endpoint URL."""

    def start(**env):
        port = free_port()
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
        started.append(proc)
        wait_until(
            lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() or True,
            timeout=30,
            what="moto_server to listen",
            ignore=(OSError,),
        )
        return f"http://127.0.0.1:{port}"

    started: list[subprocess.Popen] = []
    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)
