"""Templates: where the numbers lie in a record that repeats, so that numpy reads many records at once.

A template is made from one record's payload: parsed with protobuf (the reference), then walked in
protobuf's wire format (field numbers from TensorBoard's `event.proto`, `summary.proto`, `tensor.proto`)
to find where its wall time, step and scalar numbers lie; what the walk reads there must be what
protobuf read, or there is no template. A record of the same length *matches* when every other byte
equals the template's and its step's varint takes as many bytes (its continuation bits say so): it then
has the template's structure exactly, and protobuf would read it as the template with other numbers.

Only events whose summary values are all single numbers (`simple_value`, or a scalar tensor's content,
`float_val` or `double_val`) make templates: the records that dominate real logs. CRCs are checked a
group at a time: CRC-32C's register is linear over GF(2), so two payloads of one length differ in CRC
by the CRC, from a zero register, of their difference (`records.crc_contributions`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

from tbimg_cli.events.blocks import crc_contributions, masked_many
from tbimg_cli.events.records import crc32c
from tbimg_cli.logs.readback import scalar_value

_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5
_CONTENT_FORMATS = {1: "<f4", 2: "<f8", 3: "<i4", 9: "<i8", 19: "<f2"}  # DT_FLOAT, DOUBLE, INT32, INT64, HALF
ABSENT = -1


class Template(NamedTuple):
    """Where a record's numbers lie, and what the rest of it says (the same in every record it matches)."""

    payload: np.ndarray  # uint8: the template record's payload
    wall: int  # where wall_time's 8 bytes start, or ABSENT
    step: tuple[int, int]  # (where, how many bytes) of the step varint; (ABSENT, 0) when there is none
    # Per summary value: (tag, plugin its metadata names or "", kind, where its number starts, numpy format).
    values: list[tuple[str, str, str, int, str]]
    variable: np.ndarray  # the positions whose bytes may differ from the template's
    # uint8 mask, `row_width` long: 0xFF where a matching record's byte must equal the template's.
    constant: np.ndarray
    expected: np.ndarray  # the payload & `constant`, as long: what a matching row & `constant` is


def template(payload: bytes) -> Template | None:
    """A template from one record's payload, or None when it is not an event of scalar values only."""
    from google.protobuf.message import DecodeError
    from tensorboard.compat.proto import event_pb2

    try:
        event = event_pb2.Event.FromString(payload)
    except DecodeError:
        return None
    fields = _fields(payload, 0, len(payload))
    if fields is None:
        return None
    wall, step = ABSENT, (ABSENT, 0)
    summaries: list[tuple[int, int]] = []
    for number, wire, start, end in fields:
        if number == 1 and wire == _FIXED64 and wall == ABSENT:
            wall = start
        elif number == 2 and wire == _VARINT and step[0] == ABSENT:
            step = (start, end - start)
        elif number == 5 and wire == _LENGTH_DELIMITED and not summaries:
            summaries.append((start, end))
        else:
            return None  # another kind of event, or a field twice
    slots = []
    for number, wire, start, end in (_fields(payload, *summaries[0]) if summaries else None) or [(0, 0, 0, 0)]:
        slot = _value_slot(payload, start, end) if number == 1 and wire == _LENGTH_DELIMITED else None
        if slot is None:
            return None
        slots.append(slot)
    if not slots or len(slots) != len(event.summary.value):
        return None
    values = []
    for (kind, at, form), value in zip(slots, event.summary.value, strict=True):
        if value.WhichOneof("value") != kind or not _same(_number(payload, at, form), value, kind):
            return None
        values.append((value.tag, value.metadata.plugin_data.plugin_name, kind, at, form))
    variable = [*range(wall, wall + 8)] if wall != ABSENT else []
    variable += range(step[0], step[0] + step[1])
    for _, _, _, at, form in values:
        variable += range(at, at + np.dtype(form).itemsize)
    template = np.frombuffer(payload, np.uint8)
    constant = np.zeros(row_width(len(payload)), np.uint8)
    constant[: len(payload)] = 0xFF
    constant[variable] = 0
    expected = constant.copy()
    expected[: len(payload)] &= template
    made = Template(template, wall, step, values, np.asarray(sorted(variable), np.int64), constant, expected)
    rows = template[None, :]
    if int(steps(made, rows)[0]) != event.step or float(wall_times(made, rows)[0]) != event.wall_time:
        return None
    return made


def _value_slot(payload: bytes, start: int, end: int) -> tuple[str, int, str] | None:
    """(kind, where the number starts, numpy format) of a `Summary.Value` holding one scalar number."""
    slot = None
    seen: set[int] = set()
    for number, wire, at, after in _fields(payload, start, end) or [(0, 0, 0, 0)]:
        if number in seen or number not in (1, 2, 7, 8, 9):
            return None  # a field twice (protobuf would merge them), or an image, a histogram, audio
        seen.add(number)
        if number == 2 and wire == _FIXED32:
            slot = ("simple_value", at, "<f4")
        elif number == 8 and wire == _LENGTH_DELIMITED:
            found = _tensor_slot(payload, at, after)
            if found is None:
                return None
            slot = ("tensor", *found)
        elif number in (2, 8) or wire != _LENGTH_DELIMITED:
            return None
    return slot


