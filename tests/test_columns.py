"""Read-back's fast path (templated records read by numpy) against protobuf, record by record.

Logs from TensorFlow's `tf.summary`, PyTorch's and tensorboardX's `SummaryWriter`, tbimg's writer, the
committed sample logs, and hand-made events for what those writers leave out (merged summaries, plugin
metadata on a tag's first value only, a tag that changes plugin, scalar tensors of every dtype, malformed
scalars, damage). Each is read three ways: the fast path, `fast=False` (protobuf for every record), and
TensorBoard's own `EventFileLoader`; the values, their order and the problems must be the same, and the
fast path must really have been taken (most values in columns).
"""

from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli.events import blocks
from tbimg_cli.events.blocks import iter_record_blocks
from tbimg_cli.events.records import frame
from tbimg_cli.events.writer import EventWriter
from tbimg_cli.logs import columns
from tbimg_cli.logs.readback import open_logdir

from .helpers import REPO, event_files, run_module

STEPS = [*range(0, 130), *range(16_300, 16_420), 2**40]  # 1-, 2-, 3- and 6-byte step varints


def read(root: Path, *, fast: bool, plugins_wanted=None, piece=None):
    """(values, problems, how many values came from columns) of every run under `root`."""
    logdir = open_logdir(root)
    problems: list = []
    found, templated = [], 0
    for run, files in logdir.runs(problems).items():
        if piece is None:
            blocks = columns.run_blocks(logdir, run, files, problems, plugins_wanted, fast=fast)
        else:
            blocks = columns.file_blocks(logdir, run, files[0], {}, problems, plugins_wanted, piece, fast=fast)
        for block in blocks:
            templated += sum(len(column.orders) for column in block.columns)
            found += [_comparable(value) for value in columns.block_values(block)]
    return found, problems, templated


def _comparable(value):
    data = value.data
    if isinstance(data, float) and math.isnan(data):
        data = "nan"
    elif isinstance(data, tuple) and len(data) == 2:  # a confusion matrix's (names, counts)
        data = (data[0], data[1].tolist())
    return (value.run, value.tag, value.step, value.wall_time, value.plugin, data)


def assert_fast_is_protobuf(root: Path, *, least_templated: float = 0.0, **how) -> list:
    """The fast path (the compiled record walk, where built) reads what the way back reads: the Python
    walk, each record parsed by protobuf, its CRCs checked one by one. The fast path on the Python walk
    (payload CRCs checked by numpy a group at a time) reads the same too."""
    fast, fast_problems, templated = read(root, fast=True, **how)
    with python_walk():
        assert read(root, fast=True, **how) == (fast, fast_problems, templated)
        slow, slow_problems, none = read(root, fast=False, **how)
    assert none == 0
    assert fast == slow
    assert fast_problems == slow_problems
    assert templated >= least_templated * len(fast), (templated, len(fast))
    return fast


@contextmanager
def python_walk():
    """Within it, blocks are walked in Python (`TBIMG_RECORD_WALK=python`), not by the compiled walk."""
    before = os.environ.get(blocks.RECORD_WALK_VARIABLE)
    os.environ[blocks.RECORD_WALK_VARIABLE] = "python"
    try:
        yield
    finally:
        if before is None:
            del os.environ[blocks.RECORD_WALK_VARIABLE]
        else:
            os.environ[blocks.RECORD_WALK_VARIABLE] = before


