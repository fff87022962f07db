"""Import a shop's impression log, whatever its columns, into a :class:`~simulator.logs.SlateLog`.

Two layouts (:class:`~simulator.logs.mapping.LogMapping`): one row per shown
item, grouped into slates by the event column, or one row per slate with list
columns (each list in position order). Everything is vectorised: pyarrow reads
the file, bad cells are found with masks, and slates are formed by one sort of
``(event, position)``.

Every bad row is counted under a named kind (:data:`ERROR_KINDS`); a slate
with any bad row is rejected whole, because its other items alone are not
what the shopper saw. With ``on_error="raise"`` (the default) any bad row
raises one :class:`~simulator.errors.DataImportError` listing each kind with
its first row; with ``on_error="skip"`` the good slates form the log and the
rejected rows come back with their reasons (:attr:`LogImport.rejected`).
Every row read is in exactly one of the two.

Ids: item ids are matched against the catalog (text exactly; an integer
catalog matches decimal text). Integer event and session ids are kept; text
ones become ``0, 1, ...`` in order of first appearance in the file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simulator.errors import ConfigError, DataImportError, LogFormatError, RowError
from simulator.logs.mapping import LogMapping
from simulator.logs.schema import Catalog, LogMetadata, SlateLog
from simulator.logs.tables import as_float, check_columns, file_kind, first_error, header_of, read_columns

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)``: called as an import (and its pscore fits) advances."""
logger = logging.getLogger(__name__)

ERROR_KINDS = {
    "unknown_item": "the item id is not in the catalog (or the cell is empty)",
    "missing_event": "the event cell is empty",
    "bad_position": "the position is not a whole number from position_base to position_base + k - 1",
    "bad_value": "an outcome or context cell is empty, not a number, negative or infinite",
    "bad_pscore": "the propensity is empty or outside (0, 1]",
    "bad_timestamp": "the time cannot be read",
    "list_length": "a list cell has a different length from the row's item list",
    "slate_size": "the event does not show k items",
    "repeated_position": "two rows of the event share a position",
    "repeated_item": "the slate shows an item twice",
    "inconsistent_event": "rows of one event disagree on a per-slate value (context, pscore, user)",
    "rejected_with_event": "this row is fine, but another row of its event is not",
}
"""Every kind of bad row, with what it means (the rejected-rows file uses these names)."""


@dataclass(frozen=True, slots=True)
class LogImport:
    """What :func:`import_logs` produced.

    Attributes:
        log: the good slates (rows in order of their event's first row in the file).
        rejected: the rejected source rows: the mapped columns as read, plus ``row``
            (0-based data row), ``line`` (CSV line, header = 1) and ``errors``
            (kinds, ``;``-separated, each with its column). Empty when nothing was rejected.
        errors: each kind of error found, with its count and first row.
        n_rows: rows read from the file.
        n_rows_kept: rows that went into the log.
        n_events: events (slates) in the file.
        layout: ``item`` or ``slate``.
    """

    log: SlateLog
    rejected: pa.Table
    errors: tuple[RowError, ...]
    n_rows: int
    n_rows_kept: int
    n_events: int
    layout: str

    @property
    def n_rows_rejected(self) -> int:
        """Rows of the file that are not in the log."""
        return int(self.rejected.num_rows)


class _Checks:
    """Bad-entry masks of an import (one entry per shown item), keyed by (kind, column)."""

    def __init__(self, src_row: IntArray, ev_codes: IntArray, kind: str) -> None:
        self.src_row = src_row
        self.ev_codes = ev_codes
        self.file_kind = kind
        self.masks: dict[tuple[str, str], BoolArray] = {}
        self.first: dict[tuple[str, str], RowError] = {}

    def add(self, kind: str, column: str, mask: BoolArray, raw: Any, expected: str, fix: str = "",
            found: str | None = None) -> None:
        """Record the True entries of ``mask`` (n,) as ``kind`` errors of ``column``."""
        if not mask.any():
            return
        key = (kind, column)
        if key in self.masks:
            self.masks[key] = self.masks[key] | mask
            return
        err = first_error(kind, column, mask, raw, expected, fix, self.file_kind, rows=self.src_row,
                          found=found)
        assert err is not None
        self.masks[key] = mask
        self.first[key] = err

    def bad_entries(self, n: int) -> BoolArray:
        """Entries with any error, shape (n,)."""
        out = np.zeros(n, dtype=np.bool_)
        for mask in self.masks.values():
            out |= mask
        return out

    def errors(self) -> tuple[RowError, ...]:
        """One :class:`RowError` per (kind, column): source rows and events involved."""
        out = []
        for key, err in self.first.items():
            mask = self.masks[key]
            codes = self.ev_codes[mask]
            events = int(np.unique(codes[codes >= 0]).size)
            out.append(replace(err, count=int(np.unique(self.src_row[mask]).size), events=events or None))
        return tuple(out)


