"""The public API as a user's type checker sees it: through the lazy package root, with its real types."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

import tbimg_cli

from .helpers import REPO


def test_the_root_exports_what_it_lists():
    assert sorted(tbimg_cli.__all__) == [
        "ConfusionMatrixCallback",
        "EventWriter",
        "ImageLogger",
        "__version__",
        "log_confusion_matrix",
        "log_images",
    ]
    assert callable(tbimg_cli.log_confusion_matrix) and callable(tbimg_cli.EventWriter)
    assert callable(tbimg_cli.log_images) and callable(tbimg_cli.ImageLogger)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = tbimg_cli.nothing


def test_errors_are_the_builtin_kinds_a_caller_catches():
    from tbimg_cli import errors

    assert issubclass(errors.InputError, ValueError)
    assert issubclass(errors.InputTypeError, TypeError) and issubclass(errors.InputTypeError, errors.InputError)
    assert issubclass(errors.WriterClosedError, ValueError)
    assert issubclass(errors.MissingExtraError, ImportError)


def test_a_type_checker_sees_the_real_signatures_through_the_lazy_root(tmp_path):
    pytest.importorskip("mypy", reason="mypy comes with the lint extra: pip install -e '.[lint]'")
    user_code = tmp_path / "user_code.py"
    user_code.write_text(
        textwrap.dedent("""
            import numpy as np
            from tbimg_cli import EventWriter, ImageLogger, log_confusion_matrix, log_images

            folder = log_confusion_matrix("runs/a", np.array([0, 1]), [[0.9, 0.1], [0.2, 0.8]], step=0)
            reveal_type(folder)
            log_confusion_matrix("runs/a", [0, 1], [0, 1], step="first")
            with EventWriter("runs/a") as writer:
                reveal_type(writer.image("x", np.zeros((2, 4, 4), np.uint8), step=1))
            reveal_type(log_images("runs/a", "x", np.zeros((4, 4)), step=0))
            log_images("runs/a", "x", np.zeros((4, 4)), step=0, layout="WHC")
            with ImageLogger("runs/a") as logger:
                reveal_type(logger.log("x", np.zeros((4, 4)), step=2))
        """)
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-incremental",
            "--config-file",
            str(REPO / "pyproject.toml"),
            str(user_code),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    assert any(re.search(r':6: note: Revealed type is "(builtins\.)?str \| pathlib\.Path"', line) for line in lines), (
        proc.stdout
    )
    assert any(":7: error:" in line and '"step"' in line and '"int"' in line for line in lines), proc.stdout
    assert any(re.search(r':9: note: Revealed type is "(builtins\.)?int"', line) for line in lines), proc.stdout
    assert any(re.search(r':10: note: Revealed type is "(builtins\.)?int"', line) for line in lines), proc.stdout
    assert any(":11: error:" in line and '"layout"' in line for line in lines), proc.stdout
    assert any(':13: note: Revealed type is "None"' in line for line in lines), proc.stdout
