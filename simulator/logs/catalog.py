"""A shop's catalog: imported from its own item file, kept in a ``catalog.parquet`` of its own.

:func:`import_catalog` reads an item file (CSV or Parquet) with the shop's
column names (:class:`CatalogMapping`); every bad cell is reported at once as a
:class:`~simulator.errors.DataImportError` naming the column and the first row.
Ids read from CSV are text exactly as written (``00123`` stays ``00123``);
Parquet id columns keep their type (text, or integers).

The catalog file: one row per item, in catalog-index order: ``item_id``
(string or int64), ``category`` (dictionary-encoded string), ``price``
(float64, when known) and ``features`` (fixed-size list of float64, when the
catalog has features); the feature names, the id kind and the format version
are JSON under the schema's ``slatewise_catalog`` key. :func:`load_catalog`
checks all of it and validates the items (:class:`~simulator.logs.Catalog`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simulator.errors import (
    ConfigError,
    ConfigProblem,
    DataImportError,
    LogFormatError,
    LogValidationError,
    RowError,
)
from simulator.logs.io import META_KEY, catalog_from_json, write_table_atomic
from simulator.logs.schema import Catalog
from simulator.logs.tables import (
    as_float,
    check_columns,
    file_kind,
    first_error,
    header_of,
    line_of,
    read_columns,
    shown,
)

CATALOG_KEY = b"slatewise_catalog"
CATALOG_FORMAT_VERSION = 1
UNKNOWN_CATEGORY = "unknown"


@dataclass(frozen=True, slots=True)
class CatalogMapping:
    """Which columns of a shop's item file hold what.

    Attributes:
        id: the item id column (required).
        category: the category column; ``None`` puts every item in ``unknown``.
        price: the price column (numbers >= 0); ``None`` leaves prices unknown, which
            rules out up-sell (a pricier item of the anchor's category) and revenue.
        features: numeric item feature columns, in order.
    """

    id: str
    category: str | None = None
    price: str | None = None
    features: tuple[str, ...] = ()

    def columns(self) -> dict[str, str]:
        """Role -> column, for every mapped column."""
        out = {"id": self.id}
        if self.category is not None:
            out["category"] = self.category
        if self.price is not None:
            out["price"] = self.price
        out |= {f"feature {i}": col for i, col in enumerate(self.features)}
        return out

    @classmethod
    def from_table(cls, table: Mapping[str, Any], source: str = "[catalog]",
                   extra: Sequence[str] = ("file", "output")) -> CatalogMapping:
        """A mapping from a config table (``[catalog]``: ``id``, ``category``, ``price``, ``features``).

        Args:
            table: the TOML table.
            source: what was read, for messages.
            extra: other keys the caller reads itself (allowed, ignored here).

        Raises:
            ConfigError: naming every unknown key and every value of the wrong type.
        """
        known = [f.name for f in fields(cls)]
        problems = [ConfigProblem(f"catalog.{key}", f"unknown key; known keys are {known + list(extra)}")
                    for key in table if key not in known and key not in extra]
        if "id" not in table:
            problems.append(ConfigProblem("catalog.id", "missing: name the item id column"))
        for key in ("id", "category", "price"):
            if key in table and not isinstance(table[key], str):
                problems.append(ConfigProblem(f"catalog.{key}",
                                              f"must be a column name, found {table[key]!r}"))
        features = table.get("features", [])
        if isinstance(features, str):
            features = [f for f in features.split(",") if f]
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            problems.append(ConfigProblem("catalog.features", f"must be a list of column names, "
                                                              f"found {features!r}"))
        if problems:
            raise ConfigError(problems, source)
        return cls(id=table["id"], category=table.get("category"), price=table.get("price"),
                   features=tuple(features))


def _problem_rows(errors: list[RowError], path: Path, n: int) -> None:
    if errors:
        raise DataImportError(errors, str(path), n,
                              note="Fix these rows in the item file (or leave the column out), then "
                                   "import again.")


def import_catalog(path: str | os.PathLike[str], mapping: CatalogMapping) -> Catalog:
    """Read a shop's item file into a :class:`Catalog`, in the file's row order.

    Args:
        path: a CSV (``.csv``, ``.csv.gz``, ``.tsv``) or Parquet file, one row per item.
        mapping: which columns hold the id, category, price and features.

    Returns:
        The catalog; item ``i`` is the file's data row ``i``.

    Raises:
        LogFormatError: the file is unreadable or lacks a mapped column.
        DataImportError: every kind of bad cell at once: ``missing_id``,
            ``duplicate_id``, ``missing_category``, ``missing_price``, ``bad_price``,
            ``missing_feature``, ``non_numeric_feature``.
    """
    source = Path(path)
    header = header_of(source)
    check_columns(source, header, mapping.columns())
    if len(set(mapping.features)) != len(mapping.features):
        raise ConfigError(f"`features` names a column twice: {list(mapping.features)}.")
    kind = file_kind(source)
    text = [c for c in (mapping.category,) if c is not None]
    if kind == "csv":
        text.append(mapping.id)
    table = read_columns(source, list(mapping.columns().values()), text=text)
    n = table.num_rows
    if n == 0:
        raise LogFormatError(f"{source} has a header but no items.")
    errors: list[RowError] = []

    ids_col = table.column(mapping.id).combine_chunks()
    if pa.types.is_dictionary(ids_col.type):
        ids_col = ids_col.cast(ids_col.type.value_type)
    if pa.types.is_integer(ids_col.type):
        missing = np.asarray(ids_col.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
        ids: np.ndarray[Any, Any] = np.asarray(ids_col.fill_null(0).to_numpy(), dtype=np.int64)
    elif pa.types.is_string(ids_col.type) or pa.types.is_large_string(ids_col.type):
        raw_ids = ids_col.to_numpy(zero_copy_only=False)
        missing = np.asarray(pd.isna(raw_ids) | (raw_ids == ""), dtype=np.bool_)
        ids = np.where(missing, "", raw_ids).astype(str)
    else:
        raise LogFormatError(f"{source}: column `{mapping.id}` (item id) holds {ids_col.type}; "
                             "item ids must be text or integers.")
    err = first_error("missing_id", mapping.id, missing, ids_col, "an item id", "Every item needs an id.",
                      kind)
    if err:
        errors.append(err)
    dup = pd.Series(ids).duplicated(keep="first").to_numpy() & ~missing
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first_row = int(np.flatnonzero(ids == ids[row])[0])
        where = f"row {first_row}" + (f", line {line_of(kind, first_row)}" if kind == "csv" else "")
        errors.append(RowError(
            kind="duplicate_id", column=mapping.id, count=int(dup.sum()), row=row,
            expected="each item id once", found=f"{shown(ids[row])} again (first at {where})",
            fix="Keep one row per item.", line=line_of(kind, row)))

    category = np.full(n, UNKNOWN_CATEGORY)
    if mapping.category is not None:
        cat_col = table.column(mapping.category)
        values = cat_col.to_numpy(zero_copy_only=False)
        empty = np.asarray(pd.isna(values), dtype=np.bool_)
        err = first_error("missing_category", mapping.category, empty, cat_col, "a category",
                          "Fill every category, or import without --category.", kind)
        if err:
            errors.append(err)
        category = np.where(empty, UNKNOWN_CATEGORY, values).astype(str)

    price = None
    if mapping.price is not None:
        col = table.column(mapping.price)
        price, empty, text_cells = as_float(col)
        for err in (
            first_error("missing_price", mapping.price, empty, col, "a price",
                        "Up-sell compares an item's price with the anchor's, and revenue needs it: fill "
                        "every price, or import without --price.", kind),
            first_error("bad_price", mapping.price, text_cells | (~empty & ~text_cells
                                                                  & ~(np.isfinite(price) & (price >= 0))),
                        col, "a number >= 0", "Prices are plain numbers in one currency.", kind),
        ):
            if err:
                errors.append(err)

    blocks = []
    for name in mapping.features:
        col = table.column(name)
        values, empty, text_cells = as_float(col)
        for err in (
            first_error("missing_feature", name, empty, col, "a number",
                        "Fill every feature cell (e.g. with the column mean), or leave the column out.",
                        kind),
            first_error("non_numeric_feature", name,
                        text_cells | (~empty & ~text_cells & ~np.isfinite(values)), col, "a finite number",
                        "Features are numbers; encode text as numbers (e.g. one column per tag) or pass "
                        "it as --category.", kind),
        ):
            if err:
                errors.append(err)
        blocks.append(values)
    _problem_rows(errors, source, n)
    features = np.column_stack(blocks) if blocks else np.zeros((n, 0))
    return Catalog(item_id=ids, category=category, price=price, features=features,
                   feature_names=tuple(mapping.features))


# ---------------------------------------------------------------------- the catalog file
def catalog_to_table(catalog: Catalog) -> pa.Table:
    """The catalog as an Arrow table, one row per item, with its names under ``slatewise_catalog``."""
    labels, codes = np.unique(catalog.category, return_inverse=True)
    columns: dict[str, pa.Array] = {
        "item_id": pa.array(catalog.item_id.tolist(),
                            type=pa.string() if catalog.id_kind == "str" else pa.int64()),
        "category": pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32)),
                                                   pa.array(labels.tolist(), type=pa.string())),
    }
    if catalog.price is not None:
        columns["price"] = pa.array(catalog.price)
    width = catalog.features.shape[1]
    if width:
        columns["features"] = pa.FixedSizeListArray.from_arrays(
            pa.array(np.ascontiguousarray(catalog.features).reshape(-1)), width)
    meta = {"format_version": CATALOG_FORMAT_VERSION, "n_items": catalog.n_items,
            "id_kind": catalog.id_kind, "n_features": width,
            "feature_names": list(catalog.feature_names)}
    return pa.table(columns).replace_schema_metadata({CATALOG_KEY: json.dumps(meta).encode()})


def save_catalog(catalog: Catalog, path: str | os.PathLike[str]) -> Path:
    """Write ``catalog`` to a Parquet file of its own, atomically (see the module docstring)."""
    return write_table_atomic(catalog_to_table(catalog), path)


def table_to_catalog(table: pa.Table, path: Path) -> Catalog:
    """Inverse of :func:`catalog_to_table`, every column and name checked."""
    raw = (table.schema.metadata or {}).get(CATALOG_KEY)
    if raw is None:
        raise LogFormatError(f"{path} is a Parquet file but not a slatewise catalog (no "
                             "`slatewise_catalog` metadata); make one with `slatewise catalog import`.")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise LogFormatError(f"{path}: the catalog metadata is not JSON: {err}") from err
    version = meta.get("format_version")
    if version != CATALOG_FORMAT_VERSION:
        raise LogFormatError(f"{path}: catalog format version {version!r}; this slatewise reads version "
                             f"{CATALOG_FORMAT_VERSION}. Import the items again with this version.")
    names = set(table.column_names)
    missing = [c for c in ("item_id", "category") if c not in names]
    if missing:
        raise LogFormatError(f"{path} lacks the columns {missing}; it is not a complete catalog.")
    n = table.num_rows
    width = int(meta.get("n_features", 0))
    feature_names = meta.get("feature_names", [])
    if meta.get("n_items") != n:
        raise LogFormatError(f"{path}: the metadata says {meta.get('n_items')} items, the file has {n} rows.")
    id_type = table.schema.field("item_id").type
    want = pa.string() if meta.get("id_kind") == "str" else pa.int64()
    if id_type != want:
        raise LogFormatError(f"{path}: `item_id` is {id_type}, the metadata says "
                             f"{meta.get('id_kind')!r} ids.")
    if width and "features" not in names:
        raise LogFormatError(f"{path}: the metadata names {width} features but there is no "
                             "`features` column.")
    if len(feature_names) not in (0, width):
        raise LogFormatError(f"{path}: {len(feature_names)} feature names for {width} features.")
    item_id = table.column("item_id").to_numpy()
    category_col = table.column("category").combine_chunks()
    if isinstance(category_col, pa.DictionaryArray):
        category_col = category_col.cast(pa.string())
    features = np.zeros((n, 0))
    if width:
        flat = table.column("features").combine_chunks()
        if not pa.types.is_fixed_size_list(flat.type) or flat.type.list_size != width:
            raise LogFormatError(f"{path}: `features` is {flat.type}, expected a list of {width} numbers.")
        values = flat.flatten().to_numpy(zero_copy_only=False)
        features = np.asarray(values, dtype=np.float64).reshape(n, width)
    price = None
    if "price" in names:
        price = np.asarray(table.column("price").to_numpy(zero_copy_only=False), dtype=np.float64)
    try:
        return Catalog(item_id=item_id.astype(str) if meta.get("id_kind") == "str" else item_id,
                       category=np.asarray(category_col.to_pylist(), dtype=str), price=price,
                       features=features, feature_names=tuple(feature_names))
    except LogValidationError as err:
        raise LogValidationError(err.problems, str(path)) from None


def load_catalog(path: str | os.PathLike[str]) -> Catalog:
    """Read a catalog file written by :func:`save_catalog`, validating it.

    A slatewise log file is accepted too: its catalog is returned.

    Raises:
        FileNotFoundError: no file at ``path``.
        LogFormatError: not a readable catalog (or log) file.
        LogValidationError: the items break the catalog's rules (e.g. duplicate ids).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"no catalog file at {source}")
    try:
        table = pq.read_table(source)
    except (pa.ArrowInvalid, OSError) as err:
        raise LogFormatError(f"{source} is not a readable Parquet file: {err}") from err
    log_meta = (table.schema.metadata or {}).get(META_KEY)
    if log_meta is not None and CATALOG_KEY not in (table.schema.metadata or {}):
        return catalog_from_json(json.loads(log_meta)["catalog"])
    return table_to_catalog(table, source)
