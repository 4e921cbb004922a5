"""Every shortcut of `shortcuts.py` against its way back: the same result either way, and a program that
uses tbimg as a library keeps its process as it was (only the `tbimg` command's own process is changed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tbimg_cli import shortcuts
from tbimg_cli.images.figures import image_grid_pixels

from .helpers import REPO, run_module

NO_SHORTCUTS = {shortcuts.DISABLE_VARIABLE: "1"}


def _python(code: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def _near(mask: np.ndarray, pixels: int) -> np.ndarray:
    """`mask` grown by `pixels` in every direction."""
    grown = mask.copy()
    for dy in range(-pixels, pixels + 1):
        for dx in range(-pixels, pixels + 1):
            grown |= np.roll(mask, (dy, dx), axis=(0, 1))
    return grown


def test_titles_drawn_the_public_way_look_the_same(test_split, monkeypatch):
    images = test_split[0][:25]
    titles = [f"class {i} {name}" for i, name in enumerate(["T-shirt/top", "Ankle boot", "Bag", "Sneaker", "Coat"] * 5)]
    fast, fast_blank = image_grid_pixels(images, titles), image_grid_pixels(images, [""] * 25)
    monkeypatch.setenv(shortcuts.DISABLE_VARIABLE, "1")
    public, public_blank = image_grid_pixels(images, titles), image_grid_pixels(images, [""] * 25)
    assert np.array_equal(fast_blank, public_blank)  # the mosaic itself is numpy's either way
    assert public.shape == fast.shape and public.dtype == fast.dtype
    # The text lands where the shortcut puts it, give or take antialiasing at its edges, with the same ink.
    text = (fast != fast_blank).any(axis=-1)
    differs = (fast != public).any(axis=-1)
    assert text.sum() > 1000 and not (differs & ~_near(text, 2)).any()
    ink_fast, ink_public = (255 - fast.astype(np.int64)).sum(), (255 - public.astype(np.int64)).sum()
    assert abs(ink_fast - ink_public) < 0.001 * ink_fast


def test_a_renderer_that_is_not_what_was_expected_falls_back(test_split, monkeypatch):
    """A matplotlib whose Agg renderer no longer lends its pixels for writing: the public way answers."""
    from matplotlib.backends import backend_agg

    images, titles = test_split[0][:4], ["a", "b", "c", "d"]
    expected = image_grid_pixels(images, titles)
    lent = backend_agg.RendererAgg.buffer_rgba
    monkeypatch.setattr(backend_agg.RendererAgg, "buffer_rgba", lambda self: memoryview(lent(self)).toreadonly())
    fallback = image_grid_pixels(images, titles)
    assert fallback.shape == expected.shape
    assert (fallback != expected).any(axis=-1).mean() < 0.01


def test_process_wide_shortcuts_need_the_tbimg_process():
    code = """
        import json, logging, sys
        from tbimg_cli import shortcuts
        shortcuts.tensorboard_without_tensorflow()
        shortcuts.quiet_server_logs()
        library = ["tensorboard.compat.notf" in sys.modules, logging.getLogger("werkzeug").level,
                   shortcuts.fork_pool(2) is None]
        shortcuts.claim_process()
        shortcuts.tensorboard_without_tensorflow()
        shortcuts.quiet_server_logs()
        pool = shortcuts.fork_pool(2)
        command = ["tensorboard.compat.notf" in sys.modules, logging.getLogger("werkzeug").level, pool is None]
        print(json.dumps({"library": library, "command": command}))
    """
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["library"] == [False, 0, True]
    assert found["command"] == [True, 40, False]  # 40: logging.ERROR
    disabled = _python(code, NO_SHORTCUTS)
    assert json.loads(disabled.stdout)["command"] == [False, 0, True]


def test_serving_gives_sigterm_back_when_it_returns():
    proc = _python("""
        import os, signal, threading
        from tbimg_cli.serve import tensorboard as serve
        def mine(signum, frame):
            pass
        signal.signal(signal.SIGTERM, mine)
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
        serve.wait_for_ctrl_c()  # SIGTERM stops it, as Ctrl-C does
        print(signal.getsignal(signal.SIGTERM) is mine)
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr


