"""`ConfusionMatrixCallback` and `train-cm` under `tf.distribute`, with real devices and real worker processes.

MirroredStrategy runs over two logical CPU devices in one process;
MultiWorkerMirroredStrategy over two worker processes that talk over
127.0.0.1, started here with a TF_CONFIG each. In every case exactly one
writer's event files exist, and the logged matrix equals the one computed
from the trained model's own predictions.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .helpers import REPO, event_files, free_ports, load_run

pytestmark = pytest.mark.slow
JOB = REPO / "tests" / "distributed_job.py"


def _tf_config(ports: list[int], index: int) -> str:
    workers = [f"127.0.0.1:{port}" for port in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def _workers(commands: list[list[str]], timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Start one process per worker with its TF_CONFIG, wait for all."""
    ports = free_ports(len(commands))
    procs = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "TF_CONFIG": _tf_config(ports, i), "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
        for i, command in enumerate(commands)
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return results


def _logged_matrix(cm_dir: Path) -> np.ndarray:
    """The last step's counts, from the Markdown table the callback logged."""
    table = load_run(cm_dir).Tensors("Confusion Matrix (table)")[-1].tensor_proto.string_val[0].decode()
    rows = [line for line in table.splitlines() if line.startswith("| **")]
    return np.array([[int(cell) for cell in row.split("|")[2:-2]] for row in rows])


def _writer_pids(folder: Path) -> set[str]:
    """The pids in the event file names (`events.out.tfevents.<time>.<host>.<pid>.<n>...`)."""
    return {re.search(r"\.(\d+)\.\d+(\.v2)?$", path.name).group(1) for path in folder.rglob("events.out.tfevents.*")}


def test_mirrored_strategy_over_two_logical_cpus(tmp_path, data_dir):
    out = tmp_path / "result.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(JOB),
            "--strategy",
            "mirrored",
            "--logdir",
            str(tmp_path / "run"),
            "--data-dir",
            str(data_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["replicas"] == 2 and result["chief"]
    assert len(event_files(tmp_path / "run" / "cm")) == 1
    assert [e.step for e in load_run(tmp_path / "run" / "cm").Tensors("Confusion Matrix")] == [0, 1]
    assert np.array_equal(_logged_matrix(tmp_path / "run" / "cm"), np.array(result["matrix"]))


def test_multi_worker_strategy_only_the_chief_writes(tmp_path, data_dir):
    commands = [
        [
            sys.executable,
            str(JOB),
            "--strategy",
            "multi-worker",
            "--logdir",
            str(tmp_path / "run"),
            "--data-dir",
            str(data_dir),
            "--out",
            str(tmp_path / f"worker-{i}.json"),
        ]
        for i in range(2)
    ]
    for proc in _workers(commands):
        assert proc.returncode == 0, proc.stderr[-3000:]
    chief, other = (json.loads((tmp_path / f"worker-{i}.json").read_text()) for i in range(2))
    assert chief["chief"] and not other["chief"] and chief["replicas"] == 2
    assert len(event_files(tmp_path / "run" / "cm")) == 1
    assert _writer_pids(tmp_path / "run") == {str(chief["pid"])}
    assert np.array_equal(_logged_matrix(tmp_path / "run" / "cm"), np.array(chief["matrix"]))
    assert chief["matrix"] == other["matrix"]  # both workers hold the same trained model


def test_train_cm_multi_worker_writes_one_run_from_the_chief(tmp_path, data_dir):
    logdir = tmp_path / "logs"
    command = [
        sys.executable,
        "-m",
        "tbimg_cli",
        "train-cm",
        "--strategy",
        "multi-worker",
        "--epochs",
        "2",
        "--limit-train",
        "1024",
        "--data-dir",
        str(data_dir),
        "--logdir",
        str(logdir),
        "--run-name",
        "mw",
        "--json",
    ]
    chief, other = _workers([command, command])
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert other.returncode == 0, other.stderr[-3000:]
    chief_out, other_out = json.loads(chief.stdout), json.loads(other.stdout)
    assert chief_out["writes_logs"] and not other_out["writes_logs"]
    run = logdir / "image" / "mw"
    assert sorted(p.name for p in (logdir / "image").iterdir()) == ["mw"]
    assert sorted(p.name for p in run.iterdir()) == ["cm", "train", "validation"]
    for sub in ("cm", "train", "validation"):
        assert len(event_files(run / sub)) == 1, sub
    assert len(_writer_pids(run)) == 1  # every file from one process: the chief
    assert [e.step for e in load_run(run / "cm").Tensors("Confusion Matrix")] == [0, 1]
    assert re.search(r"epoch", json.dumps(chief_out["epochs"]))


def test_multi_worker_without_tf_config_is_one_line(cli, data_dir):
    result = cli("train-cm", "--strategy", "multi-worker", "--epochs", "1", "--data-dir", data_dir)
    assert result.exit_code == 1 and "TF_CONFIG" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