def _is_list(t: pa.DataType) -> bool:
    return bool(pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t))


def _list_column(col: pa.ChunkedArray | pa.Array, sep: str) -> pa.Array:
    """A list column as ``list<...>``: Arrow lists as they are, text split at ``sep``."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if _is_list(arr.type):
        return arr.cast(pa.list_(arr.type.value_type))
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    return pc.split_pattern(arr, pattern=sep)


def _codes(col: pa.Array) -> tuple[IntArray, bool, np.ndarray[Any, Any]]:
    """Codes (n,) of a key column in order of first appearance (-1 for empty cells).

    Returns:
        ``(codes, is_integer, values)``: ``values[code]`` is the key's value.
    """
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    encoded = pc.dictionary_encode(col)
    codes = np.asarray(pc.fill_null(encoded.indices.cast(pa.int64()), -1).to_numpy(), dtype=np.int64)
    values = encoded.dictionary.to_numpy(zero_copy_only=False)
    return codes, pa.types.is_integer(col.type), values


def _timestamps(col: pa.Array) -> tuple[npt.NDArray[np.datetime64], BoolArray, BoolArray]:
    """Times (n,) as datetime64[ns] UTC, with masks of empty and of unreadable cells."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    empty = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        ns = pc.cast(col, pa.timestamp("ns", tz=getattr(col.type, "tz", None))) \
            if pa.types.is_timestamp(col.type) else pc.cast(col.cast(pa.timestamp("s")), pa.timestamp("ns"))
        stamps = np.asarray(pc.fill_null(ns.cast(pa.int64()), 0).to_numpy(), dtype=np.int64)
        return stamps.astype("datetime64[ns]"), empty, np.zeros(len(col), dtype=np.bool_)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        seconds = np.asarray(pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy(), dtype=np.float64)
        bad = ~np.isfinite(seconds) | (np.abs(seconds) > 9e9)
        ns = np.where(bad, 0.0, seconds) * 1e9
        return ns.astype(np.int64).astype("datetime64[ns]"), empty, bad & ~empty
    text = pd.Series(col.cast(pa.string()).to_numpy(zero_copy_only=False))
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    unreadable = np.asarray(parsed.isna().to_numpy(), dtype=np.bool_) & ~empty
    when = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    return np.where(empty | unreadable, np.datetime64(0, "ns"), when), empty, unreadable


def _mode_size(sizes: IntArray) -> int:
    """The most common positive event size (the smallest on ties)."""
    positive = sizes[sizes > 0]
    return int(np.bincount(positive).argmax()) if positive.size else 1


def _first_per_group(codes: IntArray, n_groups: int) -> IntArray:
    """Index of the first entry of each code (n_groups,), -1 for codes never seen."""
    first = np.full(n_groups, -1, dtype=np.int64)
    seen, at = np.unique(codes, return_index=True)
    ok = seen >= 0
    first[seen[ok]] = at[ok]
    return first


def _differs_from_event(values: np.ndarray[Any, Any], codes: IntArray, first: IntArray,
                        ok: BoolArray) -> BoolArray:
    """Entries whose ``values`` differ from their event's first entry (both entries readable)."""
    valid = codes >= 0
    ref = first[np.where(valid, codes, 0)]
    other = values[ref]
    diff = values != other
    if diff.ndim > 1:
        diff = diff.reshape(diff.shape[0], -1).any(axis=1)
    out: BoolArray = valid & ok & ok[ref] & diff
    return out


