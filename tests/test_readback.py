"""`inspect` and `export` on logs from tbimg, from tf.summary.image and from legacy writers."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli.readback import safe_component
from tbimg_cli.records import frame
from tbimg_cli.writer import EventWriter

from .conftest import decode_png, event_files, heavy_modules_after

IMAGES = (np.arange(4 * 5 * 6) * 11 % 256).astype(np.uint8).reshape(4, 5, 6, 1)


def _tbimg_logs(root: Path) -> Path:
    with EventWriter(root / "mine") as writer:
        writer.image("pictures", IMAGES, step=0)
        writer.image("pictures", IMAGES[:2], step=5)
        writer.scalar("loss", 0.25, step=0)
        writer.scalar("loss", 0.125, step=1)
    return root


def _legacy_logs(root: Path, encoded: bytes, tag: str = "legacy") -> Path:
    """What tensorboardX / torch write: Summary.Image values, simple_value scalars, no plugin metadata."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    folder = root / "torch"
    folder.mkdir(parents=True)
    events = [
        event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"),
        event_pb2.Event(
            step=3,
            summary=summary_pb2.Summary(
                value=[
                    summary_pb2.Summary.Value(
                        tag=tag,
                        image=summary_pb2.Summary.Image(height=5, width=6, colorspace=1, encoded_image_string=encoded),
                    ),
                    summary_pb2.Summary.Value(tag="acc", simple_value=0.5),
                ]
            ),
        ),
    ]
    (folder / "events.out.tfevents.1.host.1.0").write_bytes(b"".join(frame(e.SerializeToString()) for e in events))
    return root


def _jpeg(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


def _tags(summary: dict) -> dict:
    return {(t["run"], t["tag"]): t for t in summary["tags"]}


def test_inspect_tbimg_logs(cli, tmp_path):
    summary = cli.json("inspect", _tbimg_logs(tmp_path / "logs"))
    tags = _tags(summary)
    pictures = tags[("mine", "pictures")]
    assert pictures["plugin"] == "images" and pictures["samples"] == 4
    assert (pictures["width"], pictures["height"]) == (6, 5)
    assert pictures["steps"] == {"first": 0, "last": 5, "count": 2}
    loss = tags[("mine", "loss")]
    assert loss["plugin"] == "scalars" and loss["last_value"] == 0.125 and loss["steps"]["count"] == 2
    assert summary["problems"] == []


def test_inspect_and_export_tf_summary_image_logs(cli, tmp_path):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tmp_path / "logs" / "tf"))
    with writer.as_default():
        tf.summary.image("tf images", IMAGES, step=2, max_outputs=4)
    writer.close()
    summary = cli.json("inspect", tmp_path / "logs")
    assert _tags(summary)[("tf", "tf images")]["samples"] == 4
    exported = cli.json("export", tmp_path / "logs", "--out", tmp_path / "out")
    assert exported["images"] == 4
    for index in range(4):
        png = tmp_path / "out" / "tf" / "tf images" / f"step-2-{index}.png"
        assert np.array_equal(decode_png(png.read_bytes()), IMAGES[index, :, :, 0])


