"""Parquet files of slatewise logs: one file, columns per field, catalog and metadata inside.

Layout: per-slot fields (``slate``, ``reward``, ``pscore_item``, ``purchase``,
``revenue``) and ``context`` are fixed-size list columns (no ``context``
column when d = 0); ids and ``pscore`` are plain columns; ``policy`` is
dictionary-encoded; ``timestamp`` is ``timestamp[ns, UTC]``. The catalog and
the metadata are JSON under the file's ``slatewise`` key, so one file carries
everything and round-trips exactly (Python's JSON float repr is exact for
float64).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from simulator.errors import LogFormatError, LogValidationError, Problem
from simulator.logs.schema import (
    SUPPORTED_SCHEMA_VERSIONS,
    Catalog,
    LogMetadata,
    SlateLog,
)

META_KEY = b"slatewise"
_MATRIX_FIELDS = ("context", "slate", "reward", "pscore_item", "purchase", "revenue")
_VECTOR_FIELDS = ("pscore", "event_id", "session_id", "step", "position")


def _matrix_column(arr: np.ndarray[Any, Any]) -> pa.Array:
    _n, width = arr.shape
    flat = pa.array(np.ascontiguousarray(arr).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def _matrix_from_column(col: pa.ChunkedArray, n: int, width: int) -> np.ndarray[Any, Any]:
    arr = col.combine_chunks()
    values: np.ndarray[Any, Any] = arr.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(n, width)


def catalog_to_json(catalog: Catalog) -> dict[str, Any]:
    """Plain-JSON form of a catalog (exact for float64)."""
    return {
        "item_id": catalog.item_id.tolist(),
        "category": catalog.category.tolist(),
        "price": None if catalog.price is None else catalog.price.tolist(),
        "features": catalog.features.tolist(),
        "n_features": int(catalog.features.shape[1]),
        "feature_names": list(catalog.feature_names),
    }


def _ids_from_json(values: list[Any]) -> np.ndarray[Any, Any]:
    """Item ids read back with their kind: all integers (int64) or all text (str)."""
    if all(type(v) is int for v in values):
        return np.asarray(values, dtype=np.int64)
    if all(type(v) is str for v in values):
        return np.asarray(values, dtype=str)
    raise TypeError("item ids must be all integers or all text")


def catalog_from_json(data: dict[str, Any]) -> Catalog:
    """Inverse of :func:`catalog_to_json`; integer ids stay integers, text ids stay text."""
    try:
        n_items = len(data["item_id"])
        features = np.asarray(data["features"], dtype=np.float64).reshape(n_items,
                                                                        int(data["n_features"]))
        return Catalog(
            item_id=_ids_from_json(list(data["item_id"])),
            category=np.asarray(data["category"], dtype=str),
            price=None if data["price"] is None else np.asarray(data["price"], dtype=np.float64),
            features=features,
            feature_names=tuple(data.get("feature_names", ())),
        )
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, LogValidationError):
            raise
        raise LogFormatError(f"the catalog stored in the file is malformed: {err!r}") from err


def log_to_table(log: SlateLog) -> pa.Table:
    """The log as an Arrow table with the catalog and metadata in its schema metadata."""
    columns: dict[str, pa.Array] = {}
    for name in _MATRIX_FIELDS:
        arr = getattr(log, name)
        if arr is not None and arr.shape[1]:  # a log without context (d = 0) has no context column
            columns[name] = _matrix_column(arr)
    for name in _VECTOR_FIELDS:
        arr = getattr(log, name)
        if arr is not None:
            columns[name] = pa.array(arr)
    labels, codes = np.unique(log.policy, return_inverse=True)
    columns["policy"] = pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array(labels.tolist(), type=pa.string())
    )
    if log.timestamp is not None:
        columns["timestamp"] = pa.array(log.timestamp.astype("datetime64[ns]"),
                                        type=pa.timestamp("ns", tz="UTC"))
    meta = log.metadata.to_json() | {
        "n_items": log.n_items,
        "k": log.k,
        "dim_context": log.dim_context,
        "n_rounds": log.n_rounds,
        "context_dtype": str(log.context.dtype),
        "catalog": catalog_to_json(log.catalog),
    }
    table = pa.table(columns)
    return table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()})


def save_parquet(log: SlateLog, path: str | os.PathLike[str]) -> Path:
    """Write ``log`` to ``path`` atomically (temporary file in the same folder, then rename).

    A failed write leaves no file behind and never a half-written one at ``path``.
    """
    return write_table_atomic(log_to_table(log), path)


def write_table_atomic(table: pa.Table, path: str | os.PathLike[str], *, fmt: str = "parquet") -> Path:
    """Write ``table`` to ``path`` through a temporary file in the same folder, fsynced, then renamed.

    Args:
        table: what to write.
        path: the file to create or replace.
        fmt: ``parquet`` (snappy) or ``csv`` (with a header line).

    Returns:
        ``path``. A failed write leaves no file behind and never a half-written one at ``path``.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"`path` {target} is a folder; give a file name such as log.parquet.")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if fmt == "csv":
                pacsv.write_csv(table, handle)
            else:
                pq.write_table(table, handle, compression="snappy")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def _meta_of(schema: pa.Schema, path: Path) -> dict[str, Any]:
    raw = (schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise LogFormatError(
            f"{path} is a Parquet file but not a slatewise log (no `slatewise` metadata). "
            "Import other formats first, e.g. `slatewise logs import-obd`."
        )
    meta: dict[str, Any] = json.loads(raw)
    return meta


def table_to_log(table: pa.Table, path: Path) -> SlateLog:
    """Inverse of :func:`log_to_table`."""
    meta = _meta_of(table.schema, path)
    version = meta.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise LogValidationError([Problem(
            "metadata.schema_version", f"one of {list(SUPPORTED_SCHEMA_VERSIONS)}", repr(version),
            fix="The file was written by another slatewise version; upgrade slatewise.")],
            str(path))
    n = table.num_rows
    k = int(meta["k"])
    d = int(meta["dim_context"])
    names = set(table.column_names)
    required = ("context", "slate", "reward", "pscore", "pscore_item", "event_id", "session_id", "step",
                "policy")
    missing = [c for c in required if c not in names and not (c == "context" and d == 0)]
    if missing:
        raise LogFormatError(f"{path} lacks the columns {missing}; it is not a complete log.")

    def matrix(name: str, width: int) -> Any:
        return _matrix_from_column(table.column(name), n, width) if name in names else None

    def vector(name: str) -> Any:
        return table.column(name).to_numpy() if name in names else None

    policy_col = table.column("policy").combine_chunks()
    if isinstance(policy_col, pa.DictionaryArray):
        labels = np.asarray(policy_col.dictionary.to_pylist(), dtype=str)
        policy = labels[policy_col.indices.to_numpy(zero_copy_only=False)]
    else:
        policy = np.asarray(policy_col.to_pylist(), dtype=str)
    timestamp = None
    if "timestamp" in names:
        ts = table.column("timestamp").combine_chunks()
        timestamp = ts.cast(pa.int64()).to_numpy().astype("datetime64[ns]")
    context = matrix("context", d)
    if context is not None and meta.get("context_dtype") == "float32":
        context = context.astype(np.float32, copy=False)
    if n == 0 or d == 0:
        context = np.zeros((n, d), dtype=meta.get("context_dtype", "float64"))
    return SlateLog(
        context=context,
        slate=matrix("slate", k),
        reward=matrix("reward", k),
        pscore=vector("pscore"),
        pscore_item=matrix("pscore_item", k),
        catalog=catalog_from_json(meta["catalog"]),
        event_id=vector("event_id"),
        session_id=vector("session_id"),
        step=vector("step"),
        policy=policy,
        metadata=LogMetadata.from_json({key: meta[key] for key in meta
                                        if key not in ("catalog", "dim_context", "n_rounds",
                                                       "context_dtype")}),
        position=vector("position"),
        purchase=matrix("purchase", k),
        revenue=matrix("revenue", k),
        timestamp=timestamp,
    )


def load_parquet(path: str | os.PathLike[str]) -> SlateLog:
    """Read a log written by :func:`save_parquet`, validating it as it is built."""
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"no log file at {source}")
    try:
        table = pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as err:
        raise LogFormatError(f"{source} is not a readable Parquet file: {err}") from err
    try:
        return table_to_log(table, source)
    except LogValidationError as err:
        if err.source == "log":
            raise LogValidationError(err.problems, str(source)) from None
        raise
