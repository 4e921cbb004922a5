"""`log_images` and `ImageLogger`: what `tf.summary.image` writes, in call order, errors never lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

from tbimg_cli import ImageLogger, log_images
from tbimg_cli.errors import InputError, InputTypeError, WriterClosedError

from .helpers import decode_png, event_files, load_run, wait_until

RNG = np.random.default_rng(3)


def images_of(run_dir, tag):
    """(step, [pixels of each sample]) for each summary of `tag`, in file order."""
    return [
        (event.step, [decode_png(blob) for blob in event.tensor_proto.string_val[2:]])
        for event in load_run(run_dir).Tensors(tag)
    ]


@pytest.mark.slow
def test_log_images_writes_what_tf_summary_image_writes(tmp_path):
    tf = pytest.importorskip("tensorflow")
    batch = (RNG.random((3, 10, 12, 3))).astype(np.float32)
    with tf.summary.create_file_writer(str(tmp_path / "tf")).as_default():
        tf.summary.image("samples", batch, step=4, max_outputs=3, description="from TF")
    log_images(tmp_path / "ours", "samples", batch, step=4, description="from TF")
    theirs, ours = (load_run(tmp_path / name).Tensors("samples")[0] for name in ("tf", "ours"))
    assert ours.step == theirs.step
    assert ours.tensor_proto.dtype == theirs.tensor_proto.dtype
    assert ours.tensor_proto.tensor_shape == theirs.tensor_proto.tensor_shape
    assert ours.tensor_proto.string_val[:2] == theirs.tensor_proto.string_val[:2] == [b"12", b"10"]
    for mine, tfs in zip(ours.tensor_proto.string_val[2:], theirs.tensor_proto.string_val[2:], strict=True):
        assert np.array_equal(decode_png(mine), decode_png(tfs))  # same pixels, whatever the zlib level
    accumulator = load_run(tmp_path / "ours")
    theirs_metadata = load_run(tmp_path / "tf").SummaryMetadata("samples")
    assert accumulator.SummaryMetadata("samples") == theirs_metadata


def test_calls_for_one_folder_append_to_one_file_per_process(tmp_path):
    for step in range(3):
        assert log_images(tmp_path, "x", np.zeros((4, 4), np.uint8), step) == 1
    assert len(event_files(tmp_path)) == 1
    assert [step for step, _ in images_of(tmp_path, "x")] == [0, 1, 2]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({"tag": ""}, InputTypeError),
        ({"tag": 3}, InputTypeError),
        ({"step": -1}, InputError),
        ({"step": 1.0}, InputTypeError),
        ({"layout": "XY"}, InputError),
        ({"log_dir": ""}, InputTypeError),
    ],
)
def test_bad_calls_are_refused_before_anything_is_written(tmp_path, call, error):
    arguments = {"log_dir": tmp_path / "run", "tag": "x", "images": np.zeros((2, 2)), "step": 0, **call}
    with pytest.raises(error):
        log_images(**arguments)
    assert not (tmp_path / "run").exists()


def test_the_logger_writes_in_call_order_whatever_finishes_first(tmp_path):
    """Large and small images alternate on four workers; the file holds them in the order they were logged."""
    big, small = np.full((400, 400, 3), 9, np.uint8), np.full((2, 2), 1, np.uint8)
    with ImageLogger(tmp_path, workers=4) as logger:
        for step in range(40):
            logger.log("mixed", big if step % 2 == 0 else small, step)
    logged = images_of(tmp_path, "mixed")
    assert [step for step, _ in logged] == list(range(40))
    assert [pixels[0].shape[0] for _, pixels in logged] == [400 if step % 2 == 0 else 2 for step in range(40)]


def test_the_logger_is_safe_to_share_between_threads(tmp_path):
    with ImageLogger(tmp_path) as logger:

        def log_from(thread: int) -> None:
            for step in range(25):
                logger.log(f"thread{thread}", np.full((3, 3), thread * 25 + step, np.uint8), step)

        threads = [threading.Thread(target=log_from, args=(i,)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for thread in range(4):
        logged = images_of(tmp_path, f"thread{thread}")
        assert [step for step, _ in logged] == list(range(25))  # each thread's calls in its order
        assert [int(pixels[0][0, 0]) for _, pixels in logged] == [thread * 25 + step for step in range(25)]


def test_the_caller_may_reuse_its_buffer_at_once(tmp_path):
    buffer = np.zeros((16, 16), np.uint8)
    with ImageLogger(tmp_path) as logger:
        for step in range(20):
            buffer[:] = step
            logger.log("reused", buffer, step)
    assert [int(pixels[0].max()) for _, pixels in images_of(tmp_path, "reused")] == list(range(20))


def test_a_background_error_is_raised_by_the_next_call(tmp_path):
    logger = ImageLogger(tmp_path)
    logger.log("x", np.full((4, 4), np.nan), 0)
    with pytest.raises(InputError, match="'x' at step 0: images hold NaN"):
        wait_until(lambda: logger.log("x", np.zeros((4, 4)), 1) and False, timeout=30, interval=0.01)
    logger.log("x", np.zeros((4, 4)), 1000)  # raised once; the logger goes on
    with pytest.raises(InputError, match="'x' at step 1001: images hold NaN"):
        logger.log("x", np.full((4, 4), np.inf), 1001)
        logger.flush()  # flush waits for what was logged, and raises what it refused
    logger.close()
    steps = [step for step, _ in images_of(tmp_path, "x")]
    assert 0 not in steps and 1001 not in steps and steps[-1] == 1000


def test_a_background_error_is_raised_by_close_never_lost(tmp_path):
    logger = ImageLogger(tmp_path)
    logger.log("fine", np.zeros((4, 4)), 0)
    logger.log("x", np.full((4, 4), 7.0), 1)
    logger.log("x", np.full((4, 4), -7.0), 2)
    with pytest.raises(InputError, match=r"'x' at step 1: float images must hold values in \[0, 1\].*1 more call"):
        logger.close()
    assert [step for step, _ in images_of(tmp_path, "fine")] == [0]


def test_flush_makes_everything_logged_readable(tmp_path):
    with ImageLogger(tmp_path) as logger:
        for step in range(5):
            logger.log("x", np.zeros((8, 8), np.uint8), step)
        logger.flush()
        assert [step for step, _ in images_of(tmp_path, "x")] == list(range(5))  # while still open


def test_a_closed_logger_refuses_and_closing_twice_is_harmless(tmp_path):
    logger = ImageLogger(tmp_path)
    logger.close()
    logger.close()
    with pytest.raises(WriterClosedError):
        logger.log("x", np.zeros((2, 2)), 0)
    assert event_files(tmp_path) == []  # nothing logged: no empty event file


def test_a_full_queue_makes_log_wait_rather_than_grow(tmp_path):
    """With room for one image, every call waits for the one before: the writer never falls behind by two."""
    image = np.zeros((64, 64, 3), np.uint8)
    with ImageLogger(tmp_path, workers=1, max_queued_bytes=image.nbytes) as logger:
        for step in range(10):
            logger.log("x", image, step)
            assert logger._queued_bytes <= image.nbytes
    assert len(images_of(tmp_path, "x")) == 10


def test_the_end_of_the_process_writes_what_was_queued(tmp_path):
    script = textwrap.dedent(f"""
        import numpy as np
        from tbimg_cli import ImageLogger
        logger = ImageLogger({str(tmp_path)!r})
        for step in range(50):
            logger.log("x", np.full((128, 128, 3), step, np.uint8), step)
        logger.log("bad", np.full((2, 2), np.inf), 0)
        # no close(): the interpreter's exit must write the queue
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [step for step, _ in images_of(tmp_path, "x")] == list(range(50))
    assert "'bad' at step 0: images hold NaN or infinity" in proc.stderr  # shown, not lost


