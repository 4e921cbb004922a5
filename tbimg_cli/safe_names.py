"""File names for exported images that cannot escape `--out` or upset a file system.

Tags and runs are arbitrary strings ("../../etc/x", "/abs", "con:", 300
characters...). Each "/"-separated part becomes one safe folder name; the
resolved path is checked to stay under the output folder; names that collide
after cleaning get a numeric suffix rather than overwriting each other.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

MAX_COMPONENT = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._ +=@,()\[\]-]")
# Names Windows reserves whatever the extension.
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", ".png"), (b"\xff\xd8\xff", ".jpg"), (b"GIF87a", ".gif"), (b"GIF89a", ".gif"), (b"BM", ".bmp"))


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