def _rank_within(groups: IntArray, *keys: np.ndarray[Any, Any]) -> IntArray:
    """0-based rank (n,) of each entry within its group, ordered by ``keys`` (last key first, as lexsort)."""
    order = np.lexsort((*keys, groups))
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ranks = np.empty(groups.size, dtype=np.int64)
    ranks[order] = np.arange(groups.size) - np.repeat(starts, np.diff(np.r_[starts, groups.size]))
    return ranks


@dataclass(frozen=True, slots=True)
class _Entries:
    """One entry per shown item: the mapped columns at that entry and the source row it came from.

    Attributes:
        src_row: shape (n,), the file's row of each entry.
        columns: mapped column -> values, shape (n,).
        slot: shape (n,), the place in the row's list (slate layout), else None.
        length_bad: list column -> entries whose list length differs from the item list's.
    """

    src_row: IntArray
    columns: dict[str, pa.Array]
    slot: IntArray | None
    length_bad: dict[str, BoolArray]


def _explode(raw: pa.Table, mapping: LogMapping, layout: str, per_slot: list[str]) -> _Entries:
    """The file's rows as entries: as they are (item layout), or one per list element (slate layout)."""
    n_src = raw.num_rows
    if layout == "item":
        return _Entries(np.arange(n_src, dtype=np.int64),
                        {c: raw.column(c).combine_chunks() for c in mapping.columns().values()}, None, {})
    items_list = _list_column(raw.column(mapping.item), mapping.list_sep)
    lengths = np.asarray(pc.fill_null(pc.list_value_length(items_list), 0).to_numpy(), dtype=np.int64)
    if (lengths == 0).any():  # an empty slate keeps one (empty) entry, so it is counted and rejected
        one_null = pa.array([[None]], type=items_list.type)[0]
        items_list = pc.if_else(pa.array(lengths == 0), one_null, items_list)
        lengths = np.maximum(lengths, 1)
    src_row = np.repeat(np.arange(n_src, dtype=np.int64), lengths)
    slot = np.arange(src_row.size, dtype=np.int64) - np.concatenate([[0], np.cumsum(lengths)])[src_row]
    columns: dict[str, pa.Array] = {mapping.item: pc.list_flatten(items_list)}
    length_bad: dict[str, BoolArray] = {}
    for col in per_slot[1:]:
        lst = _list_column(raw.column(col), mapping.list_sep)
        col_len = np.asarray(pc.fill_null(pc.list_value_length(lst), -1).to_numpy(), dtype=np.int64)
        ok = (col_len == lengths)[src_row]
        at = np.concatenate([[0], np.cumsum(np.maximum(col_len, 0))])[src_row] + slot
        values = pc.list_flatten(lst)
        taken = values.take(pa.array(np.where(ok, at, 0))) if len(values) else pa.nulls(src_row.size)
        columns[col] = pc.if_else(pa.array(ok), taken, pa.nulls(src_row.size, taken.type))
        length_bad[col] = ~ok
    take_rows = pa.array(src_row)
    for col in mapping.columns().values():
        if col not in per_slot:
            columns[col] = raw.column(col).combine_chunks().take(take_rows)
    return _Entries(src_row, columns, slot, length_bad)


@dataclass(frozen=True, slots=True)
class _Values:
    """The checked numbers of every entry (bad cells hold placeholders; ``_Checks`` has their masks)."""

    item: IntArray
    pos: IntArray
    pos_ok: BoolArray
    outcomes: dict[str, FloatArray]
    pscores: dict[str, FloatArray]
    context: FloatArray
    context_ok: BoolArray
    times: npt.NDArray[np.datetime64] | None


