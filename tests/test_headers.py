"""The viewer's header walk (`logs.headers`) against the protobuf way, record by record.

Logs from TensorFlow's `tf.summary`, PyTorch's `SummaryWriter`, tbimg and the committed sample logs, with
images, scalars, text and histograms: for every record, what the walk reads from the record's first bytes
must be what parsing the whole payload with TensorBoard's protobuf classes gives.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli import log_images
from tbimg_cli.events.records import FOOTER_BYTES, HEADER_BYTES, frame, read_records
from tbimg_cli.logs.headers import decode_with_protobuf, scan_record
from tbimg_cli.serve.index import ImageIndex

REPO = Path(__file__).resolve().parent.parent


def walked_and_decoded(path: Path) -> tuple[list, list]:
    """(header walk, protobuf) results for every record of one event file."""
    data = path.read_bytes()
    payloads, problem = read_records(path)
    assert problem is None, problem
    walked, decoded, offset = [], [], 0
    for payload in payloads:
        walked.append(scan_record(lambda at, count: data[at : at + count], offset + HEADER_BYTES, len(payload)))
        decoded.append(decode_with_protobuf(payload))
        offset += HEADER_BYTES + len(payload) + FOOTER_BYTES
    return walked, decoded


def event_files(root: Path) -> list[Path]:
    files = sorted(root.rglob("*tfevents*"))
    assert files, f"no event files under {root}"
    return files


def assert_same(root: Path) -> int:
    """Every record under `root` walks to what protobuf decodes; returns how many image values there were."""
    images = 0
    for path in event_files(root):
        walked, decoded = walked_and_decoded(path)
        assert walked == decoded, path
        images += sum(1 for event in decoded for value in event.values if value[6] > 0)
    return images


def test_tensorflow_summaries_walk_to_what_protobuf_decodes(tmp_path, tf):
    writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    rng = np.random.default_rng(0)
    with writer.as_default():
        for step in (0, 1, 7, 2**40):
            tf.summary.image("images", rng.random((3, 9, 11, 3)), step=step, max_outputs=3, description="why")
            tf.summary.image("one", rng.random((1, 4, 5, 1)), step=step)
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
            tf.summary.text("note", "a text, not an image", step=step)
            tf.summary.histogram("weights", rng.normal(size=100), step=step)
    writer.close()
    assert assert_same(tmp_path / "tf") == 8


def test_pytorch_summary_writer_walks_to_what_protobuf_decodes(tmp_path):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "torch")) as writer:
        for step in range(3):
            writer.add_images("batch", torch.rand(4, 3, 8, 6), step)
            writer.add_image("single", torch.rand(1, 5, 7), step)
            writer.add_scalar("loss", 0.5, step)
            writer.add_text("note", "hello", step)
    assert assert_same(tmp_path / "torch") == 6


def test_tbimg_logs_and_the_sample_logs_walk_to_what_protobuf_decodes(tmp_path):
    log_images(tmp_path / "tbimg", "grid", np.zeros((5, 8, 8), np.uint8), step=3)
    log_images(tmp_path / "tbimg", "grid", np.ones((2, 8, 8, 3), np.float32), step=4)
    assert assert_same(tmp_path / "tbimg") == 2
    assert assert_same(REPO / "sample_logs") > 0


def image_event(tag: str, step: int, blobs: list[bytes], *, extra_field: bytes = b"") -> bytes:
    """A TF 2 image summary record; `extra_field` is appended to the value's bytes raw."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

    shape = tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(blobs) + 2)])
    tensor = tensor_pb2.TensorProto(dtype=7, tensor_shape=shape, string_val=[b"4", b"3", *blobs])
    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"))
    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor, metadata=metadata).SerializeToString() + extra_field
    summary = b"\x0a" + _varint(len(value)) + value
    event = event_pb2.Event(wall_time=1.5, step=step).SerializeToString() + b"\x2a" + _varint(len(summary)) + summary
    return frame(event)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_a_record_the_walk_is_unsure_of_is_read_the_protobuf_way(tmp_path):
    # Field 15 as a group (wire type 3): valid protobuf the walk does not skip, so it falls back.
    group = bytes([15 << 3 | 3]) + bytes([15 << 3 | 4])
    record = image_event("odd", 5, [b"x" * 2000, b"y"], extra_field=group)
    payload = record[HEADER_BYTES:-FOOTER_BYTES]
    negative = image_event("negative", -3, [b"n"])  # int64 steps below zero, as other writers may leave
    negative_walk = scan_record(lambda at, count: negative[at : at + count], HEADER_BYTES, len(negative) - 16)
    assert negative_walk == decode_with_protobuf(negative[HEADER_BYTES:-FOOTER_BYTES])
    assert negative_walk.step == -3
    assert scan_record(lambda at, count: record[at : at + count], HEADER_BYTES, len(payload)) is None
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.out.tfevents.1.host").write_bytes(image_event("plain", 1, [b"a" * 3000]) + record)
    index = ImageIndex(str(tmp_path))
    index.refresh()
    assert index.problems == []
    assert [(s["tag"], s["samples"], s["width"], s["height"]) for s in index.listing()] == [
        ("odd", 2, 4, 3),
        ("plain", 1, 4, 3),
    ]
    assert index.sample("run", "odd", 5, 1) == b"y"


@pytest.mark.parametrize("cut", ["length", "inside"])
def test_a_forged_length_inside_a_record_is_not_believed(tmp_path, cut):
    record = bytearray(image_event("img", 2, [b"z" * 100]))
    if cut == "length":  # the tensor's length varint claims far more than the record holds
        at = record.index(b"\x42") + 1
        record[at : at + 1] = b"\xff"
    else:  # the record's own length is changed and its length CRC no longer matches
        record[0:8] = struct.pack("<Q", len(record) * 10)
    run = tmp_path / "run"
    run.mkdir()
    (run / "events.out.tfevents.1.host").write_bytes(bytes(record) + image_event("after", 3, [b"w"]))
    index = ImageIndex(str(tmp_path))
    index.refresh()
    assert index.listing() == []  # nothing after damage can be trusted to be aligned
    assert len(index.problems) == 1
