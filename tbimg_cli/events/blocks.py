"""Event files read a block of records at a time: where each record starts, both CRCs checked.

What read-back's fast path (`logs/columns.py`) and the viewer's index walk: the records of a 4 MiB block
found at once, each start following from the one before, and their length CRCs checked (the payloads'
too, by the compiled walk). The walk is compiled (`_recordwalk.c`, built at install where a compiler is
there): in Python it was 40% of `tbimg inspect` on a log of scalars, 0.18 us a record against 10 ns
(bench/README.md, "The record walk"). `python_walk` is the way back (`TBIMG_RECORD_WALK=python`, or no
compiled walk) and the reference the tests hold the compiled one to. A local file's blocks are memory
maps of it (`mapped`), not bytes read and joined: no copies.

`iter_record_blocks` gives the same records and the same problems, at the same offsets, as
`records.iter_records`, which reads one record at a time.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, BinaryIO, NamedTuple

from tbimg_cli.events.records import (
    _CRC,
    _LENGTH,
    _MASK_DELTA,
    FOOTER_BYTES,
    HEADER_BYTES,
    MAX_RECORD_BYTES,
    RecordProblem,
    _first_record,
    _masked,
    crc32c,
)

if TYPE_CHECKING:
    import numpy as np

BLOCK_BYTES = 4 << 20  # what `iter_record_blocks` reads at a time: numpy's per-call cost spread thin


class RecordBlock(NamedTuple):
    """Consecutive whole records in one buffer: where each starts in it and its payload's length."""

    offset: int  # in the file, of the buffer's first byte
    buffer: bytes | memoryview  # a memoryview of a memory map where `mapped` (a local file)
    starts: np.ndarray  # int64, ascending
    lengths: np.ndarray  # int64
    # How many records, from the first, the compiled walk found payloads whose CRC holds (all, or up to
    # the first that fails); None where their CRCs are still the caller's to check (the Python walk).
    payloads_ok: int | None = None


def iter_record_blocks(
    stream: BinaryIO, size: int, from_byte: int = 0, to_byte: int | None = None, *, mapped: bool = False
) -> Iterator[RecordBlock | RecordProblem]:
    """`iter_records`, a block of records at a time: the same records, the same problems at the same
    offsets, for a caller that decodes many records at once (`logs/columns.py`).

    Length CRCs are checked here. The payloads' are checked by the compiled walk (`payloads_ok` says how
    many hold), else left to the caller, who can check a group of them at once. A block's records all
    precede the problem that follows it, if any. `mapped`: a local file's blocks are memoryviews of a
    memory map of it, not bytes read (no copy: 3x faster to walk a file in the page cache).
    """
    import numpy as np

    offset = _first_record(stream, size, from_byte)
    if offset is None:
        return
    read = _mapped_reader(stream, size) if mapped and size else _stream_reader(stream)
    buffer: Any = b""
    wanted = BLOCK_BYTES
    while True:
        if to_byte is not None and offset >= to_byte:
            return
        buffer, at_end = read(offset, buffer, wanted)
        if not buffer:
            return
        starts, lengths, position, payloads_ok = _walk(buffer)
        cut = len(starts) if to_byte is None else int(np.searchsorted(starts, to_byte - offset))
        piece_ends = cut < len(starts)
        starts, lengths = starts[:cut], lengths[:cut]  # records from `to_byte` on are another piece's
        bad = _first_bad_length(buffer, starts, lengths) if payloads_ok is None else None
        if bad is not None:
            if bad:
                yield RecordBlock(offset, buffer, starts[:bad], lengths[:bad])
            yield RecordProblem(offset + int(starts[bad]), "record length fails its CRC (corrupt data)", False)
            return
        if len(starts):
            yield RecordBlock(offset, buffer, starts, lengths, None if payloads_ok is None else min(payloads_ok, cut))
        if piece_ends:
            return
        offset, buffer = offset + position, buffer[position:]
        if to_byte is not None and offset >= to_byte:
            return
        need = _what_the_next_record_needs(buffer, offset, size, at_end=at_end)
        if isinstance(need, RecordProblem):
            yield need
            return
        wanted = max(need, BLOCK_BYTES)


