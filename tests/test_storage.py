"""Logs written straight into a bucket, against a real S3-compatible server (moto's) on 127.0.0.1.

Every writing command and library entry point round-trips through the bucket; objects are only ever
created (versioning shows no second version); an outage mid-run loses nothing; a store gone for good
leaves a spool that `tbimg upload` finishes; a killed writer leaves only whole objects; two writers
share a run folder without overwriting each other.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tbimg_cli.events import records

from .helpers import REPO, TcpProxy, free_port, s3_env, wait_until

BUCKET = "runs"


@dataclass
class Bucket:
    endpoint: str
    client: object
    spools: Path  # the writers' temporary directory, where spool folders go

    def env(self, endpoint: str | None = None, **extra) -> dict:
        settings = {"TBIMG_UPLOAD_GIVE_UP_SECONDS": "5", "TMPDIR": str(self.spools), **extra}
        return s3_env(endpoint or self.endpoint, **settings)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture
def bucket(s3_server, tmp_path) -> Bucket:
    import boto3

    endpoint = s3_server()
    client = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1"
    )
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    spools = tmp_path / "temporary"
    spools.mkdir()
    return Bucket(endpoint, client, spools)


def tbimg(*args, env: dict, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tbimg_cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
    )


def python(script: str, *args, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def inspected(location, env: dict) -> list[dict]:
    proc = tbimg("inspect", location, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["tags"]


def exported(location, out: Path, env: dict) -> dict[str, bytes]:
    proc = tbimg("export", location, "--out", out, env=env)
    assert proc.returncode == 0, proc.stderr
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def shapes(tags: list[dict]) -> list[tuple]:
    """What two trainings with the same seed share, whatever the last digits of their values: each tag's
    run (below its timestamped folder), plugin, steps and samples."""
    return sorted((t["run"].split("/", 2)[-1], t["tag"], t["plugin"], t["steps"]["count"], t["samples"]) for t in tags)


def every_object_is_whole(bucket: Bucket, prefix: str) -> int:
    """Each event-file object reads to its end with every CRC right; returns how many there are."""
    keys = [key for key in bucket.keys(prefix) if "tfevents" in key]
    for key in keys:
        data = bucket.read(key)
        read = list(records.iter_records(io.BytesIO(data), len(data)))
        assert read and all(not isinstance(item, records.RecordProblem) for item in read), key
        assert sum(12 + len(payload) + 4 for _, payload in read) == len(data), key
    return len(keys)


def no_second_versions(bucket: Bucket) -> None:
    versions = bucket.client.list_object_versions(Bucket=BUCKET).get("Versions", [])
    keys = [version["Key"] for version in versions]
    assert keys and len(keys) == len(set(keys)), "an object was written twice"


# Every command and entry point round-trips


@pytest.mark.parametrize(
    "command",
    [
        ["single", "--index", "3"],
        ["grid", "--count", "9"],
        ["plot", "--count", "4"],
        ["log", str(REPO / "docs" / "single.png"), "--tag", "screenshot", "--step", "2"],
    ],
    ids=["single", "grid", "plot", "log"],
)
def test_every_writing_command_round_trips_through_the_bucket(bucket, tmp_path, data_dir, command):
    env = bucket.env()
    options = ["--run-name", "r1", *(["--data-dir", data_dir] if command[0] != "log" else [])]
    remote = tbimg(*command, *options, "--logdir", f"s3://{BUCKET}/logs", "--json", env=env)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["run_dir"].startswith(f"s3://{BUCKET}/logs/")
    assert not list(tmp_path.glob("s3*")) and not Path("s3:").exists()  # no local folder named after the URL
    local = tbimg(*command, *options, "--logdir", tmp_path / "logs", env=env)
    assert local.returncode == 0, local.stderr
    assert inspected(f"s3://{BUCKET}/logs", env) == inspected(tmp_path / "logs", env)
    assert exported(f"s3://{BUCKET}/logs", tmp_path / "a", env) == exported(tmp_path / "logs", tmp_path / "b", env)
    no_second_versions(bucket)


LIBRARY = """
    import sys
    import numpy as np
    from tbimg_cli import ImageLogger, log_confusion_matrix, log_images

    root = sys.argv[1]
    for step in range(3):
        log_images(f"{root}/calls", "samples", np.full((2, 6, 6), 40 * step, np.uint8), step)
        log_confusion_matrix(f"{root}/calls", [0, 1, 2, 2], [0, 2, 2, 1], step, class_names=["a", "b", "c"])
    with ImageLogger(f"{root}/logger") as logger:
        for step in range(20):
            logger.log("noise", np.random.default_rng(step).random((16, 16, 3)), step)
            if step % 5 == 0:
                logger.flush()
