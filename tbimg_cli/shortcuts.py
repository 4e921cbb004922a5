"""Every shortcut tbimg takes past another library's public API, or into process-wide state: one room.

Each shortcut says what it assumes, was checked against the versions in `CHECKED_AGAINST`, and has a way back:
when the internals are not what it expects, or when `TBIMG_NO_SHORTCUTS=1` is set (the tests set it to check
that the result is the same), the public way is taken instead. What each one saves is measured in `bench/`
(figures in bench/README.md), not claimed here.

Process-wide changes (the allocator, imports hidden from Keras, environment defaults, file descriptor 2, warning
filters and library loggers, TensorBoard's TensorFlow switch, a fork pool, Typer's option values, ending without
the interpreter's teardown) are made only in the `tbimg` command's own process, which `cli.main` claims with
`claim_process()`. A program that imports tbimg keeps its process as it was.

The shortcuts, who uses them, and the way back:

- `draw_titles` (images/figures.py): text set straight onto an Agg renderer's pixels; back: `figimage`, `text`.
- `TextStamps` (confusion/figures.py): a confusion matrix's cell numbers pasted from bitmaps rendered once;
  back: each drawn by its `Text` artist.
- `NoKerasBatchHooks` (confusion/keras_callback.py): answers tf_keras's private batch-hook questions; back:
  none needed, a tf_keras that stops asking calls nothing.
- `report_validation` (tutorial/one_pass_validation.py): Keras's TensorBoard callback told of a validation
  pass it did not run; back: `fit` runs its own validation pass.
- `tensorflow_import`, `quiet_tensorflow` (tutorial/classifier.py), `cap_malloc_arenas` (tutorial/train.py):
  back: TensorFlow imported and left as it is.
- `tensorboard_without_tensorflow`, `quiet_server_logs` (serve/tensorboard.py): back: TensorBoard's own choices.
- `fork_pool` (logs/readback.py): back: one process.
- `end_process` (cli/app.py): exit handlers, then `os._exit`; back: `sys.exit`.
- `plain_typer_values` (cli/app.py): options in a plain form converted without pydantic; back: Typer's own
  pydantic adapters, which also take every value the plain way leaves to them.
- `crc32c_function` (events/records.py): crc32c's C function without its package's imports; back: the package.
- `quiet_abandoned_requests` (events/storage.py): fsspec's event loop told to drop the "Task exception was
  never retrieved" reports of network errors in requests a deadline abandoned (aiohttp's, under a connection
  reset); back: asyncio prints each with its traceback.
- `lightning_log_step` (lightning/callbacks.py): the step Lightning's logger connector gives `self.log`'s
  metrics (its fit loop's `_batches_that_stepped`), so images line up with them; back: `trainer.global_step`.
- `before_threads_end` (events/storage.py, images/logger.py): an exit hook run while thread pools still take
  work, so that what is queued at exit can still be uploaded (an `atexit` hook runs after `concurrent.futures`
  has shut its pools, which fsspec's S3 and GCS clients need); back: `atexit`.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np
    from numpy.typing import NDArray

CHECKED_AGAINST = {
    "python": "3.11.7",
    "matplotlib": "3.11.2",
    "keras": "3.15.1",
    "tf_keras": "2.21.0",
    "tensorflow": "2.21.0",
    "tensorboard": "2.21.0",
    "typer": "0.29.2",
}
DISABLE_VARIABLE = "TBIMG_NO_SHORTCUTS"

_owned_process = False


def claim_process() -> None:
    """Called by `cli.main` only: this process is the `tbimg` command, so it may change process-wide state."""
    global _owned_process
    _owned_process = True


def enabled() -> bool:
    """Whether shortcuts may be taken at all (`TBIMG_NO_SHORTCUTS=1` forces every way back)."""
    return os.environ.get(DISABLE_VARIABLE) in (None, "", "0")


def process_wide() -> bool:
    """Whether process-wide changes may be made: only in the `tbimg` command's own process."""
    return _owned_process and enabled()


