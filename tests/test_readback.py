"""`inspect` and `export` on logs from tbimg, from tf.summary.image and from legacy writers."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli.events.records import frame
from tbimg_cli.events.writer import EventWriter
from tbimg_cli.logs.export import safe_component

from .helpers import decode_png, event_files, heavy_modules_after

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
    assert "Exported 6 images" in result.stdout
    written = sorted((tmp_path / "out" / "mine" / "pictures").iterdir())
    assert [p.name for p in written] == [f"step-0-{i}.png" for i in range(4)] + ["step-5-0.png", "step-5-1.png"]
    for index in range(4):
        assert np.array_equal(
            decode_png((tmp_path / "out/mine/pictures" / f"step-0-{index}.png").read_bytes()), IMAGES[index, :, :, 0]
        )


def test_export_filters_by_tag_run_and_step(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    out = cli.json("export", logs, "--out", tmp_path / "out", "--tag", "pictures", "--run", "mine", "--step", "5")
    assert out["images"] == 2
    missing = cli("export", logs, "--out", tmp_path / "out2", "--tag", "nope")
    assert missing.exit_code == 1 and "nothing to export" in missing.stderr and "tag 'nope'" in missing.stderr


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
    from tbimg_cli.events.png import encode_pngs

    png = encode_pngs(IMAGES[:1])[0]
    logs = _legacy_logs(tmp_path / "logs", png, tag=tag)
    out = tmp_path / "out"
    result = cli.json("export", logs, "--out", out, "--tag", "^" + re.escape(tag) + "$")
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
    assert len(problems) == 1 and not problems[0]["note"] and 0 < problems[0]["offset"] < len(data)


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


# Hostile logs: every problem is reported with its file, and reading goes on.


def _event_file(folder: Path, *values, step: int = 0) -> Path:
    """An event file whose one summary holds the given Summary.Value protos, written as given."""
    from tensorboard.compat.proto import event_pb2, summary_pb2

    folder.mkdir(parents=True, exist_ok=True)
    events = [
        event_pb2.Event(wall_time=1.0, file_version="brain.Event:2"),
        event_pb2.Event(wall_time=2.0, step=step, summary=summary_pb2.Summary(value=list(values))),
    ]
    path = folder / "events.out.tfevents.1.host.1.0"
    path.write_bytes(b"".join(frame(e.SerializeToString()) for e in events))
    return path


def _tensor_value(tag: str, plugin: str, **tensor):
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2

    shape = tensor.pop("shape", [])
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin)),
        tensor=tensor_pb2.TensorProto(
            tensor_shape=tensor_shape_pb2.TensorShapeProto(
                dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in shape]
            ),
            **tensor,
        ),
    )


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (dict(tag="two", plugin="scalars", dtype=1, float_val=[1.0, 2.0], shape=[2]), "holds 2"),
        (dict(tag="empty", plugin="scalars", dtype=1, shape=[0]), "holds 0"),
        (dict(tag="wide", plugin="images", dtype=7, string_val=[b"abc", b"5", b"png"], shape=[3]), "must be numbers"),
        (dict(tag="short", plugin="images", dtype=7, string_val=[b"5"], shape=[1]), "has 1 strings"),
    ],
)
def test_a_malformed_value_is_reported_and_the_rest_is_read(cli, tmp_path, bad, why):
    logs = _tbimg_logs(tmp_path / "logs")
    path = _event_file(logs / "odd", _tensor_value(**bad))
    result = cli("inspect", logs)
    assert result.exit_code == 1, result.output
    assert str(path) in result.stderr and "at byte" in result.stderr and why in result.stderr
    assert "Traceback" not in result.output and "unexpected" not in result.output
    assert "pictures" in result.stdout and "loss" in result.stdout  # the valid run is still listed
    if bad["plugin"] == "images":  # export reads images only
        exported = cli("export", logs, "--out", tmp_path / "out")
        assert exported.exit_code == 1 and why in exported.stderr
        assert (tmp_path / "out" / "mine" / "pictures").is_dir()


def test_files_that_are_not_regular_are_skipped_with_a_note(cli, tmp_path):
    logs = _tbimg_logs(tmp_path / "logs")
    odd = logs / "odd"
    odd.mkdir()
    os.mkfifo(odd / "events.out.tfevents.1.fifo.1.0")  # opening it would block forever
    os.symlink(odd / "nowhere", odd / "events.out.tfevents.2.dangling.1.0")
    os.symlink(odd / "events.out.tfevents.3.loop.1.0", odd / "events.out.tfevents.3.loop.1.0")
    os.symlink(logs, logs / "mine" / "back-up")  # a folder loop: not followed
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "tbimg_cli", "inspect", str(logs)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("Note:") == 3 and "skipped" in proc.stderr and "Traceback" not in proc.stderr
    assert "pictures" in proc.stdout


def test_an_impossible_record_length_is_corruption_not_a_running_writer(cli, tmp_path):
    from tbimg_cli.events.records import masked_crc32c

    logs = _tbimg_logs(tmp_path / "logs")
    (path,) = event_files(logs / "mine")
    length = (2**63).to_bytes(8, "little")
    path.write_bytes(path.read_bytes() + length + masked_crc32c(length).to_bytes(4, "little") + b"x" * 20)
    result = cli("inspect", logs)
    assert result.exit_code == 1 and "beyond any record" in result.stderr
    assert "writer may still be running" not in result.stderr


def test_export_exits_1_after_exporting_what_is_valid(cli, tmp_path):
    logs, path = _corrupt_logs(tmp_path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # the last record (a scalar): the images before it are whole
    path.write_bytes(bytes(data))
    result = cli("export", logs, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "Exported 6 images" in result.stdout and "CRC" in result.stderr
    assert len(list((tmp_path / "out").rglob("*.png"))) == 6


def test_tags_that_would_make_a_file_and_a_folder_of_one_path_both_export(cli, tmp_path):
    with EventWriter(tmp_path / "logs" / "r") as writer:
        writer.image("a", IMAGES[:1], step=0)
        writer.image("a/step-0-0.png", IMAGES[1:2], step=0)
        writer.image("b/step-0-0.png/x", IMAGES[2:3], step=0)
        writer.image("b", IMAGES[3:4], step=0)
    result = cli("export", tmp_path / "logs", "--out", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    files = [Path(f) for f in json.loads(result.stdout)["files"]]
    assert len(files) == len(set(files)) == 4 and all(f.is_file() for f in files)
    pixels = sorted(decode_png(f.read_bytes()).tobytes() for f in files)
    assert pixels == sorted(IMAGES[i, :, :, 0].tobytes() for i in range(4))


def test_piped_inspect_prints_whole_tab_separated_rows(tmp_path):
    import subprocess
    import sys

    long_run = "a-run-name-that-is-much-longer-than-a-narrow-terminal-would-show-in-one-column"
    with EventWriter(tmp_path / "logs" / long_run) as writer:
        writer.image("Confusion Matrix", np.zeros((850, 800), np.uint8), step=0)
    proc = subprocess.run(
        [sys.executable, "-m", "tbimg_cli", "inspect", str(tmp_path / "logs")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "40"},
    )
    header, row = proc.stdout.splitlines()
    assert header.split("\t")[:2] == ["run", "tag"]
    assert row.split("\t") == [long_run, "Confusion Matrix", "images", "0 (1)", "1", "800x850"]