def _positions(e: _Entries, mapping: LogMapping, checks: _Checks, ev_codes: IntArray,
               k: int) -> tuple[IntArray, BoolArray]:
    """0-based slot (n,) of every entry and whether it is a possible one."""
    if e.slot is not None:
        return e.slot, np.ones(e.slot.size, dtype=np.bool_)
    if mapping.position is None:  # file order within the event
        pos = _rank_within(np.where(ev_codes >= 0, ev_codes, ev_codes.max(initial=0) + 1),
                           np.arange(ev_codes.size))
        return pos, pos < k
    col = e.columns[mapping.position]
    raw_pos, _, _ = as_float(col)
    whole = np.isfinite(raw_pos) & (raw_pos == np.round(raw_pos))
    base = mapping.position_base
    pos = np.where(whole, raw_pos, -1).astype(np.int64) - base
    ok = whole & (pos >= 0) & (pos < k)
    fix = f"Positions count from {base} (position_base = {base}) and a slate has k = {k} slots."
    seen = raw_pos[whole]
    if seen.size and base == 0 and seen.min() >= 1:
        fix = ("No row has position 0: the log counts slots from 1. Pass --position-base 1 "
               "(position_base = 1 in a mapping file).")
    elif seen.size and base == 1 and seen.min() == 0:
        fix = ("The log has position 0: it counts slots from 0. Pass --position-base 0 "
               "(position_base = 0 in a mapping file).")
    checks.add("bad_position", mapping.position, ~ok, col, f"a whole number in {base}..{base + k - 1}", fix)
    return pos, ok


def _check_rows(e: _Entries, mapping: LogMapping, catalog: Catalog, checks: _Checks, ev_codes: IntArray,
                k: int) -> _Values:
    """Every per-entry check: lists, items, positions, outcomes, propensities, context, time."""
    n = e.src_row.size
    if mapping.event is not None:
        checks.add("missing_event", mapping.event, ev_codes < 0, e.columns[mapping.event], "an event id",
                   "Every shown item belongs to an impression.")
    for col, mask in e.length_bad.items():
        checks.add("list_length", col, mask, None, f"as many values as the row's `{mapping.item}` list",
                   "Every list cell of a slate row holds one value per shown item.", found="another length")
    item_col = e.columns[mapping.item]
    item = catalog.index_of(item_col)
    checks.add("unknown_item", mapping.item, item < 0, item_col, "an item id of the catalog",
               "Add the item to the catalog file and import it again, or skip these rows.")
    pos, pos_ok = _positions(e, mapping, checks, ev_codes, k)
    outcomes: dict[str, FloatArray] = {}
    for role in ("click", "purchase", "revenue"):
        name = getattr(mapping, role)
        if name is not None:
            values, empty, text_cells = as_float(e.columns[name])
            bad = empty | text_cells | ~np.isfinite(values) | (values < 0)
            checks.add("bad_value", name, bad, e.columns[name], f"a {role} count or amount >= 0",
                       f"Write 0 for no {role}; empty cells are not read as 0.")
            outcomes[role] = np.where(bad, 0.0, values)
    pscores: dict[str, FloatArray] = {}
    for role in ("pscore", "pscore_item"):
        name = getattr(mapping, role)
        if name is not None:
            values, _, _ = as_float(e.columns[name])
            ok = np.isfinite(values) & (values > 0) & (values <= 1)
            checks.add("bad_pscore", name, ~ok, e.columns[name], "a probability in (0, 1]",
                       "Log the probability the logging policy gave the shown slate (or item); it cannot "
                       "be 0, or drop the column and pass --estimate-pscore.")
            pscores[role] = np.where(ok, values, 1.0)
    context = np.zeros((n, len(mapping.context)))
    context_ok = np.ones(n, dtype=np.bool_)
    for j, name in enumerate(mapping.context):
        values, empty, text_cells = as_float(e.columns[name])
        bad = empty | text_cells | ~np.isfinite(values)
        checks.add("bad_value", name, bad, e.columns[name], "a finite number (context)",
                   "Context columns are numbers: fill empty cells and encode text as numbers "
                   "(e.g. one 0/1 column per value).")
        context[:, j] = np.where(bad, 0.0, values)
        context_ok &= ~bad
    times = None
    if mapping.timestamp is not None:
        times, empty, unreadable = _timestamps(e.columns[mapping.timestamp])
        checks.add("bad_timestamp", mapping.timestamp, empty | unreadable, e.columns[mapping.timestamp],
                   "an ISO 8601 time (2026-03-01T10:00:00Z), a timestamp or Unix seconds",
                   "Fill every time in one format.")
    return _Values(item, pos, pos_ok, outcomes, pscores, context, context_ok, times)


def _repeats(ok: BoolArray, key: IntArray) -> BoolArray:
    """Entries (n,) whose ``key`` an earlier ``ok`` entry already has."""
    _, first = np.unique(np.where(ok, key, -1), return_index=True)
    out = ok.copy()
    out[first] = False
    return out


