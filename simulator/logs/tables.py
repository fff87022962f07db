"""A shop's own files (CSV or Parquet) read into Arrow, and columns turned into checked numbers.

The importers (:mod:`simulator.logs.catalog`, :mod:`simulator.logs.generic`) read
only the columns they are told to, with pyarrow's multi-threaded CSV reader or
Parquet reader, and find bad cells with vectorised masks; a bad cell becomes a
:class:`~simulator.errors.RowError` naming the column, the first row (0-based,
header excluded, with its CSV line) and the value found.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from simulator.errors import LogFormatError, RowError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst", ".lz4")
CSV_BLOCK_BYTES = 1 << 24


def file_kind(path: Path) -> str:
    """``csv`` or ``parquet`` from the file name (``.csv``, ``.csv.gz``, ``.tsv``, ``.parquet``, ``.pq``)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in CSV_SUFFIXES:
        return "csv"
    if last in (".parquet", ".pq"):
        return "parquet"
    raise LogFormatError(f"{path}: cannot tell the format from the name; name it *.csv (or .csv.gz, "
                         ".tsv) or *.parquet.")


def _csv_parse(path: Path) -> pacsv.ParseOptions:
    tsv = ".tsv" in [s.lower() for s in path.suffixes]
    return pacsv.ParseOptions(delimiter="\t" if tsv else ",")


def header_of(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file, without reading its rows."""
    if not path.is_file():
        raise LogFormatError(f"no file at {path}" + ("; it is a folder" if path.is_dir() else ""))
    kind = file_kind(path)
    try:
        if kind == "parquet":
            return list(pq.read_schema(path).names)
        with pacsv.open_csv(path, parse_options=_csv_parse(path),
                            read_options=pacsv.ReadOptions(block_size=1 << 16)) as reader:
            return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as err:
        raise LogFormatError(f"{path} is not a readable {kind.upper()} file: {err}") from err


def check_columns(path: Path, header: Sequence[str], wanted: dict[str, str]) -> None:
    """Raise one error naming every mapped column the file lacks, with the closest names it has.

    Args:
        path: the file, for the message.
        header: the file's columns.
        wanted: role (``item``, ``price``, ...) -> the column mapped to it.
    """
    missing = [(role, col) for role, col in wanted.items() if col not in header]
    if not missing:
        return
    parts = []
    for role, col in missing:
        close = difflib.get_close_matches(col, header, n=1)
        hint = f" (did you mean `{close[0]}`?)" if close else ""
        parts.append(f"`{col}` (mapped to {role}){hint}")
    raise LogFormatError(f"{path} has no column {', '.join(parts)}; its columns are {list(header)}.")


def read_columns(path: Path, columns: Sequence[str], *, text: Sequence[str] = ()) -> pa.Table:
    """The named columns of a CSV or Parquet file as an Arrow table, one chunk per column.

    CSV is read by pyarrow's multi-threaded reader; empty cells are nulls;
    ``text`` columns are read as strings exactly as written (ids such as
    ``00123`` keep their zeros). Parquet columns in ``text`` are cast to strings.
    """
    names = list(dict.fromkeys(columns))
    kind = file_kind(path)
    try:
        if kind == "parquet":
            table = pq.read_table(path, columns=names)
            for name in dict.fromkeys(text):
                col = table.column(name)
                if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                        or pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
                    table = table.set_column(table.schema.get_field_index(name), name,
                                             col.cast(pa.string()))
        else:
            table = pacsv.read_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                parse_options=_csv_parse(path),
                convert_options=pacsv.ConvertOptions(
                    include_columns=names, strings_can_be_null=True,
                    column_types={name: pa.string() for name in text}),
            )
    except (pa.ArrowInvalid, OSError) as err:
        raise LogFormatError(f"{path} is not a readable {kind.upper()} file: {err}") from err
    return table.combine_chunks()


def line_of(kind: str, row: int) -> int | None:
    """The file line of data row ``row`` (0-based) in a CSV with one header line, else None."""
    return row + 2 if kind == "csv" else None


def shown(value: Any) -> str:
    """A cell's value as the error message shows it."""
    if value is None:
        return "an empty cell"
    return repr(value.item() if isinstance(value, np.generic) else value)


def first_error(kind: str, column: str, mask: BoolArray, raw: pa.Array | pa.ChunkedArray | None,
                expected: str, fix: str, file_kind_: str, *, rows: Any = None,
                found: str | None = None) -> RowError | None:
    """A :class:`RowError` for the True rows of ``mask`` (shape (n,)), or None when there are none.

    Args:
        kind: the error's name.
        column: the file's column.
        mask: shape (n,) bool, the bad rows (in the order of ``raw``).
        raw: the column as read, for the value found (or None with ``found``).
        expected: what a good row holds.
        fix: how to repair.
        file_kind_: ``csv`` or ``parquet``, for the line number.
        rows: shape (n,) the source row of each entry (default: its position).
        found: the text shown for the value found (default: the first bad cell).
    """
    bad = np.flatnonzero(mask)
    if not bad.size:
        return None
    first = int(bad[0])
    row = first if rows is None else int(np.asarray(rows)[first])
    if found is None:
        found = shown(raw[first].as_py()) if raw is not None else "?"
    return RowError(kind=kind, column=column, count=int(bad.size), row=row, expected=expected,
                    found=found, fix=fix, line=line_of(file_kind_, row))


def as_float(col: pa.Array | pa.ChunkedArray) -> tuple[FloatArray, BoolArray, BoolArray]:
    """A column as float64 with masks of empty and of non-numeric cells.

    Numbers and booleans convert directly; text (pyarrow infers text when any
    cell is not a number) is parsed with :func:`pandas.to_numeric`.

    Returns:
        ``(values, empty, not_numeric)``, each shape (n,); bad cells hold NaN.
    """
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    empty = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=np.bool_)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_boolean(arr.type) \
            or pa.types.is_decimal(arr.type) or pa.types.is_null(arr.type):
        values = np.asarray(pc.fill_null(arr.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False),
                            dtype=np.float64)
        return values, empty, np.zeros(len(arr), dtype=np.bool_)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        parsed = pd.to_numeric(pd.Series(arr.to_numpy(zero_copy_only=False)), errors="coerce")
        values = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, empty, ~empty & np.isnan(values)
    return (np.full(len(arr), np.nan), empty, ~empty)