"""


def test_the_library_entry_points_round_trip_through_the_bucket(bucket, tmp_path):
    env = bucket.env()
    for root in (f"s3://{BUCKET}/lib", tmp_path / "lib"):
        proc = python(LIBRARY, root, env=env)
        assert proc.returncode == 0 and not proc.stderr, proc.stderr
    remote, local = inspected(f"s3://{BUCKET}/lib", env), inspected(tmp_path / "lib", env)
    assert remote == local and {tag["tag"] for tag in remote} >= {"samples", "noise", "Confusion Matrix"}
    assert (
        exported(f"s3://{BUCKET}/lib", tmp_path / "a", env).keys()
        == exported(tmp_path / "lib", tmp_path / "b", env).keys()
    )
    # At least one object per event file (calls, cm, logger); how many pieces more depends on how many of the
    # flushes, which only wake the upload thread, land while it is still sending the one before.
    assert every_object_is_whole(bucket, "lib/") >= 3
    no_second_versions(bucket)


@pytest.mark.slow
def test_the_keras_callback_writes_into_the_bucket(bucket, tmp_path):
    script = """
        import sys
        import numpy as np
        import keras
        from tbimg_cli import ConfusionMatrixCallback

        keras.utils.set_random_seed(0)  # the same training in the bucket and on disk
        rng = np.random.default_rng(0)
        x, y = rng.random((64, 4)).astype("float32"), rng.integers(0, 3, 64)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile("adam", "sparse_categorical_crossentropy")
        callback = ConfusionMatrixCallback(sys.argv[1], (x, y), class_names=["a", "b", "c"])
        model.fit(x, y, epochs=3, verbose=0, callbacks=[callback])
    """
    for log_dir in (f"s3://{BUCKET}/keras", tmp_path / "keras"):
        proc = python(script, log_dir, env=bucket.env(TF_CPP_MIN_LOG_LEVEL="3"))
        assert proc.returncode == 0, proc.stderr[-2000:]
    remote = inspected(f"s3://{BUCKET}/keras", bucket.env())
    assert shapes(remote) == shapes(inspected(tmp_path / "keras", bucket.env()))
    (matrix,) = [tag for tag in remote if tag["tag"] == "Confusion Matrix"]
    assert matrix["steps"] == {"first": 0, "last": 2, "count": 3}


@pytest.mark.slow
def test_train_cm_into_a_bucket_is_served_epoch_by_epoch_while_it_trains(serve, bucket, data_dir, tmp_path):
    env = bucket.env()
    # About 0.5 s each at batch size 1 on the subset (2 cores), 10 s in all: several times the 2-3 s from an epoch's
    # upload to TensorBoard showing it, so a machine faster or busier than this one still sees some arrive live.
    epochs = 20
    served = serve(
        "train-cm", "--epochs", epochs, "--batch-size", "1", "--seed", "1", "--data-dir", data_dir,
        "--logdir", f"s3://{BUCKET}/logs", "--serve", "--port", free_port(), "--json", env=env,
    )  # fmt: skip
    seen: dict[int, bool] = {}  # epoch -> whether training was still running when TensorBoard first showed it

    def epochs_shown() -> bool:
        tags = served.get_json("/data/plugin/images/tags")
        cm_run = next((run for run in tags if run.endswith("/cm") and "Confusion Matrix" in tags[run]), None)
        if cm_run is not None:
            entries = served.get_json("/data/plugin/images/images", run=cm_run, tag="Confusion Matrix", sample=0)
            for entry in entries:
                seen.setdefault(entry["step"], not served.out_lines)  # the JSON result ends training
        return len(seen) == epochs

    served.wait_for(epochs_shown, timeout=240)
    assert sorted(seen) == list(range(epochs))
    # An epoch shown before the end proves the run streams; which and how many depends on how often TensorBoard's
    # reload thread gets the GIL from the training in its process, which a busy machine starves.
    assert any(seen.values()), f"every epoch was shown only after training ended: {seen}"
    scalars = served.get_json("/data/plugin/scalars/tags")
    assert any(run.endswith("/validation") and "epoch_accuracy" in tags for run, tags in scalars.items())
    assert served.interrupt() == 0
    assert every_object_is_whole(bucket, "logs/") >= 3
    no_second_versions(bucket)
    local = tbimg(
        "train-cm", "--epochs", epochs, "--batch-size", "1", "--seed", "1", "--data-dir", data_dir,
        "--logdir", tmp_path / "local", env=env,
    )  # fmt: skip
    assert local.returncode == 0, local.stderr[-2000:]
    assert shapes(inspected(f"s3://{BUCKET}/logs", env)) == shapes(inspected(tmp_path / "local", env))


# Losing nothing


WRITER = """
    import sys, time
    import numpy as np
    from tbimg_cli import ImageLogger

    steps, tag = int(sys.argv[2]), sys.argv[3]
    with ImageLogger(sys.argv[1]) as logger:
        for step in range(steps):
            logger.log(tag, np.full((32, 32), step % 256, np.uint8), step)
            time.sleep(0.1)
    print("closed", flush=True)
