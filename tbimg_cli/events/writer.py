"""The shared writer: image, scalar and text summaries into TensorBoard event files, no TensorFlow.

Contract (what `tf.summary.image` writes, byte for byte where it matters): an image summary is a DT_STRING tensor of
shape [k+2] holding `[str(width), str(height), png_0, ..., png_{k-1}]`, with plugin name "images" and content
`ImagePluginData(version=0)`; a scalar is a DT_FLOAT tensor of shape [] with plugin "scalars"; a text summary is a
DT_STRING tensor of shape [] holding Markdown, plugin "text". Every value carries its metadata, as TF 2's writer
does, built by TensorBoard's own plugin `metadata` modules (which do not import TensorFlow); image summaries and the
first event are serialised by hand (`wire.py`), to the same bytes. Records use TFRecord framing (`records.py`); the
first record of a file is the `file_version: "brain.Event:2"` event, and the file is named
`events.out.tfevents.<10-digit time>.<host>.<pid>.<n>.v2`.

Every command writes through this module, so there is one place that knows TensorBoard's format. The event file is
opened lazily (no empty files for a command that fails before writing). Records gather in the writer's own buffer
and go to the file whole, at `flush`, at `close` or once the buffer holds `BUFFER_BYTES`, so an exception or Ctrl-C
never leaves half a record behind. The buffer is the writer's and not the file object's so that a forked child (a
PyTorch `DataLoader` worker) can drop it: a child never writes what its parent wrote (`os.register_at_fork`), and
its writers refuse to write. Pixels become PNGs in `png.py`.

Beside the event file, once it holds an image, the writer keeps its image index (`records.index_name`): a line per
image record saying where it is, written after the record itself, so that a viewer lists every step without reading
the images (a bucket's log: one small object per piece, not a request per record).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from tbimg_cli import shortcuts
from tbimg_cli.errors import InputError, InputTypeError, WriterClosedError
from tbimg_cli.events import storage, wire
from tbimg_cli.events.png import encode_pngs, png_size, to_uint8_batch
from tbimg_cli.events.records import IndexedImage, covered_line, frame, index_line, index_name, parse_index

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

FILE_VERSION = "brain.Event:2"
BUFFER_BYTES = 8192  # gathered before the file is written unasked: as much as `open` buffers (io.DEFAULT_BUFFER_SIZE)
_file_counter = itertools.count()


@dataclass(frozen=True)
class EncodedImage:
    """One sample of an image summary: an image file's bytes, with the size its header gives.

    Made by `images.values` from anything a user hands over; defined here because it is
    what the writer takes, and the event format depends on no other concern.
    """

    data: bytes
    width: int
    height: int
    format: str  # one of `images.files.STORED_FORMATS`: the writer stores the bytes as they are


def check_step(step: object) -> int:
    """A summary's step as TensorBoard stores it: a whole number, 0 or more.

    A 0-d integer tensor or array (PyTorch's `global_step` often is one) counts: it has `__index__`.

    Raises:
        InputTypeError: for a float (2.0), a bool or anything not an integer.
        InputError: for a negative step.
    """
    import numbers
    import operator

    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        if isinstance(step, bool) or "bool" in str(getattr(step, "dtype", "")):
            raise _not_a_step(step)
        try:
            step = operator.index(step)  # type: ignore[arg-type]  # a non-index raises TypeError
        except TypeError:
            raise _not_a_step(step) from None
    if step < 0:
        raise InputError(f"step must be 0 or more, got {step}")
    return int(step)


def _host_name() -> str:
    """What `socket.gethostname()` (TensorFlow's too) answers, from `os.uname` where it can: no `socket` import."""
    if hasattr(os, "uname"):
        return os.uname().nodename
    import socket

    return socket.gethostname()


def _not_a_step(step: object) -> InputTypeError:
    """Made only on failure: a tensor's repr costs more than the check itself, on every call."""
    return InputTypeError(f"step must be a whole number (an int), got {step!r} of type {type(step).__name__}")


class EventWriter:
    """Writes summaries for one run directory into one event file of its own.

    The file is created at the first write, so a writer that writes nothing
    leaves nothing behind. Use it as a context manager, or call `close()`;
    writing after that raises `WriterClosedError`.

    A bucket URL (`s3://bucket/run`, `gs://...`, with the `cloud` extra) is
    written through a local staging folder that `mirror.Mirror` uploads as
    new objects at each flush: never rewritten, never appended.

    Args:
        run_dir: the run folder (or bucket URL), created when the first summary is written.
        append_to: an event file this process wrote before (in `run_dir`), to go on
            with instead of starting a new one, when it still exists.
        keep_open: for a bucket, keep uploading after `close()` until the process
            ends (calls that append, like `log_images`), instead of uploading everything at close.
        buffer_bytes: records gathered before the file is written unasked (`ImageLogger`: a second's worth).

    Raises:
        UploadError: for a bucket that is missing or refuses the credentials (before anything is written).

    Example:
        >>> with EventWriter("logs/run1") as writer:
        ...     writer.image("samples", images, step=3)
    """

    def __init__(
        self,
        run_dir: str | Path,
        *,
        append_to: Path | None = None,
        keep_open: bool = False,
        buffer_bytes: int = BUFFER_BYTES,
    ) -> None:
        self.destination = str(run_dir) if storage.is_url(run_dir) else None
        self.run_dir = storage.staged(self.destination, keep_open=keep_open) if self.destination else Path(run_dir)
        self.path: Path | None = None
        self._append_to = append_to
        self._file: IO[bytes] | None = None
        self._pending = bytearray()  # whole records not yet in the file
        self._buffer_bytes = buffer_bytes
        self._file_bytes = 0  # what the event file holds
        self._index: IO[bytes] | None = None  # the image index, opened at the first image record
        self._index_path: Path | None = None  # None: no index is kept (appending to a file without a whole one)
        self._index_pending: list[IndexedImage] = []  # image records in `_pending`
        self._closed = False
        self._parent: int | None = None  # in a forked child: the pid of the process that owns this writer
        _live_writers.add(self)

    def __enter__(self) -> EventWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def location(self) -> str | Path:
        """Where the summaries end up: the run folder, or the bucket URL."""
        return self.destination or self.run_dir

    def image(self, tag: str, images: ArrayLike, step: int = 0, description: str | None = None) -> int:
        """Encode and write all `images` as one summary with k samples, as `tf.summary.image` does.

        Args:
            tag: the summary's name in TensorBoard.
            images: (H, W), (H, W, C), (N, H, W) or (N, H, W, C); uint8, or floats in [0, 1].
            step: the step the summary belongs to (0 or more).
            description: Markdown shown beside the images in TensorBoard.

        Returns:
            k, the number of samples written.

        Raises:
            InputError: for images `png.to_uint8_batch` refuses, or a negative step.
            InputTypeError: for a step that is not an int.
            WriterClosedError: after `close()`.
        """
        self._check_open()
        batch = to_uint8_batch(images)
        self.png_images(tag, encode_pngs(batch), step, description)
        return len(batch)

    def png_images(self, tag: str, pngs: Sequence[bytes], step: int = 0, description: str | None = None) -> None:
        """Write already-encoded PNGs as they are (figures are never decoded and re-encoded).

        The summary's width and height are the first PNG's, as TensorBoard
        expects every sample of one summary to share them.

        Raises:
            InputError: for no PNGs, bytes that are not a PNG, or a negative step.
            InputTypeError: for a step that is not an int.
            WriterClosedError: after `close()`.
        """
        self._check_open()
        if not pngs:
            raise InputError(f"no images to write for tag {tag!r}: the batch is empty")
        self._image_summary(tag, png_size(pngs[0]), pngs, step, description)

    def encoded_images(
        self, tag: str, images: Sequence[EncodedImage], step: int = 0, description: str | None = None
    ) -> None:
        """Write image files (PNG, JPEG, GIF or BMP, from `images.values`) as the samples of one summary.

        TensorBoard's image plugin serves each sample's bytes as they are, so
        they need not be PNGs; the summary's width and height are the first's.

        Raises:
            InputError: for no images, or a negative step.
            InputTypeError: for a step that is not an int.
            WriterClosedError: after `close()`.
        """
        self._check_open()
        if not images:
            raise InputError(f"no images to write for tag {tag!r}: the batch is empty")
        size = images[0].width, images[0].height
        self._image_summary(tag, size, [image.data for image in images], step, description)

    def _image_summary(
        self, tag: str, size: tuple[int, int], blobs: Sequence[bytes], step: int, description: str | None
    ) -> None:
        """Serialised by hand (`wire.py`, the bytes TensorBoard's classes write), or by those classes."""
        step, wall_time = check_step(step), time.time()
        encode = wire.image_event if shortcuts.enabled() else wire.image_event_by_protobuf
        payload = encode(wall_time, step, tag, description or "", size, blobs)
        self._write_payload(payload, step, wall_time, (tag, len(blobs), *size))

    def scalar(self, tag: str, value: float, step: int, description: str | None = None) -> None:
        """A float32 scalar in TF 2's tensor form (what `tf.summary.scalar` writes).

        Raises:
            InputError: for a negative step.
            InputTypeError: for a step that is not an int.
            WriterClosedError: after `close()`.
        """
        import numpy as np
        from tensorboard.compat.proto import types_pb2
        from tensorboard.plugins.scalar import metadata

        self._check_open()
        event, tensor = self._new_value(tag, metadata.create_summary_metadata(None, description or ""), step)
        tensor.dtype = types_pb2.DT_FLOAT
        tensor.tensor_shape.SetInParent()  # shape [], present as TensorFlow writes it
        tensor.tensor_content = np.float32(value).astype("<f4").tobytes()
        self._write_event(event)

    def text(self, tag: str, markdown: str, step: int, description: str | None = None) -> None:
        """A string shown as Markdown in the Text dashboard (what `tf.summary.text` writes).

        Raises:
            InputError: for a negative step.
            InputTypeError: for a step that is not an int.
            WriterClosedError: after `close()`.
        """
        from tensorboard.compat.proto import types_pb2
        from tensorboard.plugins.text import metadata

        self._check_open()
        event, tensor = self._new_value(tag, metadata.create_summary_metadata(None, description or ""), step)
        tensor.dtype = types_pb2.DT_STRING
        tensor.tensor_shape.SetInParent()
        tensor.string_val.append(markdown.encode())
        self._write_event(event)

    def tensor(self, tag: str, array: ArrayLike, step: int, plugin: str, content: bytes = b"") -> None:
        """A numeric array as a tensor summary of `plugin` (tbimg's own data: the confusion explorer's).

        TensorBoard's dashboards show no plugin they do not know, so these stay out of their way; a plugin
        whose name starts with "tbimg" is listed in the image index, for the tbimg tab.

        Raises:
            InputError: for a dtype other than uint8, int32, int64 or float32, or a negative step.
            WriterClosedError: after `close()`.
        """
        import numpy as np
        from tensorboard.compat.proto import summary_pb2, types_pb2

        self._check_open()
        data = np.ascontiguousarray(array)
        dtypes = {"uint8": types_pb2.DT_UINT8, "int32": types_pb2.DT_INT32, "int64": types_pb2.DT_INT64}
        dtypes["float32"] = types_pb2.DT_FLOAT
        if data.dtype.name not in dtypes:
            raise InputError(f"a tensor summary of {data.dtype} is not written; give uint8, int32, int64 or float32")
        plugin_data = summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=content)
        event, tensor = self._new_value(tag, summary_pb2.SummaryMetadata(plugin_data=plugin_data), step)
        tensor.dtype = dtypes[data.dtype.name]
        tensor.tensor_shape.SetInParent()
        for size in data.shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.tensor_content = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
        self._write_event(event, (tag, 0, 0, 0) if plugin.startswith("tbimg") else None, plugin)

    def flush(self) -> None:
        """Hand what was written to the operating system, so a TensorBoard reading the run sees it."""
        if self._parent is not None:
            return
        self._drain()
        if self.destination is not None:
            storage.flush_soon(self.destination)

    def close(self) -> None:
        """Close the event file; later writes raise `WriterClosedError`. Closing twice is harmless.

        Raises:
            UploadError: for a bucket still unreachable after retries: the message names the
                local folder that keeps the rest, and the command that uploads it.
        """
        if self._closed:
            return
        self._closed = True
        if self._file is not None:
            try:
                self._drain()
            finally:
                file, self._file = self._file, None
                file.close()
                if self._index is not None:
                    self._index.close()
        if self.destination is not None:
            storage.release(self.destination)

    def forget_after_fork(self, parent: int) -> None:
        """In a forked child: drop the parent's unwritten records and refuse to write (the parent owns the file)."""
        self._parent = parent
        self._pending = bytearray()
        self._index_pending = []
        self._closed = True
        self._file = self._index = None  # the child's copies of the descriptors close with it; nothing was buffered

    def _check_open(self) -> None:
        if self._parent is not None:
            raise WriterClosedError(
                f"this EventWriter for {self.run_dir} belongs to process {self._parent}, which forked this one; "
                "open a writer in this process to write from it"
            )
        if self._closed:
            raise WriterClosedError(f"this EventWriter for {self.run_dir} is closed; make a new one to write again")

    def _new_value(self, tag: str, summary_metadata: Any, step: int) -> tuple[Any, Any]:
        """An event holding one value, and that value's tensor to fill in place (protobuf copies a message given
        to a constructor)."""
        from tensorboard.compat.proto import event_pb2

        event = event_pb2.Event(wall_time=time.time(), step=check_step(step))
        value = event.summary.value.add(tag=tag)
        value.metadata.CopyFrom(summary_metadata)
        return event, value.tensor

    def _write_event(self, event: Any, image: tuple[str, int, int, int] | None = None, plugin: str = "images") -> None:
        self._write_payload(event.SerializeToString(), event.step, event.wall_time, image, plugin)

    def _write_payload(
        self,
        payload: bytes,
        step: int,
        wall_time: float,
        image: tuple[str, int, int, int] | None,
        plugin: str = "images",
    ) -> None:
        """Gather one serialised event's record; `image` (tag, samples, width, height) lists it in the index."""
        if self._file is None:
            self._open()
        if image is not None and self._index_path is not None:
            tag, samples, width, height = image
            offset = self._file_bytes + len(self._pending)
            self._index_pending.append(IndexedImage(offset, step, wall_time, samples, width, height, tag, plugin))
        self._pending += frame(payload)
        if len(self._pending) >= self._buffer_bytes:
            self._drain()

    def _drain(self) -> None:
        """Write the gathered records, then their index lines; an unbuffered file takes them in as few calls
        as it needs. A failed write ends the index (it would claim records that are not whole)."""
        if not self._pending or self._file is None:
            return
        view, written = memoryview(self._pending), 0
        try:
            while written < len(view):
                written += self._file.write(view[written:]) or 0
        except BaseException:
            self._index_path = None
            raise
        finally:
            view.release()
            del self._pending[:written]
            self._file_bytes += written
        self._write_index()

    def _write_index(self) -> None:
        """The index lines of the records just written, and how far the event file is covered."""
        if self._index_path is None or (self._index is None and not self._index_pending):
            return
        try:
            if self._index is None:
                self._index = open(self._index_path, "ab", buffering=0)  # noqa: SIM115 - closed by close()
            lines = b"".join(map(index_line, self._index_pending))
            self._index.write(lines + covered_line(self._file_bytes))
        except OSError:  # a hint only: the viewer reads the event file itself without one
            self._index_path = None
        finally:
            self._index_pending = []

    def _open(self) -> IO[bytes]:
        if self._append_to is not None and self._append_to.is_file():
            self.path = self._append_to
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - held open across calls, closed by close()
            self._file_bytes = os.fstat(self._file.fileno()).st_size
            index = self.path.with_name(index_name(self.path.name))
            # Go on with the index only where it covers the whole file: else it would hide the images before.
            with contextlib.suppress(OSError):
                if not index.exists() or parse_index(index.read_bytes())[1] == self._file_bytes:
                    self._index_path = index if index.exists() or self._file_bytes == 0 else None
            return self._file
        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{_host_name()}.{os.getpid()}.{next(_file_counter)}.v2"
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / name
        file = self._file = open(self.path, "wb", buffering=0)  # noqa: SIM115 - held open, closed by close()
        self._index_path = self.path.with_name(index_name(name))
        encode = wire.file_version_event if shortcuts.enabled() else wire.file_version_event_by_protobuf
        self._pending += frame(encode(now, FILE_VERSION))
        return file


def run_folder(log_dir: object, subdir: str = "") -> str | Path:
    """`<log_dir>/<subdir>` for a library call, refused when `log_dir` is a file or `subdir` would lead out of it.

    A bucket URL stays a URL (and is checked when its writer starts).

    Raises:
        InputTypeError: for a `log_dir` that is not a path, or a `subdir` that is not a str.
        InputError: for a file where the folder should be, or a `subdir` that leaves `log_dir`.
    """
    if not isinstance(log_dir, str | PurePath) or (isinstance(log_dir, str) and not log_dir.strip()):
        raise InputTypeError(f"log_dir must be the path of a folder, got {log_dir!r}")
    if not isinstance(subdir, str):
        raise InputTypeError(f"subdir must be a folder name (a str), got {type(subdir).__name__}")
    inner = PurePath(subdir)
    if inner.is_absolute() or ".." in inner.parts:
        raise InputError(f"subdir {subdir!r} must be a folder inside log_dir (no '..', not an absolute path)")
    if storage.is_url(log_dir):
        return storage.join(str(log_dir), subdir) if subdir else str(log_dir)
    root = Path(log_dir)
    if root.exists() and not root.is_dir():
        raise InputError(f"log_dir {root} is a file; give the run folder to write into")
    folder = root / inner if subdir else root
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{folder} is a file; give log_dir and subdir of a folder to write into")
    return folder


@contextlib.contextmanager
def appending(folder: str | Path) -> Iterator[EventWriter]:
    """A writer for one synchronous library call, going on with the event file this process began in `folder`.

    The file is closed when the call's work is written, so a sweep of hundreds
    of runs in one process holds no file open; the next call for the folder
    appends to the same file, so one process makes one file per folder.
    """
    key = folder if isinstance(folder, str) and storage.is_url(folder) else Path(folder).resolve()
    with _event_files_lock:
        writer = EventWriter(folder, append_to=_event_files.get(key), keep_open=True)
        try:
            yield writer
        finally:
            writer.close()
            if writer.path is not None:
                _event_files[key] = writer.path


# The event file this process's synchronous calls (`appending`) write for each folder.
_event_files: dict[str | Path, Path] = {}
_event_files_lock = threading.Lock()


_live_writers: weakref.WeakSet[EventWriter] = weakref.WeakSet()


def _forget_parents_writers() -> None:
    """A forked child (a `DataLoader` worker, a `multiprocessing` fork) writes nothing its parent owns."""
    parent = os.getppid()
    for writer in list(_live_writers):
        writer.forget_after_fork(parent)
    _event_files.clear()  # the child's own calls start event files of their own (its pid in their names)
    global _event_files_lock
    _event_files_lock = threading.Lock()  # another of the parent's threads may have held it at the fork


os.register_at_fork(after_in_child=_forget_parents_writers)
