"""Run directories: `<logdir>/<folder>/<YYYYmmdd-HHMMSS>` or `<logdir>/<folder>/<name>`.

A run directory is never reused, because TensorBoard would merge two runs'
events into one confusing timeline; two runs started in the same second get
`-1`, `-2`... suffixes. Creation is `mkdir` without `exist_ok`, so two
processes racing for a name cannot both win.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from tbimg_cli.errors import RunDirError
from tbimg_cli.events import storage

DEFAULT_LOGDIR = "logs"
# The folders the tutorial puts each kind of run in. Its names read oddly (a
# training run goes in `image`, single images in `train_data`); kept so that
# logs written by tbimg and by the tutorial sit side by side.
IMAGES_FOLDER = "train_data"
TEST_IMAGES_FOLDER = "test_data"  # the same images of the test split: named for what they are
PLOTS_FOLDER = "plots"
TRAINING_FOLDER = "image"
TIMESTAMP_FORMAT = "%Y%m%d-%H%M%S"
MAX_NAME_BYTES = 255  # NAME_MAX of every common file system


def check_run_name(name: str) -> str:
    """A run name must be one plain, visible path component, so it cannot escape the logdir or hide."""
    plain = (
        name
        and name not in (".", "..")
        and len(PurePosixPath(name).parts) == 1
        and len(PureWindowsPath(name).parts) == 1
    )
    if not plain:
        raise RunDirError(f"run name {name!r} must be a single plain folder name (no '/', '..' or empty)")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise RunDirError(f"run name {name!r} contains a control character (newline, tab...): use a plain folder name")
    if name.strip() != name:
        raise RunDirError(f"run name {name!r} starts or ends with white space: use a plain folder name")
    size = len(os.fsencode(name))
    if size > MAX_NAME_BYTES:
        raise RunDirError(
            f"run name is {size} bytes long; folder names can be at most {MAX_NAME_BYTES}: choose a shorter --run-name"
        )
    return name


@contextlib.contextmanager
def new_run_dir(logdir: str | Path, folder: str, run_name: str | None = None) -> Iterator[Any]:
    """Create a fresh run directory; clean up after the block if it fails.

    For a bucket URL (`s3://...`) it yields the URL of a run folder that
    holds no object yet; there is nothing to create or clean up, since
    objects exist only once uploaded.

    Folders this call created are removed on failure only while empty, so a
    partly written run (e.g. training interrupted after two epochs) is kept.
    A full disk is different: what was written is incomplete by accident, so
    the run folder goes, partial event files and all, and the error says so.
    """
    if run_name is not None:
        check_run_name(run_name)
    if storage.is_url(logdir):
        parent_url = str(storage.join(str(logdir), folder))
        try:
            run_url = storage.free_run_url(parent_url, _candidates(run_name))
        except RunDirError:
            if run_name is None:
                raise
            raise RunDirError(
                f"run directory {parent_url}/{run_name} already exists: choose another --run-name"
            ) from None
        yield run_url
        return
    parent = Path(logdir) / folder
    created = _make_parents(parent)
    run_dir = None
    try:
        run_dir = _claim(parent, run_name)
        yield run_dir
    except OSError as exc:
        if run_dir is None or exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            _remove_empty([*created, run_dir] if run_dir else created)
            raise
        shutil.rmtree(run_dir, ignore_errors=True)
        _remove_empty(created)
        raise RunDirError(
            f"no space left on the device of {logdir}: the unfinished run {run_dir.name} was removed; "
            "free some space or choose another --logdir"
        ) from exc
    except BaseException:
        _remove_empty([*created, run_dir] if run_dir else created)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty


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


def _candidates(run_name: str | None) -> list[str]:
    if run_name is not None:
        return [run_name]
    stamp = dt.datetime.now().strftime(TIMESTAMP_FORMAT)
    return [stamp] + [f"{stamp}-{i}" for i in range(1, 1000)]


def _claim(parent: Path, run_name: str | None) -> Path:
    for name in _candidates(run_name):
        path = parent / name
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise RunDirError(
                f"cannot write to log directory {parent} ({exc.strerror}); choose another --logdir"
            ) from exc
    if run_name is not None:
        raise RunDirError(f"run directory {parent / run_name} already exists: choose another --run-name")
    raise RunDirError(f"could not find a free run name under {parent}")


RANK_CHOICES = ("zero", "all")


def process_rank() -> int | None:
    """This process's rank in a distributed job, or None when it is not one.

    `torch.distributed`'s own rank when it is initialised (looked up only when PyTorch is already imported:
    never imported for this), else the `RANK` that launchers (torchrun, Lightning, SLURM wrappers) set, else
    `LOCAL_RANK`. A rank that does not read as a whole number counts as none.
    """
    import sys

    distributed = sys.modules.get("torch.distributed")
    if distributed is not None:
        with contextlib.suppress(Exception):
            if distributed.is_available() and distributed.is_initialized():
                return int(distributed.get_rank())
    for variable in ("RANK", "LOCAL_RANK"):
        with contextlib.suppress(KeyError, ValueError):
            return int(os.environ[variable])
    return None


def ranked_tag(tag: str, ranks: str) -> str | None:
    """The tag this process logs `tag` under, or None when it logs nothing.

    `ranks="zero"` (the default of `log_images` and `ImageLogger`): in a distributed job only rank 0 logs,
    so no rank's images silently replace another's at the same tag and step. `ranks="all"`: every rank
    logs, under `<tag>/rank<k>`. Outside a distributed job both log `tag` as it is.
    """
    from tbimg_cli.errors import InputError

    if ranks not in RANK_CHOICES:
        raise InputError(f"ranks must be one of {', '.join(map(repr, RANK_CHOICES))}, got {ranks!r}")
    rank = process_rank()
    if rank is None:
        return tag
    if ranks == "all":
        return f"{tag}/rank{rank}"
    return tag if rank == 0 else None
