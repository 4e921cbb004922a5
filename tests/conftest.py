"""Shared fixtures: Fashion-MNIST data, an isolated environment per test (no real
Keras cache, no network), and helpers that read event files back with
TensorBoard's own reader.

`data_dir` is the small real subset committed in tests/data (2,000 training and
1,000 test images), so a fresh clone's tests need nothing else. `full_data_dir`
is the official files, from $TBIMG_DATA_DIR or the Keras cache; tests that need
all 70,000 images skip without them, saying why, unless
TBIMG_REQUIRE_FULL_DATA=1 (as in CI) turns that skip into a failure."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tbimg_cli.cli import app

REPO = Path(__file__).resolve().parents[1]
SUBSET_DIR = REPO / "tests" / "data" / "fashion-mnist-subset"
SUBSET_TRAIN, SUBSET_TEST = 2000, 1000
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


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(app, [str(a) for a in args])

    def json(self, *args: str) -> dict:
        result = self(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)


@pytest.fixture
def cli() -> Cli:
    return Cli()


def run_module(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m tbimg_cli ...` in a fresh interpreter."""
    return subprocess.run(
        [sys.executable, "-m", "tbimg_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def heavy_modules_after(args: list[str], env: dict | None = None) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run the CLI in a fresh interpreter and report which heavy modules it imported."""
    probe = (
        "import sys\n"
        f"sys.argv = ['tbimg', *{args!r}]\n"
        "from tbimg_cli.cli import app\n"  # not `main`: it ends the process before we can look
        "try:\n"
        "    app()\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'matplotlib') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("HEAVY=")]
    assert line, proc.stdout + proc.stderr
    found = line[-1][len("HEAVY=") :]
    return (found.split(",") if found else []), proc


def event_files(run_dir: Path) -> list[Path]:
    return sorted(Path(run_dir).glob("events.out.tfevents.*"))


def load_run(run_dir: Path):
    """An EventAccumulator over one run directory, keeping every step and sample."""
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.TENSORS: 0, event_accumulator.IMAGES: 0}
    )
    accumulator.Reload()
    return accumulator


def decode_png(png: bytes):
    import io

    import numpy as np
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)))