# matplotlib: titles onto a mosaic


def draw_titles(
    canvas: NDArray[np.uint8], titles: Sequence[tuple[float, float, str]], font_size: float, dpi: float
) -> NDArray[np.uint8]:
    """`canvas` (H, W, 3) with each title's text centred on x, its box's bottom at y (from the top).

    Set with matplotlib's Agg renderer straight onto the pixels: a Figure with an image and text artists draws the same,
    but laying that out costs a sizeable part of `plot`. It uses the renderer's documented backend methods on a renderer
    no Figure owns, with a bare `GraphicsContextBase`, and writes its buffer in place: if that changes, it falls back.
    """
    if enabled():
        try:
            return _titles_on_renderer(canvas, titles, font_size, dpi)
        except (AttributeError, TypeError, ValueError):
            pass  # the renderer is not what this was written against: the public way below
    return _titles_on_figure(canvas, titles, font_size, dpi)


def _titles_on_renderer(
    canvas: NDArray[np.uint8], titles: Sequence[tuple[float, float, str]], font_size: float, dpi: float
) -> NDArray[np.uint8]:
    import numpy as np
    from matplotlib.backend_bases import GraphicsContextBase
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    height, width = canvas.shape[:2]
    renderer = RendererAgg(width, height, dpi)
    pixels = np.asarray(renderer.buffer_rgba())
    if pixels.shape != (height, width, 4) or not pixels.flags.writeable:
        raise ValueError("the renderer's buffer is not a writable (H, W, 4) array")
    pixels[..., :3] = canvas
    pixels[..., 3] = 255
    font = FontProperties(size=font_size)
    _, _, descent = renderer.get_text_width_height_descent("lp", font, ismath=False)  # one baseline for all
    ink = GraphicsContextBase()  # black, antialiased
    for centre, bottom, text in titles:
        text_width, _, _ = renderer.get_text_width_height_descent(text, font, ismath=False)
        # Agg's y grows downwards (`renderer.flipy()`), and text is placed by its baseline.
        renderer.draw_text(ink, centre - text_width / 2, bottom - descent, text, font, 0)
    return np.ascontiguousarray(pixels[..., :3])


def _titles_on_figure(
    canvas: NDArray[np.uint8], titles: Sequence[tuple[float, float, str]], font_size: float, dpi: float
) -> NDArray[np.uint8]:
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import IdentityTransform

    height, width = canvas.shape[:2]
    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    agg = FigureCanvasAgg(fig)
    fig.figimage(canvas, xo=0, yo=0, origin="upper", resize=False)
    style: dict[str, Any] = {"ha": "center", "va": "bottom", "fontsize": font_size, "usetex": False}
    for centre, bottom, text in titles:
        fig.text(centre, height - bottom, text, transform=IdentityTransform(), parse_math=False, **style)
    agg.draw()
    return np.ascontiguousarray(np.asarray(agg.buffer_rgba())[..., :3])