def _check_slates(e: _Entries, v: _Values, mapping: LogMapping, catalog: Catalog, checks: _Checks,
                  ev_codes: IntArray, sizes: IntArray, k: int,
                  group: tuple[IntArray, bool, np.ndarray[Any, Any]] | None) -> None:
    """Every per-event check: size, repeated slots and items, one context / pscore / shopper per event."""
    valid = ev_codes >= 0
    entry_size = sizes[np.where(valid, ev_codes, 0)]
    wrong_size = valid & (entry_size != k)
    if wrong_size.any():
        checks.add("slate_size", mapping.event or mapping.item, wrong_size, None, f"k = {k} items per event",
                   f"Every slate shows k = {k} items (set k in the mapping when the most common size "
                   "is not the slate's).", found=f"{int(entry_size[np.flatnonzero(wrong_size)[0]])} items")
    if mapping.position is not None:
        checks.add("repeated_position", mapping.position,
                   _repeats(valid & v.pos_ok, ev_codes * k + np.clip(v.pos, 0, k - 1)),
                   e.columns[mapping.position], "one item per position and event",
                   "Two rows of one event cannot share a slot.")
    checks.add("repeated_item", mapping.item,
               _repeats(valid & (v.item >= 0), ev_codes * catalog.n_items + v.item), e.columns[mapping.item],
               "each item once per slate", "A slate shows distinct items; drop the duplicate row.")
    first = _first_per_group(ev_codes, sizes.size)
    if mapping.context:
        checks.add("inconsistent_event", ",".join(mapping.context),
                   _differs_from_event(v.context, ev_codes, first, v.context_ok), None,
                   "the same context on every row of an event",
                   "Context describes the shopper and page when the slate was chosen: one value per event.",
                   found="another context than the event's first row")
    if mapping.pscore is not None:
        checks.add("inconsistent_event", mapping.pscore,
                   _differs_from_event(v.pscores["pscore"], ev_codes, first, np.ones(ev_codes.size, bool)),
                   e.columns[mapping.pscore], "the same slate pscore on every row of an event",
                   "`pscore` is the whole slate's probability; map a per-item probability to pscore_item.")
    name = mapping.session or mapping.user
    if group is not None and name is not None:
        codes = group[0]
        checks.add("inconsistent_event", name, _differs_from_event(codes, ev_codes, first, codes >= 0),
                   e.columns[name], "one shopper per event", "An impression is shown to one shopper.")
        checks.add("bad_value", name, codes < 0, e.columns[name], "a session or user id",
                   "Every impression has a shopper.")


