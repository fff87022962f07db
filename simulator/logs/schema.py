"""The slatewise log: one row per decision (a slate shown once), columnar.

Shapes are batch-first everywhere: ``n`` decisions (rows), ``k`` slots per
slate, ``d`` context features, ``n_items`` catalog items. Slates hold item
*indices* into the catalog (``0 .. n_items - 1``); the catalog maps an index to
its external ``item_id``. Positions are 0-based slot indices.

Item ids are either integers (the world, the Open Bandit Dataset, anonymous
catalogs) or a shop's own strings (``"SKU-00123"``); a catalog keeps the kind
it was given, in memory and in files, and people only ever see those ids.

Schema versions: 1 (integer item ids, propensities always logged) and 2 (adds
string item ids and ``LogMetadata.pscore_source``). Version-1 files read as
version 2 with ``pscore_source = "logged"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from simulator.errors import LogValidationError, Problem

SCHEMA_VERSION = 2
SUPPORTED_SCHEMA_VERSIONS = (1, 2)
REWARD_TYPES = ("click", "purchase", "revenue", "custom")
PSCORE_SOURCES = ("logged", "estimated")
"""Where a log's propensities come from: ``logged`` by the system that chose the
slates (or computed exactly by the world), or ``estimated`` from the log itself
(:func:`simulator.logs.pscore.estimate_pscore`); every estimate on an estimated
log inherits the estimate's error."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]
TimeArray = npt.NDArray[np.datetime64]
IdArray = npt.NDArray[np.int64] | npt.NDArray[np.str_]


