"""Read any TensorBoard logdir back: `inspect` (what is there) and `export` (images out as files).

No TensorFlow: records are read with tbimg's own framing code, which checks
both CRCs, and every value goes through TensorBoard's `data_compat`, which turns
legacy `Summary.Image` / `simple_value` values (tensorboardX, torch, TF 1)
into the same tensor form `tf.summary.image` and tbimg write. A run is every
directory holding event files, as TensorBoard sees it.

Exported files are named from tags and runs, which are arbitrary strings
("../../etc/x", "/abs", "con:", 300 characters...): each "/"-separated part
becomes one safe folder name, the resolved path must stay under the output
folder, and names that collide after cleaning get a numeric suffix rather than
overwriting each other.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tbimg_cli.errors import LogReadError
from tbimg_cli.records import RecordProblem, iter_records

EVENT_FILE_MARKER = "tfevents"
MAX_COMPONENT = 100  # characters in one exported folder or file name
_UNSAFE = re.compile(r"[^A-Za-z0-9._ +=@,()\[\]-]")
# Names Windows reserves whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"), (b"BM", ".bmp"))


@dataclass
class TagSummary:
    run: str
    tag: str
    plugin: str
    steps: list[int] = field(default_factory=list)
    samples: int = 0  # most samples seen in one step (images)
    width: int | None = None
    height: int | None = None
    last_value: float | None = None  # scalars

    @property
    def image_size(self) -> str:
        return f"{self.width}x{self.height}" if self.width is not None else ""

    def to_json(self) -> dict:
        result = asdict(self)
        result["steps"] = {"first": min(self.steps), "last": max(self.steps), "count": len(self.steps)}
        return result


@dataclass(frozen=True)
class FileProblem:
    """Something wrong in or about one file. `note` problems (a cut last record, a skipped
    FIFO) are no damage and leave the exit code at 0; the others are damage, exit 1."""

    path: str
    offset: int
    message: str
    note: bool


@dataclass
class Inspection:
    logdir: Path
    tags: list[TagSummary]
    problems: list[FileProblem]

    @property
    def corrupt(self) -> bool:
        """A cut last record is what a running writer leaves; anything else is damage."""
        return any(not p.note for p in self.problems)

    def to_json(self) -> dict:
        return {
            "logdir": str(self.logdir),
            "runs": sorted({t.run for t in self.tags}),
            "tags": [t.to_json() for t in self.tags],
            "problems": [asdict(p) for p in self.problems],
        }


@dataclass(frozen=True)
class Sample:
    run: str
    tag: str
    step: int
    index: int
    data: bytes


def find_runs(logdir: Path, problems: list[FileProblem] | None = None) -> dict[str, list[Path]]:
    """Run name (path relative to logdir, "." for the logdir itself) -> its event files.

    Only regular files count: a FIFO would block the first read forever, and a
    dangling or looping symlink cannot be read at all, so those are skipped
    with a note. Symlinked folders are not followed (no loops to walk).
    """
    logdir = Path(logdir)
    if logdir.exists() and not logdir.is_dir():
        raise LogReadError(f"{logdir} is a file; give the log directory that holds event files")
    if not logdir.is_dir():
        raise LogReadError(f"log directory {logdir} does not exist")
    runs: dict[str, list[Path]] = {}
    for folder, _, files in os.walk(logdir):
        events = []
        for name in sorted(f for f in files if EVENT_FILE_MARKER in f):
            path = Path(folder) / name
            why = _not_readable(path)
            if why is None:
                events.append(path)
            elif problems is not None:
                problems.append(FileProblem(str(path), 0, f"skipped: {why}", True))
        if events:
            runs[Path(folder).relative_to(logdir).as_posix()] = events
    return dict(sorted(runs.items()))


def _not_readable(path: Path) -> str | None:
    try:
        mode = path.stat().st_mode  # follows symlinks, as opening would
    except OSError as exc:
        if path.is_symlink():
            return f"a symlink that leads nowhere ({exc.strerror})"
        return exc.strerror or str(exc)
    if not stat.S_ISREG(mode):
        return "not a regular file (a FIFO, socket or device would block or mislead the reader)"
    return None


@dataclass(frozen=True)
class _Value:
    """One summary value of a logdir, with where it came from (for problem reports)."""

    run: str
    step: int
    plugin: str
    value: object  # Summary.Value in tensor form
    path: Path
    offset: int


def _values(path: Path, plugins: dict[str, str], problems: list[FileProblem]) -> Iterator[tuple[int, int, object]]:
    """(offset, step, value) for every summary value in one file, normalised to tensor form."""
    from google.protobuf.message import DecodeError
    from tensorboard import data_compat
    from tensorboard.compat.proto import event_pb2

    for item in iter_records(path):
        if isinstance(item, RecordProblem):
            consequence = "read up to there" if item.truncated_tail else "the rest of that file was skipped"
            problems.append(FileProblem(str(path), item.offset, f"{item.message}; {consequence}", item.truncated_tail))
            return
        offset, payload = item
        try:
            event = event_pb2.Event.FromString(payload)
        except DecodeError:
            problems.append(FileProblem(str(path), offset, "record is not a TensorBoard event; the rest of that file was skipped", False))
            return
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            try:
                value = data_compat.migrate_value(value)
            except Exception as exc:  # a malformed legacy value: report it, keep reading
                problems.append(FileProblem(str(path), offset, f"tag {value.tag!r}: {exc}; that value was skipped", False))
                continue
            # TF 1 writers put metadata only on a tag's first value.
            if value.metadata.plugin_data.plugin_name:
                plugins[value.tag] = value.metadata.plugin_data.plugin_name
            yield offset, event.step, value


def _walk(logdir: Path, problems: list[FileProblem]) -> Iterator[_Value]:
    """Every summary value of a whole logdir; file problems are collected on the side."""
    for run, files in find_runs(logdir, problems).items():
        plugins: dict[str, str] = {}
        for path in files:
            for offset, step, value in _values(path, plugins, problems):
                yield _Value(run, step, plugins.get(value.tag, ""), value, path, offset)


def _image_value(tensor) -> tuple[int, int, list[bytes]]:
    """(width, height, samples) of an image summary's tensor; ValueError says what is malformed."""
    strings = tensor.string_val
    if len(strings) < 2:
        raise ValueError(f"an image summary holds width, height and images, but this one has {len(strings)} strings")
    try:
        width, height = int(strings[0]), int(strings[1])
    except ValueError:
        raise ValueError(f"image width and height must be numbers, got {strings[0][:20]!r} and {strings[1][:20]!r}") from None
    return width, height, list(strings[2:])


