"""Event files read a block at a time, the records that repeat decoded together: read-back's fast path.

A log of a million scalars is a million records that differ in a few bytes only: the wall time, the
step and the number. Parsed one by one with protobuf, each costs a few microseconds of Python (a
message built, its fields read, a `Value` made). Here a block of records (`blocks.iter_record_blocks`,
4 MiB) is grouped by record length, and the first record of a group becomes a template
(`templates.py`): where its numbers lie. The records of the group that match it are read by numpy for
the whole group at once, CRCs included, into `Column`s; the others (images, text, a file's first event,
anything rare) are parsed one by one with protobuf, into `Value`s.

A value's plugin depends on what came before it (TF 1 writers name a tag's plugin on its first value
only): the columns reproduce that order exactly, and a templated tag whose plugin changes within a
block is read one by one instead. `fast=False`, or `TBIMG_READER=protobuf`, reads every record one by
one: the way back, and what the tests hold the fast path to, record by record.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np

from tbimg_cli.errors import InputError
from tbimg_cli.events.blocks import RecordBlock, iter_record_blocks
from tbimg_cli.events.records import FOOTER_BYTES, HEADER_BYTES, RecordProblem, masked_crc32c
from tbimg_cli.logs import templates
from tbimg_cli.logs.readback import (
    CONFUSION,
    IMAGES,
    LEGACY_PLUGINS,
    SCALARS,
    TEXT,
    FileProblem,
    Logdir,
    Value,
    decode_value,
)

READER_VARIABLE = "TBIMG_READER"  # "protobuf": every record parsed one by one, the way back
SMALLEST_GROUP = 16  # fewer records of one length are parsed one by one: a template costs about 30 of them
TEMPLATES_PER_LENGTH = 4  # tags of equal length, with and without metadata, can share a record length
LONGEST_TEMPLATE = 1024  # longer records (images) rarely repeat byte for byte
_DECODED_TENSORS = {IMAGES, TEXT, CONFUSION}  # plugins whose tensors decode_value reads as more than a number


class Column(NamedTuple):
    """One tag's values from one block's templated records, in file order."""

    tag: str
    plugin: str
    orders: np.ndarray  # int64: the record's offset in its file plus the value's number, so file order
    steps: np.ndarray  # int64
    wall_times: np.ndarray  # float64
    data: np.ndarray | None  # float64; None where a `Value` would hold None (a plugin not decoded)


class Block(NamedTuple):
    """One block of records: the values parsed one by one, and columns of the templated ones."""

    run: str
    values: list[tuple[int, Value]]  # (order, value), in file order
    columns: list[Column]


def run_blocks(
    logdir: Logdir,
    run: str,
    files: list[str],
    problems: list[FileProblem],
    plugins_wanted: set[str] | None = None,
    *,
    fast: bool | None = None,
) -> Iterator[Block]:
    """Every summary value of one run, a block at a time, in file order. `plugins_wanted` skips decoding
    other values (they still count as read, with None as their data). `fast=False` parses every record
    with protobuf; by default only `TBIMG_READER=protobuf` does."""
    plugin_of: dict[str, str] = {}  # TF 1 writers put metadata only on a tag's first value
    for path in files:
        yield from file_blocks(logdir, run, path, plugin_of, problems, plugins_wanted, fast=fast)


def block_values(block: Block) -> Iterator[Value]:
    """A block's values one by one, in file order, its columns' included."""
    if not block.columns:
        yield from (value for _, value in block.values)
        return
    ordered = list(block.values)
    for column in block.columns:
        data = column.data.tolist() if column.data is not None else [None] * len(column.orders)
        rows = zip(column.orders.tolist(), column.steps.tolist(), column.wall_times.tolist(), data, strict=True)
        ordered += ((order, Value(block.run, column.tag, s, w, column.plugin, d)) for order, s, w, d in rows)
    ordered.sort(key=lambda item: item[0])
    yield from (value for _, value in ordered)


def file_blocks(
    logdir: Logdir,
    run: str,
    path: str,
    plugin_of: dict[str, str],
    problems: list[FileProblem],
    plugins_wanted: set[str] | None,
    piece: tuple[int, int | None] = (0, None),
    *,
    fast: bool | None = None,
) -> Iterator[Block]:
    """The values of one event file (or of the records that start in `piece` of it), a block at a time.

    `plugin_of` carries each tag's plugin across blocks and files. Reading stops at the first damaged
    record with a problem saying where, as `records.iter_records` does.
    """
    if fast is None:
        fast = _fast_by_default()
    try:
        stream, size = logdir.open(path)
    except OSError as exc:
        problems.append(FileProblem(str(path), 0, f"cannot read ({exc.strerror or exc}); skipped", False))
        return
    with stream:
        for item in iter_record_blocks(stream, size, *piece, mapped=logdir.is_local):
            if isinstance(item, RecordProblem):
                consequence = "read up to there" if item.truncated_tail else "the rest of that file was skipped"
                problems.append(
                    FileProblem(str(path), item.offset, f"{item.message}; {consequence}", item.truncated_tail)
                )
                return
            reader = _BlockReader(run, str(path), item, plugins_wanted)
            yield reader.read(plugin_of, fast)
            problems += reader.problems
            if reader.stop < len(item.starts):
                return


def _fast_by_default() -> bool:
    """False when `TBIMG_READER=protobuf` asks for the way back; a value it does not know is a mistake."""
    choice = os.environ.get(READER_VARIABLE, "").strip().lower()
    if choice not in ("", "fast", "protobuf"):
        raise InputError(f"{READER_VARIABLE}={choice!r} is not a reader: set it to 'protobuf' or 'fast', or unset it")
    return choice != "protobuf"


def numbers_only(block: RecordBlock) -> np.ndarray:
    """Which of the block's records are events of single numbers (templated), for all at once: what a
    reader of images and tensors skips unread (the viewer's index). A group whose metadata names the
    images plugin or one of tbimg's own is not skipped: a later value of its tag may be one."""
    skipped = np.zeros(len(block.starts), bool)
    if len(block.starts) >= SMALLEST_GROUP:
        for group in _BlockReader("", "", block, None)._groups():
            named = {plugin for _, plugin, *_ in group.template.values}
            if IMAGES not in named and not any(plugin.startswith("tbimg.") for plugin in named):
                skipped[group.records] = True
    return skipped


class ScalarRows(NamedTuple):
    """One block's scalar rows in file order, as columns: `which` indexes `tags`."""

    orders: np.ndarray
    tags: list[str]
    which: np.ndarray
    steps: np.ndarray
    wall_times: np.ndarray
    values: np.ndarray


def scalar_rows(block: Block, kept: Callable[[str], bool], low: int | None, high: int | None) -> ScalarRows | None:
    """The block's scalars of the tags `kept` keeps, within steps [low, high] (None: open), from its values
    and its columns merged in file order; None when there are none."""
    names: dict[str, int] = {}
    listed: tuple[list[Any], ...] = ([], [], [], [], [])
    for order, value in block.values:
        in_range = (low is None or value.step >= low) and (high is None or value.step <= high)
        if value.plugin == SCALARS and in_range and kept(value.tag):
            row = (order, names.setdefault(value.tag, len(names)), value.step, value.wall_time, value.data)
            for into, item in zip(listed, row, strict=True):
                into.append(item)
    parts = (
        [tuple(np.asarray(items, dtype) for items, dtype in zip(listed, _ROW_TYPES, strict=True))] if listed[0] else []
    )
    for column in block.columns:
        if column.plugin != SCALARS or column.data is None or not kept(column.tag):
            continue
        inside: np.ndarray = np.greater_equal(column.steps, _LOWEST if low is None else low)
        inside &= np.less_equal(column.steps, _HIGHEST if high is None else high)
        if inside.any():
            which = np.full(int(inside.sum()), names.setdefault(column.tag, len(names)), np.int64)
            parts.append(
                (column.orders[inside], which, column.steps[inside], column.wall_times[inside], column.data[inside])
            )
    if not parts:
        return None
    merged = [np.concatenate(items) for items in zip(*parts, strict=True)]
    if len(parts) > 1:
        ordered = np.argsort(merged[0], kind="stable")
        merged = [items[ordered] for items in merged]
    orders, which, steps, wall_times, values = merged
    return ScalarRows(orders, list(names), which, steps, wall_times, values)


_LOWEST, _HIGHEST = -(2**63), 2**63 - 1
_ROW_TYPES = (np.int64, np.int64, np.int64, np.float64, np.float64)


class _Group(NamedTuple):
    template: templates.Template
    records: np.ndarray  # the block's record numbers it matched, ascending
    rows: np.ndarray  # uint8 [records, templates.row_width(length)]: their payloads (and a footer's bytes)


class _Ambiguous(Exception):
    """A templated tag's plugin changes within the block, or its numbers are due as more than numbers:
    the columns cannot say which value has which, so its records are read one by one."""

    def __init__(self, tag: str) -> None:
        super().__init__(tag)
        self.tag = tag


class _BlockReader:
    """One block's records into values and columns, and the problem that stops reading, if any."""

    def __init__(self, run: str, path: str, block: RecordBlock, plugins_wanted: set[str] | None) -> None:
        self.run, self.path, self.block, self.plugins_wanted = run, path, block, plugins_wanted
        self.problems: list[FileProblem] = []
        self.stop = len(block.starts)  # the first record not read (damage stops reading), as a number
        self._damage: str | None = None  # what is wrong with the record parsed one by one that stopped it
        self.starts = np.asarray(block.starts, np.int64)

    def read(self, plugin_of: dict[str, str], fast: bool) -> Block:
        groups = self._groups() if fast and len(self.block.starts) >= SMALLEST_GROUP else []
        before = dict(plugin_of)
        while True:
            try:
                return self._read(groups, plugin_of)
            except _Ambiguous as ambiguous:  # that tag's records are read one by one, from the same start
                plugin_of.clear()
                plugin_of.update(before)
                self.problems, self.stop, self._damage = [], len(self.block.starts), None
                groups = [group for group in groups if all(v[0] != ambiguous.tag for v in group.template.values)]

    def _read(self, groups: list[_Group], plugin_of: dict[str, str]) -> Block:
        payloads_ok = self.block.payloads_ok  # checked by the compiled walk, else here, a group at a time
        if payloads_ok is not None:
            self.stop = min(self.stop, payloads_ok)
        for group in groups if payloads_ok is None else []:
            failed = np.flatnonzero(self._crc_fails(group))
            if len(failed):
                self.stop = min(self.stop, int(group.records[failed[0]]))
        templated = np.zeros(len(self.block.starts), bool)
        for group in groups:
            templated[group.records] = True
        crc_stop = self.stop
        events: Iterable[tuple[int, Any]] = self._parse(np.flatnonzero(~templated[: self.stop]).tolist())
        declared: dict[str, tuple[str, int]] = {}
        if groups:  # their plugins are needed first; without groups, records are parsed as they are read
            events = list(events)
            groups = [_before(group, self.stop) for group in groups if group.records[0] < self.stop]
            declared = _declarations(groups, events, self.block.offset, self.starts)
        incoming = dict(plugin_of)
        values = self._values(events, plugin_of, declared, incoming)
        columns = [column for group in groups for column in self._columns(group, declared, incoming)]
        damage = self._damage
        if damage is None and crc_stop < len(self.block.starts):
            damage = "record data fails its CRC (corrupt data)"
        for tag, (plugin, _) in declared.items():
            plugin_of[tag] = plugin
        if damage is not None:
            where = self.block.offset + int(self.block.starts[self.stop])
            self.problems.append(FileProblem(self.path, where, f"{damage}; the rest of that file was skipped", False))
        return Block(self.run, values, columns)

    # Templates

    def _groups(self) -> list[_Group]:
        """The templated groups of the block: records of one length that one template matches."""
        lengths = np.asarray(self.block.lengths, np.int64)
        counts = np.bincount(lengths[lengths <= LONGEST_TEMPLATE], minlength=1)
        counts[0] = 0
        worth = np.flatnonzero(counts >= SMALLEST_GROUP)
        raw = np.frombuffer(self.block.buffer, np.uint8)
        found = []
        for length in worth.tolist():
            members = np.flatnonzero(lengths == length)
            width = templates.row_width(length)
            rows = np.lib.stride_tricks.sliding_window_view(raw, width)[self.starts[members] + HEADER_BYTES]
            for _ in range(TEMPLATES_PER_LENGTH):  # each try takes at least its first record out
                template = templates.template(rows[0, :length].tobytes())
                if template is None:
                    matched = np.zeros(len(rows), bool)
                    matched[0] = True  # not an event of numbers only: it is read one by one
                else:
                    matched = templates.matches(template, rows)
                    if matched.all():  # the common case: one tag of this length, no copy
                        found.append(_Group(template, members, rows))
                        break
                    found.append(_Group(template, members[matched], rows[matched]))
                members, rows = members[~matched], rows[~matched]
                if len(members) < SMALLEST_GROUP:
                    break
        return found

    def _crc_fails(self, group: _Group) -> np.ndarray:
        """Which of a group's records fail their payload CRC, all checked at once."""
        raw = np.frombuffer(self.block.buffer, np.uint8)
        ends = self.starts[group.records] + HEADER_BYTES + len(group.template.payload)
        stored = raw[ends[:, None] + np.arange(FOOTER_BYTES)].copy().view("<u4")[:, 0]
        return templates.crc_fails(group.template, group.rows, stored)

    # Records parsed one by one

    def _parse(self, records: list[int]) -> Iterator[tuple[int, Any]]:
        """(order, event) of each record in turn, its CRC checked, up to the first damaged one, which ends
        the reading (`stop`) with what is wrong with it (`_damage`)."""
        from google.protobuf.message import DecodeError
        from tensorboard.compat.proto import event_pb2

        parse, buffer, offset = event_pb2.Event.FromString, self.block.buffer, self.block.offset
        starts, lengths = self.block.starts[records].tolist(), self.block.lengths[records].tolist()
        unchecked = self.block.payloads_ok is None  # else the walk checked them (and `stop` is before a bad one)
        for record, start, length in zip(records, starts, lengths, strict=True):
            payload = buffer[start + HEADER_BYTES : start + HEADER_BYTES + length]
            footer = buffer[start + HEADER_BYTES + length : start + HEADER_BYTES + length + FOOTER_BYTES]
            if unchecked and masked_crc32c(payload) != int.from_bytes(footer, "little"):
                self.stop, self._damage = record, "record data fails its CRC (corrupt data)"
                return
            try:
                event = parse(payload)
            except DecodeError:
                self.stop, self._damage = record, "record is not a TensorBoard event"
                return
            if event.HasField("summary"):
                yield offset + start, event

    def _values(
        self,
        events: Iterable[tuple[int, Any]],
        plugin_of: dict[str, str],
        declared: dict[str, tuple[str, int]],
        incoming: dict[str, str],
    ) -> list[tuple[int, Value]]:
        """The values of the events parsed one by one, each with the plugin reading in order gives it."""
        wanted, run = self.plugins_wanted, self.run
        values = []
        for order, event in events:
            step, wall_time = event.step, event.wall_time
            for number, value in enumerate(event.summary.value):
                tag = value.tag
                kind = value.WhichOneof("value")
                plugin = value.metadata.plugin_data.plugin_name
                if plugin:
                    plugin_of[tag] = plugin
                elif tag in declared:
                    first_plugin, first_order = declared[tag]
                    plugin = (
                        first_plugin
                        if first_order < order + number
                        else incoming.get(tag) or LEGACY_PLUGINS.get(kind, "")
                    )
                else:
                    plugin = plugin_of.get(tag) or LEGACY_PLUGINS.get(kind, "")
                if wanted is not None and plugin not in wanted:
                    values.append((order + number, Value(run, tag, step, wall_time, plugin, None)))
                    continue
                try:
                    data = decode_value(kind, plugin, value)
                except ValueError as exc:
                    message = f"tag {tag!r} at step {step}: {exc}; that value was skipped"
                    self.problems.append(FileProblem(self.path, order, message, False))
                    continue
                values.append((order + number, Value(run, tag, step, wall_time, plugin, data)))
        return values

    def _columns(
        self, group: _Group, declared: dict[str, tuple[str, int]], incoming: dict[str, str]
    ) -> Iterator[Column]:
        """A group's values as one column per value of its events (two where a tag's plugin is named midway)."""
        template, rows = group.template, group.rows
        orders = self.starts[group.records] + self.block.offset
        steps, wall_times = templates.steps(template, rows), templates.wall_times(template, rows)
        for number, (tag, named, kind, *_) in enumerate(template.values):
            here = orders + number
            data = templates.numbers(template, rows, number)
            if named or tag not in declared:
                parts = [(named or incoming.get(tag) or LEGACY_PLUGINS.get(kind, ""), slice(None))]
            else:
                plugin, first = declared[tag]
                split = int(np.searchsorted(here, first, side="right"))
                parts = [
                    (incoming.get(tag) or LEGACY_PLUGINS.get(kind, ""), slice(0, split)),
                    (plugin, slice(split, None)),
                ]
            for plugin, part in parts:
                if len(here[part]):
                    yield Column(
                        tag,
                        plugin,
                        here[part],
                        steps[part],
                        wall_times[part],
                        self._data(tag, plugin, kind, data[part]),
                    )

    def _data(self, tag: str, plugin: str, kind: str, numbers: np.ndarray) -> np.ndarray | None:
        """What `decode_value` makes of these numbers under this plugin (None: not decoded)."""
        if self.plugins_wanted is not None and plugin not in self.plugins_wanted:
            return None
        if kind == "simple_value" or plugin == SCALARS:
            return numbers
        if plugin in _DECODED_TENSORS:
            raise _Ambiguous(tag)  # a number where an image or a text is due: the problem is protobuf's to say
        return None


def _before(group: _Group, stop: int) -> _Group:
    """The group's records before record number `stop` (all of them, uncopied, where damage is later)."""
    if group.records[-1] < stop:
        return group
    kept = group.records < stop
    return group._replace(records=group.records[kept], rows=group.rows[kept])


def _declarations(
    groups: list[_Group], events: Iterable[tuple[int, Any]], offset: int, starts: np.ndarray
) -> dict[str, tuple[str, int]]:
    """Templated tags -> (the plugin the block names for them, the order of its first naming); raises
    `_Ambiguous` when the block names two plugins for one of them."""
    declared: dict[str, tuple[str, int]] = {}
    tags: set[str] = set()
    for group in groups:
        first = int(starts[group.records[0]]) + offset
        for number, (tag, plugin, *_) in enumerate(group.template.values):
            tags.add(tag)
            if plugin:
                _declare(declared, tag, plugin, first + number)
    for order, event in events:
        for number, value in enumerate(event.summary.value):
            plugin = value.metadata.plugin_data.plugin_name
            if plugin and value.tag in tags:
                _declare(declared, value.tag, plugin, order + number)
    return declared


def _declare(declared: dict[str, tuple[str, int]], tag: str, plugin: str, order: int) -> None:
    known = declared.get(tag)
    if known is not None and known[0] != plugin:
        raise _Ambiguous(tag)
    if known is None or order < known[1]:
        declared[tag] = (plugin, order)