def _frozen(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Read-only view: the log cannot change under its users, the caller's array stays theirs."""
    view = a.view()
    view.flags.writeable = False
    return view


def _first_bad(mask: Any) -> tuple[int, int]:
    """Index of the first True row of ``mask`` and how many rows are True."""
    bad = np.flatnonzero(mask)
    return int(bad[0]), int(bad.size)


def _as_float(
    name: str, value: Any, ndim: int, problems: list[Problem], keep_float32: bool = False
) -> np.ndarray[Any, Any] | None:
    """Coerce ``value`` to a float array of ``ndim`` dimensions, or record why not."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        problems.append(
            Problem(name, "a numeric array", f"dtype {arr.dtype}", fix="Pass numbers, not text.")
        )
        return None
    if arr.ndim != ndim:
        shape = "(n,)" if ndim == 1 else "(n, k)" if ndim == 2 else f"{ndim} dimensions"
        problems.append(Problem(name, f"shape {shape}", f"shape {arr.shape}"))
        return None
    if keep_float32 and arr.dtype == np.float32:
        return arr
    return arr.astype(np.float64, copy=False)


def _as_int(name: str, value: Any, ndim: int, problems: list[Problem]) -> IntArray | None:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            problems.append(
                Problem(name, "an integer array", f"dtype {arr.dtype}", fix="Pass integer indices.")
            )
            return None
    if arr.ndim != ndim:
        shape = "(n,)" if ndim == 1 else "(n, k)"
        problems.append(Problem(name, f"shape {shape}", f"shape {arr.shape}"))
        return None
    return arr.astype(np.int64, copy=False)


def _as_ids(name: str, value: Any, problems: list[Problem]) -> IdArray | None:
    """Item ids as int64 (integer ids) or str (a shop's own ids), or record why not."""
    arr = np.asarray(value)
    if arr.ndim != 1:
        problems.append(Problem(name, "shape (n_items,)", f"shape {arr.shape}"))
        return None
    if arr.dtype.kind in "iuf":
        return _as_int(name, arr, 1, problems)
    if arr.dtype.kind == "O":
        kinds = {type(v) for v in arr.tolist()}
        if kinds <= {int}:
            return arr.astype(np.int64)
        if not kinds <= {str, np.str_}:
            problems.append(Problem(name, "integer or text item ids",
                                    f"values of types {sorted(t.__name__ for t in kinds)}",
                                    fix="Give every item an id of one kind (all text or all integers)."))
            return None
    elif arr.dtype.kind != "U":
        problems.append(Problem(name, "integer or text item ids", f"dtype {arr.dtype}"))
        return None
    ids = arr.astype(str)
    empty = np.char.str_len(ids) == 0
    if empty.any():
        row, count = _first_bad(empty)
        problems.append(Problem(name, "a non-empty id", "''", row=row, n_rows=count))
        return None
    return ids


def _check_finite(name: str, arr: np.ndarray[Any, Any], problems: list[Problem]) -> None:
    finite = np.isfinite(arr)
    if finite.all():
        return
    rows = ~finite.reshape(arr.shape[0], -1).all(axis=1)
    row, count = _first_bad(rows)
    bad = arr.reshape(arr.shape[0], -1)[row][~finite.reshape(arr.shape[0], -1)[row]][0]
    problems.append(
        Problem(name, "finite numbers", repr(float(bad)), row=row, n_rows=count,
                fix="Drop or impute NaN and infinite values before building the log.")
    )


def _check_probability(name: str, arr: FloatArray, problems: list[Problem]) -> None:
    """Propensities must lie in (0, 1]: a 0 makes inverse weighting undefined."""
    bad = ~((arr > 0.0) & (arr <= 1.0))
    if not bad.any():
        return
    rows = bad.reshape(arr.shape[0], -1).any(axis=1)
    row, count = _first_bad(rows)
    value = arr.reshape(arr.shape[0], -1)[row][bad.reshape(arr.shape[0], -1)[row]][0]
    problems.append(
        Problem(name, "a probability in (0, 1]", repr(float(value)), row=row, n_rows=count,
                fix="Log the probability the logging policy gave the shown slate; it cannot be 0.")
    )


@dataclass(frozen=True, slots=True)
class Catalog:
    """The items a slate can show.

    Items are addressed by their index ``0 .. n_items - 1`` inside slatewise
    (slates, policies, arrays) and by their ``item_id`` wherever a person sees
    them (reports, HTTP answers, exports).

    Attributes:
        item_id: shape (n_items,), external item ids, unique: int64 (integer ids)
            or str (a shop's own ids, kept exactly as written).
        category: shape (n_items,), category name of each item.
        price: shape (n_items,), price in the shop's currency, or None when unknown.
        features: shape (n_items, n_features), numeric item features (may have 0 columns).
        feature_names: names of the feature columns, empty for ``f0, f1, ...``.
    """

    item_id: IdArray
    category: StrArray
    price: FloatArray | None
    features: FloatArray
    feature_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        item_id = _as_ids("catalog.item_id", self.item_id, problems)
        category = np.asarray(self.category).astype(str)
        price = None if self.price is None else _as_float("catalog.price", self.price, 1, problems)
        features = np.asarray(self.features)
        if features.ndim == 1 and features.size == 0 and item_id is not None:
            features = np.zeros((item_id.shape[0], 0))
        feats = _as_float("catalog.features", features, 2, problems)
        if problems or item_id is None or feats is None:
            raise LogValidationError(problems, "catalog")
        n = item_id.shape[0]
        if n == 0:
            problems.append(Problem("catalog.item_id", "at least one item", "an empty catalog"))
        for name, arr in (("catalog.category", category), ("catalog.price", price),
                          ("catalog.features", feats)):
            if arr is not None and arr.shape[0] != n:
                problems.append(Problem(name, f"{n} rows (one per item)", f"{arr.shape[0]} rows"))
        if problems:
            raise LogValidationError(problems, "catalog")
        ids_sorted = np.sort(item_id)
        dup = ids_sorted[1:] == ids_sorted[:-1]
        if dup.any():
            problems.append(Problem("catalog.item_id", "unique item ids",
                                    f"item id {ids_sorted[1:][dup][0].item()!r} more than once"))
        if price is not None:
            _check_finite("catalog.price", price, problems)
            if np.isfinite(price).all() and (price < 0).any():
                row, count = _first_bad(price < 0)
                problems.append(Problem("catalog.price", "a price >= 0", repr(float(price[row])),
                                        row=row, n_rows=count))
        _check_finite("catalog.features", feats, problems)
        if self.feature_names and len(self.feature_names) != feats.shape[1]:
            problems.append(Problem("catalog.feature_names", f"{feats.shape[1]} names",
                                    f"{len(self.feature_names)} names"))
        if problems:
            raise LogValidationError(problems, "catalog")
        object.__setattr__(self, "item_id", _frozen(item_id))
        object.__setattr__(self, "category", _frozen(category))
        object.__setattr__(self, "price", None if price is None else _frozen(price))
        object.__setattr__(self, "features", _frozen(feats))
        object.__setattr__(self, "feature_names", tuple(self.feature_names))

    @property
    def n_items(self) -> int:
        """Number of items in the catalog."""
        return int(self.item_id.shape[0])

    @property
    def id_kind(self) -> str:
        """``"int"`` for integer item ids, ``"str"`` for a shop's own text ids."""
        return "str" if self.item_id.dtype.kind == "U" else "int"

    def index_of(self, ids: Any) -> IntArray:
        """Catalog index of each id in ``ids``, -1 where an id is not in the catalog.

        Args:
            ids: shape (m,), item ids: a numpy array, a list or a pyarrow array.
                Text is matched exactly; against an integer catalog, text matches
                the id's decimal form (``"17"`` is item 17).

        Returns:
            shape (m,) int64 indices into the catalog.
        """
        values = ids if isinstance(ids, pa.Array | pa.ChunkedArray) else pa.array(np.asarray(ids))
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        text = pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
        if self.id_kind == "str" or text:
            keys = pa.array(self.item_id.astype(str))
            values = values if text else values.cast(pa.string())
        elif pa.types.is_integer(values.type):
            keys = pa.array(self.item_id)
            values = values.cast(pa.int64())
        else:
            return np.full(len(values), -1, dtype=np.int64)
        found = pc.index_in(values, value_set=keys)
        out: IntArray = np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False),
                                   dtype=np.int64)
        return out

    @classmethod
    def anonymous(cls, n_items: int) -> Catalog:
        """A catalog of ``n_items`` items with ids ``0..n_items-1``, no price, no features."""
        if n_items < 1:
            raise ValueError(f"`n_items` must be at least 1, found {n_items}.")
        return cls(
            item_id=np.arange(n_items, dtype=np.int64),
            category=np.full(n_items, "unknown"),
            price=None,
            features=np.zeros((n_items, 0)),
        )

    def equals(self, other: Catalog) -> bool:
        """Exact equality of every array and name, the kind of the ids included."""
        return (
            self.id_kind == other.id_kind
            and np.array_equal(self.item_id, other.item_id)
            and np.array_equal(self.category, other.category)
            and (
                (self.price is None and other.price is None)
                or (self.price is not None and other.price is not None
                    and np.array_equal(self.price, other.price))
            )
            and self.features.shape == other.features.shape
            and np.array_equal(self.features, other.features)
            and self.feature_names == other.feature_names
        )


