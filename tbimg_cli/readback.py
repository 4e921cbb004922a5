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
    path: str
    offset: int
    message: str
    truncated_tail: bool


@dataclass
class Inspection:
    logdir: Path
    tags: list[TagSummary]
    problems: list[FileProblem]

    @property
    def corrupt(self) -> bool:
        """A cut last record is what a running writer leaves; anything else is damage."""
        return any(not p.truncated_tail for p in self.problems)

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


def find_runs(logdir: Path) -> dict[str, list[Path]]:
    """Run name (path relative to logdir, "." for the logdir itself) -> its event files."""
    logdir = Path(logdir)
    if logdir.exists() and not logdir.is_dir():
        raise LogReadError(f"{logdir} is a file; give the log directory that holds event files")
    if not logdir.is_dir():
        raise LogReadError(f"log directory {logdir} does not exist")
    runs: dict[str, list[Path]] = {}
    for folder, _, files in os.walk(logdir):
        events = sorted(Path(folder) / f for f in files if EVENT_FILE_MARKER in f)
        if events:
            runs[Path(folder).relative_to(logdir).as_posix()] = events
    return dict(sorted(runs.items()))


def _values(path: Path, plugins: dict[str, str], problems: list[FileProblem]) -> Iterator[tuple[int, object]]:
    """(step, value) for every summary value in one file, normalised to tensor form."""
    from google.protobuf.message import DecodeError
    from tensorboard import data_compat
    from tensorboard.compat.proto import event_pb2

    for item in iter_records(path):
        if isinstance(item, RecordProblem):
            problems.append(FileProblem(str(path), item.offset, item.message, item.truncated_tail))
            return
        offset, payload = item
        try:
            event = event_pb2.Event.FromString(payload)
        except DecodeError:
            problems.append(FileProblem(str(path), offset, "record is not a TensorBoard event", False))
            return
        if not event.HasField("summary"):
            continue
        for value in event.summary.value:
            value = data_compat.migrate_value(value)
            # TF 1 writers put metadata only on a tag's first value.
            if value.metadata.plugin_data.plugin_name:
                plugins[value.tag] = value.metadata.plugin_data.plugin_name
            yield event.step, value


def _walk(logdir: Path, problems: list[FileProblem]) -> Iterator[tuple[str, int, str, object]]:
    """(run, step, plugin, value) over a whole logdir; file problems are collected on the side."""
    for run, files in find_runs(logdir).items():
        plugins: dict[str, str] = {}
        for path in files:
            for step, value in _values(path, plugins, problems):
                yield run, step, plugins.get(value.tag, ""), value


def inspect_logdir(logdir: Path) -> Inspection:
    from tensorboard.util import tensor_util

    summaries: dict[tuple[str, str], TagSummary] = {}
    problems: list[FileProblem] = []
    for run, step, plugin, value in _walk(logdir, problems):
        summary = summaries.setdefault((run, value.tag), TagSummary(run, value.tag, plugin or "?"))
        summary.steps.append(step)
        if plugin == "images":
            strings = value.tensor.string_val
            summary.samples = max(summary.samples, max(len(strings) - 2, 0))
            if len(strings) >= 2:
                summary.width, summary.height = int(strings[0]), int(strings[1])
        elif plugin == "scalars":
            summary.last_value = float(tensor_util.make_ndarray(value.tensor).item())
    return Inspection(Path(logdir), list(summaries.values()), problems)


def iter_image_samples(logdir: Path, problems: list[FileProblem]) -> Iterator[Sample]:
    for run, step, plugin, value in _walk(logdir, problems):
        if plugin == "images":
            for index, data in enumerate(value.tensor.string_val[2:]):
                yield Sample(run, value.tag, step, index, data)


@dataclass
class ExportResult:
    out: Path
    files: list[Path]
    runs: list[str]
    tags: list[str]
    problems: list[FileProblem]

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
    """Hands out distinct, safe paths under one output folder."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self._root = self.out.resolve()
        self._used: set[Path] = set()

    def for_sample(self, run: str, tag: str, step: int, index: int, data: bytes) -> Path:
        # The logdir itself as a run (".") gets no folder of its own.
        run_folder = Path() if run == "." else safe_relative(run)
        folder = self.out / run_folder / safe_relative(tag)
        stem, ext = f"step-{step}-{index}", extension(data)
        path = folder / f"{stem}{ext}"
        n = 1
        while path in self._used:
            n += 1
            path = folder / f"{stem}~{n}{ext}"
        if not path.resolve().is_relative_to(self._root):  # belt and braces: never outside --out
            raise ValueError(f"export path {path} escapes {self.out}")
        self._used.add(path)
        return path
