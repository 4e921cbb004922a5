"""`tbimg log`: image files, folders, globs, arrays and standard input as a run of image summaries.

Which tag: one per folder given (its name; a subfolder's files go under
`folder/sub`), or `--tag`; files given one by one take their folder's name.
Which step: the last number in the file's name (`epoch_012.png` is step 12:
files of one tag and step are the samples of one summary), the files' order,
or one step for all. Files are read and checked on a few threads, a window at
a time, and written tag by tag in step order, so a folder of 10,000 files
costs the memory of a few of them. A file that cannot be logged is one
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
import glob
import os
import re
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
from tbimg_cli.images import values as image_values
from tbimg_cli.images.files import DEFAULT_MAX_PIXELS, image_format
from tbimg_cli.words import counted

if TYPE_CHECKING:
    from tbimg_cli.events.writer import EncodedImage

STDIN = "-"
STDIN_TAG = "stdin"
LOG_FOLDER = "images"  # under --logdir, beside the tutorial's folders
SOURCES_PREFIX = "tbimg-log-sources."
POLL_SECONDS = 0.25
READ_AHEAD = 32  # files read and checked ahead of the writer: the memory bound
STEP_MODES = ("name", "order")
# The files of a folder that are logged, by name: images and arrays, not notes or configs.
IMAGE_SUFFIXES = frozenset(
    (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".npy", ".npz")
)
_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")
_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class LogSettings:
    """What `tbimg log` was asked for, the options of the command."""

    paths: tuple[str, ...]
    tag: str | None = None
    step: int | None = None
    steps_from: str | None = None
    layout: image_values.Layout = "auto"
    value_range: image_values.ValueRange = None
    max_pixels: int = DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class Source:
    """One file to log: where, under which tag, and where it sorts."""

    path: str  # STDIN for standard input
    tag: str
    number: int | None  # the last number in its name

    @property
    def key(self) -> str:
        """How the run's list of logged files knows it (its absolute path)."""
        return self.path if self.path == STDIN else os.path.abspath(self.path)


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
    if settings.step is not None and settings.steps_from is not None:
        raise InputError("--step and --steps-from cannot be used together: one step for all, or steps per file")
    if settings.steps_from not in (None, *STEP_MODES):
        raise InputError(f"--steps-from must be one of {', '.join(STEP_MODES)}, got {settings.steps_from!r}")
    if settings.paths.count(STDIN) > 1:
        raise InputError("'-' (standard input) can be given once")
    if settings.tag is not None and not settings.tag.strip("/ "):
        raise InputError("--tag must name the summary (it is empty)")
    if watch and all(p == STDIN or os.path.isfile(p) for p in settings.paths):
        raise InputError("--watch needs a folder or a quoted glob to watch; files given one by one do not change")
    image_values.check_rules(settings.layout, settings.value_range)


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
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create --run-dir {folder} ({exc.strerror})") from exc
    yield folder, folder.parent


