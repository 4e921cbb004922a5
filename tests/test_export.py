"""`tbimg export` of every form (images, text, scalars, animations), its filters, logs in a bucket,
and memory on a large log. Values are checked against TensorBoard's own reader."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tbimg_cli.events.writer import EventWriter

from .helpers import load_run, s3_env


def _logs(root: Path) -> Path:
    """Two runs: tbimg's tensor-form summaries, and a legacy writer's simple_value scalars."""
    with EventWriter(root / "train") as writer:
        for step in range(5):
            colour = np.full((6, 8, 3), step * 50, np.uint8)  # each step its own grey level
            writer.image("progress", colour, step=step)
            writer.scalar("loss", 1.0 / (step + 1), step=step)
            writer.scalar("accuracy", step / 10, step=step)
        writer.image("once", np.zeros((4, 4), np.uint8), step=0)
        writer.text("notes", "| a | b |\n|---|---|\n| 1 | 2 |", step=3)
    from tensorboard.compat.proto import event_pb2, summary_pb2

    from tbimg_cli.events.records import frame

    legacy = root / "legacy"
    legacy.mkdir(parents=True)
    events = [event_pb2.Event(wall_time=1.5, file_version="brain.Event:2")] + [
        event_pb2.Event(
            wall_time=2.0 + step,
            step=step * 10,
            summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="val/acc", simple_value=0.125 * step)]),
        )
        for step in range(4)
    ]
    (legacy / "events.out.tfevents.1.host.1.0").write_bytes(b"".join(frame(e.SerializeToString()) for e in events))
    return root


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _reader_scalars(run_dir: Path, tag: str) -> list[tuple[int, float, float]]:
    """(step, wall_time, value) as TensorBoard's EventAccumulator reads them, whatever the form."""
    from tensorboard.util import tensor_util

    run = load_run(run_dir)
    if tag in run.Tags()["scalars"]:
        return [(e.step, e.wall_time, e.value) for e in run.Scalars(tag)]
    return [(e.step, e.wall_time, float(tensor_util.make_ndarray(e.tensor_proto))) for e in run.Tensors(tag)]


def test_scalars_csv_equals_tensorboards_reader_for_both_forms(cli, tmp_path):
    logs = _logs(tmp_path / "logs")
    result = cli.json("export", logs, "--out", tmp_path / "out")
    assert result["scalar_rows"] == 14
    for run, tags in (("train", ["loss", "accuracy"]), ("legacy", ["val/acc"])):
        rows = _csv(tmp_path / "out" / run / "scalars.csv")
        assert list(rows[0]) == ["tag", "step", "wall_time", "value"]
        for tag in tags:
            mine = [(int(r["step"]), float(r["wall_time"]), float(r["value"])) for r in rows if r["tag"] == tag]
            theirs = _reader_scalars(logs / run, tag)
            assert [m[0] for m in mine] == [t[0] for t in theirs]
            assert np.allclose([m[1:] for m in mine], [t[1:] for t in theirs], rtol=0, atol=1e-6)


def test_text_summaries_become_markdown_files(cli, tmp_path):
    logs = _logs(tmp_path / "logs")
    cli.json("export", logs, "--out", tmp_path / "out", "--tag", "notes")
    (event,) = load_run(logs / "train").Tensors("notes")
    written = (tmp_path / "out" / "train" / "notes" / "step-3.md").read_text()
    assert written.strip() == event.tensor_proto.string_val[0].decode()


def test_animate_makes_one_looping_gif_per_tag_with_steps_in_order(cli, tmp_path):
    from PIL import Image

    logs = tmp_path / "logs"
    with EventWriter(logs / "r") as writer:
        for step in (3, 0, 4, 1, 2):  # written out of order, as resumed training can
            writer.image("progress", np.full((6, 8, 3), step * 50, np.uint8), step=step)
        writer.image("once", np.zeros((4, 4), np.uint8), step=0)
    result = cli.json("export", logs, "--out", tmp_path / "out", "--animate")
    assert result["animations"] == 1
    gif = tmp_path / "out" / "r" / "progress.gif"
    assert not (tmp_path / "out" / "r" / "once.gif").exists()  # one step: nothing to animate
    with Image.open(gif) as image:
        assert image.n_frames == 5 and image.info["loop"] == 0
        levels = []
        for index in range(image.n_frames):
            image.seek(index)
            levels.append(int(np.asarray(image.convert("L"))[0, 0]))
            assert image.info["duration"] > 0
    assert levels == [0, 50, 100, 150, 200]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--run", "^leg"], {"legacy/scalars.csv"}),
        (["--tag", "^(loss|once)$"], {"train/scalars.csv", "train/once/step-0-0.png"}),
        (["--tag", "progress", "--step", "1:2"], {"train/progress/step-1-0.png", "train/progress/step-2-0.png"}),
        (["--tag", "progress", "--step", "4"], {"train/progress/step-4-0.png"}),
        (["--tag", "progress", "--step", "3:"], {"train/progress/step-3-0.png", "train/progress/step-4-0.png"}),
        (["--run", "train", "--tag", "acc", "--step", ":0"], {"train/scalars.csv"}),
    ],
)
def test_filters_compose(cli, tmp_path, args, expected):
    logs = _logs(tmp_path / "logs")
    result = cli.json("export", logs, "--out", tmp_path / "out", *args)
    assert {Path(p).relative_to(tmp_path / "out").as_posix() for p in result["files"]} == expected