def import_logs(
    path: str | os.PathLike[str],
    catalog: Catalog,
    mapping: LogMapping,
    *,
    on_error: str = "raise",
    estimate_pscore: bool = False,
    pscore_options: dict[str, Any] | None = None,
    seed: int | None = 0,
    progress: Progress | None = None,
) -> LogImport:
    """Read a shop's impression log (CSV or Parquet) into a validated :class:`SlateLog`.

    Args:
        path: the log file (``.csv``, ``.csv.gz``, ``.tsv`` or ``.parquet``).
        catalog: the shop's items (:func:`simulator.logs.catalog.load_catalog`); the
            log's item ids must be among them.
        mapping: which columns hold what, and how to read them.
        on_error: ``raise`` (any bad row raises; nothing is returned) or ``skip``
            (good slates are kept; rejected rows come back with their reasons).
        estimate_pscore: the log has no propensities: fit them
            (:func:`simulator.logs.pscore.estimate_pscore`) and mark the log
            ``pscore_source = "estimated"``.
        pscore_options: more arguments of :func:`~simulator.logs.pscore.estimate_pscore`
            (``n_folds``, ``c``, ``max_fit_rows``).
        seed: seed of the propensity model's folds.
        progress: called as the import advances (for a progress bar).

    Returns:
        The log, the rejected rows and the counted errors.

    Raises:
        ConfigError: the mapping does not fit the file (e.g. no pscore and no estimate).
        LogFormatError: the file is unreadable or lacks a mapped column.
        DataImportError: with ``on_error="raise"``, any bad row; with ``skip``, when
            no slate is left.
    """
    if on_error not in ("raise", "skip"):
        raise ConfigError(f"`on_error` must be 'raise' or 'skip', found {on_error!r}.")
    has_pscore = mapping.pscore is not None or mapping.pscore_item is not None
    if estimate_pscore and has_pscore:
        raise ConfigError("the mapping names a pscore column and estimate_pscore is on: use the logged "
                          "propensities (drop --estimate-pscore) or estimate them (drop the pscore mapping).")
    if not estimate_pscore and not has_pscore:
        raise ConfigError("the mapping names no propensity column: map pscore=COL (the slate's "
                          "probability) and pscore_item=COL (each item's), or pass --estimate-pscore to "
                          "fit them from the log.")
    source = Path(path)

    def step(stage: str, done: int = 1, total: int = 1) -> None:
        if progress is not None:
            progress(stage, done, total)

    step("read", 0)
    check_columns(source, header_of(source), mapping.columns())
    kind = file_kind(source)
    layout = mapping.layout
    if layout == "auto":
        item_type = pq.read_schema(source).field(mapping.item).type if kind == "parquet" else pa.string()
        layout = "slate" if _is_list(item_type) else "item"
    if layout == "item" and mapping.event is None:
        raise ConfigError("one row per shown item needs event=COLUMN: the rows of one slate share an "
                          "event id. For one row per slate with list columns, set layout = 'slate'.")
    if layout == "slate" and mapping.position is not None:
        raise ConfigError("in the slate layout an item's position is its place in the list; drop the "
                          "position mapping.")
    per_slot = [c for c in (mapping.item, mapping.click, mapping.purchase, mapping.revenue,
                            mapping.pscore_item) if c is not None]
    # Item ids are read as text from CSV, exactly as written; slate-layout list cells as text to split.
    # Event, session and user ids keep their type (integers stay integers).
    raw = read_columns(source, list(mapping.columns().values()),
                       text=[mapping.item] if layout == "item" else per_slot)
    n_src = raw.num_rows
    step("read")
    if n_src == 0:
        raise LogFormatError(f"{source} has a header but no rows.")

    step("check", 0)
    e = _explode(raw, mapping, layout, per_slot)
    if mapping.event is not None:
        ev_codes, ev_is_int, ev_values = _codes(e.columns[mapping.event])
    else:
        ev_codes, ev_is_int, ev_values = e.src_row.copy(), True, np.arange(n_src, dtype=np.int64)
    n_events = int(ev_values.shape[0])
    sizes = np.bincount(ev_codes[ev_codes >= 0], minlength=n_events).astype(np.int64)
    k = mapping.k if mapping.k is not None else _mode_size(sizes)
    if not estimate_pscore and k > 1 and (mapping.pscore is None or mapping.pscore_item is None):
        missing = "pscore" if mapping.pscore is None else "pscore_item"
        raise ConfigError(f"slates of k = {k} items need both the slate's probability (pscore) and each "
                          f"item's (pscore_item); the mapping has no {missing}. Map it, or drop the "
                          "propensity columns and pass --estimate-pscore.")
    checks = _Checks(e.src_row, ev_codes, kind)
    v = _check_rows(e, mapping, catalog, checks, ev_codes, k)
    group_col = mapping.session or mapping.user
    group = _codes(e.columns[group_col]) if group_col is not None else None
    _check_slates(e, v, mapping, catalog, checks, ev_codes, sizes, k, group)

    # keep or reject whole events
    bad_entry = checks.bad_entries(e.src_row.size)
    valid = ev_codes >= 0
    bad_event = np.zeros(n_events, dtype=np.bool_)
    bad_event[ev_codes[bad_entry & valid]] = True
    keep = valid & ~bad_event[np.where(valid, ev_codes, 0)] & ~bad_entry
    rejected_src = np.zeros(n_src, dtype=np.bool_)
    rejected_src[e.src_row[~keep]] = True
    errors = checks.errors()
    step("check")
    if errors and on_error == "raise":
        raise DataImportError(list(errors), str(source), n_src,
                              note="Fix the rows, or pass --on-error skip to import the other slates and "
                                   "write these rows to a file of rejected rows.")
    kept = np.flatnonzero(keep)
    if not kept.size:
        raise DataImportError(list(errors), str(source), n_src, note="No slate is left to import.")

    step("build", 0)
    order = kept[np.lexsort((v.pos[kept], ev_codes[kept]))]  # by event, then slot: k entries each
    heads = order[::k]
    slate = v.item[order].reshape(-1, k)
    per_event = {role: values[order].reshape(-1, k) for role, values in v.outcomes.items()}
    event_codes = ev_codes[heads]
    event_id = ev_values[event_codes].astype(np.int64) if ev_is_int else event_codes
    timestamp = None if v.times is None else v.times[order].reshape(-1, k).min(axis=1)
    if group is not None:
        codes, is_int, values = group
        session_id = values[codes[heads]].astype(np.int64) if is_int else codes[heads]
        when = event_codes if timestamp is None else timestamp.astype(np.int64)
        steps = _rank_within(session_id, event_codes, when)
    else:
        session_id, steps = event_id, np.zeros(heads.size, dtype=np.int64)
    if estimate_pscore:
        from simulator.logs.pscore import estimate_pscore as fit_pscore

        est = fit_pscore(v.context[heads], slate, catalog.n_items, groups=session_id, seed=seed,
                         progress=progress, **(pscore_options or {}))
        pscore, pscore_item, pscore_source = est.pscore, est.pscore_item, "estimated"
        note = f"; propensities estimated: {est.describe()}"
    else:
        pscore, pscore_item = _logged_pscores(v.pscores, order, heads, k)
        pscore_source, note = "logged", ""
    meta = LogMetadata(logging_policy=mapping.logging_policy, reward_type=mapping.reward_kind,
                       context_names=mapping.context, pscore_source=pscore_source,
                       source=f"imported from {source.name} ({layout} layout){note}")
    log = SlateLog.from_arrays(
        context=v.context[heads], slate=slate, reward=per_event[mapping.reward_kind], pscore=pscore,
        pscore_item=pscore_item, catalog=catalog, metadata=meta, purchase=per_event.get("purchase"),
        revenue=per_event.get("revenue"), event_id=event_id, session_id=session_id, step=steps,
        timestamp=timestamp,
    )
    rejected = _rejected_table(raw, rejected_src, checks, kind, n_src)
    step("build")
    logger.info("imported %d slates (%d rows) from %s; rejected %d rows", log.n_rounds, kept.size,
                source, rejected.num_rows)
    return LogImport(log=log, rejected=rejected, errors=errors, n_rows=n_src,
                     n_rows_kept=int(n_src - rejected.num_rows), n_events=n_events, layout=layout)


