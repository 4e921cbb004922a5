"""Rank awareness (issue 28): in a distributed job `log_images` and `ImageLogger` log on rank 0 only by
default, or every rank under `<tag>/rank<k>`; so two ranks never silently share one tag."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tbimg_cli import ImageLogger, log_images
from tbimg_cli.errors import InputError

from .helpers import free_port, load_run


def image_tags(folder):
    return sorted(load_run(folder).Tags()["tensors"]) if folder.exists() else []


@pytest.mark.parametrize("variable", ["RANK", "LOCAL_RANK"])
def test_a_launchers_rank_keeps_every_rank_but_zero_quiet(tmp_path, monkeypatch, variable):
    picture = np.zeros((4, 5), np.uint8)
    monkeypatch.setenv(variable, "1")
    assert log_images(tmp_path / "quiet", "x", picture, 0) == 0
    with ImageLogger(tmp_path / "quiet") as images:
        images.log("x", picture, 0)
    assert not (tmp_path / "quiet").exists() or not any((tmp_path / "quiet").glob("*tfevents*"))
    assert log_images(tmp_path / "every", "x", picture, 0, ranks="all") == 1
    with ImageLogger(tmp_path / "every", ranks="all") as images:
        images.log("y", picture, 0)
    assert image_tags(tmp_path / "every") == ["x/rank1", "y/rank1"]
    monkeypatch.setenv(variable, "0")
    log_images(tmp_path / "zero", "x", picture, 0)
    assert image_tags(tmp_path / "zero") == ["x"]  # rank 0 keeps the tag as it is


def test_a_bad_ranks_value_is_one_clear_error(tmp_path):
    with pytest.raises(InputError, match="ranks must be one of 'zero', 'all'"):
        log_images(tmp_path, "x", np.zeros((2, 2), np.uint8), 0, ranks="first")
    with pytest.raises(InputError, match="ranks must be"):
        ImageLogger(tmp_path, ranks=0)  # type: ignore[arg-type]


TWO_RANKS = """
import os, sys
import torch, torch.distributed as dist
from tbimg_cli import ImageLogger, log_images
rank, port, folder, ranks = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
images = torch.full((2, 3, 8, 8), rank / 2)  # NCHW floats, as a model gives them: each rank its own
log_images(folder, "samples", images, 0, ranks=ranks)
with ImageLogger(folder, ranks=ranks) as logger:
    logger.log("queued", images, 1)
dist.barrier()
dist.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "ranks, expected",
    [("zero", ["queued", "samples"]), ("all", ["queued/rank0", "queued/rank1", "samples/rank0", "samples/rank1"])],
)
def test_two_torch_distributed_ranks_log_once_or_each_under_its_own_tag(tmp_path, ranks, expected):
    pytest.importorskip("torch")
    port = free_port()
    env = {key: value for key, value in __import__("os").environ.items() if key not in ("RANK", "LOCAL_RANK")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(TWO_RANKS), str(rank), str(port), str(tmp_path / "run"), ranks],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert image_tags(tmp_path / "run") == expected
    from tensorboard.util import tensor_util

    run = load_run(tmp_path / "run")
    for tag in expected:
        (event,) = run.Tensors(tag)  # each step logged once: no rank's images behind another's
        assert len(tensor_util.make_ndarray(event.tensor_proto)) == 2 + 2


def test_the_lightning_callbacks_import_without_lightning_until_taken():
    code = (
        "import sys; sys.modules['pytorch_lightning'] = sys.modules['lightning'] = None\n"
        "import tbimg_cli.lightning as callbacks\n"
        "try:\n    callbacks.ImageCallback\nexcept ImportError as exc:\n    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "pip install 'tbimg[lightning]'" in proc.stdout
