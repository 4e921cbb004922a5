"""The two events that carry an image log's bytes, in protobuf's wire format by hand: an image summary and
the file's first event (its `file_version`).

TensorBoard's protobuf classes write the same bytes (`writer.py` uses them for every other event, and the
tests hold these to them, field for field and byte for byte); building and serialising a message costs
little next to a large summary's PNGs, but importing protobuf and TensorBoard's generated modules is a
tenth of `tbimg grid`'s start, and for the small summaries a training loop logs every few steps the message
work is most of what writing costs (bench/README.md). With `TBIMG_NO_SHORTCUTS=1` the protobuf classes
write these too.

Fields go in field-number order, as protobuf writes them; a field holding its default (0, an empty string)
is left out, as proto3 does.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

IMAGES_PLUGIN = b"images"
DT_STRING = 7  # tensorflow.DataType

_DOUBLE = struct.Struct("<d")


_ONE_BYTE = [bytes((value,)) for value in range(0x80)]


def varint(value: int) -> bytes:
    """`value` (0 or more) as protobuf's base-128 varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:  # a PNG's length, mostly
        return bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _event_head(wall_time: float, step: int) -> bytes:
    """Event fields 1 (wall_time, a double) and 2 (step, a varint), each left out when 0."""
    head = b"\x09" + _DOUBLE.pack(wall_time) if wall_time else b""
    return head + b"\x10" + varint(step) if step else head


def file_version_event(wall_time: float, version: str) -> bytes:
    """`Event(wall_time=..., file_version=...)`, serialised."""
    return _event_head(wall_time, 0) + _field(3, version.encode())


def image_event(
    wall_time: float, step: int, tag: str, description: str, size: tuple[int, int], blobs: Sequence[bytes]
) -> bytes:
    """An event holding one image summary, as `tf.summary.image` writes it: a DT_STRING tensor of shape [k+2],
    `[width, height, blob_0, ..., blob_k-1]`, with the image plugin's metadata (`ImagePluginData(version=0)`,
    whose serialised content is empty) and the description when there is one."""
    samples = [str(size[0]).encode(), str(size[1]).encode(), *blobs]
    strings = [b"".join((b"\x42", varint(len(blob)), blob)) for blob in samples]  # field 8, string_val
    shape = _field(2, _field(2, b"\x08" + varint(len(samples))))  # tensor_shape { dim { size } }
    tensor_length = 2 + len(shape) + sum(map(len, strings))  # 2: dtype's key and value
    metadata = _field(1, _field(1, IMAGES_PLUGIN)) + (_field(3, description.encode()) if description else b"")
    tag_field = _field(1, tag.encode()) if tag else b""
    value_length = len(tag_field) + 1 + len(varint(tensor_length)) + tensor_length + 1 + len(varint(len(metadata)))
    value_length += len(metadata)
    summary_length = 1 + len(varint(value_length)) + value_length
    head = b"".join(
        (
            _event_head(wall_time, step),
            b"\x2a" + varint(summary_length),  # field 5, summary
            b"\x0a" + varint(value_length),  # Summary field 1, value
            tag_field,
            b"\x42" + varint(tensor_length),  # Value field 8, tensor
            bytes((0x08, DT_STRING)),  # TensorProto field 1, dtype
            shape,
        )
    )
    return b"".join((head, *strings, b"\x4a", varint(len(metadata)), metadata))  # Value field 9, metadata


# The way back and the reference: TensorBoard's protobuf classes


def file_version_event_by_protobuf(wall_time: float, version: str) -> bytes:
    from tensorboard.compat.proto import event_pb2

    return bytes(event_pb2.Event(wall_time=wall_time, file_version=version).SerializeToString())


def image_event_by_protobuf(
    wall_time: float, step: int, tag: str, description: str, size: tuple[int, int], blobs: Sequence[bytes]
) -> bytes:
    """What `image_event` writes, through the classes: the tensor filled in place, since protobuf copies a
    message given to a constructor, which for a 10,000-image tensor costs more than framing and writing it."""
    from tensorboard.compat.proto import event_pb2, types_pb2
    from tensorboard.plugins.image import metadata

    event = event_pb2.Event(wall_time=wall_time, step=step)
    value = event.summary.value.add(tag=tag)
    value.metadata.CopyFrom(metadata.create_summary_metadata(None, description))
    value.tensor.dtype = types_pb2.DT_STRING
    value.tensor.tensor_shape.dim.add(size=len(blobs) + 2)
    value.tensor.string_val.extend((str(size[0]).encode(), str(size[1]).encode()))
    value.tensor.string_val.extend(blobs)
    return bytes(event.SerializeToString())
