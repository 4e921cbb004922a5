"""What an event record's image values are, read from the record's first bytes: the image bytes are skipped.

The viewer's index needs, for each image summary, its step, wall time, tag, width, height and sample
count, never the images. Parsing each record into a protobuf message copies every image (34 KiB a JPEG
sample in the viewer bench's log) to learn a few numbers at its front. This module walks the record's
protobuf wire format instead, reading the bytes it needs and jumping over the ones it does not:
on a local file, a memory map whose skipped pages are never touched.

Only the fields of `Event`, `Summary`, `Summary.Value`, `Summary.Image`, `TensorProto`,
`TensorShapeProto` and `SummaryMetadata` that the index uses are decoded, by their field numbers in
TensorBoard's `.proto` files. Whatever the walk does not expect (a wire type it cannot skip, a length
past the record's end) makes `scan_record` return None, and the caller parses that record the
protobuf way (`decode_with_protobuf`), which is also the reference the tests hold this walk to.

The record's payload CRC is not checked here (that would read every byte); its length CRC is, by the
caller, so framing stays aligned, and the payload CRC is checked when an image is read.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, NamedTuple

ReadAt = Callable[[int, int], bytes]  # (position, count) -> up to count bytes from position

WINDOW_BYTES = 32  # read past the prefix at once: a string's key and length (two varints), then jumped over
PREFIX_BYTES = 512  # read at a record's start: an event's step, time, tag and an image's size fit
IMAGES = "images"
OWN_PLUGIN_PREFIX = "tbimg."  # tbimg's own tensor summaries (the confusion explorer's), listed by the index

_DOUBLE = struct.Struct("<d")
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class ImageValue(NamedTuple):
    """One image value of an event's summary: which value it is, and what the index keeps of it."""

    number: int
    tag: str
    width: int
    height: int
    samples: int


class ScannedEvent(NamedTuple):
    step: int
    wall_time: float
    # (value number, tag, plugin named by its metadata or "", "image" or "tensor", width, height, samples)
    values: list[tuple[int, str, str, str, int, int, int]]


class _Malformed(Exception):
    """The walk met something it does not handle: the caller falls back to protobuf."""


class _Payload:
    """One record's payload, read on demand: its first bytes at once, the rest only where asked."""

    __slots__ = ("length", "prefix", "read_at", "start", "window", "window_at")

    def __init__(self, read_at: ReadAt, start: int, length: int) -> None:
        self.start, self.length, self.read_at = start, length, read_at
        self.prefix = read_at(start, min(length, PREFIX_BYTES))
        self.window_at, self.window = 0, b""  # the last read past the prefix: a field's key and length

    def bytes(self, at: int, count: int) -> bytes:
        if at + count > self.length:
            raise _Malformed("field runs past the record")
        if at + count <= len(self.prefix):
            return self.prefix[at : at + count]
        offset = at - self.window_at
        if offset >= 0 and offset + count <= len(self.window):
            return self.window[offset : offset + count]
        got = self.read_at(self.start + at, min(self.length - at, max(count, WINDOW_BYTES)))
        if len(got) < count:
            raise _Malformed("record shorter than its header says")
        self.window_at, self.window = at, got
        return got[:count]

    def varint(self, at: int) -> tuple[int, int]:
        """(value, position after it)."""
        if at + 10 <= len(self.prefix):
            window, base = self.prefix, at
        else:
            window, base = self.bytes(at, min(10, self.length - at)), 0
        value = shift = 0
        for index in range(base, min(base + 10, len(window))):
            byte = window[index]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value, at + index - base + 1
            shift += 7
        raise _Malformed("varint runs past the record")

    def fields(self, start: int, end: int) -> Any:
        """(field number, wire type, value or (position, length) for length-delimited ones) of [start, end)."""
        at = start
        while at < end:
            key, at = self.varint(at)
            number, wire = key >> 3, key & 7
            if wire == _VARINT:
                value, at = self.varint(at)
                yield number, wire, value
            elif wire == _LENGTH_DELIMITED:
                size, at = self.varint(at)
                if at + size > end:
                    raise _Malformed("length-delimited field runs past its message")
                yield number, wire, (at, size)
                at += size
            elif wire == _FIXED64:
                yield number, wire, at
                at += 8
            elif wire == _FIXED32:
                yield number, wire, at
                at += 4
            else:
                raise _Malformed(f"wire type {wire}")
        if at != end:
            raise _Malformed("message runs past its end")


def scan_record(read_at: ReadAt, start: int, length: int) -> ScannedEvent | None:
    """The step, wall time and image-like values of the event whose payload is `length` bytes at `start`.

    None when the walk cannot be sure (the caller then parses the record with protobuf).
    """
    payload = _Payload(read_at, start, length)
    try:
        return _event(payload)
    except _Malformed:
        return None


def _event(payload: _Payload) -> ScannedEvent:
    step, wall_time = 0, 0.0
    values: list[tuple[int, str, str, str, int, int, int]] = []
    for number, wire, value in payload.fields(0, payload.length):
        if number == 1 and wire == _FIXED64:
            (wall_time,) = _DOUBLE.unpack(payload.bytes(value, 8))
        elif number == 2 and wire == _VARINT:
            step = value - (1 << 64) if value >= 1 << 63 else value  # int64
        elif number == 5 and wire == _LENGTH_DELIMITED:
            values = _summary(payload, *value)
    return ScannedEvent(step, wall_time, values)


def _summary(payload: _Payload, start: int, size: int) -> list[tuple[int, str, str, str, int, int, int]]:
    values = []
    count = 0
    for number, wire, value in payload.fields(start, start + size):
        if number == 1 and wire == _LENGTH_DELIMITED:
            found = _value(payload, count, *value)
            if found is not None:
                values.append(found)
            count += 1
    return values


