"""The compiled record walk (`events/_recordwalk.c`) against the Python walk and per-record CRCs.

Every event file the test logs hold (TensorFlow's, PyTorch's, tensorboardX's, tbimg's, the sample logs),
and copies of them damaged at many places, walked both ways: the same starts, the same stop, and the
payload CRCs that hold the same as `masked_crc32c` says record by record. Blocks read from a memory map
are the blocks read from the stream. `TBIMG_REQUIRE_COMPILED=1` (CI) makes a missing build a failure.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest

from tbimg_cli.events import blocks
from tbimg_cli.events.records import FOOTER_BYTES, HEADER_BYTES, RecordProblem, frame, masked_crc32c
from tbimg_cli.events.writer import EventWriter

from .helpers import REPO, event_files, run_module

compiled = blocks.compiled_walk()
needs_compiled = pytest.mark.skipif(compiled is None, reason="the compiled record walk is not built here")


def test_the_compiled_walk_is_built_where_ci_asks_for_it():
    if os.environ.get("TBIMG_REQUIRE_COMPILED") == "1":
        assert compiled is not None, "tbimg_cli.events._recordwalk did not build at install"
    elif compiled is None:
        pytest.skip("the compiled record walk is not built here (no compiler at install)")
    assert compiled.crc_kind in ("instruction", "tables")


def expected_walk(buffer: bytes) -> tuple[list[int], int, int]:
    """What the compiled walk must give, from the Python walk and one CRC at a time: the starts up to
    the first length that fails its CRC, where that walk stopped, and how many payloads hold."""
    starts, lengths, position = blocks.python_walk(buffer)
    bad = blocks._first_bad_length(buffer, starts, lengths)
    if bad is not None:  # the compiled walk stops there; a cut-off record stops both walks alike
        starts, lengths, position = starts[:bad], lengths[:bad], int(starts[bad])
    payloads_ok = len(starts)
    for number, (start, length) in enumerate(zip(starts.tolist(), lengths.tolist(), strict=True)):
        payload = buffer[start + HEADER_BYTES : start + HEADER_BYTES + length]
        footer = buffer[start + HEADER_BYTES + length : start + HEADER_BYTES + length + FOOTER_BYTES]
        if masked_crc32c(payload) != int.from_bytes(footer, "little"):
            payloads_ok = number
            break
    return starts.tolist(), position, payloads_ok


def _logs(tmp_path):
    """Event files of every writer the tests have without TensorFlow, and a file of many record lengths."""
    import tensorboardX
    import torch.utils.tensorboard

    with EventWriter(tmp_path / "tbimg") as writer:
        for step in range(300):
            writer.scalar("loss", 1 / (step + 1), step=step * 977)
            if step % 50 == 0:
                writer.image("images", np.random.default_rng(step).integers(0, 255, (2, 9, 7, 3), np.uint8), step=step)
    for folder, module in (("pytorch", torch.utils.tensorboard), ("tensorboardx", tensorboardX)):
        writer = module.SummaryWriter(str(tmp_path / folder))
        for step in range(200):
            writer.add_scalar("loss", step / 7, step)
            if step % 40 == 0:
                writer.add_image("image", np.zeros((3, 5, 5), np.uint8), step)
        writer.close()
    rng = random.Random(0)
    (tmp_path / "lengths").mkdir()
    sizes = [rng.choice([0, 1, 7, 8, 9, 300, 5000]) for _ in range(400)]
    mixed = b"".join(frame(bytes(rng.randrange(256) for _ in range(size))) for size in sizes)
    (tmp_path / "lengths" / "events.out.tfevents.1.lengths").write_bytes(mixed)
    folders = sorted({path.parent for path in tmp_path.rglob("*tfevents*")})
    files = [path for folder in folders for path in event_files(folder)]
    files += sorted((REPO / "sample_logs").rglob("*tfevents*"))
    assert len(files) >= 5
    return files


@needs_compiled
def test_the_compiled_walk_finds_what_the_python_walk_finds(tmp_path):
    rng = random.Random(1)
    walked = 0
    for path in _logs(tmp_path):
        data = path.read_bytes()
        cases = [data, data[: len(data) // 2], data[:-3], data[:11], b""]
        for _ in range(30):  # one byte flipped anywhere: a length, a length CRC, a payload, a payload CRC
            damaged = bytearray(data)
            damaged[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            cases.append(bytes(damaged))
        for buffer in cases:
            raw, position, payloads_ok = compiled.walk(buffer)
            assert (np.frombuffer(raw, np.int64).tolist(), position, payloads_ok) == expected_walk(buffer), path
            walked += 1
    assert walked > 150


@needs_compiled
def test_the_compiled_crc_is_crc32c_both_ways():
    import crc32c

    rng = random.Random(2)
    for length in [*range(0, 70), 1000, 4099, 1 << 16]:
        data = bytes(rng.randrange(256) for _ in range(length))
        assert compiled.crc32c(data) == compiled.crc32c_by_tables(data) == crc32c.crc32c(data), length
    assert compiled.crc32c(memoryview(b"123456789")) == 0xE3069283  # CRC-32C's check value


def _blocks(path, mapped, piece=(0, None)):
    with open(path, "rb") as stream:
        found = []
        for item in blocks.iter_record_blocks(stream, path.stat().st_size, *piece, mapped=mapped):
            if isinstance(item, RecordProblem):
                found.append(item)
            else:
                found.append((item.offset, item.starts.tolist(), item.lengths.tolist(), item.payloads_ok))
        return found


def test_blocks_from_a_memory_map_are_the_blocks_read(tmp_path):
    with EventWriter(tmp_path / "big") as writer:
        for step in range(60_000):  # about 5 MB: more than one block
            writer.scalar("loss", step / 3, step=step)
    (path,) = event_files(tmp_path / "big")
    size = path.stat().st_size
    cut = tmp_path / "cut" / path.name
    cut.parent.mkdir()
    cut.write_bytes(path.read_bytes()[: size - 7])
    for file, piece in [(path, (0, None)), (path, (size // 3, 2 * size // 3)), (cut, (0, None))]:
        read = _blocks(file, mapped=False, piece=piece)
        assert _blocks(file, mapped=True, piece=piece) == read
        assert sum(len(item[1]) for item in read if not isinstance(item, RecordProblem)) > 10_000
    assert isinstance(_blocks(cut, mapped=True)[-1], RecordProblem)


def test_a_file_that_cannot_be_mapped_is_read_instead(tmp_path, monkeypatch):
    """Some file systems (FUSE mounts) refuse mmap: each block is then read, to the same blocks."""
    with EventWriter(tmp_path / "big") as writer:
        for step in range(60_000):
            writer.scalar("loss", step / 3, step=step)
    (path,) = event_files(tmp_path / "big")
    read = _blocks(path, mapped=False)

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")  # what mmap says on a file system that cannot map

    monkeypatch.setattr(blocks.mmap, "mmap", refuse)
    assert _blocks(path, mapped=True) == read


def test_a_record_walk_the_variable_does_not_name_is_a_one_line_error(tmp_path):
    with EventWriter(tmp_path / "logs" / "run") as writer:
        writer.scalar("loss", 0.5, step=1)
    proc = run_module("inspect", tmp_path / "logs", env={blocks.RECORD_WALK_VARIABLE: "pyhton"})
    assert proc.returncode != 0
    assert "TBIMG_RECORD_WALK='pyhton' is not a record walk" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    for walk in ("python", "compiled", ""):
        assert run_module("inspect", tmp_path / "logs", env={blocks.RECORD_WALK_VARIABLE: walk}).returncode == 0
