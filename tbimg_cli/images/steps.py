"""Which step a file of `tbimg log` belongs to, decided for each file alone, from its path.

A file's step depends on nothing but its own path relative to the folder or
glob root it was found under, so a file that `--watch` sees arrive gets the
step it would have had if it had been there from the start, and a folder's
order, neighbours or other files never change it.

The rules (`StepRule.mode`):

- `auto` (the default): the number in the file's name, read as `name` reads it;
  a name with no number at all is step 0 (`--step` for all, when given).
- `name`: the number in the file's name, or refused. A number after a step word
  (`epoch_3`, `iter5000_rank0`, `step-12`) is the step; else the name's only
  whole number. A name with several numbers (`2024-01-02_12-00-00`), or a
  decimal (`img_0.5`), is ambiguous: refused with the way out, never guessed.
- `folder`: the number in the name of the file's folder (`epoch_1/sample_0.png`
  is step 1, a sample of it); that folder is then no part of the tag.
- `order`: 0, 1, 2... per tag in sort order (given out when written, not here).
- `fixed`: one step for all (`--step N`).
- `pattern`: `--step-pattern REGEX`, searched in the relative path (POSIX
  separators); its first group is the step. A folder the group falls in is no
  part of the tag, as with `folder`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from tbimg_cli.errors import InputError

StepMode = Literal["auto", "name", "folder", "order", "fixed", "pattern"]
CHOICES = ("name", "folder", "order")  # what --steps-from takes
_STEP_WORD = re.compile(
    r"(?<![a-z])(?:global_?step|steps?|iterations?|iters?|it|epochs?|ep)[-_=]?(\d+)(?![.,]\d)(?!\d)", re.IGNORECASE
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
WAY_OUT = "--step-pattern REGEX (its first group is the step) or --steps-from order"


class StepRefused(ValueError):
    """A file whose path gives no step under the rule: the message says why and what to pass instead."""


@dataclass(frozen=True)
class StepRule:
    """How `tbimg log` was asked to find steps (built once from the options by `rule`)."""

    mode: StepMode = "auto"
    fixed: int = 0  # `--step`: the step of `fixed`, and of files without a number in `auto`
    pattern: re.Pattern[str] | None = None

    def place(self, relative: str, root_name: str) -> tuple[tuple[str, ...], int | None]:
        """(the folders that make up the sub-tag, the step; None for `order`) of one file.

        `relative` is the file's path below the folder or glob root given, with `/`
        separators (only its name for a file given by itself); `root_name` is that
        folder's own name, which `folder` reads when the file lies at the root.

        Raises:
            StepRefused: when the rule finds no step in the path, or more than one reading.
        """
        path = PurePosixPath(relative)
        folders = path.parent.parts
        if self.mode == "fixed":
            return folders, self.fixed
        if self.mode == "order":
            return folders, None
        if self.mode == "pattern":
            return self._by_pattern(relative, folders)
        if self.mode == "folder":
            where = folders[-1] if folders else root_name
            step = _number_in_name(where)
            if step is None:
                raise StepRefused(f"its folder's name {where!r} holds no step (--steps-from folder)")
            return folders[:-1], step
        step = _number_in_name(path.stem)
        if step is None and self.mode == "auto":
            return folders, self.fixed
        if step is None:
            raise StepRefused("has no number in its name to take the step from (--steps-from name)")
        return folders, step

    def _by_pattern(self, relative: str, folders: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
        assert self.pattern is not None
        match = self.pattern.search(relative)
        if match is None or match.group(1) is None:
            raise StepRefused(f"--step-pattern {self.pattern.pattern!r} does not match its path {relative!r}")
        text = match.group(1)
        if not text.isdigit():
            raise StepRefused(f"--step-pattern took {text!r} from {relative!r}, which is no whole number")
        start = match.start(1)
        offset, kept = 0, []
        for folder in folders:  # the folder holding the step is the step, not a tag
            if not offset <= start < offset + len(folder):
                kept.append(folder)
            offset += len(folder) + 1
        return tuple(kept), int(text)


def rule(step: int | None, steps_from: str | None, step_pattern: str | None) -> StepRule:
    """The rule for `--step`, `--steps-from` and `--step-pattern` (at most one of them).

    Raises:
        InputError: for two of them at once, an unknown `--steps-from`, or a pattern that
            is no regular expression or has no group.
    """
    options = (("--step", step), ("--steps-from", steps_from), ("--step-pattern", step_pattern))
    chosen = [name for name, value in options if value is not None]
    if len(chosen) > 1:
        raise InputError(f"{chosen[0]} and {chosen[1]} cannot be used together: give one way to find the steps")
    if step_pattern is not None:
        return StepRule("pattern", pattern=compile_pattern(step_pattern))
    if steps_from is not None:
        if steps_from not in CHOICES:
            raise InputError(f"--steps-from must be one of {', '.join(CHOICES)}, got {steps_from!r}")
        return StepRule(steps_from)  # type: ignore[arg-type]  # one of CHOICES, checked above
    if step is not None:
        return StepRule("fixed", fixed=step)
    return StepRule()


def compile_pattern(text: str) -> re.Pattern[str]:
    """`--step-pattern`'s regular expression, refused in one line when it is none or has no group."""
    try:
        pattern = re.compile(text)
    except re.error as exc:
        raise InputError(f"--step-pattern {text!r} is no regular expression ({exc})") from None
    if pattern.groups < 1:
        raise InputError(f"--step-pattern {text!r} needs a group around the step's digits, as in 'epoch_(\\d+)'")
    return pattern


def _number_in_name(name: str) -> int | None:
    """The step a name states: after a step word, else its only whole number; None when it has no number.

    Raises:
        StepRefused: for a name with several numbers, or a decimal, and no step word.
    """
    worded = {int(match.group(1)) for match in _STEP_WORD.finditer(name)}
    if len(worded) == 1:
        return worded.pop()
    numbers = _NUMBER.findall(name)
    if len(worded) > 1 or len(numbers) > 1:
        raise StepRefused(f"its name holds several numbers, so its step is not clear: use {WAY_OUT}")
    if not numbers:
        return None
    if not numbers[0].isdigit():
        raise StepRefused(f"its name holds a number that is not whole, so no step: use {WAY_OUT}")
    return int(numbers[0])
