"""Your own images into TensorBoard from any program: `log_images` now, `ImageLogger` without waiting.

`log_images` encodes and writes before it returns. `ImageLogger.log` only
copies what it is given (so the caller may reuse its buffers at once) and
queues it. One writer thread writes the summaries in the order of the calls,
so steps never interleave however the encoding finishes. A call that finds
nothing queued ahead of it (a training loop logging every few steps) is
encoded by the writer thread itself: waking one thread rather than two costs
the loop less, since on a machine whose cores the training keeps busy every
wakeup takes one of them. Calls that come faster go to worker threads, started
then, which encode in parallel (deflate lets go of the GIL). The queue is bounded by the bytes it holds: when it is
full, `log` waits rather than letting memory grow. An error found in the
background (NaN in an image, a damaged file) is raised by the next call, or
by `close()`; at the end of the process every open logger is closed, so
what was queued is written.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import warnings
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tbimg_cli import shortcuts
from tbimg_cli.errors import InputError, InputTypeError, TbimgError, WriterClosedError
from tbimg_cli.events.runs import ranked_tag
from tbimg_cli.events.writer import EventWriter, appending, check_step, run_folder
from tbimg_cli.images import values as image_values
from tbimg_cli.images.files import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from tbimg_cli.events.writer import EncodedImage
    from tbimg_cli.images.values import Layout, ValueRange

DEFAULT_QUEUE_BYTES = 256 * 2**20
_Job = tuple[Any, "Layout", "ValueRange", int]  # a snapshot of the images, and how to read them
_IDLE_FLUSH_SECONDS = 1.0  # the writer flushes when it has had nothing to write for this long
# Records gathered between the flushes above: a training loop's summaries reach the file a second's worth at a
# time (two system calls a second, not two a call, about 0.1 ms each on a busy machine).
WRITE_BUFFER_BYTES = 4 * 2**20


def log_images(
    log_dir: str | os.PathLike[str],
    tag: str,
    images: Any,
    step: int,
    *,
    description: str | None = None,
    layout: Layout = "auto",
    value_range: ValueRange = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    ranks: str = "zero",
) -> int:
    """Write one image summary (one or more samples) and return once it is on disk.

    Calls for the same folder append to one event file per process; never
    imports TensorFlow or PyTorch.

    Args:
        log_dir: the run folder (as for `SummaryWriter`), created if missing.
        tag: the summary's name in TensorBoard.
        images: one image or a sequence of them: a path (PNG, JPEG, GIF and
            BMP files are stored as they are, other formats as PNG; `.npy` and
            `.npz` arrays), encoded bytes, a `PIL.Image`, a matplotlib
            `Figure`, or an array: numpy, or anything `numpy.asarray` takes
            (PyTorch and JAX tensors on the CPU). Arrays are HW, HWC or NHWC;
            CHW and NCHW when `layout` says so, for PyTorch tensors, or when
            the channel axis cannot be another.
        step: the step (an int, 0 or more).
        description: Markdown shown beside the images.
        layout: how an array's axes read: "auto", "HW", "HWC", "CHW", "NHW", "NHWC" or "NCHW".
        value_range: for values outside the rules' ranges, `(low, high)` mapped
            to 0..255, or "auto" for each array's min to max.
        max_pixels: images larger than this are refused before decoding.
        ranks: in a distributed job (`torch.distributed`, or `RANK`/`LOCAL_RANK` set), "zero" logs on
            rank 0 only (the others write nothing and return 0), "all" logs every rank under
            `<tag>/rank<k>`, so that no rank's images hide another's.

    Returns:
        The number of samples written.

    Raises:
        InputError: for values, shapes or files the value rules refuse (the
            table in `image_values.VALUE_RULES`), a bad option or a negative step.
        InputTypeError: for a step that is not an int, a tag that is not a
            str, or something that is no image.

    Example:
        >>> log_images("runs/exp1", "samples", generator(noise), step=epoch)
    """
    folder = run_folder(log_dir)
    step = _check_call(tag, step, layout, value_range)
    logged_tag = ranked_tag(tag, ranks)
    if logged_tag is None:
        return 0
    encoded = image_values.encode(images, layout=layout, value_range=value_range, max_pixels=max_pixels)
    with appending(folder) as writer:
        writer.encoded_images(logged_tag, encoded, step, description)
    return len(encoded)


class ImageLogger:
    """Logs image summaries from a training loop without making it wait for encoding or writing.

    `log()` returns as soon as it has copied its images; a background thread
    encodes them (worker threads too when calls come faster than it alone
    keeps up with) and writes the summaries in call order to a new event file
    of `log_dir`. Safe to share between threads. Use it as a
    context manager or call `close()`; unclosed loggers are closed at exit.

    Args:
        log_dir: the run folder, created at the first write.
        workers: encoding threads when calls queue up; default one per core, at most 4.
        max_queued_bytes: memory the queued images may hold before `log()`
            waits for the workers (default 256 MiB; one call larger than this
            is still taken, alone).
        ranks: as for `log_images`: "zero" (in a distributed job, only rank 0 logs; the others' `log()`
            returns at once and no file is made) or "all" (`<tag>/rank<k>`).

    Example:
        >>> with ImageLogger("runs/exp1") as images:
        ...     for step in range(steps):
        ...         images.log("predictions", model(x).detach().cpu(), step)
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        *,
        workers: int | None = None,
        max_queued_bytes: int = DEFAULT_QUEUE_BYTES,
        ranks: str = "zero",
    ) -> None:
        self.log_dir = run_folder(log_dir)
        ranked_tag("", ranks)  # checked now, so a bad value fails here and not at the first log()
        self._ranks = ranks
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise InputError(f"workers must be an int of 1 or more, got {workers!r}")
        self._writer = EventWriter(self.log_dir, buffer_bytes=WRITE_BUFFER_BYTES)
        self._max_bytes = max_queued_bytes
        self._queued_bytes = 0
        self._space = threading.Condition()
        self._call_lock = threading.Lock()  # one call at a time puts its work in both queues: order kept
        self._errors: list[BaseException] = []  # the writer thread adds, the caller takes: under _errors_lock
        self._errors_lock = threading.Lock()
        self._buffers = _Buffers()
        self._closed = False
        self._parent: int | None = None  # in a forked child: the process that owns this logger
        self._encode_queue: queue.SimpleQueue[tuple[Future[list[EncodedImage]], Any] | None] = queue.SimpleQueue()
        self._write_queue: queue.SimpleQueue[_Written | _Flush | None] = queue.SimpleQueue()
        self._worker_count = workers or max(1, min(4, os.cpu_count() or 1))
        self._encoders: list[threading.Thread] = []  # started by the first call that finds work queued
        self._write_thread = threading.Thread(target=self._write_loop, name="tbimg-write", daemon=True)
        self._write_thread.start()
        _open_loggers.add(self)

    @property
    def path(self) -> Path | None:
        """The event file, once the first summary is written."""
        return self._writer.path

    def __enter__(self) -> ImageLogger:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:  # the block's own error matters more than one from the background
            with contextlib.suppress(Exception):
                self.close()

    def log(
        self,
        tag: str,
        images: Any,
        step: int,
        *,
        description: str | None = None,
        layout: Layout = "auto",
        value_range: ValueRange = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        """Queue one image summary; the arguments are `log_images`'s.

        Returns once the images are copied. Values are checked on a worker
        thread: what it refuses is raised by a later call or `close()`.

        Raises:
            InputError, InputTypeError: for a bad tag, step or option (at once),
                or for images an earlier call queued and the rules refused.
            WriterClosedError: after `close()`.
        """
        self._check_usable()
        step = _check_call(tag, step, layout, value_range)
        logged_tag = ranked_tag(tag, self._ranks)
        if logged_tag is None:
            return
        tag = logged_tag
        copied = image_values.snapshot(images, self._buffers.take)
        size = image_values.snapshot_bytes(copied)
        with self._space:
            while self._queued_bytes and self._queued_bytes + size > self._max_bytes:
                self._space.wait()
            idle = not self._queued_bytes
            self._queued_bytes += size
        job = (copied, layout, value_range, max_pixels)
        with self._call_lock:
            if self._closed:
                self._release(size)
                raise WriterClosedError(f"this ImageLogger for {self.log_dir} was closed while this call waited")
            if idle:  # nothing ahead of it: the writer thread encodes it, one thread woken instead of two
                self._write_queue.put(_Written(job, tag, int(step), description, size))
                return
            if not self._encoders:
                self._start_encoders()
            work: Future[list[EncodedImage]] = Future()
            self._encode_queue.put((work, job))
            self._write_queue.put(_Written(work, tag, int(step), description, size))

    def flush(self) -> None:
        """Wait until everything logged so far is written and handed to the operating system.

        Raises:
            InputError, InputTypeError: for images a call queued and the rules refused.
        """
        self._check_usable()
        done = _Flush()
        self._write_queue.put(done)
        done.event.wait()
        self._raise_background_error()

    def close(self) -> None:
        """Write everything queued, stop the threads and close the file. Closing twice is harmless.

        Raises:
            InputError, InputTypeError: for images a call queued and the rules refused.
        """
        if self._parent is not None:
            return  # a forked child's copy: its threads never ran here, and what it queued is its parent's
        with self._call_lock:
            if self._closed:
                return
            self._closed = True
        _open_loggers.discard(self)
        self._write_queue.put(None)
        self._write_thread.join()
        for _ in self._encoders:
            self._encode_queue.put(None)
        for thread in self._encoders:
            thread.join()
        self._writer.close()
        self._raise_background_error()

    def _check_usable(self) -> None:
        if self._parent is not None:
            raise WriterClosedError(
                f"this ImageLogger for {self.log_dir} belongs to process {self._parent}, which forked this one "
                "(a DataLoader worker?); log from the parent, or open an ImageLogger in this process"
            )
        if self._closed:
            raise WriterClosedError(f"this ImageLogger for {self.log_dir} is closed; make a new one to log again")
        self._raise_background_error()

    def _raise_background_error(self) -> None:
        with self._errors_lock:  # taken whole: one the writer adds meanwhile is raised next time, never dropped
            errors, self._errors = self._errors, []
        if not errors:
            return
        first, rest = errors[0], len(errors) - 1
        if rest and isinstance(first, TbimgError):
            raise type(first)(f"{first} (and {rest} more call{'s' if rest > 1 else ''} refused)") from first
        raise first

    def _start_encoders(self) -> None:
        """The encoding threads, for calls that come faster than the writer thread encodes them alone."""
        for i in range(self._worker_count):
            thread = threading.Thread(target=self._encode_loop, name=f"tbimg-encode-{i}", daemon=True)
            thread.start()
            self._encoders.append(thread)

    def _encode_loop(self) -> None:
        while (item := self._encode_queue.get()) is not None:
            work, job = item
            try:
                work.set_result(self._encode(job))
            except BaseException as exc:  # handed to the writer thread, which hands it to the caller
                work.set_exception(exc)

    def _encode(self, job: _Job) -> list[EncodedImage]:
        copied, layout, value_range, max_pixels = job
        encoded = image_values.encode(copied, layout=layout, value_range=value_range, max_pixels=max_pixels)
        self._buffers.give(image_values.snapshot_arrays(copied))
        return encoded

    def _write_loop(self) -> None:
        """Write in call order; flush when idle for a while, and at least that often while busy, so that
        a TensorBoard reading the run sees each summary within about `_IDLE_FLUSH_SECONDS`."""
        flushed_at = time.monotonic()
        while True:
            try:
                item = self._write_queue.get(timeout=_IDLE_FLUSH_SECONDS)
            except queue.Empty:
                item = _Flush()  # idle: flush, with nobody waiting for it
            if item is None:
                return
            if isinstance(item, _Written):
                self._write(item)
            if isinstance(item, _Flush) or time.monotonic() - flushed_at >= _IDLE_FLUSH_SECONDS:
                self._flush_file()
                flushed_at = time.monotonic()
            if isinstance(item, _Flush):
                item.event.set()

    def _write(self, item: _Written) -> None:
        try:
            encoded = item.work.result() if isinstance(item.work, Future) else self._encode(item.work)
            self._writer.encoded_images(item.tag, encoded, item.step, item.description)
        except BaseException as exc:
            if isinstance(exc, TbimgError):
                exc = type(exc)(f"{item.tag!r} at step {item.step}: {exc}")
            self._add_error(exc)
        finally:
            self._release(item.size)

    def _add_error(self, exc: BaseException) -> None:
        with self._errors_lock:
            self._errors.append(exc)

    def _release(self, size: int) -> None:
        with self._space:
            self._queued_bytes -= size
            self._space.notify_all()

    def _flush_file(self) -> None:
        try:
            self._writer.flush()
        except OSError as exc:
            self._add_error(exc)


class _Buffers:
    """Arrays encoded already, lent out again to copy new images into.

    A training loop logs arrays of one shape over and over; copying each into
    fresh memory costs a page fault per 4 KiB (far more than the copy), so
    the logger keeps a few of each shape it has seen.
    """

    KEEP = 8  # per shape and dtype: enough for the arrays the workers hold at once

    def __init__(self) -> None:
        self._spare: dict[tuple[tuple[int, ...], str], list[NDArray[Any]]] = {}
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype: Any) -> NDArray[Any]:
        import numpy as np

        with self._lock:
            spare = self._spare.get((shape, str(dtype)))
            if spare:
                return spare.pop()
        return np.empty(shape, dtype)

    def give(self, arrays: list[NDArray[Any]]) -> None:
        with self._lock:
            for array in arrays:
                spare = self._spare.setdefault((array.shape, str(array.dtype)), [])
                if len(spare) < self.KEEP:
                    spare.append(array)