def test_export_keeps_the_original_bytes_and_decodes_to_the_pixels(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    result = cli("export", logs, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "Exported 6 image(s)" in result.stdout
    written = sorted((tmp_path / "out" / "mine" / "pictures").iterdir())
    assert [p.name for p in written] == [f"step-0-{i}.png" for i in range(4)] + ["step-5-0.png", "step-5-1.png"]
    for index in range(4):
        assert np.array_equal(decode_png((tmp_path / "out/mine/pictures" / f"step-0-{index}.png").read_bytes()), IMAGES[index, :, :, 0])


def test_export_filters_by_tag_run_and_step(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    out = cli.json("export", logs, "--out", tmp_path / "out", "--tag", "pictures", "--run", "mine", "--step", "5")
    assert out["images"] == 2
    missing = cli("export", logs, "--out", tmp_path / "out2", "--tag", "nope")
    assert missing.exit_code == 1 and "no images" in missing.stderr and "tag 'nope'" in missing.stderr


def test_legacy_image_values_are_read_and_jpeg_stays_jpeg(cli, tmp_path):
    jpeg = _jpeg(IMAGES[0, :, :, 0])
    logs = _legacy_logs(tmp_path / "logs", jpeg)
    tags = _tags(cli.json("inspect", logs))
    assert tags[("torch", "legacy")]["plugin"] == "images" and tags[("torch", "legacy")]["width"] == 6
    assert tags[("torch", "acc")]["plugin"] == "scalars" and tags[("torch", "acc")]["last_value"] == 0.5
    cli.json("export", logs, "--out", tmp_path / "out")
    assert (tmp_path / "out" / "torch" / "legacy" / "step-3-0.jpg").read_bytes() == jpeg


def test_export_refuses_to_overwrite_unless_forced(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    assert cli("export", logs, "--out", tmp_path / "out").exit_code == 0
    target = tmp_path / "out" / "mine" / "pictures" / "step-0-0.png"
    target.write_bytes(b"mine")
    again = cli("export", logs, "--out", tmp_path / "out")
    assert again.exit_code == 1 and "--force" in again.stderr
    assert target.read_bytes() == b"mine"  # nothing was touched
    forced = cli("export", logs, "--out", tmp_path / "out", "--force")
    assert forced.exit_code == 0 and target.read_bytes() != b"mine"


@pytest.mark.parametrize("tag", ["../../etc/x", "/abs", "con:", "a" * 300, "..", "C:\\windows\\x", "ok/../../up"])
def test_hostile_tags_export_under_out(cli, tmp_path, tag):
    from tbimg_cli.writer import encode_pngs

    png = encode_pngs(IMAGES[:1])[0]
    logs = _legacy_logs(tmp_path / "logs", png, tag=tag)
    out = tmp_path / "out"
    result = cli.json("export", logs, "--out", out, "--tag", tag)
    (path,) = [Path(p) for p in result["files"]]
    assert path.resolve().is_relative_to(out.resolve())
    assert path.read_bytes() == png
    for part in path.relative_to(out).parts:
        assert part not in ("", ".", "..") and len(part) <= 100 and ":" not in part and "\\" not in part
    assert sorted(p for p in tmp_path.iterdir()) == [tmp_path / "logs", out]


def test_safe_component_rejects_device_names():
    assert safe_component("con") == "_con" and safe_component("NUL.txt") == "_NUL.txt"


def _corrupt_logs(tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    (path,) = event_files(logs / "mine")
    return logs, path


def test_flipped_byte_is_reported_with_file_and_offset(cli, tmp_path):
    logs, path = _corrupt_logs(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = cli("inspect", logs)
    assert result.exit_code == 1
    assert str(path) in result.stderr and "at byte" in result.stderr and "CRC" in result.stderr
    assert "Traceback" not in result.output
    problems = json.loads(cli("inspect", logs, "--json").stdout)["problems"]
    assert len(problems) == 1 and not problems[0]["truncated_tail"] and 0 < problems[0]["offset"] < len(data)


def test_cut_last_record_is_a_note_not_an_error(cli, tmp_path):
    logs, path = _corrupt_logs(tmp_path)
    path.write_bytes(path.read_bytes()[:-7])
    result = cli("inspect", logs)
    assert result.exit_code == 0
    assert "Note:" in result.stderr and str(path) in result.stderr
    tags = _tags(json.loads(cli("inspect", logs, "--json").stdout))
    assert tags[("mine", "loss")]["steps"]["count"] == 1  # read up to the last whole record


def test_garbage_file_does_not_crash_and_other_files_are_read(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    (logs / "junk").mkdir()
    (logs / "junk" / "events.out.tfevents.0.x").write_bytes(os.urandom(100))
    result = cli("inspect", logs)
    assert result.exit_code == 1 and "junk" in result.stderr
    assert "pictures" in result.stdout


def test_missing_logdir_is_one_line(cli, tmp_path):
    result = cli("inspect", tmp_path / "nope")
    assert result.exit_code == 1 and "does not exist" in result.stderr
    (tmp_path / "a-file").write_text("")
    result = cli("inspect", tmp_path / "a-file")
    assert result.exit_code == 1 and "is a file" in result.stderr


def test_out_that_is_a_file_is_refused(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    (tmp_path / "out").write_text("keep")
    result = cli("export", logs, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "is a file" in result.stderr and "Traceback" not in result.output
    assert (tmp_path / "out").read_text() == "keep"


def test_inspect_and_export_import_no_tensorflow(tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    heavy, proc = heavy_modules_after(["inspect", str(logs)])
    assert proc.returncode == 0 and "pictures" in proc.stdout, proc.stderr
    assert heavy == []
    heavy, proc = heavy_modules_after(["export", str(logs), "--out", str(tmp_path / "o")])
    assert proc.returncode == 0 and heavy == []