def _tensor_slot(payload: bytes, start: int, end: int) -> tuple[int, str] | None:
    """(where, numpy format) of a scalar TensorProto's one number: its content, float_val or double_val."""
    dtype, slot, seen = 0, None, set()
    for number, wire, at, after in _fields(payload, start, end) or [(0, 0, 0, 0)]:
        if number in seen:
            return None
        seen.add(number)
        if number == 1 and wire == _VARINT:
            dtype = _varint(payload, at)
        elif number in (2, 3):  # the shape (checked by protobuf's reading, below), the version
            continue
        elif slot is not None:
            return None  # two places for the number
        elif number == 4 and wire == _LENGTH_DELIMITED:
            slot = (at, after - at, "content")
        elif number == 5 and wire in (_LENGTH_DELIMITED, _FIXED32) and after - at == 4:
            slot = (at, 4, "<f4")
        elif number == 6 and wire in (_LENGTH_DELIMITED, _FIXED64) and after - at == 8:
            slot = (at, 8, "<f8")
        else:
            return None
    if slot is None:
        return None
    at, size, form = slot
    if form == "content":
        form = _CONTENT_FORMATS.get(dtype, "")
        if not form or np.dtype(form).itemsize != size:
            return None
    return at, form


def _fields(payload: bytes, start: int, end: int) -> list[tuple[int, int, int, int]] | None:
    """(field number, wire type, where its value starts, where it ends) of a message's fields, or None when
    they do not fit exactly in [start, end)."""
    found = []
    at = start
    while at < end:
        key, at = _varint_at(payload, at, end)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            _, after = _varint_at(payload, at, end)
        elif wire == _LENGTH_DELIMITED:
            size, at = _varint_at(payload, at, end)
            after = at + size
        elif wire == _FIXED64:
            after = at + 8
        elif wire == _FIXED32:
            after = at + 4
        else:
            return None
        if after > end or number == 0:
            return None
        found.append((number, wire, at, after))
        at = after
    return found if at == end else None


def _varint_at(payload: bytes, at: int, end: int) -> tuple[int, int]:
    """(value, where it ends); a varint cut off reads as a position past `end`, which callers reject."""
    value = shift = 0
    while at < end and shift < 70:
        byte = payload[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return 0, end + 1


def _varint(payload: bytes, at: int) -> int:
    return _varint_at(payload, at, len(payload))[0]


def _number(payload: bytes, at: int, form: str) -> float:
    return float(np.frombuffer(payload, form, 1, at)[0])


def _same(number: float, value: Any, kind: str) -> bool:
    """Whether the walk read what protobuf did: the template's own check."""
    try:
        expected = float(value.simple_value) if kind == "simple_value" else scalar_value(value.tensor)
    except ValueError:
        return False
    return number == expected or (number != number and expected != expected)


def row_width(length: int) -> int:
    """How many bytes of each record of a `length`-byte payload `matches` is given: the payload rounded up
    to whole 4-byte words (within the record: its footer is 4 bytes), masked a word at a time, 2x faster
    than a byte at a time."""
    return -(-length // 4) * 4


def matches(template: Template, rows: np.ndarray) -> np.ndarray:
    """Which rows (`row_width` bytes each, contiguous) are the template's event but for its numbers: every
    other byte equal, the step's varint as long as the template's."""
    whole = np.dtype((np.void, rows.shape[1]))  # a row as one value: compared like memcmp, 2x `any`
    masked = (rows.view("<u4") & template.constant.view("<u4")).view(whole)[:, 0]
    same = masked == template.expected.view(whole)[0]
    at, size = template.step
    for index in range(size):
        continued = (rows[:, at + index] & 0x80) != 0
        same &= continued if index < size - 1 else ~continued
    return same


def steps(template: Template, rows: np.ndarray) -> np.ndarray:
    at, size = template.step
    steps = np.zeros(len(rows), np.uint64)
    for index in range(size):
        steps |= (rows[:, at + index] & 0x7F).astype(np.uint64) << np.uint64(7 * index)
    return steps.view(np.int64)  # int64, two's complement, as protobuf reads a 10-byte varint


def wall_times(template: Template, rows: np.ndarray) -> np.ndarray:
    if template.wall == ABSENT:
        return np.zeros(len(rows))
    return rows[:, template.wall : template.wall + 8].copy().view("<f8")[:, 0]


def numbers(template: Template, rows: np.ndarray, value: int) -> np.ndarray:
    """The rows' numbers of the template's `value`-th summary value, as float64."""
    _, _, _, at, form = template.values[value]
    return rows[:, at : at + np.dtype(form).itemsize].copy().view(form)[:, 0].astype(np.float64)


def crc_fails(template: Template, rows: np.ndarray, stored: np.ndarray) -> np.ndarray:
    """Which rows' payload CRC-32C differs from their `stored` (masked, as TFRecord keeps it) CRC."""
    length, payload = len(template.payload), template.payload
    crc = np.full(len(rows), crc32c(payload.tobytes()), np.uint32)
    rows = np.ascontiguousarray(rows)
    variable = set(template.variable.tolist())
    for position in sorted(variable):
        if position not in variable:
            continue  # the second byte of a pair
        if position + 1 in variable:  # two bytes in one lookup: half the passes over the rows
            variable.discard(position + 1)
            pairs = np.ndarray((len(rows),), "<u2", rows, position, rows.strides[:1])
            crc ^= _pair_contributions(length, position)[
                pairs ^ (int(payload[position]) | int(payload[position + 1]) << 8)
            ]
        else:
            crc ^= crc_contributions(length)[position][rows[:, position] ^ payload[position]]
    return masked_many(crc) != stored


@lru_cache(maxsize=64)
def _pair_contributions(length: int, position: int) -> np.ndarray:
    """[two bytes at `position`, as a little-endian uint16] -> what they add to a `length`-byte CRC-32C
    (256 KiB a table; a scalar record's wall time, step and number take about seven)."""
    tables = crc_contributions(length)
    return (tables[position][None, :] ^ tables[position + 1][:, None]).ravel()
