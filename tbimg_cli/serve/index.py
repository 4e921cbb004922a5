"""Where every image record of a logdir is, so that the viewer lists every step and reads one image's bytes only.

TensorBoard's image dashboard keeps a sample of 10 steps per tag, in memory, bytes and all. The index
keeps, for every image summary of every run, a few numbers: run, tag, step, wall time, sample count,
width, height, the event file and the record's byte offset. Building it reads each event file once:
each record's header (its length CRC checked, so framing stays aligned), then the few bytes of its
payload that say what it holds (`logs.headers`, which jumps over image bytes), keeping none of the
images; showing an image reads that one record again, both CRCs checked (`sample`). A local file is read
a block at a time, and the records of single numbers that fill long runs (`logs.columns.numbers_only`)
are skipped a block at once; in a bucket, records are read one at a time, their image bytes never fetched.
`refresh` goes on from where each file was read to, so a run that is still training shows its new steps,
and a record still being written is read next time.

Where tbimg's writer left an image index beside an event file (`events.records.index_name`), the
part of the file it covers is listed from it and not walked at all: in a bucket, one small object per
piece instead of a request per record. Its entries are hints: an image is read from its record, CRCs
checked, and an index that claims more than its file holds is set aside for the walk.

Image summaries in both forms count: TF 2's tensor (`tf.summary.image`, tbimg's writer) and TF 1's
`Summary.Image` (tensorboardX, PyTorch's `SummaryWriter`).
"""

from __future__ import annotations

import mmap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO, NamedTuple, cast

from tbimg_cli.errors import LogReadError
from tbimg_cli.events.blocks import iter_record_blocks
from tbimg_cli.events.records import (
    FOOTER_BYTES,
    HEADER_BYTES,
    IndexedImage,
    RecordProblem,
    masked_crc32c,
    parse_index,
    read_record_at,
    record_length,
)
from tbimg_cli.logs.columns import numbers_only
from tbimg_cli.logs.headers import (
    IMAGES,
    PREFIX_BYTES,
    ReadAt,
    ScannedEvent,
    decode_with_protobuf,
    image_values,
    own_data_values,
    scan_record,
)
from tbimg_cli.logs.readback import FileProblem, open_logdir

SAMPLE_RECORDS = 256  # a local file's records walked one by one before deciding how to read on
SMALL_RECORD_BYTES = 4096  # records this small on average (scalars among images) are read a block at a time


class Entry(NamedTuple):
    """One image summary: where its record is, and what it holds."""

    step: int
    wall_time: float
    samples: int
    width: int
    height: int
    file: int  # index into `Series.files`' owner: `ImageIndex.files`
    offset: int
    value: int  # which value of the event's summary


@dataclass
class Series:
    """Every image summary of one (run, tag), in file order."""

    run: str
    tag: str
    entries: list[Entry] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        steps = [entry.step for entry in self.entries]
        last = self.entries[-1] if self.entries else None
        return {
            "run": self.run,
            "tag": self.tag,
            "steps": {"count": len(set(steps)), "first": min(steps, default=None), "last": max(steps, default=None)},
            "samples": max((entry.samples for entry in self.entries), default=0),
            "width": last.width if last else 0,
            "height": last.height if last else 0,
        }

    def at(self, step: int) -> Entry | None:
        """The summary written last for `step` (as TensorBoard shows a step written twice), or None."""
        for entry in reversed(self.entries):
            if entry.step == step:
                return entry
        return None