def test_every_input_kind_through_the_logger(tmp_path):
    from matplotlib.figure import Figure
    from PIL import Image

    figure = Figure(figsize=(1, 1), dpi=20)
    jpeg = tmp_path / "photo.jpg"
    Image.fromarray(np.full((6, 5, 3), 90, np.uint8)).save(jpeg)
    with ImageLogger(tmp_path / "run") as logger:
        logger.log("path", str(jpeg), 0)
        logger.log("bytes", jpeg.read_bytes(), 0)
        logger.log("pil", Image.open(jpeg), 0)
        logger.log("figure", figure, 0)
        logger.log("list", [np.zeros((5, 5)), np.ones((5, 5))], 0)
        logger.log("uint16", np.full((3, 3), 60000, np.uint16), 0)
    run = load_run(tmp_path / "run")
    formats = {tag: run.Tensors(tag)[0].tensor_proto.string_val[2][:3] for tag in run.Tags()["tensors"]}
    assert formats["path"] == formats["bytes"] == b"\xff\xd8\xff"  # the JPEG as it is
    assert formats["pil"] == formats["figure"] == formats["list"] == b"\x89PN"
    assert run.Tensors("path")[0].tensor_proto.string_val[2] == jpeg.read_bytes()
    assert len(run.Tensors("list")[0].tensor_proto.string_val) == 4
    assert run.Tensors("uint16")[0].tensor_proto.string_val[2][24] == 16


