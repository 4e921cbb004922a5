"""The writer against the real `tf.summary.image`, read back with TensorBoard's own reader."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tbimg_cli.events import records
from tbimg_cli.events.png import encode_pngs, to_uint8_batch
from tbimg_cli.events.writer import EventWriter

from .helpers import decode_png, event_files, load_run


def test_crc32c_known_answer():
    from crc32c import crc32c

    assert crc32c(b"abcd") == 0x92C80A31


def test_masked_crc_matches_the_tfrecord_definition():
    from crc32c import crc32c

    crc = crc32c(b"abcd")
    assert records.masked_crc32c(b"abcd") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


def _tf_write(tf, folder, tag, images, step, description=None, max_outputs=3):
    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        tf.summary.image(tag, images, step=step, max_outputs=max_outputs, description=description)
    writer.close()


def _only_tensor_event(run_dir, tag):
    accumulator = load_run(run_dir)
    (event,) = accumulator.Tensors(tag)
    return accumulator, event


UINT8 = (np.arange(3 * 7 * 5 * 1) * 7 % 256).astype(np.uint8).reshape(3, 7, 5, 1)
RGB = (np.arange(2 * 4 * 6 * 3) * 13 % 256).astype(np.uint8).reshape(2, 4, 6, 3)
RGBA = (np.arange(1 * 3 * 3 * 4) * 29 % 256).astype(np.uint8).reshape(1, 3, 3, 4)
# Floats across and beyond [0, 1], including values that sit on rounding edges.
FLOATS = np.linspace(-0.2, 1.2, 2 * 6 * 6, dtype=np.float32).reshape(2, 6, 6, 1)
FLOATS64 = np.linspace(0, 1, 4 * 4 * 3, dtype=np.float64).reshape(1, 4, 4, 3)
# Enough images, each past png.SMALL_PNG_BYTES, to be encoded on several threads (png.PARALLEL_PNGS per thread),
# whose order must hold.
MANY = np.random.default_rng(3).integers(0, 256, (1100, 40, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "images", [UINT8, RGB, RGBA, FLOATS, FLOATS64, MANY], ids=["uint8", "rgb", "rgba", "float32", "float64", "many"]
)
def test_image_summary_is_indistinguishable_from_tf_summary_image(tmp_path, tf, images):
    tag, step, description = "some/images", 7, "**described**"
    _tf_write(tf, tmp_path / "tf", tag, images, step, description, max_outputs=len(images))
    with EventWriter(tmp_path / "tbimg") as writer:
        assert writer.image(tag, images, step=step, description=description) == len(images)

    theirs_acc, theirs = _only_tensor_event(tmp_path / "tf", tag)
    ours_acc, ours = _only_tensor_event(tmp_path / "tbimg", tag)
    assert ours.step == theirs.step == step
    ours_meta = ours_acc.SummaryMetadata(tag)
    theirs_meta = theirs_acc.SummaryMetadata(tag)
    assert ours_meta.plugin_data.plugin_name == theirs_meta.plugin_data.plugin_name == "images"
    assert ours_meta.plugin_data.content == theirs_meta.plugin_data.content
    assert ours_meta.summary_description == theirs_meta.summary_description == description
    assert ours.tensor_proto.dtype == theirs.tensor_proto.dtype
    assert ours.tensor_proto.tensor_shape == theirs.tensor_proto.tensor_shape
    ours_values, theirs_values = ours.tensor_proto.string_val, theirs.tensor_proto.string_val
    assert len(ours_values) == len(theirs_values) == len(images) + 2
    assert ours_values[:2] == theirs_values[:2] == [str(images.shape[2]).encode(), str(images.shape[1]).encode()]
    for mine, reference in zip(ours_values[2:], theirs_values[2:], strict=True):
        assert np.array_equal(decode_png(mine), decode_png(reference))


@pytest.mark.parametrize("tag", ["", "a", "some/images", "ü/😀" * 40])
@pytest.mark.parametrize("description", ["", "**described**", "d" * 300])
@pytest.mark.parametrize("step", [0, 1, 127, 128, 2**40])
def test_image_events_written_by_hand_are_the_bytes_protobuf_writes(tag, description, step):
    from tbimg_cli.events import wire

    rng = np.random.default_rng(step)
    for wall_time, count in ((0.0, 1), (1796409574.123456, 3), (1.5, 200)):
        blobs = [rng.bytes(int(rng.choice([0, 1, 127, 128, 20000]))) for _ in range(count)]
        size = (int(rng.choice([1, 28, 70000])), int(rng.choice([1, 28])))
        by_hand = wire.image_event(wall_time, step, tag, description, size, blobs)
        assert by_hand == wire.image_event_by_protobuf(wall_time, step, tag, description, size, blobs)
    for wall_time in (0.0, 1796409574.5):
        by_hand = wire.file_version_event(wall_time, "brain.Event:2")
        assert by_hand == wire.file_version_event_by_protobuf(wall_time, "brain.Event:2")


def test_a_log_written_without_the_hand_serialiser_is_the_same_file(tmp_path, monkeypatch):
    import time

    monkeypatch.setattr(time, "time", lambda: 1796409574.25)
    images = np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)
    files = []
    for name, shortcuts_off in (("by_hand", ""), ("protobuf", "1")):
        monkeypatch.setenv("TBIMG_NO_SHORTCUTS", shortcuts_off)
        with EventWriter(tmp_path / name) as writer:
            writer.image("samples", images, step=3, description="five")
            writer.scalar("loss", 0.5, step=3)
            writer.png_images("again", encode_pngs(images[:2]), step=4)
        (path,) = event_files(tmp_path / name)
        files.append(path.read_bytes())
    assert files[0] == files[1] and len(files[0]) > 1000


def test_scalar_is_indistinguishable_from_tf_summary_scalar(tmp_path, tf):
    writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    with writer.as_default():
        tf.summary.scalar("loss", 0.3125, step=4)
    writer.close()
    with EventWriter(tmp_path / "tbimg") as ours:
        ours.scalar("loss", 0.3125, step=4)
    (theirs,) = load_run(tmp_path / "tf").Tensors("loss")
    (mine,) = load_run(tmp_path / "tbimg").Tensors("loss")
    assert mine.step == theirs.step
    assert mine.tensor_proto == theirs.tensor_proto
    assert load_run(tmp_path / "tbimg").SummaryMetadata("loss") == load_run(tmp_path / "tf").SummaryMetadata("loss")


def test_text_is_indistinguishable_from_tf_summary_text(tmp_path, tf):
    table = "| a | b |\n|---|---|\n| 1 | 2 |  ü"
    writer = tf.summary.create_file_writer(str(tmp_path / "tf"))
    with writer.as_default():
        tf.summary.text("table", table, step=3)
    writer.close()
    with EventWriter(tmp_path / "tbimg") as ours:
        ours.text("table", table, step=3)
    (theirs,) = load_run(tmp_path / "tf").Tensors("table")
    (mine,) = load_run(tmp_path / "tbimg").Tensors("table")
    assert mine.step == theirs.step and mine.tensor_proto == theirs.tensor_proto
    assert load_run(tmp_path / "tbimg").SummaryMetadata("table") == load_run(tmp_path / "tf").SummaryMetadata("table")


def test_float_conversion_matches_convert_image_dtype(tf):
    values = np.array([-1.0, 0.0, 0.001, 0.5, 0.998, 0.999, 1.0, 1.5, np.float32(254.5 / 255.5)], dtype=np.float32)
    expected = tf.image.convert_image_dtype(values, tf.uint8, saturate=True).numpy()
    assert np.array_equal(to_uint8_batch(values.reshape(1, 3, 3)).reshape(-1), expected)


@pytest.mark.parametrize(
    ("shape", "normalised"),
    [
        ((5, 4), (1, 5, 4, 1)),
        ((5, 4, 3), (1, 5, 4, 3)),
        ((6, 5, 7), (6, 5, 7, 1)),
        ((6, 5, 4), (1, 6, 5, 4)),
        ((2, 5, 4, 4), (2, 5, 4, 4)),
    ],
)
def test_accepted_shapes(shape, normalised):
    assert to_uint8_batch(np.zeros(shape, np.uint8)).shape == normalised


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 5, 4, 2), np.uint8), "channels"),
        (np.zeros(5, np.uint8), "dimensions"),
        (np.zeros((2, 2), np.int64), "uint8, bool or floats"),
    ],
)
def test_rejected_inputs(array, message):
    from tbimg_cli.errors import InputError

    with pytest.raises(InputError, match=message):
        to_uint8_batch(array)


def test_png_bytes_are_stored_as_given(tmp_path):
    png = encode_pngs(np.full((1, 3, 2, 3), 200, np.uint8))[0] + b""  # any valid PNG
    with EventWriter(tmp_path) as writer:
        writer.png_images("figure", [png], step=2)
    (event,) = load_run(tmp_path).Tensors("figure")
    assert event.tensor_proto.string_val == [b"2", b"3", png]


def test_every_record_has_valid_crcs_and_the_file_starts_with_its_version(tmp_path):
    from tensorboard.compat.proto import event_pb2

    with EventWriter(tmp_path) as writer:
        writer.image("a", UINT8, step=0)
        writer.scalar("b", 1.0, step=1)
    (path,) = event_files(tmp_path)
    payloads, problem = records.read_records(path)
    assert problem is None and len(payloads) == 3
    assert event_pb2.Event.FromString(payloads[0]).file_version == "brain.Event:2"
    name = path.name.split(".")
    assert name[:3] == ["events", "out", "tfevents"] and len(name[3]) == 10 and name[-1] == "v2"
    assert name[5] == str(os.getpid())


def test_a_file_cut_mid_record_is_read_up_to_the_last_whole_record(tmp_path):
    with EventWriter(tmp_path / "run") as writer:
        for step in range(3):
            writer.image("steps", UINT8, step=step)
    (path,) = event_files(tmp_path / "run")
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])  # as if the process died mid-write
    steps = [event.step for event in load_run(tmp_path / "run").Tensors("steps")]
    assert steps == [0, 1]
    payloads, problem = records.read_records(path)
    assert len(payloads) == 3 and problem.truncated_tail


def test_exception_inside_the_block_still_closes_a_valid_file(tmp_path):
    with pytest.raises(RuntimeError), EventWriter(tmp_path) as writer:
        writer.image("before", UINT8, step=0)
        raise RuntimeError("boom")
    (path,) = event_files(tmp_path)
    assert records.read_records(path)[1] is None


def test_nothing_is_created_until_something_is_written(tmp_path):
    with EventWriter(tmp_path / "run"):
        pass
    assert not (tmp_path / "run").exists()


def test_writing_after_close_raises_and_the_file_stays_whole(tmp_path):
    from tbimg_cli.errors import WriterClosedError

    writer = EventWriter(tmp_path)
    writer.image("before", UINT8, step=0)
    writer.close()
    for write in (
        lambda: writer.image("after", UINT8, step=1),
        lambda: writer.scalar("after", 1.0, step=1),
        lambda: writer.text("after", "text", step=1),
        lambda: writer.png_images("after", encode_pngs(to_uint8_batch(UINT8)), step=1),
    ):
        with pytest.raises(WriterClosedError, match="closed") as caught:
            write()
        assert isinstance(caught.value, ValueError)  # as writing to a closed file is
    writer.close()  # closing twice is harmless
    (path,) = event_files(tmp_path)
    payloads, problem = records.read_records(path)
    assert problem is None and len(payloads) == 2  # the file version and the one image


@pytest.mark.parametrize("empty", [np.zeros((0, 4, 4, 1), np.uint8), np.zeros((0, 4, 4, 3), np.uint8)])
def test_an_empty_batch_is_an_input_error_and_writes_nothing(tmp_path, empty):
    from tbimg_cli.errors import InputError

    with EventWriter(tmp_path / "run") as writer:
        with pytest.raises(InputError, match="empty"):
            writer.image("none", empty, step=0)
        with pytest.raises(InputError, match="empty"):
            writer.png_images("none", [], step=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("step", "error"), [(2.0, TypeError), (True, TypeError), ("3", TypeError), (-1, ValueError)])
def test_a_step_that_is_not_a_whole_number_from_0_is_refused(tmp_path, step, error):
    with EventWriter(tmp_path / "run") as writer, pytest.raises(error, match="step"):
        writer.scalar("loss", 0.5, step=step)
    assert not (tmp_path / "run").exists()


def test_numpy_integer_steps_are_whole_numbers(tmp_path):
    with EventWriter(tmp_path) as writer:
        writer.scalar("loss", 0.5, step=np.int64(7))
    assert [e.step for e in load_run(tmp_path).Tensors("loss")] == [7]


@pytest.mark.parametrize("deflate", ["fastest", "zlib"])
def test_noise_is_stored_and_pictures_are_compressed_both_lossless(deflate):
    import zlib

    from tbimg_cli.events import png

    chosen = png.DEFLATE if deflate == "fastest" else zlib.compress  # ISA-L's when installed, and the fallback
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    ramp = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, None, :, None], (4, 8, 256, 1)).copy()
    for batch in (noise, ramp, UINT8):
        pngs = encode_pngs(to_uint8_batch(batch), deflate=chosen)
        assert [decode_png(p).reshape(batch.shape[1:]).tolist() for p in pngs] == to_uint8_batch(batch).tolist()
    raw = noise[0].nbytes + 32  # the pixels and a filter byte per row
    assert all(raw <= len(p) - 57 <= raw + 11 for p in encode_pngs(noise, deflate=chosen))  # stored: no bigger
    assert all(len(p) < ramp[0].nbytes / 2 for p in encode_pngs(ramp, deflate=chosen))  # a picture still deflates


@pytest.mark.parametrize("side", [32, 256])  # level 0 for small images, level 1 above SMALL_PNG_BYTES
def test_smooth_pictures_are_filtered_up_and_deflate_smaller_than_their_unfiltered_rows(side):
    import zlib

    from tbimg_cli.events import png

    yy, xx = np.mgrid[0:side, 0:side]
    picture = np.stack([np.sin(xx / 7 + k) * 60 + np.cos(yy / 5) * 50 + 120 for k in range(3)], -1).astype(np.uint8)
    (encoded,) = encode_pngs(picture[None])
    assert decode_png(encoded).reshape(picture.shape).tolist() == picture.tolist()
    unfiltered = np.zeros((side, 1 + side * 3), np.uint8)
    unfiltered[:, 1:] = picture.reshape(side, side * 3)
    assert len(encoded) - 57 < 0.7 * len(zlib.compress(unfiltered.tobytes(), png.PNG_ZLIB_LEVEL))


def test_the_fast_deflate_trades_small_images_size_for_speed_and_matches_zlib_on_larger_ones():
    """ISA-L deflates small images (Fashion-MNIST) at its level 0, at most half again zlib's level 1,
    and larger ones at its level 1, the size of zlib's within 5%."""
    import zlib

    from tbimg_cli.events import png

    pytest.importorskip("isal")
    assert png.DEFLATE is not zlib.compress  # installed with tbimg: taken
    from tbimg_cli.tutorial import data

    from .helpers import SUBSET_DIR

    pictures = to_uint8_batch(data.load("train", SUBSET_DIR, stop=500)[0])  # real Fashion-MNIST images
    tiles = pictures[:496, :, :, 0].reshape(31, 4, 4, 28, 28)
    larger = tiles.transpose(0, 1, 3, 2, 4).reshape(31, 112, 112, 1)  # 4x4 pictures to an image
    assert 28 * 29 <= png.SMALL_PNG_BYTES < 112 * 113
    for batch, most in ((pictures, 1.5), (larger, 1.05)):
        fast, fallback = (sum(map(len, encode_pngs(batch, deflate=d))) for d in (png.DEFLATE, zlib.compress))
        assert fast <= fallback * most
