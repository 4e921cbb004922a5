"""Run directories: `<logdir>/<folder>/<YYYYmmdd-HHMMSS>` or `<logdir>/<folder>/<name>`.

A run directory is never reused, because TensorBoard would merge two runs'
events into one confusing timeline; two runs started in the same second get
`-1`, `-2`... suffixes. Creation is `mkdir` without `exist_ok`, so two
processes racing for a name cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from tbimg_cli.errors import RunDirError

DEFAULT_LOGDIR = "logs"
# The folders the tutorial puts each kind of run in. Its names read oddly (a
# training run goes in `image`, single images in `train_data`); kept so that
# logs written by tbimg and by the tutorial sit side by side.
IMAGES_FOLDER = "train_data"
PLOTS_FOLDER = "plots"
TRAINING_FOLDER = "image"
TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"


def check_run_name(name: str) -> str:
    """A run name must be one plain path component, so it cannot escape the logdir."""
    plain = (
        name
        and name not in (".", "..")
        and len(PurePosixPath(name).parts) == 1
        and len(PureWindowsPath(name).parts) == 1
        and "\0" not in name
    )
    if not plain:
        raise RunDirError(f"run name {name!r} must be a single plain folder name (no '/', '..' or empty)")
    return name


@contextlib.contextmanager
def new_run_dir(logdir: str | Path, folder: str, run_name: str | None = None) -> Iterator[Path]:
    """Create a fresh run directory; remove it again if the block fails before writing.

    Folders this call created are removed on failure only while empty, so a
    partly written run (e.g. training interrupted after two epochs) is kept.
    """
    if run_name is not None:
        check_run_name(run_name)
    parent = Path(logdir) / folder
    created = _make_parents(parent)
    run_dir = _claim(parent, run_name)
    created.append(run_dir)
    try:
        yield run_dir
    except BaseException:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        raise


def _make_parents(parent: Path) -> list[Path]:
    missing = []
    probe = parent
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise RunDirError(f"log directory {probe} is a file, not a folder")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create log directory {parent} ({exc.strerror}); choose another --logdir") from exc
    return list(reversed(missing))


def _claim(parent: Path, run_name: str | None) -> Path:
    if run_name is not None:
        candidates = [run_name]
    else:
        stamp = dt.datetime.now().strftime(TIMESTAMP_FORMAT)
        candidates = [stamp] + [f"{stamp}-{i}" for i in range(1, 1000)]
    for name in candidates:
        path = parent / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirError(f"cannot write to log directory {parent} ({exc.strerror}); choose another --logdir") from exc
    if run_name is not None:
        raise RunDirError(f"run directory {parent / run_name} already exists: choose another --run-name")
    raise RunDirError(f"could not find a free run name under {parent}")