class TextStamps:
    """Small texts drawn from bitmaps rendered once per (text, colour): a confusion matrix's cell numbers.

    A `Text` artist costs about a millisecond (layout and glyphs each time); pasting a kept bitmap, microseconds. A
    bitmap is the alpha channel of a scratch Agg renderer the text was drawn on, placed from its cell's centre as Agg
    rounds: a text can land a pixel off, its edges a level or two of blending apart. Else each is drawn by its artist.
    """

    def __init__(self, width: int, height: int, dpi: float) -> None:
        self._size = (width, height, dpi)
        self._scratch: Any = None
        self._stamps: dict[tuple[str, Any], tuple[NDArray[np.float32], int, int] | None] = {}

    def draw(self, ax: Any, texts: Sequence[Any], pixels: NDArray[np.uint8]) -> None:
        """Draw `texts` (artists of `ax`) onto `pixels`, the canvas's (H, W, 4) buffer."""
        if enabled():
            try:
                self._paste(texts, pixels)
                return
            except (AttributeError, TypeError, ValueError, IndexError):
                self._stamps.clear()  # not what this was written against: the artists from now on
        for text in texts:
            ax.draw_artist(text)

    def _paste(self, texts: Sequence[Any], pixels: NDArray[np.uint8]) -> None:
        import numpy as np
        from matplotlib.colors import to_rgb

        height = pixels.shape[0]
        for text in texts:
            content = text.get_text()
            if not content:
                continue
            x, y = text.get_transform().transform(text.get_position())
            centre_x, centre_y = round(x), round(height - y)  # Agg's rows run from the top
            key = (content, text.get_color())
            if key not in self._stamps:
                self._stamps[key] = self._render(text, centre_x, centre_y)
            stamp = self._stamps[key]
            if stamp is None:
                continue
            coverage, dy, dx = stamp
            top, left = centre_y + dy, centre_x + dx
            region = pixels[top : top + coverage.shape[0], left : left + coverage.shape[1], :3]
            if region.shape[:2] != coverage.shape:
                raise ValueError("a stamp reaches past the canvas")
            colour = np.array(to_rgb(text.get_color()), dtype=np.float32) * 255
            blended = region * (1 - coverage[..., None]) + colour * coverage[..., None]
            region[...] = np.rint(blended).astype(np.uint8)

    def _render(self, text: Any, centre_x: int, centre_y: int) -> tuple[NDArray[np.float32], int, int] | None:
        import numpy as np
        from matplotlib.backends.backend_agg import RendererAgg

        if self._scratch is None:
            self._scratch = RendererAgg(*self._size)
        self._scratch.clear()
        text.draw(self._scratch)
        alpha = np.asarray(self._scratch.buffer_rgba())[..., 3]
        rows, columns = np.nonzero(alpha)
        if not len(rows):
            return None
        top, bottom, left, right = rows.min(), rows.max() + 1, columns.min(), columns.max() + 1
        coverage = (alpha[top:bottom, left:right] / np.float32(255)).astype(np.float32)
        return coverage, int(top) - centre_y, int(left) - centre_x


# Keras


class NoKerasBatchHooks:
    """For Keras 3 callbacks run by tf_keras (Keras 2) `fit`, as multi-worker training does: tf_keras asks each
    callback through these private methods whether it has batch hooks, which a Keras 3 callback cannot answer."""

    def _implements_train_batch_hooks(self) -> bool:
        return False

    def _implements_test_batch_hooks(self) -> bool:
        return False

    def _implements_predict_batch_hooks(self) -> bool:
        return False


def can_report_validation(board: Any) -> bool:
    """Whether `report_validation` may tell Keras's TensorBoard callback of a validation pass.

    `train-cm` computes validation loss and accuracy from the predictions the confusion matrix needs anyway, instead of
    `fit` reading the test set again. The callback logs them as `validation/` scalars from the epoch's logs (its public
    contract), and its `evaluation_*_vs_iterations` scalars when its test hooks are called, which this does by hand.
    Without the hooks, `fit` is given the validation data and runs its own pass.
    """
    return enabled() and all(callable(getattr(board, hook, None)) for hook in ("on_test_begin", "on_test_end"))


def report_validation(board: Any, metrics: dict[str, float]) -> None:
    board.on_test_begin()
    board.on_test_end(metrics)


# TensorFlow's import

# Keras 3 imports pandas (for DataFrame inputs), scikit-learn (for its estimator wrappers) and pyplot (for its image
# galleries) whenever they are installed, as in most ML environments, for features train-cm never uses. Hidden, Keras
# takes them as absent. matplotlib itself stays: the figures are drawn with it.
KERAS_EXTRAS_UNUSED = ("pandas", "sklearn", "matplotlib.pyplot")
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # glibc's mallopt(3) parameter number


