"""`tbimg log` at its edges: formats it cannot read, nothing to log, bare array files, broken links, files
written in chunks while `--watch` looks, EXIF-rotated JPEGs, and what an idle watch costs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PIL import Image

from .helpers import load_run
from .test_file_sources import logged, save, summaries, watched


def test_heic_files_say_why_nothing_was_logged_and_leave_no_run_folder(cli, tmp_path):
    phone = tmp_path / "phone"
    phone.mkdir()
    for name in ("IMG_0001.HEIC", "IMG_0002.heic"):
        (phone / name).write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    for args in ([str(phone / "*.HEIC")], [phone], [phone / "IMG_0002.heic"]):
        result = cli("log", *args, "--run-dir", tmp_path / "run", "--json")
        assert result.exit_code == 1, result.stdout
        payload = json.loads(result.stdout)
        assert payload["problems"] and all("HEIC images cannot be read" in p["message"] for p in payload["problems"])
        assert "pillow-heif" in payload["error"] and "run_dir" not in payload
        assert not (tmp_path / "run").exists()  # made for this call, and empty: removed


def test_paths_that_hold_nothing_to_log_exit_1(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    result = cli("log", tmp_path / "empty", "--logdir", tmp_path / "logs")
    assert result.exit_code == 1 and "no image files here" in result.stderr
    assert not list((tmp_path / "logs").rglob("events.out.tfevents*"))


def test_a_bare_array_file_is_tagged_by_its_name_and_numbered_ones_stay_one_tag(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    np.save(tmp_path / "masks.npy", np.zeros((2, 8, 8), bool))
    for epoch in (1, 2):
        np.save(tmp_path / f"epoch_{epoch}.npy", np.full((8, 8), epoch, np.uint8))
    payload, run = logged(cli, "masks.npy", "epoch_1.npy", "epoch_2.npy", "--logdir", tmp_path / "logs")
    assert sorted(payload["tags"]) == ["epoch", "masks"]
    assert [step for step, _ in summaries(run)["epoch"]] == [1, 2]


def test_a_broken_link_is_named_as_one(cli, tmp_path):
    (tmp_path / "shots").mkdir()
    save(tmp_path / "shots" / "ok_1.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "shots" / "dangling_2.png")
    for path in (tmp_path / "shots", tmp_path / "shots" / "dangling_2.png"):
        result = cli("log", path, "--logdir", tmp_path / "logs", "--json")
        (problem,) = json.loads(result.stdout)["problems"]
        assert result.exit_code == 1 and problem["message"].startswith("is a broken link (to ")


CHUNKED_WRITER = """
    import io, sys, time
    import numpy as np
    from PIL import Image

    folder, kind = sys.argv[1], sys.argv[2]
    for epoch in range(1, 4):
        buffer = io.BytesIO()
        pixels = (np.random.default_rng(epoch).random((96, 128, 3)) * 255).astype(np.uint8)
        Image.fromarray(pixels).save(buffer, kind)
        data = buffer.getvalue()
        with open(f"{folder}/epoch_{epoch}.{kind.lower()}", "wb") as file:
            for start in range(0, len(data), len(data) // 4 + 1):  # in four chunks, a pause after each
                file.write(data[start:start + len(data) // 4 + 1])
                file.flush()
                time.sleep(0.6)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["WEBP", "TIFF", "BMP"])
def test_watch_waits_for_files_written_in_chunks(tmp_path, kind):
    folder, run = tmp_path / "frames", tmp_path / "run"
    folder.mkdir()

    def write_in_chunks() -> None:
        time.sleep(1)
        args = [sys.executable, "-c", textwrap.dedent(CHUNKED_WRITER), str(folder), kind]
        subprocess.run(args, timeout=120, check=True)

    payload = watched(folder, run, tmp_path, write_in_chunks, lambda: len(summaries(run).get("frames", [])) == 3)
    assert payload["problems"] == [] and payload["files"] == 3, payload
    assert [step for step, _ in summaries(run)["frames"]] == [1, 2, 3]


def test_an_exif_rotated_jpeg_reports_the_size_a_browser_shows(cli, tmp_path):
    pixels = (np.random.default_rng(3).random((20, 40, 3)) * 255).astype(np.uint8)  # 40 wide, 20 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to show": shown 20 wide, 40 high
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif)
    (tmp_path / "cam").mkdir()
    (tmp_path / "cam" / "shot_1.jpg").write_bytes(buffer.getvalue())
    _, run = logged(cli, tmp_path / "cam", "--logdir", tmp_path / "logs")
    (event,) = load_run(run).Tensors("cam")
    width, height = (int(v) for v in event.tensor_proto.string_val[:2])
    assert (width, height) == (20, 40)
    assert event.tensor_proto.string_val[2] == buffer.getvalue()  # the bytes as they are, never re-encoded


def test_an_idle_watch_does_not_list_its_folders_at_every_poll(tmp_path):
    """Idle, a watch looks at its folders' times, not at every file: it lists them again only when one
    changed (or every `RESCAN_SECONDS`). A file added is still logged at the next poll."""
    import _thread
    import threading

    from tbimg_cli.images import sources

    for index in range(50):
        save(tmp_path / "f" / f"frame_{index:03d}.png", index, size=(4, 4))
    session = sources.LogSession(sources.LogSettings(paths=(str(tmp_path / "f"),)), tmp_path / "run", tmp_path)
    session.log_present()
    listings = []
    expand = session.finder.expand
    session.finder.expand = lambda **kw: listings.append(time.monotonic()) or expand(**kw)  # counts, and lists
    threading.Timer(1.2, lambda: save(tmp_path / "f" / "frame_100.png", 7, size=(4, 4))).start()
    threading.Timer(2.5, _thread.interrupt_main).start()
    result = session.watch()
    session.close()
    polls = 2.5 / sources.POLL_SECONDS
    assert len(listings) <= 3 < polls, listings  # the start, the new file's folder change, nothing more
    assert result.files == 51 and 100 in result.steps