"""


def start_writer(folder: str, steps: int, env: dict, tag: str = "frames") -> subprocess.Popen:
    """A training loop in its own process, logging one image every 0.1 s into `s3://runs/<folder>`."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WRITER), f"s3://{BUCKET}/{folder}", str(steps), tag],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_outage_mid_run_loses_nothing(bucket, tmp_path):
    proxy = TcpProxy(int(bucket.endpoint.rsplit(":", 1)[1])).start()
    env = bucket.env(proxy.endpoint, TBIMG_FLUSH_SECONDS="0.5", TBIMG_UPLOAD_GIVE_UP_SECONDS="60")
    writer = start_writer("outage", 60, env)
    wait_until(lambda: bucket.keys("outage/"), timeout=60, what="the first upload")
    proxy.stop()  # the store is out of reach while training goes on
    time.sleep(3)
    proxy.start()
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0 and "closed" in out, err
    (frames,) = inspected(f"s3://{BUCKET}/outage", bucket.env())
    assert frames["steps"] == {"first": 0, "last": 59, "count": 60}
    every_object_is_whole(bucket, "outage/")
    no_second_versions(bucket)


def test_a_store_gone_for_good_leaves_a_spool_that_upload_finishes(bucket, tmp_path):
    proxy = TcpProxy(int(bucket.endpoint.rsplit(":", 1)[1])).start()
    env = bucket.env(proxy.endpoint, TBIMG_FLUSH_SECONDS="0.5", TBIMG_UPLOAD_GIVE_UP_SECONDS="2")
    writer = start_writer("gone", 40, env)
    wait_until(lambda: bucket.keys("gone/"), timeout=60, what="the first upload")
    proxy.stop()
    _, err = writer.communicate(timeout=180)
    assert writer.returncode == 1, err  # close() raised: the user is told
    (message,) = [line for line in err.splitlines() if "upload them later with: tbimg upload" in line]
    spool = Path(message.rsplit("tbimg upload ", 1)[1].strip())
    assert spool.is_dir()
    proxy.start()  # the store is back, later
    assert spool.parent == bucket.spools
    proc = tbimg("upload", spool, "--json", env=bucket.env(proxy.endpoint))
    assert proc.returncode == 0, proc.stderr
    ((sent,),) = [[item["bytes"] for item in json.loads(proc.stdout)["uploaded"]]]
    assert sent > 0 and not spool.exists()
    (frames,) = inspected(f"s3://{BUCKET}/gone", bucket.env())
    assert frames["steps"] == {"first": 0, "last": 39, "count": 40}
    no_second_versions(bucket)


