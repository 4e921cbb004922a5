"""TFRecord framing, the container of TensorBoard event files.

Each record is: uint64 length (little-endian), uint32 masked CRC-32C of those
8 length bytes, the payload, uint32 masked CRC-32C of the payload. Formats
are spelled with '<' so the bytes do not depend on the machine's endianness.
The writer frames with `frame`; `inspect`/`export` read back with
`read_records`, which checks both CRCs instead of trusting the file.

Beside each event file it writes, tbimg's writer keeps an **image index**: where each image record is
(`index_name`: the event file's name with `tfevents` made `tbimgindex`, so TensorBoard, which reads
files whose names hold `tfevents`, never opens it). A viewer lists every step of a run from it without
reading the event file (in a bucket, one small object instead of a request per record). It is a hint,
never the truth: a record it points at is read with both CRCs checked, and a file without one, or the
part of a file it does not cover, is read record by record. Lines of JSON, each whole or not yet there:
`[offset, step, wall_time, samples, width, height, tag]` for an image record (value 0 of its event),
`[offset, step, wall_time, 0, 0, 0, tag, plugin]` for a record of tbimg's own data (the confusion
explorer's counts and examples), and `{"to": n}` once the event file's first n bytes are written and every
such record in them listed.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, NamedTuple

if TYPE_CHECKING:
    pass

from tbimg_cli import shortcuts

crc32c = shortcuts.crc32c_function()
_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
HEADER_BYTES = _LENGTH.size + _CRC.size
FOOTER_BYTES = _CRC.size
# A record holds one serialised protobuf, and protobuf messages stop at 2 GiB:
# a longer length is damage, not a record a writer is still writing.
MAX_RECORD_BYTES = 2**31 - 1
CHUNK_BYTES = 1 << 20
EVENT_FILE_MARKER = "tfevents"  # what TensorBoard (both loaders) looks for in an event file's name
INDEX_MARKER = "tbimgindex"


def masked_crc32c(data: bytes | memoryview) -> int:
    """CRC-32C rotated and offset, as TFRecord stores it (so CRCs of CRCs stay useful)."""
    return _masked(crc32c(data))


def frame(payload: bytes) -> bytes:
    """One complete record, built in memory so it can be written with a single call."""
    length = _LENGTH.pack(len(payload))
    return b"".join((length, _CRC.pack(masked_crc32c(length)), payload, _CRC.pack(masked_crc32c(payload))))


@dataclass(frozen=True)
class RecordProblem:
    """Why reading stopped before the end of a file, and where."""

    offset: int
    message: str
    truncated_tail: bool  # a cut last record, as a still-running writer leaves


def iter_records(
    stream: BinaryIO, size: int, from_byte: int = 0, to_byte: int | None = None
) -> Iterator[tuple[int, bytes] | RecordProblem]:
    """Yield (offset, payload) for each whole, CRC-valid record of an open file of `size` bytes,
    then a problem if one stops reading.

    Streams in chunks of `CHUNK_BYTES`, so a multi-gigabyte log is never held
    in memory, and works on any binary stream (a local file, an object in a
    bucket). Small records, the common case, are cut from the chunk in memory:
    a million scalars cost no million reads. Reading stops at the first bad
    record: after a corrupt length nothing that follows can be trusted to be
    aligned.

    A piece of a file: from the first record that starts at or after
    `from_byte` (found by its two CRCs) to the last that starts before
    `to_byte`. Pieces that meet partition the file's records, so a large file
    can be read on several cores at once.
    """
    unpack_length, unpack_crc = _LENGTH.unpack_from, _CRC.unpack_from
    offset = _first_record(stream, size, from_byte)  # in the file, where the next record starts
    if offset is None:
        return
    buffer, start = b"", 0  # the chunk in hand, and where the next record starts in it
    while True:
        if to_byte is not None and offset >= to_byte:
            return
        if len(buffer) - start < HEADER_BYTES:
            buffer, start = buffer[start:] + stream.read(CHUNK_BYTES), 0
            if not buffer:
                return
            if len(buffer) < HEADER_BYTES:
                yield RecordProblem(offset, "file ends inside a record header (a writer may still be running)", True)
                return
        (length,) = unpack_length(buffer, start)
        if _masked(crc32c(buffer[start : start + 8])) != unpack_crc(buffer, start + 8)[0]:
            yield RecordProblem(offset, "record length fails its CRC (corrupt data)", False)
            return
        if length > MAX_RECORD_BYTES:
            yield RecordProblem(offset, f"record length {length} is beyond any record's (corrupt data)", False)
            return
        end = start + HEADER_BYTES + length + FOOTER_BYTES
        if end > len(buffer):
            missing = end - len(buffer)
            if missing > size - offset - (len(buffer) - start):  # never allocate what is not there
                yield RecordProblem(
                    offset, f"file ends inside a {length}-byte record (a writer may still be running)", True
                )
                return
            buffer, start = buffer[start:] + stream.read(max(missing, CHUNK_BYTES)), 0
            end = HEADER_BYTES + length + FOOTER_BYTES
            if end > len(buffer):
                yield RecordProblem(
                    offset, f"file ends inside a {length}-byte record (a writer may still be running)", True
                )
                return
        payload = buffer[start + HEADER_BYTES : end - FOOTER_BYTES]
        if _masked(crc32c(payload)) != unpack_crc(buffer, end - FOOTER_BYTES)[0]:
            yield RecordProblem(offset, "record data fails its CRC (corrupt data)", False)
            return
        yield offset, payload
        offset += end - start
        start = end


def _first_record(stream: BinaryIO, size: int, from_byte: int) -> int | None:
    """Where a piece's first record starts (0 for a file read whole), the stream left there; None: no record."""
    if not from_byte:
        return 0
    found = record_start_at_or_after(stream, from_byte, size)
    if found is not None:
        stream.seek(found)
    return found