class _Written:
    """A queued call: its encoding (a future the workers fill, or the job itself for the writer thread to
    encode), and where it goes."""

    __slots__ = ("description", "size", "step", "tag", "work")

    def __init__(
        self, work: Future[list[EncodedImage]] | _Job, tag: str, step: int, description: str | None, size: int
    ):
        self.work, self.tag, self.step, self.description, self.size = work, tag, step, description, size


class _Flush:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


def _check_call(tag: object, step: object, layout: object, value_range: object) -> int:
    """The call's step as an int (a 0-d tensor's too), once tag, step and options are checked."""
    if not isinstance(tag, str) or not tag:
        raise InputTypeError(f"tag must be a non-empty str, got {tag!r}")
    image_values.check_rules(layout, value_range)
    return check_step(step)


_open_loggers: set[ImageLogger] = set()


def _close_open_loggers() -> None:
    """The end of the process writes what was queued; an error nobody can catch any more is at least shown."""
    for logger in list(_open_loggers):
        try:
            logger.close()
        except Exception as exc:
            warnings.warn(f"tbimg ImageLogger for {logger.log_dir}: {exc}", RuntimeWarning, stacklevel=1)


def _forget_parents_loggers() -> None:
    """A forked child (a `DataLoader` worker) inherits the parent's loggers without their threads: it must
    neither write what they queued nor close them at its exit, which would write the parent's records again."""
    parent = os.getppid()
    for logger in list(_open_loggers):
        logger._parent = parent
    _open_loggers.clear()


shortcuts.before_threads_end(_close_open_loggers)  # registered after storage's: runs before it
os.register_at_fork(after_in_child=_forget_parents_loggers)
