"""Which files `tbimg log` logs, under which tags and steps: folders, globs and files named, read again by
`--watch` at each change.

A folder's files are found recursively, each subfolder a tag below the folder's; hidden files and folders
are left out, as `ls` does. Two folders of one name (`exp1/samples exp2/samples`) are told apart by their
parents' names, and a name once given is kept for the session. Each file's step comes from its own path
(`steps.py`), so a file found later gets the step it would have had from the start.
"""

from __future__ import annotations

import glob
import os
import re
from collections import Counter
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NamedTuple

from tbimg_cli.images import steps as step_rules

if TYPE_CHECKING:
    from tbimg_cli.images.sources import LogSettings

STDIN = "-"
STDIN_TAG = "stdin"
# The files of a folder that are logged, by name: images and arrays, not notes or configs.
IMAGE_SUFFIXES = frozenset(
    (".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".npy", ".npz")
)
_GLOB_CHARACTERS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Source:
    """One file to log: where, under which tag, and where it sorts."""

    path: str  # STDIN for standard input
    tag: str
    step: int | None  # None for --steps-from order: given out as the files are written
    numbered: bool = True  # False for a file whose name has no number (auto steps: step 0)

    @property
    def key(self) -> str:
        """How the run's list of logged files knows it (its absolute path)."""
        return self.path if self.path == STDIN else os.path.abspath(self.path)


class Found(NamedTuple):
    """A file a path named, before its tag and step are known."""

    path: str
    folder: str  # the folder whose name begins its tag (absolute)
    relative: str  # its path below the folder or glob root given: what the step rule reads
    root_name: str  # that root's own name (`--steps-from folder` reads it for files right in it)
    flat: bool = False  # a glob's match: tagged by its own folder, never by subfolders below the root


# Images Pillow cannot read without a plugin: named, not skipped like a folder's notes.
NEEDS_A_PLUGIN = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF"}


class FileFinder:
    """The files the paths of one `tbimg log` name, with their tags and steps; it reports through callbacks."""

    def __init__(
        self,
        settings: LogSettings,
        rule: step_rules.StepRule,
        on_problem: Callable[[str, str], None],
        on_notice: Callable[[str], None],
    ) -> None:
        self.settings = settings
        self.rule = rule
        self._on_problem = on_problem
        self._on_notice = on_notice
        self.folders_seen: set[str] = set()  # what `watch` looks at to tell whether to list again
        self._root_tags: dict[str, str] = {}  # a tag's folder -> its name, kept for the session
        self._unnumbered: dict[str, str] = {}  # tag -> a file of it with no number (auto steps), for the notice
        self._numbered: set[str] = set()  # tags with a numbered file
        self._mixed_noted: set[str] = set()

    def expand(self, *, quiet: bool = False, known: Container[str] = ()) -> tuple[list[Source], int]:
        """(every file the paths name now that is not `known`, with tags and steps, in (tag, step, natural)
        order; how many were known). Problems are noted once each.

        `quiet` (the watch's polls) leaves out what only the first pass reports: missing paths and
        standard input. A file whose path gives no step is a problem either way. A known file (by
        absolute path: logged into the run already) costs no more than its listing, so that an idle
        `--watch` over 20,000 logged files stays cheap; its folder still takes part in naming tags.
        """
        found: list[Found] = []
        self.folders_seen = set()
        for path in self.settings.paths:
            found.extend(self._files_of(path, quiet=quiet))
        fresh = [item for item in found if os.path.abspath(item.path) not in known]
        placed = [(item.path, *where) for item in fresh if (where := self._place(item)) is not None]
        self._name_tags({item.folder for item in found} | {folder for _, folder, _, _ in placed})
        sources = [self._source(*item) for item in placed]
        if not quiet and STDIN in self.settings.paths:
            sources.append(
                Source(STDIN, self.settings.tag or STDIN_TAG, self.rule.fixed if self.rule.mode != "order" else None)
            )
        unique = {source.key: source for source in reversed(sources)}.values()  # a file named twice: its first tag
        return (
            sorted(unique, key=lambda s: (s.tag, -1 if s.step is None else s.step, natural_key(s.path))),
            len(found) - len(fresh),
        )

    def _files_of(self, path: str, *, quiet: bool) -> Iterator[Found]:
        if path == STDIN:
            return
        try:
            is_folder = os.path.isdir(path)
            os.stat(path)
        except OSError as exc:
            if _GLOB_CHARACTERS.search(path):
                yield from self._glob(path, quiet=quiet)
            elif not quiet:
                self._on_problem(path, missing_path_reason(path, exc))
            return
        if is_folder:
            yield from self._folder(path)
        elif not quiet and not self._unreadable(path):
            name = os.path.basename(path)
            if os.path.dirname(path):  # `shots/s1.png`: its folder names it
                folder = os.path.abspath(os.path.dirname(path))
            else:  # `masks.npy`, in the current folder (whose name says nothing): its own name, less numbers
                folder = os.path.abspath(re.sub(r"\d+", "", PurePosixPath(name).stem).strip("-_. ") or "images")
            yield Found(path, folder, name, os.path.basename(folder))

    def _glob(self, pattern: str, *, quiet: bool) -> Iterator[Found]:
        """A glob's files, their step rule reading the path below the glob's root (the part before any `*`)."""
        matches = glob.glob(pattern, recursive=True)
        if not matches and not quiet:
            self._on_problem(pattern, "no files match this pattern")
        root = _glob_root(pattern)
        self.folders_seen.add(root)
        self.folders_seen.update(os.path.dirname(match) or "." for match in matches)
        for match in matches:
            if os.path.isdir(match):
                yield from self._folder(match)
            elif _is_image_path(match):
                relative = Path(os.path.relpath(match, root)).as_posix()
                yield Found(match, os.path.abspath(root), relative, os.path.basename(os.path.abspath(root)), flat=True)
            else:
                self._unreadable(match)  # a HEIC is named; other files a glob matches are left out

    def _folder(self, folder: str) -> Iterator[Found]:
        """A folder's image files, recursively (each subfolder a tag below the folder's). Hidden files and
        folders (`.ipynb_checkpoints/`, macOS's `._*`) are left out, as `ls` does; named, they are read."""
        visited: set[tuple[int, int]] = set()
        top = os.path.abspath(folder)

        def unreadable(error: OSError) -> None:
            self._on_problem(error.filename or folder, f"cannot read this folder ({error.strerror})")

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
            self.folders_seen.add(root)
            folders[:] = [name for name in folders if not name.startswith(".")]  # hidden, as `ls` has it
            relative = os.path.relpath(root, folder)
            for name in files:
                if name.startswith("."):  # hidden, as `ls` has it: macOS's ._epoch_1.png is no image
                    continue
                if not _is_image_path(name):
                    self._unreadable(name, root)  # a HEIC is named; notes and configs are left out
                    continue
                inside = name if relative == "." else Path(relative, name).as_posix()
                yield Found(os.path.join(root, name), top, inside, os.path.basename(top))

    def _unreadable(self, path: str, folder: str = "") -> bool:
        """True, after saying so, for an image in a format tbimg cannot read (iPhone's HEIC, say)."""
        kind = NEEDS_A_PLUGIN.get(os.path.splitext(path)[1].lower())
        if kind is None:
            return False
        self._on_problem(
            os.path.join(folder, path),
            f"{kind} images cannot be read here: convert them to JPEG or PNG "
            f"(on a Mac: sips -s format jpeg), or pip install pillow-heif",
        )
        return True

    def _name_tags(self, folders: set[str]) -> None:
        """Name each new tag folder by its own name, with as many parents as tell it from the session's others.

        A name once given is kept, so a folder a glob finds later never renames one already logged."""
        new = sorted(folders - self._root_tags.keys())
        depth = dict.fromkeys(new, 1)
        while True:
            names = {folder: _last_parts(folder, depth[folder]) for folder in new}
            seen = Counter(names.values())
            taken = set(self._root_tags.values())
            clashing = [
                folder
                for folder in new
                if (seen[names[folder]] > 1 or names[folder] in taken)
                and _last_parts(folder, depth[folder] + 1) != names[folder]  # parents left to tell it apart
            ]
            if not clashing:
                break
            for folder in clashing:
                depth[folder] += 1
        self._root_tags.update(names)

    def _place(self, found: Found) -> tuple[str, tuple[str, ...], int | None] | None:
        """(the tag's folder, its subfolders, the step) of one file, or None after noting why its path gives no step."""
        try:
            subfolders, step = self.rule.place(found.relative, found.root_name)
        except step_rules.StepRefused as exc:
            self._on_problem(found.path, str(exc))
            return None
        folder = found.folder
        if self.rule.mode == "folder" and not PurePosixPath(found.relative).parent.parts:
            folder = os.path.dirname(folder)  # the root itself was the step's folder: its parent names the tag
        if found.flat:  # a glob's file: its own folder (less a step's) names the tag, or --tag alone does
            return os.path.join(folder, *subfolders), (), step
        return folder, subfolders, step

    def _source(self, path: str, folder: str, subfolders: tuple[str, ...], step: int | None) -> Source:
        tag = "/".join((self.settings.tag or self._root_tags[folder], *subfolders))
        numbered = self.rule.mode != "auto" or any(c.isdigit() for c in PurePosixPath(path).stem)
        self._note_mixed(tag, path, numbered)
        return Source(path, tag, step, numbered)

    def _note_mixed(self, tag: str, path: str, numbered: bool) -> None:
        if numbered:
            self._numbered.add(tag)
        else:
            self._unnumbered.setdefault(tag, path)
        if tag in self._numbered and tag in self._unnumbered and tag not in self._mixed_noted:
            self._mixed_noted.add(tag)
            self._on_notice(
                f"tag {tag!r}: {os.path.basename(self._unnumbered[tag])} has no number in its name and went to "
                f"step {self.rule.fixed}, among numbered steps; to choose, use {step_rules.WAY_OUT}"
            )


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that puts `2` before `10`: digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", text))


def _is_image_path(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in IMAGE_SUFFIXES


def _glob_root(pattern: str) -> str:
    """The folder a glob's matches lie under: its path up to the first part with a wildcard."""
    parts = Path(pattern).parts
    fixed = next((i for i, part in enumerate(parts) if _GLOB_CHARACTERS.search(part)), len(parts))
    return str(Path(*parts[:fixed])) if fixed else "."


def _last_parts(folder: str, depth: int) -> str:
    parts = [part for part in Path(folder).parts if part != os.sep] or ["images"]
    return "/".join(parts[-depth:])


def missing_path_reason(path: str, exc: OSError | None = None) -> str:
    """Why a path cannot be read; a link to nothing says so, with where it points."""
    if os.path.islink(path) and (exc is None or isinstance(exc, FileNotFoundError)):
        return f"is a broken link (to {os.readlink(path)}, which does not exist)"
    return (exc.strerror or str(exc)) if exc is not None else "does not exist"