def test_a_step_filter_filters_csv_rows_too(cli, tmp_path):
    logs = _logs(tmp_path / "logs")
    cli.json("export", logs, "--out", tmp_path / "out", "--run", "train", "--tag", "loss", "--step", "1:3")
    assert [r["step"] for r in _csv(tmp_path / "out" / "train" / "scalars.csv")] == ["1", "2", "3"]


@pytest.mark.parametrize("step", ["x", "5:2", "1:2:3"])
def test_a_bad_step_range_is_one_line(cli, tmp_path, step):
    result = cli("export", _logs(tmp_path / "logs"), "--out", tmp_path / "out", "--step", step)
    assert result.exit_code == 1 and "--step" in result.stderr and not (tmp_path / "out").exists()


def test_nothing_is_overwritten_without_force_for_every_form(cli, tmp_path):
    logs = _logs(tmp_path / "logs")
    assert cli("export", logs, "--out", tmp_path / "out", "--animate").exit_code == 0
    csv_path = tmp_path / "out" / "train" / "scalars.csv"
    csv_path.write_text("mine")
    again = cli("export", logs, "--out", tmp_path / "out", "--animate")
    assert again.exit_code == 1 and "--force" in again.stderr and csv_path.read_text() == "mine"
    assert cli("export", logs, "--out", tmp_path / "out", "--animate", "--force").exit_code == 0
    assert csv_path.read_text().startswith("tag,step,wall_time,value")


# Logs in a bucket: a real S3-compatible server (moto's) on 127.0.0.1, no patched client.


def _tbimg(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tbimg_cli", *map(str, args)], capture_output=True, text=True, env=env, timeout=120
    )


def test_s3_round_trip_reads_what_a_local_read_reads(cli, tmp_path, s3_server):
    import boto3

    endpoint = s3_server()
    logs = _logs(tmp_path / "logs")
    bucket = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    bucket.create_bucket(Bucket="runs")
    for path in logs.rglob("events.out.tfevents.*"):
        bucket.upload_file(str(path), "runs", f"exp1/{path.relative_to(logs).as_posix()}")
    env = s3_env(endpoint)
    remote = json.loads(_tbimg("inspect", "s3://runs/exp1", "--json", env=env).stdout)
    local = cli.json("inspect", logs)
    assert remote["tags"] == local["tags"] and remote["runs"] == ["legacy", "train"]
    proc = _tbimg("export", "s3://runs/exp1", "--out", tmp_path / "from-s3", "--animate", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    cli.json("export", logs, "--out", tmp_path / "from-disk", "--animate")
    remote_files = sorted(p.relative_to(tmp_path / "from-s3") for p in (tmp_path / "from-s3").rglob("*") if p.is_file())
    local_files = sorted(
        p.relative_to(tmp_path / "from-disk") for p in (tmp_path / "from-disk").rglob("*") if p.is_file()
    )
    assert remote_files == local_files and len(local_files) > 5
    for relative in local_files:
        assert (tmp_path / "from-s3" / relative).read_bytes() == (tmp_path / "from-disk" / relative).read_bytes()
    missing = _tbimg("inspect", "s3://no-such-bucket/x", env=env)
    assert (
        missing.returncode == 1 and "does not exist" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    )


def test_a_refused_credential_is_one_line(s3_server):
    endpoint = s3_server(INITIAL_NO_AUTH_ACTION_COUNT="0")  # the server checks credentials from the first request
    proc = _tbimg("inspect", "s3://runs/exp1", env=s3_env(endpoint, AWS_ACCESS_KEY_ID="nobody"))
    assert proc.returncode == 1
    assert "refused" in proc.stderr and "credentials" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_missing_cloud_package_is_one_line(tmp_path):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "fsspec.py").write_text("raise ImportError('no fsspec here')\n")
    proc = _tbimg("inspect", "s3://runs/x", env={**os.environ, "PYTHONPATH": str(blocker)})
    assert proc.returncode == 1 and "pip install 'tbimg[cloud]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# Memory: reading streams, so a large log costs no more than a small one.


