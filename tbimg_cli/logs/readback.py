"""Read any TensorBoard logdir back, fast and in flat memory: what `inspect` lists and `export` writes.

No TensorFlow. This module finds a logdir's runs and event files (local or in a bucket), cuts large
logs into pieces for every core, and decodes one summary value from each of its forms: TF 2's tensors
or the `simple_value` and `Summary.Image` forms of TF 1, tensorboardX and PyTorch, instead of through
generic converters. Reading the records is `columns.py`'s: both CRCs checked, the records that repeat
(scalars) decoded a block at a time, the others parsed with protobuf's C parser. Nothing is kept per
event: `inspection.py` keeps a few numbers per tag, and `export.py` writes as it reads.

A logdir is a local folder or any URL fsspec understands (`s3://`, `gs://`...;
`pip install 'tbimg[cloud]'`). A run is every folder holding event files, as
TensorBoard sees it. Problems (corrupt records, malformed values, files that
are not regular files) are collected with their file and offset, and reading
goes on.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar, cast

from tbimg_cli import shortcuts
from tbimg_cli.errors import LogReadError, TbimgError
from tbimg_cli.events import storage
from tbimg_cli.events.records import EVENT_FILE_MARKER, INDEX_MARKER, index_name

PARALLEL_BYTES = 16 << 20  # below this a log reads faster in one process than a pool starts
PIECE_BYTES = 4 << 20  # no smaller pieces of a file: finding where a piece's records start has a cost
IMAGES, SCALARS, TEXT = "images", "scalars", "text"
CONFUSION = "tbimg.confusion"  # the confusion explorer's tensors; read back: a matrix's counts and class names
COUNTS_SUFFIX = " (counts)"
# TensorProto dtypes whose scalar value is read directly (DT_FLOAT, DT_DOUBLE, DT_INT32, DT_INT64, DT_HALF).
_FLOAT, _DOUBLE, _INT32, _INT64, _HALF = 1, 2, 3, 9, 19
_SCALAR_FORMATS = {_FLOAT: "<f", _DOUBLE: "<d", _INT32: "<i", _INT64: "<q", _HALF: "<e"}
_unpack_float = struct.Struct("<f").unpack
T = TypeVar("T")


@dataclass(frozen=True)
class FileProblem:
    """Something wrong in or about one file. `note` problems (a cut last record, a skipped
    FIFO) are no damage and leave the exit code at 0; the others are damage, exit 1."""

    path: str
    offset: int
    message: str
    note: bool


class Value(NamedTuple):
    """One summary value, decoded: `data` is a float (scalars), `(width, height, [encoded...])`
    (images), a str (text), or None for plugins read-back does not decode. A tuple: a million of
    them are made and dropped in seconds."""

    run: str
    tag: str
    step: int
    wall_time: float
    plugin: str
    data: Any  # by plugin: float (scalars), (width, height, [encoded...]) (images), str (text), else None


class Logdir:
    """A log directory on the local disk, or behind an fsspec URL, and its event files."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        self._fs, self._root = _file_system(self.location)
        self._indexes: set[str] = set()  # in a bucket: the image indexes its last listing found

    @property
    def is_local(self) -> bool:
        return self._fs is None

    def runs(self, problems: list[FileProblem]) -> dict[str, list[str]]:
        """Run name (path relative to the logdir, "." for the logdir itself) -> its event files, sorted."""
        return _local_runs(Path(self._root), problems) if self._fs is None else self._remote_runs()

    def open(self, path: str) -> tuple[BinaryIO, int]:
        """(binary stream, size) of one event file."""
        if self._fs is None:
            stream = open(path, "rb")  # noqa: SIM115 - returned open to the caller, which closes it
            return stream, os.fstat(stream.fileno()).st_size
        try:
            return self._fs.open(path, "rb", block_size=1 << 22), self._fs.size(path)
        except Exception as exc:
            raise _remote_error(self.location, exc) from exc

    def open_ranged(self, path: str) -> tuple[BinaryIO, int]:
        """(stream, size) of one event file for reads that jump: in a bucket, each read that the last one
        did not cover is one ranged request for what it asks (at least `RangedFile.SMALLEST` bytes), where
        `open`'s stream fetches 4 MiB blocks. The index walks record headers with it and fetches one image's
        record."""
        if self._fs is None:
            return self.open(path)
        try:
            size = self._fs.size(path)
            return cast(BinaryIO, RangedFile(self._fs, path, size)), size  # read, seek and close: all it takes
        except Exception as exc:
            raise _remote_error(self.location, exc) from exc

    def index_of(self, path: str) -> str | None:
        """The image index tbimg's writer left beside an event file (or piece), if there is one."""
        folder, _, name = path.rpartition("/") if self._fs is not None else path.rpartition(os.sep)
        index = f"{folder}{'/' if self._fs is not None else os.sep}{index_name(name)}"
        if self._fs is not None:
            return index if index in self._indexes else None
        return index if os.path.isfile(index) else None

    def read_from(self, path: str, start: int) -> bytes:
        """A small file's bytes from `start` on (an image index): one request in a bucket."""
        if self._fs is None:
            with open(path, "rb") as stream:
                stream.seek(start)
                return stream.read()
        try:
            return bytes(self._fs.cat_file(path, start=start or None))
        except Exception as exc:
            raise _remote_error(self.location, exc) from exc

    def _remote_runs(self) -> dict[str, list[str]]:
        try:
            found = self._fs.find(self._root, withdirs=False)
            missing = not found and not self._fs.exists(self._root)
        except Exception as exc:
            raise _remote_error(self.location, exc) from exc
        if missing:
            raise LogReadError(f"log directory {self.location} does not exist")
        runs: dict[str, list[str]] = {}
        root = self._root.rstrip("/")
        self._indexes = {path for path in found if INDEX_MARKER in path.rpartition("/")[2]}
        for path in sorted(found):
            folder, _, name = path.rpartition("/")
            if EVENT_FILE_MARKER in name:
                run = folder[len(root) :].strip("/") or "."
                runs.setdefault(run, []).append(path)
        return dict(sorted(runs.items()))