@contextlib.contextmanager
def tensorflow_import(*, verbose: bool) -> Iterator[None]:
    """Around `import tensorflow` and Keras, in the tbimg process only: less start-up cost and chatter.

    - TensorFlow's C++ logging is set to errors only (`TF_CPP_MIN_LOG_LEVEL=3`, unless --verbose or set), and file
      descriptor 2 itself is silenced during the import, since that logging writes there before any setting applies;
    - oneDNN is off for this small model (`TF_ENABLE_ONEDNN_OPTS=0`): its kernels pay off on large tensors, and their
      set-up costs more than they save on the tutorial's 32x784 batches. Round-off may differ in the last bits; what
      is learned does not. A user's own setting wins;
    - the optional integrations in `KERAS_EXTRAS_UNUSED` are hidden from Keras.
    """
    if not process_wide():
        yield
        return
    if not verbose:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    with contextlib.nullcontext() if verbose else _stderr_silenced(), _hidden(KERAS_EXTRAS_UNUSED):
        yield


def quiet_tensorflow(tf: Any) -> None:
    """TensorFlow's, Keras's and absl's Python-side warnings and logs, off in the tbimg process (not with --verbose)."""
    if not process_wide():
        return
    import warnings

    import absl.logging

    warnings.filterwarnings("ignore", module=r"(keras|tf_keras|tensorflow)\b")
    tf.get_logger().setLevel("ERROR")
    absl.logging.set_verbosity(absl.logging.ERROR)


def cap_malloc_arenas() -> None:
    """Let glibc's malloc keep at most `MALLOC_ARENAS` arenas, in the tbimg process only.

    Each of TensorFlow's and tf.data's threads otherwise gets an arena of its own (up to 8 per core), holding on to
    what is freed in it; with two, the peak is lower and the time the same. Only later threads are affected, so it runs
    before any. Outside glibc, or with MALLOC_ARENA_MAX set, it does nothing.
    """
    if not process_wide() or os.environ.get("MALLOC_ARENA_MAX"):
        return
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


@contextlib.contextmanager
def _hidden(module_names: Sequence[str]) -> Iterator[None]:
    """Make `import name` fail for modules not yet imported (None in `sys.modules`: "not importable"), then back."""
    hidden = [name for name in module_names if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # None is how sys.modules says "not importable"
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# TensorBoard's server


def tensorboard_without_tensorflow() -> None:
    """Make TensorBoard read logs with its TF-free stub instead of importing TensorFlow (tbimg process only).

    TensorBoard imports TensorFlow when it can find it unless the module `tensorboard.compat.notf` exists (the switch
    its `tensorboard-notf` build uses); the stub reads event files as well. A loaded TensorFlow (train-cm) is left
    alone: `tf.summary` runs through `tensorboard.compat`, which the switch would break.
    """
    if process_wide() and "tensorflow" not in sys.modules:
        import types

        sys.modules.setdefault("tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf"))