def record_start_at_or_after(stream: BinaryIO, position: int, size: int) -> int | None:
    """The offset of the first whole record starting at or after `position`, or None.

    A place is a record's start when its length fits the file, the length's
    CRC matches, and so does the CRC of the payload it announces: a false
    match in other data would need two 32-bit CRCs to agree by chance.
    """
    while position < size - HEADER_BYTES - FOOTER_BYTES:
        stream.seek(position)
        window = stream.read(CHUNK_BYTES + HEADER_BYTES)
        for at in range(max(0, len(window) - HEADER_BYTES + 1)):
            (length,) = _LENGTH.unpack_from(window, at)
            if length > size - (position + at) - HEADER_BYTES - FOOTER_BYTES:
                continue
            if _masked(crc32c(window[at : at + 8])) != _CRC.unpack_from(window, at + 8)[0]:
                continue
            stream.seek(position + at + HEADER_BYTES)
            payload, footer = stream.read(length), stream.read(FOOTER_BYTES)
            if len(footer) == FOOTER_BYTES and _masked(crc32c(payload)) == _CRC.unpack(footer)[0]:
                return position + at
        position += max(1, len(window) - HEADER_BYTES)
    return None


def read_record_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    """The payload of the one record that starts at `offset`, both CRCs checked: what an index points at.

    Reads the record alone (its 12-byte header, then its payload and footer), never a chunk around it.

    Raises:
        ValueError: when no whole, CRC-valid record starts there (the file changed, or the offset is wrong).
    """
    stream.seek(offset)
    header = stream.read(HEADER_BYTES)
    if len(header) < HEADER_BYTES or _masked(crc32c(header[:8])) != _CRC.unpack_from(header, 8)[0]:
        raise ValueError(f"no record starts at byte {offset}")
    (length,) = _LENGTH.unpack_from(header)
    if length > size - offset - HEADER_BYTES - FOOTER_BYTES:
        raise ValueError(f"the record at byte {offset} claims {length} bytes, more than the file holds")
    payload, footer = stream.read(length), stream.read(FOOTER_BYTES)
    if len(footer) < FOOTER_BYTES or _masked(crc32c(payload)) != _CRC.unpack(footer)[0]:
        raise ValueError(f"the record at byte {offset} fails its CRC")
    return payload