def _logged_pscores(pscores: dict[str, FloatArray], order: IntArray, heads: IntArray,
                    k: int) -> tuple[FloatArray, FloatArray]:
    """The slate pscore (m,) and item pscores (m, k) of the kept events from the mapped columns."""
    item = pscores["pscore_item"][order].reshape(-1, k) if "pscore_item" in pscores else None
    slate = pscores["pscore"][heads] if "pscore" in pscores else None
    if k == 1:
        if slate is None:
            assert item is not None
            slate = item[:, 0]
        return slate, item if item is not None else slate[:, None]
    if slate is None or item is None:  # import_logs checks the mapping first
        raise ConfigError("slates of k > 1 items need both pscore and pscore_item.")
    return slate, item


def _rejected_table(raw: pa.Table, rejected_src: BoolArray, checks: _Checks, kind: str,
                    n_src: int) -> pa.Table:
    """The rejected source rows as read, with ``row``, ``line`` and ``errors`` columns."""
    rows = np.flatnonzero(rejected_src)
    reasons = np.full(rows.size, "", dtype=object)
    position = np.full(n_src, -1, dtype=np.int64)
    position[rows] = np.arange(rows.size)
    for (err_kind, column), mask in checks.masks.items():
        src = np.unique(checks.src_row[mask])
        at = position[src]
        at = at[at >= 0]
        label = f"{err_kind}({column})" if column else err_kind
        reasons[at] = reasons[at] + np.where(reasons[at] == "", "", ";") + label
    reasons[reasons == ""] = "rejected_with_event"
    table = raw.take(pa.array(rows))
    table = table.append_column("row", pa.array(rows, type=pa.int64()))
    if kind == "csv":
        table = table.append_column("line", pa.array(rows + 2, type=pa.int64()))
    return table.append_column("errors", pa.array(reasons.astype(str), type=pa.string()))