class ImageIndex:
    """The image records of one logdir (a local folder or a bucket URL), kept up to date by `refresh`."""

    def __init__(self, logdir: str) -> None:
        self.logdir = open_logdir(logdir)
        self.series: dict[tuple[str, str], Series] = {}
        self.data: dict[tuple[str, str], Series] = {}  # tbimg's own tensors (`own_data_values`), by run and tag
        self.plugins: dict[tuple[str, str], str] = {}  # their plugin names
        self.files: list[str] = []
        self.problems: list[FileProblem] = []
        self._read_to: dict[str, int] = {}  # event file -> the byte its next record starts at
        self._index_read_to: dict[str, int] = {}  # image index -> the byte its next line starts at (-1: set aside)
        self._plugin_of: dict[str, dict[str, str]] = {}  # run -> tag -> plugin, from the first value that says
        self._lock = threading.Lock()
        self.bytes_fetched = 0  # from a bucket: what the ranged reads asked of the store (local files: 0)

    def refresh(self) -> None:
        """Read what the event files gained since the last refresh (every file, the first time)."""
        with self._lock:
            for run, paths in self.logdir.runs(self.problems).items():
                for path in paths:
                    self._read_file(run, path)

    def listing(self) -> list[dict[str, Any]]:
        with self._lock:
            return [series.to_json() for _, series in sorted(self.series.items())]

    def steps(self, run: str, tag: str) -> list[dict[str, Any]]:
        """Every step of a series, with its wall time and samples (the last summary of a step written twice)."""
        series = self._series(run, tag)
        latest: dict[int, Entry] = {entry.step: entry for entry in series.entries}
        return [
            {"step": step, "wall_time": entry.wall_time, "samples": entry.samples}
            for step, entry in sorted(latest.items())
        ]

    def sample(self, run: str, tag: str, step: int, sample: int) -> bytes:
        """The stored bytes of one sample of one step, read from its record alone.

        Raises:
            LogReadError: for a series, step or sample that is not there, or a record that no longer reads.
        """
        series = self._series(run, tag)
        entry = series.at(step)
        if entry is None:
            raise LogReadError(f"{tag!r} of run {run!r} has no step {step}")
        if not 0 <= sample < entry.samples:
            raise LogReadError(f"step {step} of {tag!r} has {entry.samples} samples; there is no sample {sample}")
        blobs = _image_blobs(self._record(entry), entry.value)
        if blobs is None or sample >= len(blobs):
            raise LogReadError(f"the record of step {step} of {tag!r} no longer holds that image")
        return blobs[sample]

    def _series(self, run: str, tag: str) -> Series:
        with self._lock:
            series = self.series.get((run, tag))
        if series is None:
            raise LogReadError(f"no image series {tag!r} in run {run!r}")
        return series

    def _record(self, entry: Entry) -> Any:
        from tensorboard.compat.proto import event_pb2

        path = self.files[entry.file]
        stream, size = self.logdir.open_ranged(path)
        with stream:
            try:
                return event_pb2.Event.FromString(read_record_at(stream, entry.offset, size))
            except ValueError as exc:  # the file changed under the index (rewritten, cut)
                raise LogReadError(f"{path}: {exc}") from None
            finally:
                self.bytes_fetched += getattr(stream, "fetched", 0)

    def _read_file(self, run: str, path: str) -> None:
        start = self._read_to.get(path, 0)
        listed = self._listed(path)  # before the file's size: the writer writes the index after the records
        try:
            stream, size = self.logdir.open_ranged(path)
        except (OSError, LogReadError) as exc:
            self.problems.append(FileProblem(path, 0, f"cannot read ({exc}); skipped", False))
            return
        if size <= start:
            stream.close()
            return
        if path not in self._read_to:
            self.files.append(path)
        number = self.files.index(path)
        plugin_of = self._plugin_of.setdefault(run, {})
        if listed is not None and listed[1] <= size:
            for image in listed[0]:
                if image.offset >= start:
                    plugin_of.setdefault(image.tag, image.plugin)
                    shape = (image.samples, image.width, image.height)
                    entry = Entry(image.step, image.wall_time, *shape, number, image.offset, 0)
                    self._add(run, image.tag, image.plugin, entry)
            start = max(start, listed[1])
        elif listed is not None:  # not this file's index (the file was cut or replaced): walk it instead
            self._index_read_to[self.logdir.index_of(path) or ""] = -1
        local = self.logdir.is_local
        with stream:
            sample = SAMPLE_RECORDS if local else None
            offset, walked = self._walk(run, path, stream, size, start, number, plugin_of, local=local, limit=sample)
            if walked == sample and offset - start < SAMPLE_RECORDS * SMALL_RECORD_BYTES:
                offset = self._walk_blocks(run, path, stream, size, offset, number, plugin_of)
            elif walked == sample:
                offset, _ = self._walk(run, path, stream, size, offset, number, plugin_of, local=local, limit=None)
        self.bytes_fetched += getattr(stream, "fetched", 0)
        self._read_to[path] = offset

    def _walk(
        self,
        run: str,
        path: str,
        stream: BinaryIO,
        size: int,
        offset: int,
        number: int,
        plugin_of: dict[str, str],
        *,
        local: bool,
        limit: int | None,
    ) -> tuple[int, int]:
        """Index a file's records from `offset` one at a time, reading each one's header and first bytes
        (a local file's through a memory map, whose skipped pages are never read; in a bucket, a request
        per record, the image bytes never fetched). `limit` records at most (a local file's first
        `SAMPLE_RECORDS`: if they are small, `_walk_blocks` reads on faster). Returns (where it read to,
        how many records)."""
        walked = 0
        with _positional(stream, size, local=local) as read_at:
            while offset + HEADER_BYTES <= size and walked != limit:
                try:  # the header and the first payload bytes the walk reads, in one read (a bucket's request)
                    length = record_length(read_at(offset, HEADER_BYTES + PREFIX_BYTES)[:HEADER_BYTES])
                except ValueError as exc:  # damage: nothing after it can be trusted to be aligned
                    self.problems.append(FileProblem(path, offset, str(exc), False))
                    return size, walked
                if offset + HEADER_BYTES + length + FOOTER_BYTES > size:
                    break  # a record still being written: read next time
                event = scan_record(read_at, offset + HEADER_BYTES, length) or self._decoded(stream, offset, size)
                if event is None:
                    self.problems.append(FileProblem(path, offset, "record is damaged or not an event", False))
                    return size, walked
                self._add_event(run, event, number, offset, plugin_of)
                offset += HEADER_BYTES + length + FOOTER_BYTES
                walked += 1
        return offset, walked

    def _walk_blocks(
        self, run: str, path: str, stream: BinaryIO, size: int, start: int, number: int, plugin_of: dict[str, str]
    ) -> int:
        """Index a local file's records from `start` a block at a time (`logs.columns`): the records of
        single numbers, most of a long run's, are found for a block at once and skipped; the others are
        walked as `_walk` does. 0.6 s for a million scalar records, where `_walk` took 15; but every byte
        is read, so files of large records (images alone) are left to `_walk`'s memory map."""
        offset = start
        for block in iter_record_blocks(stream, size, start):
            if isinstance(block, RecordProblem):
                if not block.truncated_tail:  # a cut last record is one still being written: read next time
                    self.problems.append(FileProblem(path, block.offset, block.message, False))
                    return size
                return block.offset
            read_at = _in_memory(cast(bytes, block.buffer))  # bytes: these blocks are read, not mapped
            walked = ~numbers_only(block)
            for at, length in zip(block.starts[walked].tolist(), block.lengths[walked].tolist(), strict=True):
                event = scan_record(read_at, at + HEADER_BYTES, length) or _decoded_payload(
                    read_at(at + HEADER_BYTES, length + FOOTER_BYTES)
                )
                if event is None:
                    message = "record is damaged or not an event"
                    self.problems.append(FileProblem(path, block.offset + at, message, False))
                    return size
                self._add_event(run, event, number, block.offset + at, plugin_of)
            offset = block.offset + int(block.starts[-1] + HEADER_BYTES + block.lengths[-1] + FOOTER_BYTES)
        return offset

    def _add_event(self, run: str, event: ScannedEvent, number: int, offset: int, plugin_of: dict[str, str]) -> None:
        for value in image_values(event, plugin_of):
            shape = (value.samples, value.width, value.height)
            self._add(run, value.tag, IMAGES, Entry(event.step, event.wall_time, *shape, number, offset, value.number))
        for value_number, tag, plugin in own_data_values(event, plugin_of):
            self._add(run, tag, plugin, Entry(event.step, event.wall_time, 0, 0, 0, number, offset, value_number))

    def _add(self, run: str, tag: str, plugin: str, entry: Entry) -> None:
        key = (run, tag)
        kept = self.series if plugin == IMAGES else self.data
        series = kept.get(key) or kept.setdefault(key, Series(*key))
        series.entries.append(entry)
        if plugin != IMAGES:
            self.plugins[key] = plugin

    def data_record(self, run: str, tag: str, step: int) -> tuple[Any, int]:
        """(event, value number) of tbimg's own tensor `tag` at `step`, or at the nearest earlier step (the
        explorer's thumbnails are written once, at the first step of a run).

        Raises:
            LogReadError: for a series that is not there, or no such step or earlier one.
        """
        with self._lock:
            series = self.data.get((run, tag))
        if series is None:
            raise LogReadError(f"no {tag!r} in run {run!r}")
        entry = None
        for candidate in series.entries:  # the last written of the latest step at or before `step`
            if candidate.step <= step and (entry is None or candidate.step >= entry.step):
                entry = candidate
        if entry is None:
            raise LogReadError(f"{tag!r} of run {run!r} has no step {step} or earlier")
        return self._record(entry), entry.value

    def _listed(self, path: str) -> tuple[list[IndexedImage], int] | None:
        """The image records an event file's index lists since the last refresh, and how far it covers."""
        index = self.logdir.index_of(path)
        at = self._index_read_to.get(index or "", 0)
        if index is None or at < 0:
            return None
        try:
            data = self.logdir.read_from(index, at)
        except (OSError, LogReadError):
            return None
        if not self.logdir.is_local:
            self.bytes_fetched += len(data)
        images, covered, read = parse_index(data)
        self._index_read_to[index] = at + read
        return images, covered

    @staticmethod
    def _decoded(stream: BinaryIO, offset: int, size: int) -> ScannedEvent | None:
        """The protobuf way, for a record the header walk was unsure of: CRC checked, whole payload parsed."""
        from google.protobuf.message import DecodeError

        try:
            return decode_with_protobuf(read_record_at(stream, offset, size))
        except (ValueError, DecodeError):
            return None