def record_length(header: bytes) -> int:
    """The payload length a 12-byte record header announces, its CRC checked: how a reader that skips
    payloads stays aligned.

    Raises:
        ValueError: when the header is short, its CRC fails, or the length is beyond any record's.
    """
    if len(header) < HEADER_BYTES or _masked(crc32c(header[:8])) != _CRC.unpack_from(header, 8)[0]:
        raise ValueError("record length fails its CRC (corrupt data)")
    (length,) = _LENGTH.unpack_from(header)
    if length > MAX_RECORD_BYTES:
        raise ValueError(f"record length {length} is beyond any record's (corrupt data)")
    return int(length)


def _masked(crc: int) -> int:
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def read_records(path: Path) -> tuple[list[bytes], RecordProblem | None]:
    """All whole, CRC-valid payloads of the file at `path`, and the problem that stopped reading, if any."""
    payloads: list[bytes] = []
    with open(path, "rb") as stream:
        for item in iter_records(stream, os.fstat(stream.fileno()).st_size):
            if isinstance(item, RecordProblem):
                return payloads, item
            payloads.append(item[1])
    return payloads, None


class IndexedImage(NamedTuple):
    """One image record (or, with its `plugin`, a record of tbimg's own data) as the image index lists it."""

    offset: int
    step: int
    wall_time: float
    samples: int
    width: int
    height: int
    tag: str
    plugin: str = "images"


def index_name(event_file_name: str) -> str:
    """The image index's name for an event file's (or a bucket piece's) name."""
    return event_file_name.replace(EVENT_FILE_MARKER, INDEX_MARKER, 1)


def index_line(image: IndexedImage) -> bytes:
    fields = list(image) if image.plugin != "images" else list(image)[:-1]
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def covered_line(size: int) -> bytes:
    return b'{"to":%d}\n' % size


def parse_index(data: bytes) -> tuple[list[IndexedImage], int, int]:
    """(images listed, bytes of the event file covered, bytes of `data` read) from an index's text.

    Read up to its last `{"to": n}` line: the images listed after it are not yet known to be in the
    event file, and are read again next time. Only whole lines count (a writer may be mid-line); a line
    that is not what the index writes ends the reading there, so a damaged or forged index can only
    leave records to be read the slow way.
    """
    images: list[IndexedImage] = []
    pending: list[IndexedImage] = []
    covered = read = position = 0
    while (end := data.find(b"\n", position)) >= 0:
        try:
            item = json.loads(data[position:end])
            if isinstance(item, dict):
                covered = max(covered, _whole(item["to"]))
                images += (image for image in pending if image.offset < covered)
                pending, read = [], end + 1
            else:
                offset, step, wall_time, samples, width, height, tag, *plugin = item
                if not isinstance(tag, str) or not all(isinstance(name, str) for name in plugin[:1]):
                    raise ValueError(tag)
                sizes = (_whole(samples), _whole(width), _whole(height))
                at = (_whole(offset), _whole(step), float(wall_time))
                pending.append(IndexedImage(*at, *sizes, tag, *plugin[:1]))
        except (ValueError, TypeError, KeyError):
            break
        position = end + 1
    return images, covered, read


def _whole(number: object) -> int:
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 2**63:
        raise ValueError(number)
    return number


def index_piece(index: bytes, start: int, end: int) -> bytes:
    """The index of one piece of an event file (bytes `start` to `end`, as the mirror uploads it),
    its offsets made the piece's own; covering no more of the piece than the file's index did."""
    images, covered, _ = parse_index(index)
    lines = [index_line(image._replace(offset=image.offset - start)) for image in images if start <= image.offset < end]
    return b"".join(lines) + covered_line(max(0, min(covered, end) - start))