def _value(payload: _Payload, number: int, start: int, size: int) -> tuple[int, str, str, str, int, int, int] | None:
    tag, plugin, kind = "", "", ""
    width = height = samples = 0
    for field, wire, value in payload.fields(start, start + size):
        if wire != _LENGTH_DELIMITED:
            if field in (1, 4, 8, 9):
                raise _Malformed("a message field with a scalar wire type")
            continue
        at, length = value
        if field == 1:
            tag = payload.bytes(at, length).decode("utf-8", "replace")
        elif field == 4:  # Summary.Image
            kind = "image"
            height, width = _image(payload, at, length)
            samples = 1
        elif field == 8:  # TensorProto
            kind = "tensor"
            width, height, samples = _image_tensor(payload, at, length)
        elif field == 9:  # SummaryMetadata
            plugin = _plugin_name(payload, at, length)
    if not kind:
        return None
    return number, tag, plugin, kind, width, height, samples


def _image(payload: _Payload, start: int, size: int) -> tuple[int, int]:
    height = width = 0
    for field, wire, value in payload.fields(start, start + size):
        if field == 1 and wire == _VARINT:
            height = value
        elif field == 2 and wire == _VARINT:
            width = value
    return height, width


def _image_tensor(payload: _Payload, start: int, size: int) -> tuple[int, int, int]:
    """(width, height, samples) of an image summary's string tensor: [width, height, image, image, ...].

    The tensor's shape (field 2, written before the strings) gives the count, so the walk stops after the
    first two strings instead of reading every image's key and length: in a bucket, one request per record
    instead of one per sample. A tensor without a 1-d shape ahead of its strings is counted string by
    string. A tensor that is not of that shape gives samples 0 (and is then not listed).
    """
    strings: list[bytes] = []
    count = 0
    declared: int | None = None
    for field, wire, value in payload.fields(start, start + size):
        if field == 2 and wire == _LENGTH_DELIMITED and not strings:
            declared = _vector_length(payload, *value)
        elif field == 8 and wire == _LENGTH_DELIMITED:
            if count < 2:
                strings.append(payload.bytes(*value))
            count += 1
            if declared is not None and count == 2:
                count = declared
                break
    try:
        width, height = int(strings[0]), int(strings[1])
    except (IndexError, ValueError):
        return 0, 0, 0
    return width, height, max(0, count - 2)


def _vector_length(payload: _Payload, start: int, size: int) -> int | None:
    """The length a TensorShapeProto of one dimension states, or None for any other shape."""
    sizes = []
    for field, wire, value in payload.fields(start, start + size):
        if field == 2 and wire == _LENGTH_DELIMITED:  # Dim
            dim = [v for f, w, v in payload.fields(*_span(value)) if f == 1 and w == _VARINT]
            sizes.append(dim[0] if dim else 0)
        elif field == 3:  # unknown_rank
            return None
    return sizes[0] if len(sizes) == 1 and sizes[0] >= 2 else None


def _plugin_name(payload: _Payload, start: int, size: int) -> str:
    for field, wire, value in payload.fields(start, start + size):
        if field == 1 and wire == _LENGTH_DELIMITED:  # plugin_data
            for inner, inner_wire, name in payload.fields(*_span(value)):
                if inner == 1 and inner_wire == _LENGTH_DELIMITED:
                    return payload.bytes(*name).decode("utf-8", "replace")
    return ""


def _span(value: tuple[int, int]) -> tuple[int, int]:
    at, length = value
    return at, at + length


def image_values(event: ScannedEvent, plugin_of: dict[str, str]) -> list[ImageValue]:
    """The event's image values, in either summary form; `plugin_of` remembers each tag's plugin across events.

    TF 2 writers name a tag's plugin in the first summary of it only, so a tensor value with no metadata
    counts as an image when its tag's earlier metadata said "images".
    """
    found = []
    for number, tag, plugin, kind, width, height, samples in event.values:
        if plugin:
            plugin_of[tag] = plugin
        else:
            plugin = plugin_of.get(tag, "")
        if kind == "image" or (kind == "tensor" and plugin == IMAGES and samples > 0):
            found.append(ImageValue(number, tag, width, height, samples))
    return found


def own_data_values(event: ScannedEvent, plugin_of: dict[str, str]) -> list[tuple[int, str, str]]:
    """(value number, tag, plugin) of the event's tensors of tbimg's own plugins (`tbimg.*`): the confusion
    explorer's counts, examples and thumbnails. Call after `image_values`, which keeps `plugin_of`."""
    found = []
    for number, tag, plugin, kind, *_ in event.values:
        plugin = plugin or plugin_of.get(tag, "")
        if kind == "tensor" and plugin.startswith(OWN_PLUGIN_PREFIX):
            found.append((number, tag, plugin))
    return found


def decode_with_protobuf(payload: bytes) -> ScannedEvent:
    """The same as `scan_record`, from the whole payload through TensorBoard's protobuf classes: the way back.

    Raises:
        google.protobuf.message.DecodeError: when the payload is not an event.
    """
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event.FromString(payload)
    values = []
    for number, value in enumerate(event.summary.value):
        kind = value.WhichOneof("value")
        plugin = value.metadata.plugin_data.plugin_name
        if kind == "image":
            values.append((number, value.tag, plugin, "image", value.image.width, value.image.height, 1))
        elif kind == "tensor":
            strings = value.tensor.string_val
            try:
                width, height, samples = int(strings[0]), int(strings[1]), max(0, len(strings) - 2)
            except (IndexError, ValueError):
                width = height = samples = 0
            values.append((number, value.tag, plugin, "tensor", width, height, samples))
    return ScannedEvent(event.step, event.wall_time, values)
