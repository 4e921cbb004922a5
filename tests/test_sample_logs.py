"""The committed sample_logs/ are what the current code writes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tbimg_cli.logs.inspection import inspect_logdir

from .helpers import REPO

pytestmark = pytest.mark.slow
SAMPLE_LOGS = REPO / "sample_logs"


def _shape(logdir):
    inspection = inspect_logdir(logdir)
    assert inspection.problems == []
    return {
        (t.run, t.tag): (t.plugin, t.first_step, t.last_step, t.count, t.samples, t.width, t.height)
        for t in inspection.tags
    }


def test_sample_logs_are_current(tmp_path, full_data_dir):
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "make_sample_logs.py"),
            "--out",
            str(tmp_path),
            "--data-dir",
            str(full_data_dir),
        ],
        check=True,
        capture_output=True,
    )
    fresh, committed = _shape(tmp_path), _shape(SAMPLE_LOGS)
    assert fresh == committed
    runs = {run for run, _ in committed}
    assert runs == {
        "train_data/single",
        "train_data/grid-25",
        "plots/plot-25",
        "image/train-cm/train",
        "image/train-cm/validation",
        "image/train-cm/cm",
    }


def test_sample_logs_stay_small():
    total = sum(p.stat().st_size for p in SAMPLE_LOGS.rglob("*") if p.is_file())
    assert total < 3 * 1024 * 1024