# Started from a small interpreter: a child's peak RSS includes its parent's when it was forked
# (vfork shares the parent's memory until exec), and this test's own process is large.
_MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024)
"""


def _peak_rss_mb(*args) -> tuple[int, float]:
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "tbimg_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    code, megabytes = measured.stdout.split()
    return int(code), float(megabytes)


@pytest.mark.slow
def test_memory_stays_flat_on_a_large_log(tmp_path):
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2

    from tbimg_cli.events.records import frame

    # 400 MB of image summaries (1 MB samples each; read-back never decodes them) and 200,000 scalars,
    # framed directly so that writing the test log takes seconds.
    run = tmp_path / "big" / "run"
    run.mkdir(parents=True)
    blob = os.urandom(1 << 20)
    with open(run / "events.out.tfevents.1.host.1.0", "wb") as out:
        out.write(frame(event_pb2.Event(file_version="brain.Event:2").SerializeToString()))
        plugin = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="images"))
        for step in range(400):
            tensor = tensor_pb2.TensorProto(
                dtype=7,
                tensor_shape=tensor_shape_pb2.TensorShapeProto(dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=3)]),
                string_val=[b"512", b"512", blob],
            )
            value = summary_pb2.Summary.Value(tag="big", metadata=plugin, tensor=tensor)
            out.write(frame(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value])).SerializeToString()))
        for step in range(200_000):
            value = summary_pb2.Summary.Value(tag="loss", simple_value=step / 1000)
            out.write(frame(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[value])).SerializeToString()))
    assert (run / "events.out.tfevents.1.host.1.0").stat().st_size > 400 << 20
    code, inspect_mb = _peak_rss_mb("inspect", tmp_path / "big")
    assert code == 0 and inspect_mb < 150, inspect_mb
    code, export_mb = _peak_rss_mb("export", tmp_path / "big", "--out", tmp_path / "out")
    assert code == 0 and export_mb < 150, export_mb
    assert len(list((tmp_path / "out" / "run" / "big").iterdir())) == 400


def encode_png_header(body: bytes) -> bytes:
    """A PNG signature and IHDR of 4x4 before arbitrary bytes: read-back only looks at the header."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
        + body
    )


def test_the_logdirs_own_events_and_a_run_below_it_never_collide(cli, tmp_path):
    logs = tmp_path / "logs"
    with EventWriter(logs) as writer:  # the logdir itself is a run, "."
        writer.image("sub/x", np.zeros((3, 3), np.uint8), step=0)
        writer.scalar("loss", 1.0, step=0)
    with EventWriter(logs / "sub") as writer:
        writer.image("x", np.full((3, 3), 255, np.uint8), step=0)
        writer.scalar("loss", 2.0, step=0)
    result = cli.json("export", logs, "--out", tmp_path / "out")
    files = [Path(f) for f in result["files"]]
    assert len(files) == len(set(files)) == 4
    assert _csv(tmp_path / "out" / "scalars.csv")[0]["value"] == "1.0"
    assert _csv(tmp_path / "out" / "sub" / "scalars.csv")[0]["value"] == "2.0"


def test_runs_with_non_ascii_names_stay_readable_and_never_share_a_folder(cli, tmp_path):
    """日本, 中国 and __ once all became `__`, merged into one folder with nothing saying which file was whose."""
    logs = tmp_path / "logs"
    runs = ["日本", "中国", "__", "Café", "café"]  # the last two differ only in case
    for value, run in enumerate(runs):
        with EventWriter(logs / run) as writer:
            writer.image("picture", np.full((2, 2), value, np.uint8), step=0)
            writer.scalar("loss", float(value), step=0)
    out = cli.json("export", logs, "--out", tmp_path / "out")
    folders = out["folders"]
    assert sorted(folders) == sorted(runs)
    run_folders = [Path(folders[run]["folder"]) for run in runs]
    assert len({str(f).casefold() for f in run_folders}) == len(runs)  # distinct, even on a case-insensitive disk
    assert run_folders[:3] == [tmp_path / "out" / "日本", tmp_path / "out" / "中国", tmp_path / "out" / "__"]
    for value, run in enumerate(runs):
        picture = Path(folders[run]["tags"]["picture"]) / "step-0-0.png"
        assert picture.parent.parent == Path(folders[run]["folder"])
        from .helpers import decode_png

        assert decode_png(picture.read_bytes()).max() == value  # each run's own image in its own folder
        assert _csv(Path(folders[run]["folder"]) / "scalars.csv")[0]["value"] == str(float(value))


def test_a_name_too_long_in_bytes_is_shortened_within_every_file_systems_limit():
    from tbimg_cli.logs.export import safe_component

    name = safe_component("長" * 90)  # 90 characters, 270 UTF-8 bytes
    assert len(name.encode()) <= 200 and name.startswith("長")
    assert safe_component("a/b") == "a_b" and safe_component("ok: yes?") == "ok_ yes_"
