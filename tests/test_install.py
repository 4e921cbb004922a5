"""The base install, as a PyTorch or JAX user gets it: `pip install tbimg` in a fresh virtual environment,
no TensorFlow, and everything but training works; training says in one line what to install."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest

from .helpers import REPO, free_port, wait_until

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    """A virtual environment holding tbimg's base install and nothing else (pip's cache makes it quick)."""
    venv = tmp_path_factory.mktemp("base-install") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def _run(venv: Path, *args: str | Path, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=180, cwd=cwd, env=env, **kwargs
    )


def test_the_base_install_holds_no_tensorflow_keras_or_scikit_learn(base_venv, tmp_path):
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('tensorflow', 'keras', 'tf_keras', 'sklearn') if u.find_spec(m)])"
    )
    proc = _run(base_venv, base_venv / "bin" / "python", "-c", probe, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_image_commands_and_reading_back_work_from_the_base_install(base_venv, tmp_path, data_dir):
    tbimg = base_venv / "bin" / "tbimg"
    for command in (["single"], ["grid", "--count", "9"], ["plot", "--count", "4"]):
        proc = _run(
            base_venv, tbimg, *command, "--data-dir", data_dir, "--logdir", tmp_path / "logs", "--json", cwd=tmp_path
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["tags"]
    inspected = _run(base_venv, tbimg, "inspect", tmp_path / "logs", "--json", cwd=tmp_path)
    assert inspected.returncode == 0 and len(json.loads(inspected.stdout)["runs"]) == 3
    exported = _run(base_venv, tbimg, "export", tmp_path / "logs", "--out", tmp_path / "out", "--json", cwd=tmp_path)
    assert exported.returncode == 0 and json.loads(exported.stdout)["images"] == 1 + 9 + 1


def test_log_confusion_matrix_works_from_the_base_install(base_venv, tmp_path):
    code = textwrap.dedent(f"""
        import numpy as np
        from tbimg_cli import log_confusion_matrix
        rng = np.random.default_rng(0)
        y = rng.integers(0, 3, 200)
        scores = rng.random((200, 3)) + 0.5 * np.eye(3)[y]  # right about 2 times in 3
        folder = log_confusion_matrix({str(tmp_path / "run")!r}, y, scores, step=0, class_names=["a", "b", "c"],
                                      images=rng.integers(0, 256, (200, 8, 8), dtype=np.uint8))
        print(folder)
    """)
    proc = _run(base_venv, base_venv / "bin" / "python", "-c", code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    inspected = _run(base_venv, base_venv / "bin" / "tbimg", "inspect", proc.stdout.strip(), "--json", cwd=tmp_path)
    tags = {t["tag"] for t in json.loads(inspected.stdout)["tags"]}
    assert {"Confusion Matrix", "Confusion Matrix (table)", "Misclassified", "per_class_accuracy/a"} <= tags


def test_training_says_in_one_line_which_extra_to_install(base_venv, tmp_path, data_dir):
    proc = _run(
        base_venv, base_venv / "bin" / "tbimg", "train-cm", "--data-dir", data_dir, "--logdir", tmp_path, cwd=tmp_path
    )
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "pip install 'tbimg[train]'" in proc.stderr, proc.stderr
    assert not any(tmp_path.iterdir())
    code = "try:\n    from tbimg_cli import ConfusionMatrixCallback\nexcept ImportError as e:\n    print(e)"
    callback = _run(base_venv, base_venv / "bin" / "python", "-c", code, cwd=tmp_path)
    assert callback.returncode == 0 and "pip install 'tbimg[train]'" in callback.stdout, callback.stderr


def test_serving_works_from_the_base_install(base_venv, tmp_path, data_dir):
    port = free_port()
    served = subprocess.Popen(
        [str(base_venv / "bin" / "tbimg"), "single", "--data-dir", str(data_dir), "--logdir", str(tmp_path / "logs"),
         "--serve", "--port", str(port)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/data/plugin/images/tags"

        def image_tags():
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.loads(response.read())

        tags = wait_until(
            image_tags, timeout=60, interval=0.25, what="TensorBoard to serve", ignore=(OSError, ValueError)
        )
        assert any("Training data" in run_tags for run_tags in tags.values())
        served.send_signal(signal.SIGINT)
        assert served.wait(timeout=15) == 0
    finally:
        if served.poll() is None:
            served.kill()
            served.wait()