def _stream_reader(stream: BinaryIO) -> Callable[[int, Any, int], tuple[Any, bool]]:
    """(offset, what was left, wanted) -> (what was left and `wanted` bytes more, whether the file ended)."""

    def read(offset: int, left: bytes, wanted: int) -> tuple[bytes, bool]:
        chunk = stream.read(wanted)
        return (left + chunk if left else chunk), not chunk

    return read


def _mapped_reader(stream: BinaryIO, size: int) -> Callable[[int, Any, int], tuple[Any, bool]]:
    """`_stream_reader` for a local file, each buffer a memory map of its own bytes, unmapped when its last
    view is dropped (mapping the whole file would hold every page walked in the process's memory)."""
    fileno, granularity = stream.fileno(), mmap.ALLOCATIONGRANULARITY

    def read(offset: int, left: memoryview, wanted: int) -> tuple[Any, bool]:
        start, end = offset - offset % granularity, min(size, offset + len(left) + wanted)
        end = min(end, os.fstat(fileno).st_size)  # a file cut short since: mapping past its end would crash
        if end <= offset:
            return memoryview(b""), True
        try:
            mapping = mmap.mmap(fileno, end - start, access=mmap.ACCESS_READ, offset=start)
        except OSError:  # a file system that cannot map files (some FUSE mounts): this block is read instead
            stream.seek(offset)
            read_in = stream.read(end - offset)
            return read_in, end >= size or len(read_in) < end - offset
        return memoryview(mapping)[offset - start :], end >= size

    return read


RECORD_WALK_VARIABLE = "TBIMG_RECORD_WALK"  # "python": the Python walk, the compiled one's way back


def _walk(buffer: bytes) -> tuple[np.ndarray, np.ndarray, int, int | None]:
    """(where each whole record starts, its payload's length, where the walk stopped, how many payloads
    hold their CRC or None where not checked), by the compiled walk (`_recordwalk.c`, which also stops at
    a length that fails its CRC), else by `python_walk`."""
    import numpy as np

    compiled = compiled_walk()
    if compiled is None:
        return (*python_walk(buffer), None)
    raw, position, payloads_ok = compiled.walk(buffer)
    found = np.frombuffer(raw, np.int64)
    return found, np.diff(found, append=position) - (HEADER_BYTES + FOOTER_BYTES), position, payloads_ok


def compiled_walk() -> Any | None:
    """The compiled record walk, or None: `TBIMG_RECORD_WALK=python`, or not built at install (no compiler).

    Raises:
        InputError: for a value of `TBIMG_RECORD_WALK` that names no walk (a typo would go unseen).
    """
    choice = os.environ.get(RECORD_WALK_VARIABLE, "").strip().lower()
    if choice not in ("", "compiled", "python"):
        from tbimg_cli.errors import InputError

        raise InputError(
            f"{RECORD_WALK_VARIABLE}={choice!r} is not a record walk: set it to 'python' or 'compiled', or unset it"
        )
    return None if choice == "python" else _compiled_module()


@cache
def _compiled_module() -> Any | None:
    try:
        from tbimg_cli.events import _recordwalk
    except ImportError:
        return None
    return _recordwalk


def python_walk(buffer: bytes) -> tuple[np.ndarray, np.ndarray, int]:
    """(where each whole record starts, its payload's length, where the first incomplete one starts).

    The loop's body is kept to one unpack and one append (locals only, lengths taken afterwards from
    the starts' differences): 8 ms a 4 MiB block of scalar records, where two lists and the module's
    constants took 13. Finding the starts with numpy (places whose upper length bytes are zero and whose
    length CRC holds, chained) measured slower, 16 ms a block, as such places are four a record.
    """
    import numpy as np

    unpack_length = _LENGTH.unpack_from
    starts: list[int] = []
    append = starts.append
    position, end = 0, len(buffer)
    last_header = end - HEADER_BYTES
    while position <= last_header:
        after = position + 16 + unpack_length(buffer, position)[0]  # 16: a header and a footer
        if after > end:
            break
        append(position)
        position = after
    found = np.asarray(starts, np.int64)
    return found, np.diff(found, append=position) - (HEADER_BYTES + FOOTER_BYTES), position