class RangedFile(io.RawIOBase):
    """A bucket object read by ranged requests: `seek` is free, `read` fetches only what it lacks.

    `fetched` counts the bytes asked of the store (what `bench/bench_viewer_bucket.py` compares)."""

    SMALLEST = 64  # a request's least size: a string's length and tag ahead of the bytes a walk skips

    def __init__(self, fs: Any, path: str, size: int) -> None:
        super().__init__()
        self._fs, self._path, self._size = fs, path, size
        self._position = 0
        self._window_start, self._window = 0, b""
        self.fetched = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, count: int = -1) -> bytes:
        end = self._size if count < 0 else min(self._size, self._position + count)
        start = self._position
        if start >= end:
            return b""
        window_end = self._window_start + len(self._window)
        if not (self._window_start <= start and end <= window_end):
            fetch_end = min(self._size, max(end, start + self.SMALLEST))
            self._window = self._fs.cat_file(self._path, start=start, end=fetch_end)
            self._window_start = start
            self.fetched += len(self._window)
        self._position = end
        return self._window[start - self._window_start : end - self._window_start]


def pieces(logdir: Logdir, runs: dict[str, list[str]]) -> list[tuple[str, str, tuple[int, int | None]]] | None:
    """(run, file, byte range) pieces of about equal work for every core, or None when one process
    reads the logdir as fast: a small or remote log, or one core.

    Decided by the total size, not per run, and a large file is cut into
    pieces, so that four small runs or one run of a million events both read
    on every core.
    """
    workers = os.cpu_count() or 1
    if not logdir.is_local or workers < 2:
        return None
    sizes = {path: os.stat(path).st_size for files in runs.values() for path in files}
    total = sum(sizes.values())
    if total < PARALLEL_BYTES:
        return None
    target = max(PIECE_BYTES, total // (2 * workers))  # two pieces per core evens out their lengths
    found: list[tuple[str, str, tuple[int, int | None]]] = []
    for run, files in runs.items():
        for path in files:
            count = max(1, sizes[path] // target)
            bounds = [sizes[path] * k // count for k in range(count)]
            found += [(run, path, (start, bounds[k + 1] if k + 1 < count else None)) for k, start in enumerate(bounds)]
    return found


def map_pieces(logdir: Logdir, work: Callable[..., T], jobs: list[tuple[Any, ...]]) -> Iterator[T] | None:
    """`work(location, *job)` for every job, in order, on a pool of processes; None when no pool can be had."""
    workers = min(len(jobs), os.cpu_count() or 1)
    pool = shortcuts.fork_pool(workers) if workers >= 2 else None
    if pool is None:
        return None

    def results() -> Iterator[T]:
        with pool:
            futures = [pool.submit(work, logdir.location, *job) for job in jobs]
            for future in futures:
                yield future.result()

    return results()


def map_runs(logdir: Logdir, runs: dict[str, list[str]], work: Callable[..., T], *args: Any) -> Iterator[T]:
    """`work(location, run, files, *args)` for each run, yielded in run order as each is done:
    on every core when it pays.

    Parsing is pure Python per event, so one core reads a few hundred thousand
    events a second; runs are independent, so a pool of processes
    (`shortcuts.fork_pool`) reads them side by side. Small logs, single runs
    and remote logs (network clients do not survive a fork) stay in this
    process, as does everything when no pool can be had.
    """
    items = list(runs.items())
    jobs = [(run, files, *args) for run, files in items]
    size = sum(_local_size(files) for _, files in items) if logdir.is_local else 0
    results = map_pieces(logdir, work, jobs) if size >= PARALLEL_BYTES else None
    if results is None:
        results = (work(logdir.location, *job) for job in jobs)
    yield from results


def _local_size(files: list[str]) -> int:
    return sum(os.stat(path).st_size for path in files)


LEGACY_PLUGINS = {"simple_value": SCALARS, "image": IMAGES, "histo": "histograms", "audio": "audio"}


def decode_value(kind: str | None, plugin: str, value: Any) -> Any:
    """A value's payload, by its form; ValueError says what is malformed."""
    if kind == "simple_value":
        return float(value.simple_value)
    if kind == "image":
        image = value.image
        return image.width, image.height, [image.encoded_image_string]
    if kind != "tensor":
        return None
    tensor = value.tensor
    if plugin == SCALARS:
        return scalar_value(tensor)
    if plugin == IMAGES:
        strings = tensor.string_val
        if len(strings) < 2:
            raise ValueError(
                f"an image summary holds width, height and images, but this one has {len(strings)} strings"
            )
        try:
            width, height = int(strings[0]), int(strings[1])
        except ValueError:
            raise ValueError(
                f"image width and height must be numbers, got {strings[0][:20]!r} and {strings[1][:20]!r}"
            ) from None
        return width, height, list(strings[2:])
    if plugin == TEXT:
        strings = tensor.string_val
        if not strings:
            raise ValueError("a text summary holds no string")
        return "\n\n".join(s.decode("utf-8", "replace") for s in strings)
    if plugin == CONFUSION and value.tag.endswith(COUNTS_SUFFIX):
        return _confusion_counts(value)
    return None


def _confusion_counts(value: Any) -> tuple[list[str], Any]:
    """(class names, int64 [classes, classes] counts) of the confusion explorer's counts tensor."""
    import json

    from tensorboard.util import tensor_util

    matrix = tensor_util.make_ndarray(value.tensor)
    try:
        names = json.loads(value.metadata.plugin_data.content or b"{}").get("classes") or []
    except (ValueError, AttributeError):
        names = []
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a confusion matrix's counts must be square, this one is {matrix.shape}")
    if len(names) != len(matrix):
        names = [str(i) for i in range(len(matrix))]
    return [str(name) for name in names], matrix


def scalar_value(tensor: Any) -> float:
    """The one number of a scalar tensor, read from its bytes or its typed field."""
    content = tensor.tensor_content
    if tensor.dtype == _FLOAT and len(content) == 4 and not tensor.tensor_shape.dim:
        return _unpack_float(content)[0]  # what tf.summary.scalar writes: the fast path
    elements = 1
    for dim in tensor.tensor_shape.dim:
        elements *= dim.size
    if elements != 1:
        raise ValueError(f"a scalar must hold one number, this one holds {elements}")
    form = _SCALAR_FORMATS.get(tensor.dtype)
    if form is not None and len(tensor.tensor_content) == struct.calcsize(form):
        return float(struct.unpack(form, tensor.tensor_content)[0])
    for field_name in ("float_val", "double_val", "int_val", "int64_val", "half_val"):
        values = getattr(tensor, field_name)
        if len(values) == 1:
            if field_name == "half_val":  # stored as the 16 bits of the half float
                return float(struct.unpack("<e", struct.pack("<H", values[0]))[0])
            return float(values[0])
    raise ValueError("scalar tensor holds no readable number")


def open_logdir(location: str | Path) -> Logdir:
    if "://" not in str(location):
        path = Path(location)
        if path.exists() and not path.is_dir():
            raise LogReadError(f"{path} is a file; give the log directory that holds event files")
        if not path.is_dir():
            raise LogReadError(f"log directory {path} does not exist")
    return Logdir(location)


# Where the files are


def _local_runs(root: Path, problems: list[FileProblem]) -> dict[str, list[str]]:
    """Event files of a local logdir, by run.

    Only regular files count: a FIFO would block the first read forever, and a
    dangling or looping symlink cannot be read at all, so those are skipped
    with a note. Symlinked folders are not followed (no loops to walk).
    """
    runs: dict[str, list[str]] = {}
    for folder, _, files in os.walk(root):
        events = []
        for name in sorted(f for f in files if EVENT_FILE_MARKER in f):
            path = Path(folder) / name
            why = _not_readable(path)
            if why is None:
                events.append(str(path))
            else:
                problems.append(FileProblem(str(path), 0, f"skipped: {why}", True))
        if events:
            runs[Path(folder).relative_to(root).as_posix()] = events
    return dict(sorted(runs.items()))


def _not_readable(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode  # follows symlinks, as opening would
    except OSError as exc:
        if path.is_symlink():
            return f"a symlink that leads nowhere ({exc.strerror})"
        return exc.strerror or str(exc)
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device would block or mislead the reader)"
    return None


def _file_system(location: str) -> tuple[Any, str]:
    """(None, path) for a local folder; (fsspec file system, path inside it) for a URL."""
    if not storage.is_url(location):
        return None, location.removeprefix("file://")
    return storage.file_system(location, reading=True)


def _remote_error(location: str, exc: Exception) -> TbimgError:
    return storage.remote_error(location, exc, LogReadError)