def _scalar_value(tensor) -> float:
    from tensorboard.util import tensor_util

    try:
        array = tensor_util.make_ndarray(tensor)
    except Exception as exc:
        raise ValueError(f"scalar tensor cannot be read ({exc})") from None
    if array.size != 1:
        raise ValueError(f"a scalar must hold one number, this one holds {array.size}")
    return float(array.item())


def _bad_value(item: _Value, why: str) -> FileProblem:
    return FileProblem(str(item.path), item.offset, f"tag {item.value.tag!r} at step {item.step}: {why}; that value was skipped", False)


def inspect_logdir(logdir: Path) -> Inspection:
    summaries: dict[tuple[str, str], TagSummary] = {}
    problems: list[FileProblem] = []
    for item in _walk(logdir, problems):
        try:
            if item.plugin == "images":
                width, height, samples = _image_value(item.value.tensor)
            elif item.plugin == "scalars":
                last_value = _scalar_value(item.value.tensor)
        except ValueError as exc:
            problems.append(_bad_value(item, str(exc)))
            continue
        summary = summaries.setdefault((item.run, item.value.tag), TagSummary(item.run, item.value.tag, item.plugin or "?"))
        summary.steps.append(item.step)
        if item.plugin == "images":
            summary.samples = max(summary.samples, len(samples))
            summary.width, summary.height = width, height
        elif item.plugin == "scalars":
            summary.last_value = last_value
    return Inspection(Path(logdir), list(summaries.values()), problems)


def iter_image_samples(logdir: Path, problems: list[FileProblem]) -> Iterator[Sample]:
    for item in _walk(logdir, problems):
        if item.plugin == "images":
            try:
                _, _, samples = _image_value(item.value.tensor)
            except ValueError as exc:
                problems.append(_bad_value(item, str(exc)))
                continue
            for index, data in enumerate(samples):
                yield Sample(item.run, item.value.tag, item.step, index, data)


@dataclass
class ExportResult:
    out: Path
    files: list[Path]
    runs: list[str]
    tags: list[str]
    problems: list[FileProblem]

    @property
    def corrupt(self) -> bool:
        return any(not p.note for p in self.problems)

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "images": len(self.files),
            "runs": self.runs,
            "tags": self.tags,
            "files": [str(p) for p in self.files],
            "problems": [asdict(p) for p in self.problems],
        }


