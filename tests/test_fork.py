"""A forked child (a PyTorch `DataLoader` worker, `multiprocessing` with fork) never writes what its parent owns."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from .helpers import event_files, load_run

LOADER_WHILE_LOGGING = """
    import sys
    import numpy as np
    import torch
    from torch.utils.data import DataLoader, TensorDataset
    from tbimg_cli import ImageLogger, log_images

    run = sys.argv[1]
    data = DataLoader(TensorDataset(torch.rand(16, 1, 8, 8)), batch_size=4, num_workers=2,
                      multiprocessing_context="fork", persistent_workers=False)
    logger = ImageLogger(run)
    for step in range(5):
        logger.log("first_image", torch.rand(3, 8, 8), step)  # queued, not yet written, when the workers fork
        log_images(run, "appended", np.zeros((8, 8), np.uint8), step)
        for (batch,) in data:  # two workers fork here, every epoch
            pass
    logger.close()
"""


@pytest.mark.slow
def test_dataloader_workers_forked_while_an_image_logger_is_open_write_nothing(tmp_path):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(LOADER_WHILE_LOGGING), str(run)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = load_run(run)
    assert [event.step for event in loaded.Tensors("first_image")] == [0, 1, 2, 3, 4]
    assert [event.step for event in loaded.Tensors("appended")] == [0, 1, 2, 3, 4]
    assert len(event_files(run)) == 2  # the logger's and the appenders': no file of a worker's


def test_a_forked_child_drops_its_parents_unwritten_records_and_refuses_to_write(tmp_path):
    from tbimg_cli import EventWriter
    from tbimg_cli.errors import WriterClosedError

    writer = EventWriter(tmp_path / "run")
    writer.scalar("loss", 1.0, step=0)  # in the writer's buffer, not yet in the file
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's report is its exit code
        code = 0
        try:
            writer.scalar("loss", 2.0, step=1)
            code = 3  # it wrote
        except WriterClosedError as exc:
            code = 0 if "belongs to process" in str(exc) else 4
        writer.close()  # what an exit hook does: must write nothing
        os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.scalar("loss", 3.0, step=2)
    writer.close()
    steps = [event.step for event in load_run(tmp_path / "run").Tensors("loss")]
    assert steps == [0, 2]


def test_a_forked_childs_own_log_images_start_a_file_of_its_own(tmp_path):
    from tbimg_cli import log_images

    log_images(tmp_path / "run", "parent", np.zeros((4, 4), np.uint8), 0)
    child = os.fork()
    if child == 0:  # pragma: no cover
        try:
            log_images(tmp_path / "run", "child", np.ones((4, 4), np.uint8), 1)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    log_images(tmp_path / "run", "parent", np.zeros((4, 4), np.uint8), 2)
    files = event_files(tmp_path / "run")
    assert len(files) == 2  # the child never appends to the parent's file, so records never interleave
    loaded = load_run(tmp_path / "run")
    assert [e.step for e in loaded.Tensors("parent")] == [0, 2] and [e.step for e in loaded.Tensors("child")] == [1]


def test_the_child_of_an_exit_time_close_writes_nothing_twice(tmp_path):
    """The trial's case: an `ImageLogger` left open, a child that exits normally (its exit hooks run)."""
    script = textwrap.dedent(
        """
        import os, sys
        import numpy as np
        from tbimg_cli import ImageLogger
        logger = ImageLogger(sys.argv[1])
        for step in range(5):
            logger.log("x", np.zeros((4, 4), np.uint8), step)
        if os.fork() == 0:
            sys.exit(0)  # a normal exit: the hooks that close open loggers run in the child too
        os.wait()
        """
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [event.step for event in load_run(tmp_path / "run").Tensors("x")] == [0, 1, 2, 3, 4]