@pytest.mark.parametrize("env", [{}, NO_SHORTCUTS], ids=["shortcut", "way back"])
def test_the_command_ends_the_same_either_way(tmp_path, data_dir, env):
    written = run_module("single", "--data-dir", data_dir, "--logdir", tmp_path / "logs", "--json", env=env)
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["images"] == 1
    refused = run_module("single", "--index", "5000", "--data-dir", data_dir, "--logdir", tmp_path, env=env)
    assert refused.returncode == 1 and "--index 5000" in refused.stderr
    usage = run_module("single", "--no-such-option", env=env)
    assert usage.returncode == 2


def _logs_large_enough_for_a_pool(folder):
    """Three runs of 7 MB each: past `readback.PARALLEL_BYTES`, so the tbimg process reads them side by side."""
    from tbimg_cli.events.writer import EventWriter

    from .test_export import encode_png_header

    blob = os.urandom(1 << 20)
    for run in ("a", "b", "c"):
        with EventWriter(folder / run) as writer:
            for step in range(7):
                writer.png_images("pictures", [encode_png_header(blob)], step=step)
                writer.scalar("loss", step / 7, step=step)


def test_runs_read_by_a_fork_pool_give_what_one_process_gives(tmp_path):
    logs = tmp_path / "logs"
    _logs_large_enough_for_a_pool(logs)
    pooled = run_module("inspect", logs, "--json")
    alone = run_module("inspect", logs, "--json", env=NO_SHORTCUTS)
    assert pooled.returncode == alone.returncode == 0, pooled.stderr + alone.stderr
    assert json.loads(pooled.stdout) == json.loads(alone.stdout)
    exported = [
        run_module("export", logs, "--out", tmp_path / name, "--json", env=env)
        for name, env in (("pooled", {}), ("alone", NO_SHORTCUTS))
    ]
    files = [
        sorted(os.path.relpath(f, tmp_path / name) for f in json.loads(proc.stdout)["files"])
        for name, proc in zip(("pooled", "alone"), exported, strict=True)
    ]
    assert files[0] == files[1] and len(files[0]) == 21 + 3  # the images and a scalars.csv per run
    for relative in files[0]:
        assert (tmp_path / "pooled" / relative).read_bytes() == (tmp_path / "alone" / relative).read_bytes()