def export_images(
    logdir: Path, out: Path, tag: str | None = None, run: str | None = None, step: int | None = None, force: bool = False
) -> ExportResult:
    """Write each selected image sample with its original bytes; all-or-nothing about overwriting."""
    if Path(out).exists() and not Path(out).is_dir():
        raise LogReadError(f"--out {out} is a file, not a folder")
    problems: list[FileProblem] = []
    selected = [
        s
        for s in iter_image_samples(logdir, problems)
        if (tag is None or s.tag == tag) and (run is None or s.run == run) and (step is None or s.step == step)
    ]
    if not selected:
        what = " and ".join(f"{k} {v!r}" for k, v in (("tag", tag), ("run", run), ("step", step)) if v is not None)
        raise LogReadError(f"no images in {logdir}" + (f" for {what}" if what else "") + "; `tbimg inspect` lists what is there")
    paths = ExportPaths(Path(out))
    planned = [(paths.for_sample(s.run, s.tag, s.step, s.index, s.data), s) for s in selected]
    existing = [p for p, _ in planned if p.exists()]
    if existing and not force:
        raise LogReadError(
            f"{len(existing)} file(s) already exist under {out} (first: {existing[0]}); use --force to overwrite"
        )
    for path, sample in planned:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sample.data)
        except OSError as exc:
            raise LogReadError(f"cannot write {path} ({exc.strerror}); choose another --out") from exc
    return ExportResult(
        Path(out),
        [p for p, _ in planned],
        sorted({s.run for s in selected}),
        sorted({s.tag for s in selected}),
        problems,
    )


# Safe export paths


def safe_component(text: str) -> str:
    """One folder or file name: only portable characters, never '.', '..' or a device name."""
    cleaned = _UNSAFE.sub("_", text).strip(" .")
    if not cleaned:  # "", ".", ".." and the like
        cleaned = "_"
    if cleaned.split(".")[0].lower() in _RESERVED:
        cleaned = "_" + cleaned
    if len(cleaned) > MAX_COMPONENT:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        cleaned = cleaned[: MAX_COMPONENT - 11] + "-" + digest
    return cleaned


def safe_relative(text: str) -> Path:
    """A tag or run ("a/b/c") as nested safe folders; empty parts and '..' cannot climb."""
    parts = [safe_component(p) for p in text.split("/") if p not in ("", ".")]
    return Path(*parts) if parts else Path("_")


def extension(data: bytes) -> str:
    """Keep the format a writer stored (PNG, JPEG, GIF...): bytes are never re-encoded."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return ".webp"
    for magic, ext in _MAGIC:
        if data.startswith(magic):
            return ext
    return ".bin"


class ExportPaths:
    """Hands out distinct, safe paths under one output folder.

    Distinct also means no file where another sample needs a folder: tags `a`
    and `a/step-0-0.png` would otherwise claim `a/step-0-0.png` as both.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self._root = self.out.resolve()
        self._files: set[Path] = set()
        self._folders: set[Path] = set()
        self._folder_of: dict[tuple[str, str], Path] = {}

    def for_sample(self, run: str, tag: str, step: int, index: int, data: bytes) -> Path:
        folder = self._folder_of.get((run, tag)) or self._new_folder(run, tag)
        stem, ext = f"step-{step}-{index}", extension(data)
        path = folder / f"{stem}{ext}"
        n = 1
        while path in self._files or path in self._folders:
            n += 1
            path = folder / f"{stem}~{n}{ext}"
        if not path.resolve().is_relative_to(self._root):  # belt and braces: never outside --out
            raise ValueError(f"export path {path} escapes {self.out}")
        self._files.add(path)
        self._folders.update(p for p in path.parents if p.is_relative_to(self.out) and p != self.out)
        return path

    def _new_folder(self, run: str, tag: str) -> Path:
        # The logdir itself as a run (".") gets no folder of its own.
        run_folder = Path() if run == "." else safe_relative(run)
        folder = self.out / run_folder / safe_relative(tag)
        n = 1
        while clash := next((p for p in (*reversed(folder.parents), folder) if p in self._files), None):
            n += 1  # rename the part that is already a file, keep what is below it
            folder = clash.with_name(f"{clash.name}~{n}") / folder.relative_to(clash)
        self._folder_of[(run, tag)] = folder
        return folder