def _what_the_next_record_needs(buffer: bytes, offset: int, size: int, *, at_end: bool) -> int | RecordProblem:
    """How many more bytes the record that `buffer` (from file offset `offset`) begins needs, or the problem
    that stops reading there: the same checks, in the same order, as `iter_records` makes."""
    if len(buffer) < HEADER_BYTES:
        if at_end and buffer:
            return RecordProblem(offset, "file ends inside a record header (a writer may still be running)", True)
        return 0
    (length,) = _LENGTH.unpack_from(buffer)
    if _masked(crc32c(buffer[:8])) != _CRC.unpack_from(buffer, 8)[0]:
        return RecordProblem(offset, "record length fails its CRC (corrupt data)", False)
    if length > MAX_RECORD_BYTES:
        return RecordProblem(offset, f"record length {length} is beyond any record's (corrupt data)", False)
    missing = HEADER_BYTES + length + FOOTER_BYTES - len(buffer)
    if at_end or missing > size - offset - len(buffer):  # never allocate what is not there
        return RecordProblem(offset, f"file ends inside a {length}-byte record (a writer may still be running)", True)
    return missing


def _first_bad_length(buffer: bytes, starts: np.ndarray, lengths: np.ndarray) -> int | None:
    """The index of the first record whose length fails its CRC, all checked at once: the CRCs of lengths
    under `_SHORT_LENGTHS` are looked up (the records of scalar logs), the others' computed."""
    import numpy as np

    if not len(starts):
        return None
    raw = np.frombuffer(buffer, np.uint8)
    stored = np.lib.stride_tricks.sliding_window_view(raw, FOOTER_BYTES)[starts + 8].copy().view("<u4")[:, 0]
    short = lengths < _SHORT_LENGTHS
    expected = np.empty(len(starts), np.uint32)
    expected[short] = _short_length_crcs()[lengths[short]]
    if not short.all():
        heads = np.lib.stride_tricks.sliding_window_view(raw, 8)[starts[~short]]
        expected[~short] = masked_many(crc32c_of_rows(heads))
    wrong = np.flatnonzero(expected != stored)
    return int(wrong[0]) if len(wrong) else None


_SHORT_LENGTHS = 1 << 12


@cache
def _short_length_crcs() -> np.ndarray:
    """The masked CRC of every record length under `_SHORT_LENGTHS`, as the header stores it."""
    import numpy as np

    lengths = np.arange(_SHORT_LENGTHS, dtype="<u8").view(np.uint8).reshape(-1, 8)
    return masked_many(crc32c_of_rows(lengths))


@cache
def crc_contributions(length: int) -> np.ndarray:
    """[position, byte] -> what a byte at that position of a `length`-byte message adds (XOR) to its CRC-32C.

    CRC-32C's register is linear over GF(2): two messages of one length differ in CRC by the CRC, from a
    zero register, of their difference; a byte's share is the table entry of its value carried through
    the zero bytes after it.
    """
    import numpy as np

    tables = np.empty((length, 256), np.uint32)
    table = _crc_table().copy()
    for position in range(length - 1, -1, -1):
        tables[position] = table
        table = (table >> np.uint32(8)) ^ _crc_table()[table & np.uint32(0xFF)]
    return tables


@cache
def _crc_table() -> np.ndarray:
    import numpy as np

    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> np.uint32(1)) ^ np.uint32(0x82F63B78), table >> np.uint32(1))
    return table.astype(np.uint32)


def masked_many(crc: np.ndarray) -> np.ndarray:
    """`masked_crc32c`'s masking of many CRCs at once (uint32 arithmetic wraps as the mask's does)."""
    import numpy as np

    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)


def crc32c_of_rows(rows: np.ndarray) -> np.ndarray:
    """The CRC-32C of each row of a uint8 [messages, length] array, for all rows at once."""
    import numpy as np

    crc = np.full(len(rows), crc32c(bytes(rows.shape[1])), np.uint32)
    for position, table in enumerate(crc_contributions(rows.shape[1])):
        crc ^= table[rows[:, position]]
    return crc