@pytest.mark.slow
def test_train_cm_validates_the_same_when_fit_does_it_itself(tmp_path, data_dir):
    """The one-pass validation (a shortcut into Keras's TensorBoard callback) against `fit`'s own pass."""
    runs = {}
    for name, env in (("one-pass", {}), ("fit", NO_SHORTCUTS)):
        proc = run_module(
            "train-cm", "--epochs", "1", "--limit-train", "1000", "--seed", "0", "--data-dir", data_dir,
            "--logdir", tmp_path, "--run-name", name, "--json", env=env, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs[name] = json.loads(proc.stdout)
    assert runs["one-pass"]["tags"] == runs["fit"]["tags"]
    assert {"epoch_loss", "epoch_accuracy", "Confusion Matrix"} <= set(runs["fit"]["tags"])
    one_pass, fit = runs["one-pass"]["epochs"][0], runs["fit"]["epochs"][0]
    # Same seed, same data: the same model, so the same validation numbers to float32 round-off.
    assert one_pass["val_accuracy"] == pytest.approx(fit["val_accuracy"], abs=1e-6)
    assert one_pass["val_loss"] == pytest.approx(fit["val_loss"], rel=1e-4)


@pytest.mark.slow
def test_training_as_a_library_leaves_the_process_as_it_was(tmp_path, data_dir):
    """What the program had before `train.run` (after its own TensorFlow import, which changes things of
    its own), it has after: environment, warning filters, loggers, signal handlers, importable modules."""
    proc = _python(
        f"""
        import json, logging, os, signal, sys, warnings
        from pathlib import Path
        import absl.logging, keras, tensorflow as tf
        from tbimg_cli.tutorial import train

        def state():
            # Filters on TensorFlow's and Keras's warnings: what the tbimg process adds to quieten them.
            # (Modules TensorFlow loads lazily add filters of their own, on other warnings.)
            ours = [str(f) for f in warnings.filters if "keras" in str(f[3])]
            return (dict(os.environ), ours, signal.getsignal(signal.SIGINT),
                    signal.getsignal(signal.SIGTERM), absl.logging.get_verbosity(), tf.get_logger().level,
                    sorted(name for name, module in sys.modules.items() if module is None))

        before = state()
        result = train.run(train.TrainSettings(epochs=1, limit_train=500, data_dir=Path({str(data_dir)!r}),
                                               logdir=Path({str(tmp_path)!r})))
        after = state()
        print(json.dumps({{"changed": [i for i, (b, a) in enumerate(zip(before, after)) if b != a],
                           "epochs": len(result.epochs)}}))
        """,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == {"changed": [], "epochs": 1}


@pytest.mark.slow
def test_keras_extras_are_hidden_only_from_the_tbimg_process_import(tmp_path, data_dir):
    """In a program using tbimg, Keras finds scikit-learn as usual; the hiding is the tbimg command's alone."""
    proc = _python(
        f"""
        import sys
        from pathlib import Path
        from tbimg_cli.tutorial import train
        train.run(train.TrainSettings(epochs=1, limit_train=500, data_dir=Path({str(data_dir)!r}),
                                      logdir=Path({str(tmp_path)!r})))
        print(sys.modules.get("sklearn") is not None)
        """,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "True"  # Keras imported it for its wrappers, as it does anywhere


@pytest.mark.slow
def test_keras_2_asked_for_after_tensorflow_chose_keras_3_is_an_error(tmp_path, data_dir):
    proc = _python(
        f"""
        import json, os
        from pathlib import Path
        import tensorflow
        from tbimg_cli.tutorial import train
        from tbimg_cli.errors import InputError
        os.environ["TF_CONFIG"] = json.dumps({{"cluster": {{"worker": ["127.0.0.1:1"]}},
                                               "task": {{"type": "worker", "index": 0}}}})
        try:
            train.run(train.TrainSettings(epochs=1, limit_train=500, data_dir=Path({str(data_dir)!r}),
                                          logdir=Path({str(tmp_path / "logs")!r}), strategy="multi-worker"))
        except InputError as error:
            print("InputError:", error)
        """,
        env={"TF_USE_LEGACY_KERAS": ""},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "InputError:" in proc.stdout and "TF_USE_LEGACY_KERAS=1" in proc.stdout
    assert not (tmp_path / "logs").exists()  # refused before a run folder was kept


def test_one_large_event_file_read_in_pieces_gives_what_one_process_gives(tmp_path):
    """One run, one file of 21 MB: cut into pieces read side by side, each finding its first record by CRCs."""
    from tbimg_cli.events.writer import EventWriter

    from .test_export import encode_png_header

    logs = tmp_path / "logs"
    blob = os.urandom(1 << 20)
    with EventWriter(logs / "only") as writer:
        for step in range(20_000):
            writer.scalar("loss", 1 / (step + 1), step=step)
            writer.scalar("accuracy", step / 20_000, step=step)
            if step % 1000 == 0:  # records of a megabyte each: a piece may start inside one
                writer.png_images("pictures", [encode_png_header(blob)], step=step)
    assert sum(f.stat().st_size for f in (logs / "only").iterdir()) > 16 << 20
    pooled = run_module("inspect", logs, "--json")
    alone = run_module("inspect", logs, "--json", env=NO_SHORTCUTS)
    assert pooled.returncode == alone.returncode == 0, pooled.stderr + alone.stderr
    assert json.loads(pooled.stdout) == json.loads(alone.stdout)
    tags = {tag["tag"]: tag for tag in json.loads(pooled.stdout)["tags"]}
    assert tags["loss"]["steps"] == {"first": 0, "last": 19_999, "count": 20_000}
    assert tags["pictures"]["steps"]["count"] == 20 and tags["accuracy"]["last_value"] == pytest.approx(19_999 / 20_000)


def test_a_piece_starts_at_the_first_whole_record_after_its_first_byte(tmp_path):
    from tbimg_cli.events import records

    payloads = [os.urandom(n) for n in (10, 3000, 7, 50_000, 1)]
    path = tmp_path / "file"
    path.write_bytes(b"".join(records.frame(p) for p in payloads))
    size = path.stat().st_size
    with open(path, "rb") as stream:
        for cut in range(0, size, 997):
            first = [p for _, p in records.iter_records(stream, size, 0, cut or None)] if cut else []
            stream.seek(0)
            rest = [p for _, p in records.iter_records(stream, size, cut, None)]
            stream.seek(0)
            assert first + rest == payloads, cut  # every record once, in order, whatever the cut


# Typer's option values

# fmt: off
RAW_VALUES = ["0", "1", "-1", "7", "007", "+3", " 5", "1_000", "1e3", "3.0", "abc", "", "-", "x.png", "test", "TEST",
              "train", "auto", "\u0663", "99999999999", 0, 5, -2, True, False, None, ("a", "b"), ["1"], ("",)]
# fmt: on


def _every_option():
    import typer.main

    from tbimg_cli.cli.app import app

    group = typer.main.get_command(app)
    commands = [group, *group.commands.values()]
    return [(command, param) for command in commands for param in command.params if hasattr(param, "type_descriptor")]


def _converted(param, value, ctx):
    try:
        return "value", param.get_runtime_param().coerce(value, param=param, ctx=ctx)
    except Exception as error:  # what each way raises is what is compared
        return "error", type(error).__name__, str(error)


def test_plain_option_values_convert_as_typers_own_adapters_do(monkeypatch):
    """Every option of every command, given each of many raw values (good, bad and odd): the same value of the
    same type, or the same error and message, as Typer's pydantic way."""
    from typer import core
    from typer._click import Context

    from tbimg_cli.cli.options import plain_conversion

    options = _every_option()
    expected = {}
    for command, param in options:
        ctx = Context(command)
        for value in [*RAW_VALUES, param.default]:
            param._runtime_param = None
            expected[param, repr(value)] = _converted(param, value, ctx)
    monkeypatch.setattr(core._TyperParameter, "get_runtime_param", core._TyperParameter.get_runtime_param)
    monkeypatch.setattr(shortcuts, "_owned_process", True)
    shortcuts.plain_typer_values(plain_conversion)
    plain = 0
    for command, param in options:
        ctx = Context(command)
        for value in [*RAW_VALUES, param.default]:
            param._runtime_param = None
            got = _converted(param, value, ctx)
            assert got == expected[param, repr(value)], (command.name, param.name, value)
            assert type(got[1]) is type(expected[param, repr(value)][1]), (command.name, param.name, value)
        plain += type(param._runtime_param).__name__ == "PlainValues"
        param._runtime_param = None
    assert plain > 0.9 * len(options)  # nearly every option has a plain way


@pytest.mark.parametrize(("env", "pydantic"), [({}, False), (NO_SHORTCUTS, True)], ids=["shortcut", "way back"])
def test_a_command_starts_without_pydantic_and_refuses_the_same(tmp_path, data_dir, env, pydantic):
    args = ["grid", "--count", "3", "--split", "test", "--data-dir", data_dir, "--logdir", tmp_path, "--json"]
    written = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tbimg_cli", *map(str, args)],
        capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip
    assert written.returncode == 0 and json.loads(written.stdout)["images"] == 3, written.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in written.stderr.splitlines() if line.startswith("import")}
    assert "typer" in imported and ("pydantic" in imported) == pydantic
    assert ("importlib.metadata" in imported) == pydantic  # crc32c's package imports it, for its version
    for mistake in (["--count", "abc"], ["--count", "0"], ["--split", "validation"]):
        refused = run_module("grid", *mistake, "--data-dir", data_dir, "--logdir", tmp_path, env=env)
        back = run_module("grid", *mistake, "--data-dir", data_dir, "--logdir", tmp_path, env=NO_SHORTCUTS)
        assert refused.returncode == back.returncode > 0 and refused.stderr == back.stderr


@pytest.mark.parametrize("env", [{}, NO_SHORTCUTS], ids=["shortcut", "way back"])
def test_crc32c_from_its_extension_alone_gives_the_package_s_answers(env):
    proc = _python(
        """
        import sys, zlib
        from tbimg_cli.events import records
        loaded = "crc32c" in sys.modules
        data = bytes(range(256)) * 1000
        from crc32c import crc32c
        same = all(records.crc32c(data[:n]) == crc32c(data[:n]) for n in (0, 1, 9, 1000, len(data)))
        same &= records.crc32c(data[500:], records.crc32c(data[:500])) == crc32c(data)
        print(loaded, same, records.crc32c(b"123456789") == 0xE3069283)
        """,
        env,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [str(bool(env)), "True", "True"]