def quiet_server_logs() -> None:
    """TensorBoard's and werkzeug's per-request and start-up logs are not for tbimg's terminal."""
    if not process_wide():
        return
    import logging

    for name in ("tensorboard", "werkzeug", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


# Reading logs on every core


def fork_pool(workers: int) -> ProcessPoolExecutor | None:
    """A pool of forked processes (nothing is imported again in them), or None to read in this process: only in the
    tbimg process, since forking someone else's threaded program can leave a lock held forever in the child."""
    import multiprocessing

    if not process_wide() or "fork" not in multiprocessing.get_all_start_methods():
        return None
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


# The end of any process using tbimg


def before_threads_end(callback: Callable[[], None]) -> None:
    """Run `callback` at exit before threads are joined and thread pools shut (`threading._register_atexit`): an exit
    hook, as any library may register, only earlier than `atexit`'s, while uploads can still resolve host names."""
    register = getattr(__import__("threading"), "_register_atexit", None)
    if enabled() and callable(register):
        try:
            register(callback)
            return
        except RuntimeError:  # already shutting down: too late for either way
            return
    import atexit

    atexit.register(callback)


# The end of the tbimg process


def end_process(code: int) -> NoReturn:
    """Run the exit handlers (`atexit`), flush, and end without finalising every loaded module: every command has
    closed its files, and finalising modules only makes the user wait, noticeably once TensorFlow is loaded. Without
    the private `atexit._run_exitfuncs`, the interpreter ends as usual."""
    run_exit_handlers = getattr(__import__("atexit"), "_run_exitfuncs", None)
    if not (enabled() and callable(run_exit_handlers)):
        sys.exit(code)
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            stream.flush()
    os._exit(code)


# Typer's option values


def plain_typer_values(conversion: Callable[[Any, Any], Callable[[Any], Any] | None]) -> None:
    """Options given in a plain form converted without pydantic, in the tbimg process.

    Typer 0.2x checks every option, defaults too, through a pydantic `TypeAdapter`, a tenth of a command's start. This
    replaces the private `_TyperParameter.get_runtime_param`: values `conversion(annotation, parameter_info)` raises
    ValueError for, every mistake among them, go to Typer's adapter.
    """
    try:
        from typer import core
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # a Typer without them needs no help
        return
    built = getattr(getattr(core, "_TyperParameter", None), "get_runtime_param", None)
    if not (process_wide() and callable(built)):
        return

    class PlainValues(RuntimeParam):
        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return self.convert(value)  # type: ignore[attr-defined]  # set below: a frozen dataclass
            except ValueError:
                return build_runtime_param(param.type_descriptor)._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(param: Any) -> Any:
        described = param.type_descriptor
        unbuilt = param._runtime_param is None and described.file_annotation is None
        if unbuilt and (convert := conversion(described.annotation, described.parameter_info)):
            param._runtime_param = PlainValues(described.parameter_info, described.annotation)
            object.__setattr__(param._runtime_param, "convert", convert)
        return built(param)

    core._TyperParameter.get_runtime_param = get_runtime_param  # type: ignore[method-assign,assignment]


# crc32c without its package


def crc32c_function() -> Callable[..., int]:
    """crc32c's C function from its extension module, without the package's `__init__` and its `importlib.metadata`
    and argparse imports (15 ms of a command's start). Nothing goes into `sys.modules`."""
    if enabled() and "crc32c" not in sys.modules:
        import importlib.machinery
        import importlib.util

        with contextlib.suppress(ImportError, AttributeError, OSError, StopIteration, TypeError):
            folder = importlib.util.find_spec("crc32c").submodule_search_locations[0]  # type: ignore[union-attr,index]
            suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
            name = next(n for n in sorted(os.listdir(folder)) if n.startswith("_crc32c.") and n.endswith(suffixes))
            spec = importlib.util.spec_from_file_location("crc32c._crc32c", os.path.join(folder, name))
            module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
            spec.loader.exec_module(module)  # type: ignore[union-attr]
            return module.crc32c
    from crc32c import crc32c

    return crc32c


# fsspec's event loop: requests abandoned at their deadline


def quiet_abandoned_requests(loop: Any) -> None:
    """Drop asyncio's reports of network errors nobody awaited any more, on fsspec's own loop, in `tbimg`'s process.

    A request cancelled at its deadline, or a connection reset under it, leaves aiohttp tasks whose exception is never
    retrieved; asyncio prints each with a traceback when collected, 7 to 11 per reset seen in a trial, after the one
    line that says what failed. Other reports go to the loop's own handler. A program importing tbimg keeps its loops.
    """
    if loop is None or not process_wide() or getattr(loop, "_tbimg_quiet", False):
        return
    previous = loop.get_exception_handler()

    def handler(running: Any, context: dict[str, Any]) -> None:
        error = context.get("exception")
        network = isinstance(error, OSError | TimeoutError) or type(error).__module__.startswith("aiohttp")
        if not (network and "never retrieved" in str(context.get("message", ""))):
            (previous or type(running).default_exception_handler)(running, context)

    loop.set_exception_handler(handler)
    loop._tbimg_quiet = True


def lightning_log_step(trainer: Any) -> int:
    """The step Lightning logs `self.log`'s metrics at (checked against pytorch-lightning 2.6)."""
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        return int(trainer.fit_loop.epoch_loop._batches_that_stepped if enabled() else trainer.global_step)
    return int(trainer.global_step)
