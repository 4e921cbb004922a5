"""TFRecord framing, the container of TensorBoard event files.

Each record is: uint64 length (little-endian), uint32 masked CRC-32C of those
8 length bytes, the payload, uint32 masked CRC-32C of the payload. Formats
are spelled with '<' so the bytes do not depend on the machine's endianness.
The writer frames with `frame`; `inspect`/`export` read back with
`read_records`, which checks both CRCs instead of trusting the file.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from crc32c import crc32c

_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
HEADER_BYTES = _LENGTH.size + _CRC.size
FOOTER_BYTES = _CRC.size


def masked_crc32c(data: bytes) -> int:
    """CRC-32C rotated and offset, as TFRecord stores it (so CRCs of CRCs stay useful)."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


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


def read_records(path: Path) -> tuple[list[bytes], RecordProblem | None]:
    """All whole, CRC-valid records of `path`, and the first problem met, if any.

    Reading stops at the first bad record: after a corrupt length nothing that
    follows can be trusted to be aligned.
    """
    data = Path(path).read_bytes()
    records = []
    for offset, payload, problem in _walk(data):
        if problem:
            return records, problem
        records.append(payload)
    return records, None


def _walk(data: bytes) -> Iterator[tuple[int, bytes | None, RecordProblem | None]]:
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < HEADER_BYTES:
            yield pos, None, RecordProblem(pos, "file ends inside a record header", True)
            return
        length_bytes = data[pos : pos + _LENGTH.size]
        (length,) = _LENGTH.unpack(length_bytes)
        (length_crc,) = _CRC.unpack_from(data, pos + _LENGTH.size)
        if masked_crc32c(length_bytes) != length_crc:
            yield pos, None, RecordProblem(pos, "record length fails its CRC (corrupt data)", False)
            return
        start = pos + HEADER_BYTES
        if end - start < length + FOOTER_BYTES:
            yield pos, None, RecordProblem(pos, f"file ends inside a {length}-byte record", True)
            return
        payload = data[start : start + length]
        (payload_crc,) = _CRC.unpack_from(data, start + length)
        if masked_crc32c(payload) != payload_crc:
            yield pos, None, RecordProblem(pos, "record data fails its CRC (corrupt data)", False)
            return
        yield pos, payload, None
        pos = start + length + FOOTER_BYTES
