"""`--serve` against the real TensorBoard on 127.0.0.1: no mocks."""

from __future__ import annotations

import json
import socket
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from .helpers import decode_png, free_port

pytestmark = pytest.mark.slow


def test_grid_is_served_with_every_sample_and_its_pixels(serve, data_dir, test_split):
    port = free_port()
    served = serve("grid", "--count", "25", "--split", "test", "--data-dir", data_dir, "--serve", "--port", port)
    assert served.url == f"http://127.0.0.1:{port}/"
    runs = served.wait_for(lambda: served.get_json("/data/runs"))
    (run,) = runs
    assert run.startswith("test_data/")
    tag = "25 test data examples"
    tags = served.wait_for(lambda: served.get_json("/data/plugin/images/tags"))
    assert tags[run][tag]["samples"] == 25
    for sample in range(25):
        (entry,) = served.get_json("/data/plugin/images/images", run=run, tag=tag, sample=sample)
        png = served.get("/data/plugin/images/individualImage?" + entry["query"])
        assert np.array_equal(decode_png(png), test_split[0][sample])
    assert served.interrupt() == 0
    assert "Traceback" not in "".join(served.err_lines)


def test_train_cm_serves_while_training_and_keeps_every_epoch(serve, data_dir):
    epochs = 4
    served = serve(
        "train-cm",
        "--limit-train",
        "2000",
        "--epochs",
        epochs,
        "--seed",
        "1",
        "--data-dir",
        data_dir,
        "--serve",
        "--port",
        free_port(),
        "--json",
    )
    first_runs = served.wait_for(lambda: served.get_json("/data/runs") or [None])
    assert served.proc.poll() is None  # up before training has finished

    def all_epochs():
        tags = served.get_json("/data/plugin/images/tags")
        cm_run = next((r for r in tags if r.endswith("/cm")), None)
        if cm_run is None or "Confusion Matrix" not in tags[cm_run]:
            return None
        entries = served.get_json("/data/plugin/images/images", run=cm_run, tag="Confusion Matrix", sample=0)
        return (cm_run, entries) if len(entries) == epochs else None

    cm_run, entries = served.wait_for(all_epochs)
    assert [e["step"] for e in entries] == list(range(epochs))
    scalars = served.get_json("/data/plugin/scalars/tags")
    run_dir = cm_run[: -len("/cm")]
    assert "epoch_accuracy" in scalars[f"{run_dir}/validation"] and "epoch_loss" in scalars[f"{run_dir}/train"]
    assert any(t.startswith("per_class_accuracy/") for t in scalars[cm_run])
    assert first_runs is not None
    assert served.interrupt() == 0


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not Path(table).exists():
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":
                found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's socket table")
def test_binds_loopback_only_by_default(serve, data_dir):
    port = free_port()
    served = serve("single", "--data-dir", data_dir, "--serve", "--port", port)
    served.wait_for(lambda: served.get_json("/data/runs"))
    assert _listening_addresses(port) == {"0100007F"}  # 127.0.0.1, and nothing else
    assert served.interrupt() == 0


def test_every_interface_says_so_and_prints_a_url_other_machines_can_use(serve, data_dir):
    port = free_port()
    served = serve("single", "--data-dir", data_dir, "--serve", "--host", "0.0.0.0", "--port", port)
    host = urllib.parse.urlparse(served.url).hostname
    assert host not in ("0.0.0.0", "127.0.0.1", "localhost") and host in (socket.getfqdn(), socket.gethostname())
    assert any("every network interface" in line for line in served.err_lines)
    assert not any("--serve)" in line for line in served.out_lines)  # no "view: ... (or add --serve)" hint
    local = served.url.replace(host, "127.0.0.1")
    assert json.loads(urllib.request.urlopen(local + "data/runs", timeout=10).read())
    assert served.interrupt() == 0


def test_taken_default_port_moves_to_the_next(serve, data_dir):
    blocker = socket.socket()
    try:
        blocker.bind(("127.0.0.1", 6006))
        blocker.listen()
    except OSError:
        pass  # something already listens on 6006: taken either way
    try:
        served = serve("single", "--data-dir", data_dir, "--serve")
        port = urllib.parse.urlparse(served.url).port
        assert port != 6006
        assert any(f"port 6006 is taken; TensorBoard is on port {port}" in line for line in served.err_lines)
        served.wait_for(lambda: served.get_json("/data/runs"))
        assert served.interrupt() == 0
    finally:
        blocker.close()


def test_explicit_taken_port_is_one_line_and_writes_nothing(cli, data_dir):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        result = cli("grid", "--data-dir", data_dir, "--serve", "--port", port)
    assert result.exit_code == 1
    assert f"port {port} is already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not Path("logs").exists()


def test_bad_host_is_one_line(cli, data_dir):
    result = cli("single", "--data-dir", data_dir, "--serve", "--host", "no-such-host.invalid")
    assert result.exit_code == 1 and "--host" in result.stderr
    assert not Path("logs").exists()


def test_sigterm_stops_serving_quietly_too(serve, data_dir):
    served = serve("single", "--data-dir", data_dir, "--serve", "--port", free_port())
    served.wait_for(lambda: served.get_json("/data/runs"))
    served.proc.terminate()
    assert served.proc.wait(timeout=10) == 0
    assert "Traceback" not in "".join(served.err_lines)
