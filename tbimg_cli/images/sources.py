"""`tbimg log`: image files, folders, globs, arrays and standard input as a run of image summaries.

Which tag: one per folder given (its name; a subfolder's files go under
`folder/sub`), or `--tag`; files given one by one take their folder's name.
Two folders of one name (`exp1/samples exp2/samples`) are told apart by
their parents' names. Which step: decided for each file from its own path
(`steps.py`): the number in its name (`epoch_012.png` is step 12), its
folder's, a `--step-pattern`, the files' order, or one step for all. The
files of one tag and step, wherever they sort, are the samples of one
summary. Files are read and checked on a few threads, a window at a time, and
written in (tag, step) order, so a folder of 10,000 files costs the memory of
a few of them. A file that cannot be logged is one
`Problem` and the rest is still logged; each summary is one record, so nothing
is ever half-written.

With `watch`, the folders and globs are read again every `POLL_SECONDS`
and each new file is logged once it is whole: a stored format when its
whole-file check passes, any other once its size has held still for a poll.
The run folder keeps a list of the files it holds (`SOURCES_PREFIX`), one
file per session, so that watching again into the same `--run-dir` logs no
file twice and touches no file it did not write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tbimg_cli.errors import InputError, RunDirError
from tbimg_cli.events import storage
from tbimg_cli.events.runs import new_run_dir
from tbimg_cli.events.writer import EventWriter
from tbimg_cli.images import steps as step_rules
from tbimg_cli.images import values as image_values
from tbimg_cli.images.files import DEFAULT_MAX_PIXELS, image_format
from tbimg_cli.images.finding import STDIN, FileFinder, Source, missing_path_reason
from tbimg_cli.words import counted

if TYPE_CHECKING:
    from tbimg_cli.events.writer import EncodedImage

LOG_FOLDER = "images"  # under --logdir, beside the tutorial's folders
SOURCES_PREFIX = "tbimg-log-sources."
POLL_SECONDS = 0.25
RESCAN_SECONDS = 10.0  # `--watch` lists every folder again at least this often (a change its time missed)
READ_AHEAD = 32  # files read and checked ahead of the writer: the memory bound


@dataclass(frozen=True)
class LogSettings:
    """What `tbimg log` was asked for, the options of the command."""

    paths: tuple[str, ...]
    tag: str | None = None
    step: int | None = None
    steps_from: str | None = None
    step_pattern: str | None = None
    layout: image_values.Layout = "auto"
    value_range: image_values.ValueRange = None
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Problem:
    path: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


@dataclass
class LogResult:
    """What was logged (a `RunReport` for `output.py`)."""

    run_dir: str | Path  # a URL for a bucket
    logdir: str | Path
    tags: list[str] = field(default_factory=list)
    images: int = 0
    summaries: int = 0
    files: int = 0
    skipped: int = 0  # already in the run, from an earlier session
    steps: set[int] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # what was logged as asked but may not be what was meant
    watched: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "logdir": str(self.logdir),
            "tags": self.tags,
            "images": self.images,
            "summaries": self.summaries,
            "files": self.files,
            "skipped": self.skipped,
            "steps": [min(self.steps), max(self.steps)] if self.steps else [],
            "problems": [problem.to_json() for problem in self.problems],
            "notices": self.notices,
        }

    def summary(self) -> str:
        what = f"{counted(self.images, 'image')} from {counted(self.files, 'file')}"
        if self.steps:
            low, high = min(self.steps), max(self.steps)
            what += f", step {low}" if low == high else f", steps {low}..{high}"
        if self.skipped:
            what += f" ({self.skipped:,} already logged, skipped)"
        return what


def check_settings(settings: LogSettings, *, watch: bool = False) -> None:
    """Refuse what can be refused before reading anything (the CLI calls it first)."""
    if not settings.paths:
        raise InputError("give at least one image file, folder, glob or '-' to log")
    step_rule(settings)
    if settings.paths.count(STDIN) > 1:
        raise InputError("'-' (standard input) can be given once")
    if settings.tag is not None and not settings.tag.strip("/ "):
        raise InputError("--tag must name the summary (it is empty)")
    if watch and all(p == STDIN or os.path.isfile(p) for p in settings.paths):
        raise InputError("--watch needs a folder or a quoted glob to watch; files given one by one do not change")
    image_values.check_rules(settings.layout, settings.value_range)


def step_rule(settings: LogSettings) -> step_rules.StepRule:
    """The settings' way of finding steps; `InputError` for options that conflict or a bad pattern."""
    return step_rules.rule(settings.step, settings.steps_from, settings.step_pattern)