def test_a_killed_writer_leaves_only_whole_objects_and_its_spool_completes_them(bucket):
    env = bucket.env(TBIMG_FLUSH_SECONDS="0.2")
    writer = start_writer("killed", 1000, env)
    pieces = lambda: [key for key in bucket.keys("killed/") if "tfevents" in key]  # noqa: E731 - (not the indexes)
    wait_until(lambda: len(pieces()) >= 5, timeout=60, what="five uploads")
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert every_object_is_whole(bucket, "killed/") >= 5
    (before,) = inspected(f"s3://{BUCKET}/killed", bucket.env())
    assert before["steps"]["first"] == 0 and before["steps"]["count"] == before["steps"]["last"] + 1  # no gap
    proc = tbimg("upload", "--json", env=bucket.env())  # no folder named: the killed writer's is found
    assert proc.returncode == 0, proc.stderr
    assert [item["destination"] for item in json.loads(proc.stdout)["uploaded"]] == [f"s3://{BUCKET}/killed"]
    assert list(bucket.spools.iterdir()) == []
    (after,) = inspected(f"s3://{BUCKET}/killed", bucket.env())
    assert after["steps"]["count"] >= before["steps"]["count"] and after["steps"]["count"] == after["steps"]["last"] + 1
    every_object_is_whole(bucket, "killed/")


def test_upload_of_a_folder_that_is_no_spool_is_one_line(tmp_path):
    proc = tbimg("upload", tmp_path, env=dict(os.environ))
    assert proc.returncode == 1 and "is not a tbimg spool folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_two_writers_into_one_run_folder_both_complete(bucket):
    env = bucket.env(TBIMG_FLUSH_SECONDS="0.3")
    writers = [start_writer("shared", 30, env, tag) for tag in ("first", "second")]
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()
    tags = {tag["tag"]: tag["steps"] for tag in inspected(f"s3://{BUCKET}/shared", bucket.env())}
    assert tags == {name: {"first": 0, "last": 29, "count": 30} for name in ("first", "second")}
    no_second_versions(bucket)


# One line before any work


def test_a_missing_bucket_or_a_refused_credential_is_one_line_before_any_work(s3_server, bucket, data_dir, tmp_path):
    tmp_path = tmp_path / "work"
    tmp_path.mkdir()
    missing = tbimg(
        "grid", "--data-dir", data_dir, "--logdir", "s3://no-such-bucket/logs", env=bucket.env(), cwd=tmp_path
    )
    assert (
        missing.returncode == 1
        and "bucket 'no-such-bucket' of s3://no-such-bucket/logs does not exist" in missing.stderr
    )
    assert len(missing.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())
    strict = s3_server(INITIAL_NO_AUTH_ACTION_COUNT="0")
    refused = tbimg(
        "train-cm", "--data-dir", data_dir, "--logdir", f"s3://{BUCKET}/logs",
        env=s3_env(strict, AWS_ACCESS_KEY_ID="nobody"), cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1 and "refused" in refused.stderr and "credentials" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr


def test_writing_to_a_bucket_without_the_cloud_extra_is_one_line(tmp_path, data_dir):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "fsspec.py").write_text("raise ImportError('no fsspec here')\n")
    proc = tbimg(
        "grid", "--data-dir", data_dir, "--logdir", "s3://b/logs", env={**os.environ, "PYTHONPATH": str(blocker)}
    )
    assert proc.returncode == 1 and "pip install 'tbimg[cloud]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_pieces_end_at_record_boundaries_and_a_record_larger_than_a_piece_goes_whole(tmp_path, monkeypatch):
    """On fsspec's local file system (the mirror takes any fsspec URL): records split across pieces never."""
    from tbimg_cli.events import mirror as mirrors
    from tbimg_cli.events import storage

    monkeypatch.setattr(mirrors, "MAX_PIECE_BYTES", 100)
    staging, destination = tmp_path / "staging", tmp_path / "bucket"
    staging.mkdir()
    destination.mkdir()
    local = staging / "events.out.tfevents.1.host.1.0.v2"
    payloads = [b"a" * 30, b"b" * 500, b"c" * 20, b"d" * 40]
    local.write_bytes(b"".join(records.frame(p) for p in payloads) + records.frame(b"e" * 10)[:7])  # a cut tail
    mirror = storage.Mirror(staging, f"file://{destination}", flush_seconds=3600)
    assert mirror.flush()
    pieces = sorted(destination.iterdir())
    assert [p.name.rsplit(".", 2)[-2] for p in pieces] == ["000001", "000002", "000003"]
    read = [
        payload
        for piece in pieces
        for _, payload in records.iter_records(io.BytesIO(piece.read_bytes()), piece.stat().st_size)
    ]
    assert read == payloads  # every piece whole, in order; the cut record waits for the rest of it
    assert mirror.pending_bytes() == 7