def _in_memory(buffer: bytes) -> ReadAt:
    return lambda position, count: buffer[position : position + count]


def _decoded_payload(payload_and_footer: bytes) -> ScannedEvent | None:
    """The protobuf way, for a record in memory the header walk was unsure of: CRC checked, then parsed."""
    from google.protobuf.message import DecodeError

    payload, footer = payload_and_footer[:-FOOTER_BYTES], payload_and_footer[-FOOTER_BYTES:]
    if masked_crc32c(payload) != int.from_bytes(footer, "little"):
        return None
    try:
        return decode_with_protobuf(payload)
    except DecodeError:
        return None


@contextmanager
def _positional(stream: BinaryIO, size: int, *, local: bool) -> Iterator[ReadAt]:
    """`read_at(position, count)` over an open event file: a memory map for a local file (pages the walk
    skips are never read from disk), seek and read otherwise (a bucket's `RangedFile`: a request per
    record, for its header and first bytes, the image bytes it jumps over never fetched)."""
    if local and size > 0:
        with mmap.mmap(stream.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            yield lambda position, count: mapped[position : position + count]
        return

    def read_at(position: int, count: int) -> bytes:
        stream.seek(position)
        return stream.read(count)

    yield read_at


def _image_blobs(event: Any, number: int) -> list[bytes] | None:
    if number >= len(event.summary.value):
        return None
    value = event.summary.value[number]
    kind = value.WhichOneof("value")
    if kind == "image":
        return [value.image.encoded_image_string]
    if kind == "tensor":
        return list(value.tensor.string_val[2:])
    return None