@dataclass(frozen=True, slots=True)
class LogMetadata:
    """What a log is: its schema version, how it was logged and what the reward means.

    Attributes:
        logging_policy: name of the policy that chose the logged slates.
        reward_type: one of ``click``, ``purchase``, ``revenue``, ``custom``.
        n_positions: number of slots on the page; ``None`` means ``k``. Logs with
            one row per position (the Open Bandit Dataset) have ``k = 1`` and
            ``n_positions = 3``.
        context_names: names of the ``d`` context columns, empty when unnamed.
        source: free text on where the log came from (and its credit).
        schema_version: the log schema's version; only supported versions load.
        pscore_source: ``logged`` or ``estimated`` (see :data:`PSCORE_SOURCES`).
    """

    logging_policy: str = "unknown"
    reward_type: str = "click"
    n_positions: int | None = None
    context_names: tuple[str, ...] = ()
    source: str = ""
    schema_version: int = SCHEMA_VERSION
    pscore_source: str = "logged"

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form of the metadata."""
        return {
            "logging_policy": self.logging_policy,
            "reward_type": self.reward_type,
            "n_positions": self.n_positions,
            "context_names": list(self.context_names),
            "source": self.source,
            "schema_version": self.schema_version,
            "pscore_source": self.pscore_source,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogMetadata:
        """Inverse of :meth:`to_json`; unknown keys are an error.

        Metadata of a supported older version is read as the current version:
        version 1 had no ``pscore_source`` (its propensities were always logged).
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"n_items", "k"})
        if unknown:
            raise LogValidationError(
                [Problem("metadata", f"keys among {sorted(known)}", f"unknown keys {unknown}")],
                "metadata",
            )
        kwargs = {key: data[key] for key in known if key in data}
        if "context_names" in kwargs:
            kwargs["context_names"] = tuple(kwargs["context_names"])
        if kwargs.get("schema_version") in SUPPORTED_SCHEMA_VERSIONS:
            kwargs["schema_version"] = SCHEMA_VERSION
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class SlateLog:
    """A validated, immutable log of slate decisions.

    Build one with :meth:`from_arrays` (ids get defaults) or
    :meth:`from_dataframe`; construction validates every field and raises one
    :class:`LogValidationError` listing every problem.

    Attributes:
        context: shape (n, d), float32 or float64, what the policy saw.
        slate: shape (n, k), int64 item indices in position order.
        reward: shape (n, k), per-slot reward (click by default).
        pscore: shape (n,), probability of the whole logged slate under the logging policy.
        pscore_item: shape (n, k), marginal probability of each shown item at its slot.
        catalog: the items.
        metadata: schema version, logging policy, reward type.
        position: shape (n,) int64 slot of the row for one-row-per-position logs, else None.
        purchase: shape (n, k) or None.
        revenue: shape (n, k) or None, in the shop's currency.
        event_id: shape (n,) int64, unique.
        session_id: shape (n,) int64.
        step: shape (n,) int64, 0-based step within the session.
        timestamp: shape (n,) datetime64[ns] (UTC) or None when unknown.
        policy: shape (n,) str, the policy that made each decision.
    """

    context: FloatArray
    slate: IntArray
    reward: FloatArray
    pscore: FloatArray
    pscore_item: FloatArray
    catalog: Catalog
    event_id: IntArray
    session_id: IntArray
    step: IntArray
    policy: StrArray
    metadata: LogMetadata = field(default_factory=LogMetadata)
    position: IntArray | None = None
    purchase: FloatArray | None = None
    revenue: FloatArray | None = None
    timestamp: TimeArray | None = None

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        meta = self.metadata
        if meta.schema_version not in SUPPORTED_SCHEMA_VERSIONS:
            problems.append(Problem(
                "metadata.schema_version", f"one of {list(SUPPORTED_SCHEMA_VERSIONS)}",
                repr(meta.schema_version),
                fix="The file was written by another slatewise version; upgrade slatewise."))
        if meta.reward_type not in REWARD_TYPES:
            problems.append(Problem("metadata.reward_type", f"one of {list(REWARD_TYPES)}",
                                    repr(meta.reward_type)))
        if meta.pscore_source not in PSCORE_SOURCES:
            problems.append(Problem("metadata.pscore_source", f"one of {list(PSCORE_SOURCES)}",
                                    repr(meta.pscore_source)))
        context = _as_float("context", self.context, 2, problems, keep_float32=True)
        slate = _as_int("slate", self.slate, 2, problems)
        reward = _as_float("reward", self.reward, 2, problems)
        pscore = _as_float("pscore", self.pscore, 1, problems)
        pscore_item = _as_float("pscore_item", self.pscore_item, 2, problems)
        event_id = _as_int("event_id", self.event_id, 1, problems)
        session_id = _as_int("session_id", self.session_id, 1, problems)
        step = _as_int("step", self.step, 1, problems)
        policy = np.asarray(self.policy).astype(str)
        position = None if self.position is None else _as_int("position", self.position, 1, problems)
        purchase = None if self.purchase is None else _as_float("purchase", self.purchase, 2, problems)
        revenue = None if self.revenue is None else _as_float("revenue", self.revenue, 2, problems)
        timestamp = None
        if self.timestamp is not None:
            ts = np.asarray(self.timestamp)
            if ts.dtype.kind != "M":
                problems.append(Problem("timestamp", "datetime64 values", f"dtype {ts.dtype}",
                                        fix="Convert with pandas.to_datetime(..., utc=True)."))
            else:
                timestamp = ts.astype("datetime64[ns]")
        if problems or context is None or slate is None or reward is None or pscore is None \
                or pscore_item is None or event_id is None or session_id is None or step is None:
            raise LogValidationError(problems)

        n, k = slate.shape
        per_row: list[tuple[str, np.ndarray[Any, Any] | None]] = [
            ("context", context), ("reward", reward), ("pscore", pscore),
            ("pscore_item", pscore_item), ("event_id", event_id), ("session_id", session_id),
            ("step", step), ("policy", policy), ("position", position), ("purchase", purchase),
            ("revenue", revenue), ("timestamp", timestamp),
        ]
        for name, arr in per_row:
            if arr is not None and arr.shape[0] != n:
                problems.append(Problem(name, f"{n} rows (as many as `slate`)", f"{arr.shape[0]} rows",
                                        fix="Every per-decision field needs one row per decision."))
        for name, arr in (("reward", reward), ("pscore_item", pscore_item),
                          ("purchase", purchase), ("revenue", revenue)):
            if arr is not None and arr.shape[0] == n and arr.shape[1] != k:
                problems.append(Problem(name, f"{k} columns (one per slot, k = {k})",
                                        f"{arr.shape[1]} columns"))
        if k < 1:
            problems.append(Problem("slate", "at least one slot", "k = 0"))
        n_items = self.catalog.n_items
        if k > n_items:
            problems.append(Problem("slate", f"k <= n_items = {n_items}", f"k = {k}",
                                    fix="A slate shows distinct items, so it cannot be longer "
                                        "than the catalog."))
        if meta.context_names and len(meta.context_names) != context.shape[1]:
            problems.append(Problem("metadata.context_names", f"{context.shape[1]} names",
                                    f"{len(meta.context_names)} names"))
        n_positions = k if meta.n_positions is None else meta.n_positions
        if n_positions < k:
            problems.append(Problem("metadata.n_positions", f"at least k = {k}", str(n_positions)))
        if problems:
            raise LogValidationError(problems)

        for name, arr in (("context", context), ("reward", reward), ("pscore", pscore),
                          ("pscore_item", pscore_item), ("purchase", purchase),
                          ("revenue", revenue)):
            if arr is not None:
                _check_finite(name, arr, problems)
        _check_probability("pscore", pscore, problems)
        _check_probability("pscore_item", pscore_item, problems)
        outside = (slate < 0) | (slate >= n_items)
        if outside.any():
            row, count = _first_bad(outside.any(axis=1))
            value = int(slate[row][outside[row]][0])
            problems.append(Problem("slate", f"item indices in [0, {n_items - 1}] (the catalog)",
                                    f"item {value}", row=row, n_rows=count,
                                    fix="Map item ids to catalog indices; add missing items to "
                                        "the catalog."))
        elif k > 1:
            ordered = np.sort(slate, axis=1)
            dup = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
            if dup.any():
                row, count = _first_bad(dup)
                problems.append(Problem("slate", "k distinct items per slate",
                                        f"slate {slate[row].tolist()}", row=row, n_rows=count,
                                        fix="A slate cannot show the same item twice."))
        if position is not None:
            bad = (position < 0) | (position >= n_positions)
            if bad.any():
                row, count = _first_bad(bad)
                problems.append(Problem("position", f"a slot in [0, {n_positions - 1}]",
                                        str(int(position[row])), row=row, n_rows=count,
                                        fix="Positions are 0-based; set metadata.n_positions."))
        if (step < 0).any():
            row, count = _first_bad(step < 0)
            problems.append(Problem("step", "a step >= 0", str(int(step[row])), row=row,
                                    n_rows=count))
        if not np.array_equal(event_id, np.arange(n)):
            ordered_ids = np.sort(event_id)
            dup_ids = ordered_ids[1:] == ordered_ids[:-1]
            if dup_ids.any():
                problems.append(Problem("event_id", "unique event ids",
                                        f"event id {int(ordered_ids[1:][dup_ids][0])} more than "
                                        f"once ({int(dup_ids.sum())} repeats)"))
        if timestamp is not None and np.isnat(timestamp).any():
            row, count = _first_bad(np.isnat(timestamp))
            problems.append(Problem("timestamp", "a time", "NaT", row=row, n_rows=count))
        if problems:
            raise LogValidationError(problems)

        for name, arr in (("context", context), ("slate", slate), ("reward", reward),
                          ("pscore", pscore), ("pscore_item", pscore_item),
                          ("event_id", event_id), ("session_id", session_id), ("step", step),
                          ("policy", policy), ("position", position), ("purchase", purchase),
                          ("revenue", revenue), ("timestamp", timestamp)):
            object.__setattr__(self, name, None if arr is None else _frozen(arr))

    # ------------------------------------------------------------------ building
    @classmethod
    def from_arrays(
        cls,
        *,
        context: Any,
        slate: Any,
        reward: Any,
        pscore: Any,
        catalog: Catalog,
        pscore_item: Any | None = None,
        metadata: LogMetadata | None = None,
        position: Any | None = None,
        purchase: Any | None = None,
        revenue: Any | None = None,
        event_id: Any | None = None,
        session_id: Any | None = None,
        step: Any | None = None,
        timestamp: Any | None = None,
        policy: Any | None = None,
    ) -> SlateLog:
        """Build a log from arrays, filling ids that are not given.

        Defaults: ``event_id = 0..n-1``, ``session_id = event_id`` (each decision
        its own session), ``step = 0``, ``policy = metadata.logging_policy``,
        ``pscore_item = pscore`` when ``k = 1``.
        """
        meta = metadata or LogMetadata()
        slate_arr = np.asarray(slate)
        if slate_arr.ndim == 1:
            raise LogValidationError([Problem("slate", "shape (n, k)", f"shape {slate_arr.shape}",
                                              fix="For one item per decision pass slate[:, None].")])
        n = slate_arr.shape[0] if slate_arr.ndim >= 1 else 0
        if pscore_item is None:
            if slate_arr.ndim == 2 and slate_arr.shape[1] == 1:
                pscore_item = np.asarray(pscore, dtype=np.float64).reshape(-1, 1)
            else:
                raise LogValidationError([Problem(
                    "pscore_item", "shape (n, k) marginal propensities", "None",
                    fix="Pass pscore_item; it may be omitted only when k = 1.")])
        ids = np.arange(n, dtype=np.int64) if event_id is None else event_id
        return cls(
            context=context,
            slate=slate_arr,
            reward=reward,
            pscore=pscore,
            pscore_item=pscore_item,
            catalog=catalog,
            event_id=ids,
            session_id=ids if session_id is None else session_id,
            step=np.zeros(n, dtype=np.int64) if step is None else step,
            policy=np.full(n, meta.logging_policy) if policy is None else policy,
            metadata=meta,
            position=position,
            purchase=purchase,
            revenue=revenue,
            timestamp=timestamp,
        )

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.slate.shape[0])

    @property
    def n_rounds(self) -> int:
        """Number of decisions (rows)."""
        return int(self.slate.shape[0])

    @property
    def k(self) -> int:
        """Slots per logged slate."""
        return int(self.slate.shape[1])

    @property
    def dim_context(self) -> int:
        """Context dimension ``d``."""
        return int(self.context.shape[1])

    @property
    def n_items(self) -> int:
        """Items in the catalog."""
        return self.catalog.n_items

    @property
    def n_positions(self) -> int:
        """Slots on the page (``k`` unless the log has one row per position)."""
        return self.k if self.metadata.n_positions is None else self.metadata.n_positions

    # ------------------------------------------------------------------ subsets
    def take(self, rows: Any) -> SlateLog:
        """The log restricted to ``rows`` (indices or a boolean mask), catalog unchanged."""
        idx = np.asarray(rows)
        if idx.dtype == bool:
            if idx.shape != (self.n_rounds,):
                raise ValueError(f"`rows` mask must have shape ({self.n_rounds},), found {idx.shape}.")
            idx = np.flatnonzero(idx)
        elif idx.dtype.kind not in "iu":
            raise TypeError(f"`rows` must be integer indices or a boolean mask, found {idx.dtype}.")
        if idx.size and (idx.min() < -self.n_rounds or idx.max() >= self.n_rounds):
            raise IndexError(f"`rows` has indices outside [0, {self.n_rounds - 1}].")

        def pick(a: np.ndarray[Any, Any] | None) -> Any:
            return None if a is None else a[idx]

        return replace(
            self,
            context=self.context[idx], slate=self.slate[idx], reward=self.reward[idx],
            pscore=self.pscore[idx], pscore_item=self.pscore_item[idx],
            event_id=self.event_id[idx], session_id=self.session_id[idx], step=self.step[idx],
            policy=self.policy[idx], position=pick(self.position), purchase=pick(self.purchase),
            revenue=pick(self.revenue), timestamp=pick(self.timestamp),
        )

    @staticmethod
    def concat(logs: Sequence[SlateLog]) -> SlateLog:
        """Rows of several logs with the same catalog, k, d and optional fields, in order."""
        if not logs:
            raise ValueError("`logs` is empty; pass at least one log to concatenate.")
        first = logs[0]
        for i, log in enumerate(logs[1:], start=1):
            if not log.catalog.equals(first.catalog):
                raise ValueError(f"`logs[{i}]` has a different catalog from `logs[0]`.")
            if log.k != first.k or log.dim_context != first.dim_context:
                raise ValueError(f"`logs[{i}]` has k={log.k}, d={log.dim_context}; "
                                 f"`logs[0]` has k={first.k}, d={first.dim_context}.")
        optional = ("position", "purchase", "revenue", "timestamp")
        for name in optional:
            present = [getattr(log, name) is not None for log in logs]
            if any(present) and not all(present):
                raise ValueError(f"`{name}` is present in some logs and missing in others.")

        def cat(name: str) -> Any:
            arrays = [getattr(log, name) for log in logs]
            return None if arrays[0] is None else np.concatenate(arrays)

        return replace(first, **{f.name: cat(f.name) for f in fields(SlateLog)
                                 if f.name not in ("catalog", "metadata")})

    def equals(self, other: SlateLog) -> bool:
        """Exact equality of every field, dtype included."""
        if not self.catalog.equals(other.catalog) or self.metadata != other.metadata:
            return False
        for f in fields(SlateLog):
            if f.name in ("catalog", "metadata"):
                continue
            a, b = getattr(self, f.name), getattr(other, f.name)
            if a is None or b is None:
                if a is not b:
                    return False
                continue
            if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b):
                return False
        return True