@contextlib.contextmanager
def run_folder(logdir: str, run_name: str | None, run_dir: str | None) -> Iterator[tuple[Any, Any]]:
    """(run folder, log root): `--run-dir` as given (created if missing), else a new timestamped run.

    Either may be a bucket URL (a str); local folders are `Path`s."""
    if run_dir is None:
        with new_run_dir(logdir, LOG_FOLDER, run_name) as folder:
            yield folder, logdir if storage.is_url(logdir) else Path(logdir)
        with contextlib.suppress(OSError):
            if isinstance(folder, Path):
                folder.rmdir()  # only when empty: every file was refused, so there is no run
        return
    if storage.is_url(run_dir):
        yield run_dir.rstrip("/"), run_dir.rstrip("/").rsplit("/", 1)[0]
        return
    folder = Path(run_dir)
    if folder.exists() and not folder.is_dir():
        raise RunDirError(f"--run-dir {folder} is a file, not a folder")
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create --run-dir {folder} ({exc.strerror})") from exc
    try:
        yield folder, folder.parent
    finally:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: a folder made for nothing is not left behind


def _identity(path: str) -> tuple[int, int] | tuple[()]:
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return info.st_size, info.st_mtime_ns


class LogSession:
    """One `tbimg log` into one run folder: its writer, the run's list of logged files, the steps handed out.

    `log_present()` logs what the paths hold now; `watch()` goes on with new
    files until Ctrl-C. A context manager: leaving it closes the event file.
    """

    def __init__(
        self,
        settings: LogSettings,
        run_dir: str | Path,
        logdir: str | Path,
        *,
        stdin: Callable[[], bytes] = lambda: sys.stdin.buffer.read(),
    ) -> None:
        self.settings = settings
        self.result = LogResult(run_dir, logdir)
        self.writer = EventWriter(run_dir)
        self.logged = _already_logged(run_dir)
        self.reported: set[tuple[str, str]] = set()
        self.next_step: dict[str, int] = {}  # --steps-from order: each tag's next step
        self.finder = FileFinder(settings, step_rule(settings), self._problem, self.result.notices.append)
        self._stdin = stdin
        self._sources_file: Any = None
        self._run_dir = self.writer.run_dir  # the local folder (a staging folder, for a bucket)
        self.watched_paths = [p for p in settings.paths if p != STDIN and not os.path.isfile(p)]

    def __enter__(self) -> LogSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.writer.close()
        if self._sources_file is not None:
            self._sources_file.close()

    def log_present(
        self, on_progress: Callable[[int, int], None] | None = None, *, watching: bool = False
    ) -> LogResult:
        """Log every file the paths hold now; `on_progress(done, total)` after each file.

        Paths that hold nothing to log are a problem (exit 1), unless `watching`: a watched
        folder may well be empty at first.
        """
        self.log(self.expand(), on_progress)
        result = self.result
        if not watching and not (result.files or result.skipped or result.problems):
            self._problem(", ".join(self.settings.paths), "no image files here: nothing was logged")
        return result

    def watch(self, on_change: Callable[[LogResult], None] | None = None) -> LogResult:
        """Log new files of the watched folders and globs as they become whole, until Ctrl-C.

        `on_change` is called after each poll that logged a file, found a problem or has a notice.
        Ctrl-C (KeyboardInterrupt) ends the watch and returns the result.

        Idle costs little however many files the folders hold: a poll lists the folders again
        only when one of them changed (a file added, removed or renamed changes its folder's
        time), every `RESCAN_SECONDS` in case, or while a file is still being written; else it
        looks at the few files it waits for.
        """
        self.result.watched = True
        waiting: dict[str, tuple[int, int]] = {}  # path -> (size, mtime) seen at the last poll
        unfinished: dict[str, Source] = {}  # new files not yet whole, or refused until they change
        # Files the first pass could not log are left alone until they change.
        refused = {source.path: _identity(source.path) for source in self.expand(quiet=True)}
        stamps, listed_at = self._folder_stamps(), time.monotonic()
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(POLL_SECONDS)
                before = len(self.result.problems), self.result.files, len(self.result.notices)
                now = self._folder_stamps()
                if now != stamps or time.monotonic() - listed_at >= RESCAN_SECONDS:
                    unfinished = {s.path: s for s in self.expand(quiet=True)}
                    stamps, listed_at = self._folder_stamps(), time.monotonic()
                candidates = [s for s in unfinished.values() if refused.get(s.path, ()) != _identity(s.path)]
                ready = [source for source in candidates if self.whole(source, waiting)]
                if ready:
                    self.log(ready, None)
                    refused.update((s.path, _identity(s.path)) for s in ready if s.key not in self.logged)
                    for source in ready:
                        if source.key in self.logged:
                            unfinished.pop(source.path, None)
                            waiting.pop(source.path, None)
                after = len(self.result.problems), self.result.files, len(self.result.notices)
                if on_change is not None and after != before:
                    on_change(self.result)
        return self.result

    def _folder_stamps(self) -> dict[str, int]:
        """Each folder the last listing walked (or a glob's root), with its modification time."""
        stamps: dict[str, int] = {}
        for folder in self.finder.folders_seen:
            try:
                stamps[folder] = os.stat(folder).st_mtime_ns
            except OSError:
                stamps[folder] = -1
        return stamps

    # Which files

    def expand(self, *, quiet: bool = False) -> list[Source]:
        """The files to log now (`FileFinder.expand`), less those the run holds already (counted as skipped)."""
        fresh, known = self.finder.expand(quiet=quiet, known=self.logged)
        if not quiet:
            self.result.skipped += known
        return fresh

    # Which steps, then reading and writing

    def log(self, sources: list[Source], on_progress: Callable[[int, int], None] | None) -> None:
        """Read, check and write `sources` (sorted by `expand`) group by group: one summary per tag and step."""
        group: list[tuple[Source, dict[str, list[EncodedImage]]]] = []
        for done, (source, loaded) in enumerate(self._read(sources), start=1):
            if loaded is not None:
                if group and not self._same_summary(group[0][0], source):
                    self._write(group)
                    group = []
                group.append((source, loaded))
            if on_progress is not None:
                on_progress(done, len(sources))
        if group:
            self._write(group)

    def whole(self, source: Source, waiting: dict[str, tuple[int, int]]) -> bool:
        """True once a new file is whole: as long as its header promises, and readable.

        A stored format (PNG, JPEG, GIF, BMP) is whole once its whole-file check passes; any
        other once its size has also held still for a poll (a TIFF or WebP written in chunks
        can read as an image before its last chunk). A file that never reads is handed on
        (to be reported) once it has not changed for 5 s.
        """
        try:
            info = os.stat(source.path)
            if not stat.S_ISREG(info.st_mode):
                return True  # nothing to wait for: `log` reports it as no regular file
            with open(source.path, "rb") as file:
                head = file.read(64)
        except OSError:
            return False
        now = info.st_size, info.st_mtime_ns
        seen, waiting[source.path] = waiting.get(source.path), now
        if not head or info.st_size < _declared_size(head):
            return False
        if image_format(head) is None and seen != now:
            return False
        try:
            image_values.load_file(source.path, max_pixels=self.settings.max_pixels)
        except (InputError, OSError):
            return seen == now and info.st_mtime_ns < time.time_ns() - 5 * 10**9
        return True

    def _same_summary(self, first: Source, source: Source) -> bool:
        return self.finder.rule.mode != "order" and (first.tag, first.step) == (source.tag, source.step)

    def _read(self, sources: list[Source]) -> Iterator[tuple[Source, dict[str, list[EncodedImage]] | None]]:
        """Each source with its images (None after noting its problem), in order, READ_AHEAD at a time."""
        with ThreadPoolExecutor(min(4, os.cpu_count() or 1), thread_name_prefix="tbimg-read") as pool:
            pending: list[tuple[Source, Future[dict[str, list[EncodedImage]]]]] = []
            ahead = iter(sources)
            for source in _take(ahead, READ_AHEAD):
                pending.append((source, pool.submit(self._load, source)))
            while pending:
                source, future = pending.pop(0)
                for following in _take(ahead, 1):
                    pending.append((following, pool.submit(self._load, following)))
                try:
                    yield source, future.result()
                except (InputError, OSError) as exc:
                    self._problem(source.path, _reason(exc, source.path))
                    yield source, None

    def _load(self, source: Source) -> dict[str, list[EncodedImage]]:
        rules: dict[str, Any] = {"layout": self.settings.layout, "value_range": self.settings.value_range}
        if source.path == STDIN:
            data = self._stdin()
            if not data:
                raise InputError("standard input is empty: pipe one image into 'tbimg log -'")
            return image_values.load_bytes(data, max_pixels=self.settings.max_pixels, **rules)
        return image_values.load_file(source.path, max_pixels=self.settings.max_pixels, **rules)

    def _write(self, group: list[tuple[Source, dict[str, list[EncodedImage]]]]) -> None:
        """One summary per tag (and per array name of an .npz) for a group of one tag and step.

        Ctrl-C waits until the summaries are written and the files listed as logged, so that
        the event file and the run's list agree whenever the command is stopped: a rerun
        into the same `--run-dir` then logs nothing twice and misses nothing.
        """
        first = group[0][0]
        by_tag: dict[str, list[EncodedImage]] = {}
        for source, loaded in group:
            for name, images in loaded.items():
                by_tag.setdefault(f"{source.tag}/{name}" if name else source.tag, []).extend(images)
        with _interrupts_held():
            for tag, images in by_tag.items():
                if first.step is None:  # --steps-from order
                    for image in images:
                        self._write_summary(tag, [image], self._ordered_step(tag))
                else:
                    self._write_summary(tag, images, first.step)
            self.writer.flush()
            self._remember([source for source, _ in group])

    def _write_summary(self, tag: str, images: list[EncodedImage], step: int) -> None:
        self.writer.encoded_images(tag, images, step)
        self.result.summaries += 1
        self.result.images += len(images)
        self.result.steps.add(step)
        if tag not in self.result.tags:
            self.result.tags.append(tag)

    def _ordered_step(self, tag: str) -> int:
        step = self.next_step.get(tag, 0)
        self.next_step[tag] = step + 1
        return step

    def _remember(self, sources: list[Source]) -> None:
        """Add the files to this session's list in the run folder, after their summaries are flushed."""
        self.result.files += len(sources)
        keys = [s.key for s in sources if s.path != STDIN]
        self.logged.update(keys)
        if not keys:
            return
        if self._sources_file is None:
            stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            name = f"{SOURCES_PREFIX}{stamp}.{socket.gethostname()}.{os.getpid()}.txt"
            self._sources_file = open(self._run_dir / name, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self._sources_file.write("".join(f"{key}\n" for key in keys))
        self._sources_file.flush()

    def _problem(self, path: str, message: str) -> None:
        if (path, message) in self.reported:
            return
        self.reported.add((path, message))
        self.result.problems.append(Problem(path, message))


def _already_logged(run_dir: str | Path) -> set[str]:
    """The files earlier sessions logged into the run: every line of its `SOURCES_PREFIX` lists."""
    logged: set[str] = set()
    if isinstance(run_dir, str) and storage.is_url(run_dir):
        fs, path = storage.file_system(run_dir)
        with contextlib.suppress(FileNotFoundError):
            for name in storage.bounded(fs, "glob", f"{path.rstrip('/')}/{SOURCES_PREFIX}*"):
                text = storage.bounded(fs, "cat_file", name).decode("utf-8")
                logged.update(line for line in text.splitlines() if line)
        return logged
    with contextlib.suppress(OSError):
        for listing in Path(run_dir).glob(f"{SOURCES_PREFIX}*"):
            logged.update(line for line in listing.read_text(encoding="utf-8").splitlines() if line)
    return logged


def _declared_size(head: bytes) -> int:
    """The file size a header states, where the format has one (BMP, and WebP's RIFF); else 0."""
    if head.startswith(b"BM") and len(head) >= 6:
        return int.from_bytes(head[2:6], "little")
    if head.startswith(b"RIFF") and len(head) >= 8:
        return int.from_bytes(head[4:8], "little") + 8
    return 0


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """Ctrl-C (and SIGTERM, which `--watch` takes as one) arriving inside the block is raised at its end.

    Only the main thread receives signals, and only a handler set from Python can be
    put back, so anywhere else the block runs as it is."""
    import threading

    wanted = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in wanted}
    held = {number: handler for number, handler in previous.items() if callable(handler)}
    caught: list[tuple[int, Any]] = []
    for number in held:
        signal.signal(number, lambda received, frame: caught.append((received, frame)))
    try:
        yield
    finally:
        for number, handler in held.items():
            signal.signal(number, handler)
        if caught:
            received, frame = caught[0]
            held[signal.Signals(received)](received, frame)


def _reason(exc: BaseException, path: str = "") -> str:
    if isinstance(exc, FileNotFoundError) and path and os.path.islink(path):
        return missing_path_reason(path)
    if isinstance(exc, OSError) and not isinstance(exc, InputError):
        return f"cannot read it ({exc.strerror or exc})"
    return str(exc)


def _take(items: Iterator[Source], count: int) -> Iterable[Source]:
    for _ in range(count):
        item = next(items, None)
        if item is None:
            return
        yield item