def _identity(path: str) -> tuple[int, int] | tuple[()]:
    try:
        info = os.stat(path)
    except OSError:
        return ()
    return info.st_size, info.st_mtime_ns


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that puts `2` before `10`: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", text))


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
        self.steps_from = settings.steps_from
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

    def log_present(self, on_progress: Callable[[int, int], None] | None = None) -> LogResult:
        """Log every file the paths hold now; `on_progress(done, total)` after each file."""
        self.log(self.expand(), on_progress)
        return self.result

    def watch(self, on_change: Callable[[LogResult], None] | None = None) -> LogResult:
        """Log new files of the watched folders and globs as they become whole, until Ctrl-C.

        `on_change` is called after each poll that logged a file or found a problem.
        Ctrl-C (KeyboardInterrupt) ends the watch and returns the result.
        """
        self.result.watched = True
        waiting: dict[str, tuple[int, int]] = {}  # path -> (size, mtime) seen at the last poll
        # Files the first pass could not log are left alone until they change.
        refused = {source.path: _identity(source.path) for source in self.expand(quiet=True)}
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(POLL_SECONDS)
                candidates = [s for s in self.expand(quiet=True) if refused.get(s.path, ()) != _identity(s.path)]
                ready = [source for source in candidates if self.whole(source, waiting)]
                if not ready:
                    continue
                before = len(self.result.problems), self.result.files
                self.log(ready, None)
                refused.update((s.path, _identity(s.path)) for s in ready if s.key not in self.logged)
                if on_change is not None and (len(self.result.problems), self.result.files) != before:
                    on_change(self.result)
        return self.result

    # Which files

    def expand(self, *, quiet: bool = False) -> list[Source]:
        """Every file the paths name now, with tags, in natural order; problems noted (once each)."""
        sources: list[Source] = []
        for path in self.settings.paths:
            sources.extend(self._sources_of(path, quiet=quiet))
        fresh = [s for s in sources if s.key not in self.logged]
        if not quiet:
            self.result.skipped += len(sources) - len(fresh)
            if self.steps_from is None and self.settings.step is None:  # decided by every file, logged or not
                files = [s for s in sources if s.path != STDIN]
                self.steps_from = "name" if files and all(s.number is not None for s in files) else None
        unique = {source.key: source for source in reversed(fresh)}.values()  # a file named twice: its first tag
        return sorted(unique, key=lambda s: (s.tag, natural_key(s.path)))

    def _sources_of(self, path: str, *, quiet: bool) -> Iterator[Source]:
        tag = self.settings.tag
        if path == STDIN:
            if not quiet:
                yield Source(STDIN, tag or STDIN_TAG, None)
            return
        try:
            is_folder = os.path.isdir(path)
            os.stat(path)
        except OSError as exc:
            if _GLOB_CHARACTERS.search(path):
                yield from self._glob(path, quiet=quiet)
            elif not quiet:
                self._problem(path, exc.strerror or str(exc))
            return
        if is_folder:
            yield from self._folder(path, tag or _folder_name(path))
        elif not quiet:
            yield _source(path, tag or _folder_name(os.path.dirname(path) or "."))

    def _glob(self, pattern: str, *, quiet: bool) -> Iterator[Source]:
        matches = glob.glob(pattern, recursive=True)
        if not matches and not quiet:
            self._problem(pattern, "no files match this pattern")
        for match in matches:
            if os.path.isdir(match):
                yield from self._folder(match, self.settings.tag or _folder_name(match))
            elif _is_image_path(match):
                yield _source(match, self.settings.tag or _folder_name(os.path.dirname(match) or "."))

    def _folder(self, folder: str, tag: str) -> Iterator[Source]:
        """A folder's image files, recursively; each subfolder is a tag below the folder's. Hidden files and
        folders (`.ipynb_checkpoints/`, macOS's `._*`) are left out, as `ls` does; named, they are read."""
        visited: set[tuple[int, int]] = set()

        def unreadable(error: OSError) -> None:
            self._problem(error.filename or folder, f"cannot read this folder ({error.strerror})")

        for root, folders, files in os.walk(folder, onerror=unreadable, followlinks=True):
            try:
                info = os.stat(root)
            except OSError as exc:
                unreadable(exc)
                continue
            if (info.st_dev, info.st_ino) in visited:  # a link back up the tree: its files are listed already
                folders.clear()
                continue
            visited.add((info.st_dev, info.st_ino))
            folders[:] = [name for name in folders if not name.startswith(".")]  # hidden, as `ls` has it
            relative = os.path.relpath(root, folder)
            sub_tag = tag if relative == "." else f"{tag}/{Path(relative).as_posix()}"
            for name in files:
                if _is_image_path(name) and not name.startswith("."):  # macOS's ._epoch_1.png is no image
                    yield _source(os.path.join(root, name), sub_tag)

    # Which steps, then reading and writing

    def log(self, sources: list[Source], on_progress: Callable[[int, int], None] | None) -> None:
        """Read, check and write `sources` group by group (one summary per tag and step)."""
        if self.steps_from == "name":
            for source in [s for s in sources if s.number is None and s.path != STDIN]:
                self._problem(source.path, "has no number in its name to take the step from (--steps-from name)")
            sources = [s for s in sources if s.number is not None or s.path == STDIN]
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
        """True once a new file is whole: its format's check passes, or its size held still for a poll."""
        try:
            info = os.stat(source.path)
            if not stat.S_ISREG(info.st_mode):
                return True  # nothing to wait for: `log` reports it as no regular file
            with open(source.path, "rb") as file:
                head = file.read(16)
        except OSError:
            return False
        seen, waiting[source.path] = waiting.get(source.path), (info.st_size, info.st_mtime_ns)
        if not head:
            return False
        if image_format(head) is None:
            return seen == (info.st_size, info.st_mtime_ns)
        try:
            image_values.load_file(source.path, max_pixels=self.settings.max_pixels)
        except (InputError, OSError):
            return seen == (info.st_size, info.st_mtime_ns) and info.st_mtime_ns < time.time_ns() - 5 * 10**9
        return True

    def _same_summary(self, first: Source, source: Source) -> bool:
        if first.tag != source.tag or self.steps_from == "order":
            return False
        return self.steps_from != "name" or first.number == source.number

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
                    self._problem(source.path, _reason(exc))
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
        """One summary per tag (and per array name of an .npz) for a group of one tag and step."""
        first = group[0][0]
        by_tag: dict[str, list[EncodedImage]] = {}
        for source, loaded in group:
            for name, images in loaded.items():
                by_tag.setdefault(f"{source.tag}/{name}" if name else source.tag, []).extend(images)
        for tag, images in by_tag.items():
            if self.steps_from == "order":
                for image in images:
                    self._write_summary(tag, [image], self._ordered_step(tag))
            else:
                named = self.steps_from == "name"
                step = first.number if named and first.number is not None else self._fixed_step()
                self._write_summary(tag, images, step)
        self.writer.flush()
        self._remember([source for source, _ in group])

    def _write_summary(self, tag: str, images: list[EncodedImage], step: int) -> None:
        self.writer.encoded_images(tag, images, step)
        self.result.summaries += 1
        self.result.images += len(images)
        self.result.steps.add(step)
        if tag not in self.result.tags:
            self.result.tags.append(tag)

    def _fixed_step(self) -> int:
        return self.settings.step or 0

    def _ordered_step(self, tag: str) -> int:
        step = self.next_step.get(tag, self.settings.step or 0)
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
            for name in fs.glob(f"{path.rstrip('/')}/{SOURCES_PREFIX}*"):
                logged.update(line for line in fs.cat_file(name).decode("utf-8").splitlines() if line)
        return logged
    with contextlib.suppress(OSError):
        for listing in Path(run_dir).glob(f"{SOURCES_PREFIX}*"):
            logged.update(line for line in listing.read_text(encoding="utf-8").splitlines() if line)
    return logged


def _is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES


def _source(path: str, tag: str) -> Source:
    match = _LAST_NUMBER.search(Path(path).stem)
    return Source(path, tag, int(match.group(1)) if match else None)


def _folder_name(path: str) -> str:
    return Path(os.path.abspath(path)).name or "images"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, InputError):
        return f"cannot read it ({exc.strerror or exc})"
    return str(exc)


def _take(items: Iterator[Source], count: int) -> Iterable[Source]:
    for _ in range(count):
        item = next(items, None)
        if item is None:
            return
        yield item