TIMED_WRITER = """
    import sys, time
    import numpy as np
    from tbimg_cli import ImageLogger
    from tbimg_cli.cli.app import main  # noqa: F401 - as the command's process: its shortcuts apply
    from tbimg_cli import shortcuts

    shortcuts.claim_process()
    steps, slowest = int(sys.argv[2]), 0.0
    logger = ImageLogger(sys.argv[1])
    for step in range(steps):
        began = time.perf_counter()
        logger.log("frames", np.full((32, 32), step % 256, np.uint8), step)
        logger.flush() if step % 10 == 9 else None  # each epoch's end
        slowest = max(slowest, time.perf_counter() - began)
        time.sleep(0.1)
    print("trained", time.time(), slowest, flush=True)
    try:
        logger.close()
    finally:
        print("closed", time.time(), flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("mode", TcpProxy.MODES)
def test_a_network_that_fails_for_good_ends_within_the_give_up_time(bucket, mode):
    """Refused, reset, or a black hole that accepts and never answers: training goes on at its speed, the
    process ends within the give-up time of training's end, exits 1 with the spool's one line and no
    traceback, and `tbimg upload` later finishes the job, nothing written twice."""
    proxy = TcpProxy(int(bucket.endpoint.rsplit(":", 1)[1])).start()
    give_up = 6
    env = bucket.env(proxy.endpoint, TBIMG_FLUSH_SECONDS="0.5", TBIMG_UPLOAD_GIVE_UP_SECONDS=str(give_up))
    env["TBIMG_UPLOAD_REQUEST_SECONDS"] = "3"
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(TIMED_WRITER), f"s3://{BUCKET}/{mode}", "40"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_until(lambda: bucket.keys(f"{mode}/"), timeout=60, what="the first upload")
    proxy.fail(mode)
    out, err = writer.communicate(timeout=give_up + 120)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    trained, slowest = (float(x) for x in lines["trained"].split())
    closed = float(lines["closed"])
    print(f"{mode}: ended {closed - trained:.1f} s after training, {proxy.connections_seen} connections meanwhile")
    assert writer.returncode == 1, err
    assert closed - trained <= give_up + 4, (closed - trained, err)
    assert slowest < 1.0, slowest  # log and flush never waited for the network
    assert err.count("Traceback") <= 1, err  # the script's own UploadError from close(), and nothing else
    assert "Task exception was never retrieved" not in err, err
    if mode == "reset":
        assert proxy.connections_seen < 20, proxy.connections_seen  # backed off, not asked back to back
    (message,) = [line for line in err.splitlines() if "upload them later with: tbimg upload" in line]
    spool = Path(message.rsplit("tbimg upload ", 1)[1].strip())
    proxy.fail("refuse")
    proxy.start()
    proc = tbimg("upload", spool, "--json", env=bucket.env(proxy.endpoint))
    assert proc.returncode == 0, proc.stderr
    (frames,) = inspected(f"s3://{BUCKET}/{mode}", bucket.env())
    assert frames["steps"] == {"first": 0, "last": 39, "count": 40}
    every_object_is_whole(bucket, f"{mode}/")
    no_second_versions(bucket)


@pytest.mark.slow
def test_train_cm_reports_its_epochs_then_the_spool_when_the_bucket_goes_silent(bucket, data_dir):
    proxy = TcpProxy(int(bucket.endpoint.rsplit(":", 1)[1])).start()
    give_up = 5
    env = bucket.env(proxy.endpoint, TBIMG_FLUSH_SECONDS="0.5", TBIMG_UPLOAD_GIVE_UP_SECONDS=str(give_up))
    env["TBIMG_UPLOAD_REQUEST_SECONDS"] = "3"
    args = [
        sys.executable, "-m", "tbimg_cli", "train-cm", "--epochs", "3", "--batch-size", "1", "--seed", "1",
        "--data-dir", str(data_dir), "--logdir", f"s3://{BUCKET}/silent",
    ]  # fmt: skip
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: bucket.keys("silent/"), timeout=180, what="the first upload")
    proxy.fail("blackhole")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err[-2000:]
    assert "final test accuracy" in out, out  # the epochs' results, as when the upload works
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "tbimg upload" in errors[0], err[-2000:]
    assert "Traceback" not in err and "Task exception" not in err, err[-2000:]


WRITE_NOISE = """
    import sys
    import numpy as np
    from tbimg_cli import log_images

    noise = np.random.default_rng(0).integers(0, 256, (40, 4, 64, 64, 3), dtype=np.uint8)  # PNGs that stay large
    for step in range(40):
        log_images(sys.argv[1], "samples", noise[step], step)
