"""Where `tbimg export` puts each file: safe, distinct names under `--out`, whatever the tags and runs are called.

Names come from tags and runs, which are arbitrary strings ("../../etc/x", "/abs", "con:", 300
characters...): each "/"-separated part becomes one safe folder name, the resolved path must stay under
`--out`, and names that collide (after cleaning, or a file where another needs a folder) get a numeric
suffix.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable
from pathlib import Path

MAX_COMPONENT = 100  # characters in one exported folder or file name
MAX_COMPONENT_BYTES = 200  # and its UTF-8 bytes: file systems count bytes (255), and a suffix may follow
SCALARS_FILE = "scalars.csv"
# What no common file system takes in a name (Windows' set, which includes the others'), and control
# characters. Everything else stays as it is, so 日本 and café remain readable.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f"*/:<>?\\|]')
# Names Windows reserves whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF87a", ".gif"),
    (b"GIF89a", ".gif"),
    (b"BM", ".bmp"),
)


def distinct_run_folders(out: Path, runs: Iterable[str]) -> dict[str, Path]:
    """A folder under `out` for each run, never one for two runs: names that clean up alike (or differ
    only in case, as two runs would on a case-insensitive disk) get `~2`, `~3`... The logdir's own
    events (run ".") go straight into `out`."""
    folders: dict[str, Path] = {}
    taken: set[str] = set()
    for run in runs:
        wanted = out if run == "." else out / safe_relative(run)
        folder, n = wanted, 1
        while str(folder).casefold() in taken:
            n += 1
            folder = wanted.with_name(f"{wanted.name}~{n}")
        taken.add(str(folder).casefold())
        folders[run] = folder
    return folders


def safe_component(text: str) -> str:
    """One folder or file name: no character a common file system refuses, never '.', '..' or a device
    name, and short enough for any of them; letters of every script stay as they are."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", text)).strip(" .")
    if not cleaned:  # "", ".", ".." and the like
        cleaned = "_"
    if cleaned.split(".")[0].lower() in _RESERVED:
        cleaned = "_" + cleaned
    if len(cleaned) > MAX_COMPONENT or len(cleaned.encode()) > MAX_COMPONENT_BYTES:
        digest = hashlib.sha1(text.encode()).hexdigest()[:10]
        kept = cleaned[: MAX_COMPONENT - 11]
        while len(kept.encode()) > MAX_COMPONENT_BYTES - 11:
            kept = kept[:-1]
        cleaned = kept + "-" + digest
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

    Distinct also means no file where another output needs a folder: tags `a`
    and `a/step-0-0.png` would otherwise claim `a/step-0-0.png` as both.
    """

    def __init__(self, out: Path, run_folders: dict[str, Path]):
        self.out = Path(out)
        self.run_folders = run_folders
        self._root = self.out.resolve()
        self._files: set[Path] = set()
        self._folders: set[Path] = set()
        self._folder_of: dict[tuple[str, str], Path] = {}

    def for_sample(self, run: str, tag: str, step: int, index: int, data: bytes) -> Path:
        return self._claim(self._tag_folder(run, tag), f"step-{step}-{index}", extension(data))

    def for_text(self, run: str, tag: str, step: int) -> Path:
        return self._claim(self._tag_folder(run, tag), f"step-{step}", ".md")

    def for_confusion(self, run: str, tag: str, step: int) -> Path:
        return self._claim(self._tag_folder(run, tag), f"confusion-{step}", ".csv")

    def for_scalars(self, run: str) -> Path:
        stem, ext = SCALARS_FILE.rsplit(".", 1)
        return self._claim(self._free_folder(self._run_folder(run)), stem, "." + ext)

    def for_animation(self, run: str, tag: str) -> Path:
        tag_path = self._run_folder(run) / safe_relative(tag)
        return self._claim(self._free_folder(tag_path.parent), tag_path.name, ".gif")

    def tag_folder(self, run: str, tag: str) -> Path | None:
        return self._folder_of.get((run, tag))

    def _run_folder(self, run: str) -> Path:
        return self.run_folders[run]

    def _tag_folder(self, run: str, tag: str) -> Path:
        folder = self._folder_of.get((run, tag))
        if folder is None:
            folder = self._folder_of[(run, tag)] = self._free_folder(self._run_folder(run) / safe_relative(tag))
        return folder

    def _free_folder(self, folder: Path) -> Path:
        """`folder`, renamed where one of its parts is already a file."""
        n = 1
        while clash := next((p for p in (*reversed(folder.parents), folder) if p in self._files), None):
            n += 1  # rename the part that is already a file, keep what is below it
            folder = clash.with_name(f"{clash.name}~{n}") / folder.relative_to(clash)
        return folder

    def _claim(self, folder: Path, stem: str, ext: str) -> Path:
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