def test_a_busy_logger_s_summaries_reach_the_file_within_about_a_second_unasked(tmp_path):
    """The writer gathers a second's worth of records before writing (one system call, not one a call); a
    TensorBoard reading the run still sees each summary within about that long, with no flush asked for."""
    import time

    from tbimg_cli.images import logger as image_logger

    logger = ImageLogger(tmp_path)
    try:
        noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)  # 12 KB: past 8 KiB
        logger.log("frames", noise, 0)
        logger.flush()  # the first call's imports out of the way, and the timer started afresh
        logger.log("frames", noise, 1)
        (path,) = event_files(tmp_path)
        first = path.stat().st_size
        time.sleep(0.2)
        assert path.stat().st_size == first, "written at once: the records are not gathered"
        began = time.monotonic()
        wait_until(lambda: path.stat().st_size > first, timeout=10, what="the second summary in the file, unasked")
        assert time.monotonic() - began < 3 * image_logger._IDLE_FLUSH_SECONDS
        assert len(load_run(tmp_path).Tensors("frames")) == 2
    finally:
        logger.close()


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", "torch channels first", "edges"])
def test_the_logger_writes_float_images_as_log_images_does(tmp_path, dtype):
    """Float images through the logger (snapshot, worker) and through log_images: the same pixels."""
    if dtype == "torch channels first":
        torch = pytest.importorskip("torch")
        batch = torch.rand(5, 3, 9, 7, generator=torch.Generator().manual_seed(0))
    elif dtype == "edges":  # exactly 0 and 1, and the values either side of each rounding step
        steps = np.arange(256, dtype=np.float64) / 255.5
        edges = np.clip(np.concatenate([steps, np.nextafter(steps, 2), [0.0, 1.0, -0.0]]), 0, 1)
        batch = np.resize(edges, (4, 9, 21))
    else:
        batch = RNG.random((4, 6, 8, 3)).astype(dtype)
    log_images(tmp_path / "direct", "x", batch, 2)
    with ImageLogger(tmp_path / "logger") as logger:
        logger.log("x", batch, 2)
    assert images_of(tmp_path / "logger", "x")[0][1] and all(
        np.array_equal(mine, theirs)
        for mine, theirs in zip(
            images_of(tmp_path / "logger", "x")[0][1], images_of(tmp_path / "direct", "x")[0][1], strict=True
        )
    )


def test_floats_the_rules_refuse_are_still_refused_by_a_later_call(tmp_path):
    logger = ImageLogger(tmp_path)
    logger.log("x", np.full((2, 4, 4), 1.5, np.float32), 0)  # outside [0, 1]: refused on the worker
    with pytest.raises(InputError, match=r"'x' at step 0: float images must hold values in \[0, 1\]"):
        logger.close()