"""
INDEX_A_BUCKET = """
    import json, sys
    from tbimg_cli.serve.index import ImageIndex

    index = ImageIndex(sys.argv[1])
    index.refresh()
    listed = index.listing()
    shown = index.sample("tbimg", "samples", 39, 3)
    legacy = index.sample("tbx", "legacy", 7, 0)
    print(json.dumps({"listed": listed, "shown": len(shown), "legacy": legacy.hex(), "fetched": index.bytes_fetched}))
"""


@pytest.mark.slow
def test_the_tab_reads_a_bucket_by_ranged_requests_not_whole_objects(bucket, tmp_path):
    """The tab's index over a bucket: every step listed, by tbimg's writer and a tensorboardX-style run,
    from record headers and ranged reads; listing and one image cost a few percent of the run's bytes."""
    from .test_viewer import legacy_run, png

    legacy_run(tmp_path / "tbx", range(10))
    for path in (tmp_path / "tbx").iterdir():
        bucket.client.put_object(Bucket=BUCKET, Key=f"ranged/tbx/{path.name}", Body=path.read_bytes())
    proc = python(WRITE_NOISE, f"s3://{BUCKET}/ranged/tbimg", env=bucket.env())
    assert proc.returncode == 0, proc.stderr
    proc = python(INDEX_A_BUCKET, f"s3://{BUCKET}/ranged", env=bucket.env())
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    listed = {(s["run"], s["tag"]): s for s in found["listed"]}
    assert listed[("tbimg", "samples")]["steps"]["count"] == 40 and listed[("tbimg", "samples")]["samples"] == 4
    assert listed[("tbx", "legacy")]["steps"]["count"] == 10
    assert bytes.fromhex(found["legacy"]) == png(7)
    keys = bucket.keys("ranged/tbimg/")
    pieces = [key for key in keys if "tfevents" in key]
    assert sorted(key.replace("tfevents", "tbimgindex") for key in pieces) == sorted(set(keys) - set(pieces))
    total = sum(len(bucket.read(key)) for key in pieces)
    assert found["shown"] > 12_000 and total > 40 * 4 * 12_000
    # 40 objects of one record each: their headers, a few bytes of each record and one step's record (a
    # run of 1,000 steps in a few objects costs far less: bench/bench_viewer_bucket.py)
    assert found["fetched"] < 0.08 * total, (found["fetched"], total)
