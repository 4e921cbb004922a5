"""The `tbimg` TensorBoard tab's Python side: the index of image records, the routes, a real TensorBoard.

The index lists every step (TensorBoard keeps 10), reads one record's bytes per image, follows a file
that grows, and reads TF 1's `Summary.Image` (tensorboardX, PyTorch) as well as TF 2's tensors. The
routes take run, tag, step and sample, never a path, and never answer with something a browser runs.
"""

from __future__ import annotations

import io
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tbimg_cli import log_images
from tbimg_cli.errors import LogReadError
from tbimg_cli.events.records import frame
from tbimg_cli.events.writer import EventWriter
from tbimg_cli.serve.index import ImageIndex
from tbimg_cli.serve.plugin import TbimgPlugin

from .helpers import Served, free_port


def png(value: int, size=(6, 5)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0]), value, np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def legacy_image_event(tag: str, step: int, data: bytes, width: int = 6, height: int = 5) -> bytes:
    """One record as tensorboardX and PyTorch's SummaryWriter write an image: a TF 1 `Summary.Image`."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    image = summary_pb2.Summary.Image(height=height, width=width, colorspace=1, encoded_image_string=data)
    event = event_pb2.Event(
        wall_time=time.time(),
        step=step,
        summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, image=image)]),
    )
    return frame(event.SerializeToString())


def legacy_run(folder: Path, steps: range, tag: str = "legacy") -> None:
    from tensorboard.compat.proto import event_pb2

    folder.mkdir(parents=True, exist_ok=True)
    head = frame(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
    records = b"".join(legacy_image_event(tag, step, png(step)) for step in steps)
    (folder / "events.out.tfevents.1.host.1.0.v2").write_bytes(head + records)


@pytest.fixture
def logdir(tmp_path):
    for run in ("a", "b"):
        for step in range(0, 30, 1 if run == "a" else 3):
            log_images(tmp_path / run, "samples", np.full((2, 5, 6), step, np.uint8), step)
    legacy_run(tmp_path / "tbx", range(20))
    return tmp_path


def test_the_index_lists_every_step_of_every_series_in_both_forms(logdir):
    index = ImageIndex(str(logdir))
    index.refresh()
    listed = {(s["run"], s["tag"]): s for s in index.listing()}
    assert set(listed) == {("a", "samples"), ("b", "samples"), ("tbx", "legacy")}
    assert listed[("a", "samples")]["steps"] == {"count": 30, "first": 0, "last": 29}
    assert (listed[("a", "samples")]["samples"], listed[("a", "samples")]["width"]) == (2, 6)
    assert [s["step"] for s in index.steps("b", "samples")] == list(range(0, 30, 3))
    assert listed[("tbx", "legacy")]["steps"]["count"] == 20  # every step, where TensorBoard keeps 10
    assert index.sample("tbx", "legacy", 13, 0) == png(13)
    stored = index.sample("a", "samples", 17, 1)
    assert np.asarray(Image.open(io.BytesIO(stored))).max() == 17


def test_the_index_follows_a_growing_file_and_waits_for_a_record_still_being_written(tmp_path):
    legacy_run(tmp_path / "run", range(3))
    index = ImageIndex(str(tmp_path))
    index.refresh()
    path = next((tmp_path / "run").iterdir())
    record = legacy_image_event("legacy", 3, png(3))
    with open(path, "ab") as file:
        file.write(record[:20])  # a writer half-way through a record
    index.refresh()
    assert [s["step"] for s in index.steps("run", "legacy")] == [0, 1, 2]
    with open(path, "ab") as file:
        file.write(record[20:] + legacy_image_event("legacy", 4, png(4)))
    index.refresh()
    assert [s["step"] for s in index.steps("run", "legacy")] == [0, 1, 2, 3, 4]
    assert index.sample("run", "legacy", 4, 0) == png(4)


def write_indexed_run(folder: Path, steps: range, writer: EventWriter | None = None) -> EventWriter:
    """Images of two tags with scalars between them, a flush (a drain, and index lines) after each step."""
    writer = writer or EventWriter(folder)
    for step in steps:
        writer.image("samples", np.full((3, 4, 5), step, np.uint8), step)
        writer.scalar("loss", 1.0 / (step + 1), step)
        if step % 2:
            writer.image("other", np.full((7, 8), step, np.uint8), step)
        writer.flush()
    return writer


def listed_by(logdir: Path) -> tuple[list, dict]:
    index = ImageIndex(str(logdir))
    index.refresh()
    return index.listing(), {key: index.steps(*key) for key in index.series}


def test_tbimgs_image_index_lists_what_the_walk_finds_as_the_file_grows(tmp_path):
    writer = write_indexed_run(tmp_path / "run", range(6))
    index = ImageIndex(str(tmp_path))
    index.refresh()
    write_indexed_run(tmp_path / "run", range(6, 12), writer)  # still writing: the index follows
    index.refresh()
    writer.close()
    (event_file,) = (tmp_path / "run").glob("*tfevents*")
    (index_file,) = (tmp_path / "run").glob("*tbimgindex*")
    assert "tfevents" not in index_file.name  # TensorBoard reads only files whose names hold it
    from_index = index.listing(), {key: index.steps(*key) for key in index.series}
    assert event_file.stat().st_size > 12 * 3 * 60 and index_file.stat().st_size < 1200
    index_file.unlink()
    walked = ImageIndex(str(tmp_path))
    walked.refresh()
    assert from_index == (walked.listing(), {key: walked.steps(*key) for key in walked.series})  # the same
    assert [s["step"] for s in from_index[1][("run", "other")]] == list(range(1, 12, 2))
    assert index.sample("run", "other", 11, 0) == walked.sample("run", "other", 11, 0)
    assert np.asarray(Image.open(io.BytesIO(index.sample("run", "other", 11, 0)))).max() == 11


def test_an_image_index_is_a_hint_checked_against_the_records(tmp_path):
    write_indexed_run(tmp_path / "run", range(8)).close()
    (event_file,) = (tmp_path / "run").glob("*tfevents*")
    (index_file,) = (tmp_path / "run").glob("*tbimgindex*")
    index = ImageIndex(str(tmp_path))
    index.refresh()
    # A record's length damaged: the walk would stop there, the index still lists the later steps, and
    # the damaged one gives a clear answer when asked for.
    offset = next(e.offset for e in index.series[("run", "samples")].entries if e.step == 3)
    data = bytearray(event_file.read_bytes())
    data[offset] ^= 0xFF
    event_file.write_bytes(bytes(data))
    damaged = ImageIndex(str(tmp_path))
    damaged.refresh()
    assert [s["step"] for s in damaged.steps("run", "samples")] == list(range(8))
    with pytest.raises(LogReadError, match="no record starts"):
        damaged.sample("run", "samples", 3, 0)
    assert np.asarray(Image.open(io.BytesIO(damaged.sample("run", "samples", 7, 2)))).max() == 7
    # An index that claims more than its file holds is not this file's: the file is walked instead.
    index_file.write_bytes(b'[12,99,1.0,1,2,2,"forged"]\n{"to":%d}\n' % (len(data) + 1))
    event_file.write_bytes(bytes(data[:offset]))  # and cut before the damage, so the walk reads it all
    forged = ImageIndex(str(tmp_path))
    forged.refresh()
    assert {tag for _, tag in forged.series} == {"samples", "other"}
    assert [s["step"] for s in forged.steps("run", "samples")] == [0, 1, 2]
    # Forged offsets inside the file: listed, and each a clear error when asked for; no crash.
    index_file.write_bytes(b'[12,99,1.0,1,2,2,"forged"]\n{"to":%d}\n' % offset)
    forged = ImageIndex(str(tmp_path))
    forged.refresh()
    with pytest.raises(LogReadError):
        forged.sample("run", "forged", 99, 0)


def test_appending_to_an_event_file_without_an_index_starts_none(tmp_path):
    legacy_run(tmp_path / "run", range(3))
    (event_file,) = (tmp_path / "run").iterdir()
    write_indexed_run(tmp_path / "run", range(3, 5), EventWriter(tmp_path / "run", append_to=event_file)).close()
    assert list((tmp_path / "run").iterdir()) == [event_file]  # an index from here on would hide steps 0-2
    _, steps = listed_by(tmp_path)
    assert [s["step"] for s in steps[("run", "legacy")]] == [0, 1, 2]
    assert [s["step"] for s in steps[("run", "samples")]] == [3, 4]


def client_for(logdir: Path):
    from tensorboard.backend import application
    from werkzeug.test import Client

    plugin = TbimgPlugin(SimpleNamespace(logdir=str(logdir), flags=SimpleNamespace(reload_interval=0)))
    return Client(application.TensorBoardWSGI([plugin]))


def test_routes_answer_json_and_stored_bytes_with_tensorboards_headers(logdir):
    client = client_for(logdir)
    series = client.get("/data/plugin/tbimg/series").get_json()
    assert {(s["run"], s["tag"]) for s in series} == {("a", "samples"), ("b", "samples"), ("tbx", "legacy")}
    steps = client.get("/data/plugin/tbimg/steps", query_string={"run": "b", "tag": "samples"}).get_json()
    assert [s["step"] for s in steps] == list(range(0, 30, 3)) and steps[0]["samples"] == 2
    answer = client.get("/data/plugin/tbimg/image", query_string={"run": "tbx", "tag": "legacy", "step": 7})
    assert answer.status_code == 200 and answer.data == png(7)
    assert answer.headers["Content-Type"] == "image/png" and answer.headers["X-Content-Type-Options"] == "nosniff"
    page = client.get("/data/plugin_entry.html", query_string={"name": "tbimg"})  # TensorBoard's page, its CSP kept
    assert "script-src" in page.headers["Content-Security-Policy"] and b"index.js" in page.data
    script = client.get("/data/plugin/tbimg/index.js")
    assert script.status_code == 200 and b"export async function render" in script.data


@pytest.mark.parametrize(
    "query",
    [
        {"run": "../a", "tag": "samples", "step": 1},
        {"run": "a/../b", "tag": "samples", "step": 1},
        {"run": "/etc", "tag": "passwd", "step": 0},
        {"run": "a", "tag": "samples", "step": 999},
        {"run": "a", "tag": "samples", "step": 1, "sample": 5},
    ],
)
def test_a_name_or_number_that_is_not_in_the_index_reads_nothing(logdir, query):
    answer = client_for(logdir).get("/data/plugin/tbimg/image", query_string=query)
    assert answer.status_code == 404 and answer.headers["Content-Type"].startswith("text/plain")


def test_hostile_records_get_a_clear_answer_never_a_page(tmp_path):
    from tensorboard.compat.proto import event_pb2

    run = tmp_path / "evil"
    run.mkdir()
    head = frame(event_pb2.Event(wall_time=1.0, file_version="brain.Event:2").SerializeToString())
    html = b"<html><script>alert(1)</script></html>"
    forged = bytearray(legacy_image_event("x", 1, png(1)))
    forged[0:8] = (2**40).to_bytes(8, "little")  # a length claiming a terabyte: its CRC fails
    (run / "events.out.tfevents.1.h.1.0.v2").write_bytes(head + legacy_image_event("x", 0, html) + bytes(forged))
    client = client_for(tmp_path)
    answer = client.get("/data/plugin/tbimg/image", query_string={"run": "evil", "tag": "x", "step": 0})
    assert answer.status_code == 415 and b"<script>" not in answer.data
    assert (
        client.get("/data/plugin/tbimg/image", query_string={"run": "evil", "tag": "x", "step": "x"}).status_code == 400
    )
    steps = client.get("/data/plugin/tbimg/steps", query_string={"run": "evil", "tag": "x"}).get_json()
    assert [s["step"] for s in steps] == [0]  # the forged record is where reading stopped, not a hang


@pytest.mark.slow
def test_tbimg_serve_starts_tensorboard_with_the_tab_loaded_by_its_entry_point(serve, logdir):
    served = serve("serve", logdir, "--port", free_port())
    listing = served.wait_for(lambda: served.get_json("/data/plugins_listing"))
    assert "tbimg" in listing and listing["tbimg"]["tab_name"] == "tbimg"
    series = served.wait_for(lambda: served.get_json("/data/plugin/tbimg/series"))
    assert {(s["run"], s["tag"]) for s in series} >= {("a", "samples"), ("tbx", "legacy")}
    assert served.get("/data/plugin/tbimg/image", run="tbx", tag="legacy", step=19) == png(19)
    assert served.interrupt() == 0


@pytest.mark.slow
@pytest.mark.parametrize("load_fast", ["true", "false"])
def test_tensorboards_own_command_shows_the_tab_with_either_loader(tmp_path, logdir, load_fast):
    """`tensorboard --logdir` of an environment with tbimg: the entry point loads the tab, whichever loader
    TensorBoard's own dashboards use (`true`: its Rust data server, a process of its own)."""
    import sys

    command = [str(Path(sys.executable).parent / "tensorboard")]
    args = ["--logdir", logdir, "--port", free_port(), "--host", "127.0.0.1", "--load_fast", load_fast]
    served = Served(args, tmp_path, command=command)
    try:
        listing = served.wait_for(lambda: served.get_json("/data/plugins_listing"))
        assert listing["tbimg"]["tab_name"] == "tbimg"
        series = served.wait_for(lambda: served.get_json("/data/plugin/tbimg/series"))
        assert {(s["run"], s["tag"]) for s in series} == {("a", "samples"), ("b", "samples"), ("tbx", "legacy")}
        steps = served.get_json("/data/plugin/tbimg/steps", run="b", tag="samples")
        assert [s["step"] for s in steps] == list(range(0, 30, 3))
        assert served.get("/data/plugin/tbimg/image", run="tbx", tag="legacy", step=7) == png(7)
        runs = served.wait_for(lambda: served.get_json("/data/runs") or None)  # TensorBoard's own loader ran too
        assert set(runs) >= {"a", "b", "tbx"}
    finally:
        served.close()