def assert_scalars_are_tensorboards(root: Path, values: list) -> None:
    """Every scalar value equals what TensorBoard's own loader reads from the same record."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.util import tensor_util

    expected = []
    for path in event_files_under(root):
        run = path.parent.relative_to(root).as_posix() or "."
        plugin_of: dict[str, str] = {}
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name or plugin_of.get(value.tag, "")
                plugin_of[value.tag] = plugin
                if value.HasField("simple_value"):
                    number = value.simple_value
                elif value.HasField("tensor") and plugin == "scalars":
                    number = float(tensor_util.make_ndarray(value.tensor))
                else:
                    continue
                expected.append((run, value.tag, event.step, event.wall_time, "nan" if math.isnan(number) else number))
    got = [(run, tag, step, wall, data) for run, tag, step, wall, plugin, data in values if plugin == "scalars"]
    assert got == expected
    assert expected


def event_files_under(root: Path) -> list[Path]:
    return sorted(path for folder in {p.parent for p in root.rglob("*tfevents*")} for path in event_files(folder))


def test_tf_summary_logs(tmp_path, tf):
    writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    rng = np.random.default_rng(0)
    with writer.as_default():
        for step in STEPS:
            tf.summary.scalar("loss", 1.0 / (step + 1), step=step)
            tf.summary.scalar("accuracy", rng.random(), step=step, description="why")
            if step % 40 == 0:
                tf.summary.image("images", rng.random((2, 5, 4, 3)), step=step, max_outputs=2)
                tf.summary.text("note", f"text at {step}", step=step)
                tf.summary.histogram("weights", rng.normal(size=50), step=step)
    writer.close()
    values = assert_fast_is_protobuf(tmp_path, least_templated=0.8)
    assert_fast_is_protobuf(tmp_path, plugins_wanted={"images", "scalars"}, least_templated=0.8)
    assert_scalars_are_tensorboards(tmp_path, values)
    assert {plugin for *_, plugin, _ in values} >= {"scalars", "images", "text", "histograms"}


def test_pytorch_summary_writer_logs(tmp_path):
    import torch
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(tmp_path / "torch")) as writer:
        for step in STEPS:
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_scalar("tensor form", float(step) * 0.5, step, new_style=True)
            writer.add_scalars("pair", {"a": step * 0.1, "b": -step * 0.1}, step)  # runs of their own
            if step % 40 == 0:
                writer.add_images("batch", torch.rand(2, 3, 4, 5), step)
                writer.add_text("note", "hello", step)
                writer.add_histogram("weights", torch.randn(50), step)
    values = assert_fast_is_protobuf(tmp_path, least_templated=0.8)
    assert_scalars_are_tensorboards(tmp_path, values)
    assert {tag for _, tag, *_ in values} >= {"loss", "tensor form", "pair", "batch", "note/text_summary"}


def test_tensorboardx_logs(tmp_path):
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "tbx")) as writer:
        for step in STEPS:
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.add_scalar("double", np.float64(step) / 3, step, display_name="shown")
            if step % 40 == 0:
                writer.add_image("image", np.random.default_rng(step).random((3, 4, 5)), step)
                writer.add_text("note", "hello", step)
    values = assert_fast_is_protobuf(tmp_path, least_templated=0.8)
    assert_scalars_are_tensorboards(tmp_path, values)


def test_tbimg_logs_and_the_sample_logs(tmp_path):
    with EventWriter(tmp_path / "tbimg") as writer:
        for step in STEPS:
            writer.scalar("loss", 1.0 / (step + 1), step=step)
            if step % 40 == 0:
                writer.image("images", np.zeros((3, 4, 5), np.uint8), step=step)
    values = assert_fast_is_protobuf(tmp_path, least_templated=0.8)
    assert_scalars_are_tensorboards(tmp_path, values)
    assert_fast_is_protobuf(REPO / "sample_logs")


def _event(step, values, wall_time=1.7e9):
    from tensorboard.compat.proto import event_pb2, summary_pb2

    return frame(
        event_pb2.Event(wall_time=wall_time, step=step, summary=summary_pb2.Summary(value=values)).SerializeToString()
    )


def _value(tag, *, simple=None, plugin="", **tensor):
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2

    metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))
    if simple is not None:
        return summary_pb2.Summary.Value(tag=tag, simple_value=simple, metadata=metadata if plugin else None)
    dims = [tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in tensor.pop("shape", [])]
    proto = tensor_pb2.TensorProto(tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=dims), **tensor)
    return summary_pb2.Summary.Value(tag=tag, tensor=proto, metadata=metadata if plugin else None)


def _handmade(folder: Path) -> Path:
    """What the usual writers leave out, each repeated enough to make templates."""
    records = []
    for step in range(40):
        number = step / 7
        records.append(
            _event(step, [_value("m1", simple=number), _value("m2", simple=-number), _value("m3", simple=step)])
        )
        records.append(
            _event(step, [_value("double", dtype=2, tensor_content=np.float64(number).tobytes(), plugin="scalars")])
        )
        records.append(
            _event(step, [_value("int64", dtype=9, tensor_content=np.int64(step - 20).tobytes(), plugin="scalars")])
        )
        records.append(
            _event(step, [_value("half", dtype=19, tensor_content=np.float16(number).tobytes(), plugin="scalars")])
        )
        records.append(_event(step, [_value("float_val", dtype=1, float_val=[number], plugin="scalars")]))
        records.append(_event(step, [_value("double_val", dtype=2, double_val=[number], plugin="scalars")]))
        records.append(
            _event(
                step,
                [
                    _value(
                        "shape [1]", dtype=1, shape=[1], tensor_content=np.float32(number).tobytes(), plugin="scalars"
                    )
                ],
            )
        )
        records.append(
            _event(
                step,
                [
                    _value(
                        "two numbers", dtype=1, shape=[2], tensor_content=np.float32([1, 2]).tobytes(), plugin="scalars"
                    )
                ],
            )
        )
        records.append(_event(-step, [_value("negative steps", simple=float("nan") if step % 9 == 0 else number)]))
        records.append(_event(0, [_value("no step", simple=number)], wall_time=0.0))
        # Plugin named on the first value only, as TF 1 writers do: later values are tensors with no metadata.
        plugin = "scalars" if step == 0 else ""
        records.append(
            _event(step, [_value("named once", dtype=1, tensor_content=np.float32(number).tobytes(), plugin=plugin)])
        )
        # Named only midway: the values before it are of no known plugin, those after it scalars.
        plugin = "scalars" if step == 20 else ""
        records.append(
            _event(step, [_value("named late", dtype=1, tensor_content=np.float32(number).tobytes(), plugin=plugin)])
        )
        # A tag whose plugin changes within the block: read one by one.
        plugin = "scalars" if step < 20 else "custom"
        records.append(
            _event(step, [_value("changes", dtype=1, tensor_content=np.float32(number).tobytes(), plugin=plugin)])
        )
    folder.mkdir(parents=True)
    (folder / "events.out.tfevents.1.handmade").write_bytes(b"".join(records))
    return folder


def test_hand_made_events_of_every_scalar_form(tmp_path):
    folder = _handmade(tmp_path / "logs" / "run")
    values = assert_fast_is_protobuf(tmp_path / "logs")
    for wanted in ({"scalars"}, {"images", "scalars"}, {"custom"}):
        assert_fast_is_protobuf(tmp_path / "logs", plugins_wanted=wanted)
    by_tag: dict = {}
    for _, tag, step, _, plugin, data in values:
        by_tag.setdefault(tag, []).append((step, plugin, data))
    assert [d for _, _, d in by_tag["int64"]] == [float(s - 20) for s in range(40)]
    assert by_tag["half"][7] == (7, "scalars", float(np.float16(1.0)))
    assert [p for _, p, _ in by_tag["named late"]] == [""] * 20 + ["scalars"] * 20
    assert {p for _, p, _ in by_tag["named once"]} == {"scalars"}
    assert [p for _, p, _ in by_tag["changes"]] == ["scalars"] * 20 + ["custom"] * 20
    assert "two numbers" not in by_tag  # malformed: each is a problem, as protobuf's path says
    _, problems, templated = read(tmp_path / "logs", fast=True)
    assert len([p for p in problems if "two numbers" in p.message]) == 40
    assert templated > 0.5 * len(values)
    assert folder.exists()


def _damaged(tmp_path: Path, damage) -> Path:
    """The tbimg log with `damage(bytearray of the event file)` done to it."""
    source = tmp_path / "source"
    with EventWriter(source) as writer:
        for step in STEPS:
            writer.scalar("loss", 1.0 / (step + 1), step=step)
    (path,) = event_files(source)
    data = bytearray(path.read_bytes())
    damage(data)
    target = tmp_path / "damaged" / "run"
    target.mkdir(parents=True)
    (target / path.name).write_bytes(bytes(data))
    return tmp_path / "damaged"


def _record_starts(data: bytes) -> list[int]:
    starts, at = [], 0
    while at + 12 <= len(data):
        starts.append(at)
        at += 16 + int.from_bytes(data[at : at + 8], "little")
    return starts


@pytest.mark.parametrize(
    "where",
    ["the number", "the step", "the tag", "the length", "the payload CRC", "the cut tail", "a record's middle"],
)
def test_damage_is_found_where_protobuf_finds_it(tmp_path, where):
    def damage(data: bytearray) -> None:
        record = _record_starts(bytes(data))[150]
        payload = record + 12
        spot = {
            "the number": int.from_bytes(data[record : record + 8], "little") + payload - 3,  # last bytes: the float
            "the step": payload + 10,  # after wall_time's key and 8 bytes, the step's key
            "the tag": payload + bytes(data[payload : payload + 64]).index(b"loss"),
            "the length": record,
            "the payload CRC": payload + int.from_bytes(data[record : record + 8], "little"),
            "a record's middle": payload + 20,
        }.get(where)
        if where == "the cut tail":
            del data[-5:]
        else:
            data[spot] ^= 0x40

    root = _damaged(tmp_path, damage)
    values = assert_fast_is_protobuf(root)
    _, problems, _ = read(root, fast=True)
    assert len(problems) == 1 and problems[0].note == (where == "the cut tail")
    assert 100 < len(values) <= len(STEPS)


def test_pieces_of_a_file_read_alike(tmp_path):
    with EventWriter(tmp_path / "big") as writer:
        for step in range(60_000):  # about 5 MB: more than one block
            writer.scalar("loss", step / 3, step=step)
            writer.scalar("learning rate", 0.1, step=step)
    (path,) = event_files(tmp_path / "big")
    size = path.stat().st_size
    assert size > 4 << 20
    for piece in [(0, size // 3), (size // 3, 2 * size // 3), (2 * size // 3, None), (12345, None)]:
        assert_fast_is_protobuf(tmp_path, piece=piece, least_templated=0.99)


def test_the_reader_variable_is_the_way_back(tmp_path, cli):
    with EventWriter(tmp_path / "logs" / "run") as writer:
        for step in STEPS:
            writer.scalar("loss", step / 3, step=step)
    fast = cli.json("inspect", tmp_path / "logs")
    slow = run_module("inspect", tmp_path / "logs", "--json", env={columns.READER_VARIABLE: "protobuf"})
    assert slow.returncode == 0, slow.stderr
    assert json.loads(slow.stdout) == fast
    assert fast["tags"][0]["steps"]["count"] == len(STEPS)


def test_the_viewers_index_skips_scalar_records_and_lists_every_image(tmp_path):
    """A log as tf.summary or PyTorch writes it (no tbimg image index beside it): scalars between images."""
    from tbimg_cli.events.records import read_records
    from tbimg_cli.logs.headers import decode_with_protobuf, image_values
    from tbimg_cli.serve.index import ImageIndex

    from .test_headers import image_event

    folder = tmp_path / "logs" / "run"
    folder.mkdir(parents=True)
    records = []
    for step in range(600):
        records.append(_event(step, [_value("loss", simple=step / 9)]))
        records.append(
            _event(step, [_value("accuracy", dtype=1, tensor_content=np.float32(step).tobytes(), plugin="scalars")])
        )
        if step % 7 == 0:
            records.append(image_event("images", step, [b"png-%d" % step] * (1 + step % 3)))
    (folder / "events.out.tfevents.1.scalars-and-images").write_bytes(b"".join(records))
    index = ImageIndex(str(tmp_path / "logs"))
    index.refresh()
    plugin_of: dict = {}
    expected = []
    for payload in read_records(next(folder.iterdir()))[0]:
        event = decode_with_protobuf(payload)
        expected += [(event.step, value.samples) for value in image_values(event, plugin_of)]
    got = [(entry["step"], entry["samples"]) for entry in index.steps("run", "images")]
    assert got == expected and len(got) == 86
    assert index.problems == []
    path = next(folder.iterdir())
    with open(path, "rb") as stream:
        (block,) = iter_record_blocks(stream, path.stat().st_size)
    assert columns.numbers_only(block).sum() > 1100  # the scalar records, skipped a block at once


def test_the_viewers_index_lists_every_step_of_a_file_of_large_records(tmp_path):
    """Images alone (records of kilobytes): read through the memory map past its first records, not in blocks."""
    from tbimg_cli.serve.index import SAMPLE_RECORDS, ImageIndex

    from .test_headers import image_event

    folder = tmp_path / "logs" / "run"
    folder.mkdir(parents=True)
    steps = range(SAMPLE_RECORDS + 50)
    records = [image_event("big", step, [bytes([step % 256]) * 6000] * 2) for step in steps]
    (folder / "events.out.tfevents.1.large").write_bytes(b"".join(records))
    index = ImageIndex(str(tmp_path / "logs"))
    index.refresh()
    assert [entry["step"] for entry in index.steps("run", "big")] == list(steps)
    assert index.sample("run", "big", SAMPLE_RECORDS + 10, 1) == bytes([(SAMPLE_RECORDS + 10) % 256]) * 6000


def test_a_reader_the_variable_does_not_name_is_a_one_line_error(tmp_path):
    with EventWriter(tmp_path / "logs" / "run") as writer:
        writer.scalar("loss", 0.5, step=0)
    proc = run_module("export", tmp_path / "logs", "--out", tmp_path / "out", env={columns.READER_VARIABLE: "rust"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "TBIMG_READER='rust' is not a reader" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
