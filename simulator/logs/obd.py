"""Import the Open Bandit Dataset (ZOZO, Inc., CC BY 4.0) into the slatewise log format.

Layout read: ``DATA_DIR/{random,bts}/{campaign}/{campaign}.csv`` (one row per
impression) and ``item_context.csv`` beside it (one row per item). Each
impression becomes one decision with ``k = 1`` and its ``position`` (0-based;
the file's positions are 1, 2, 3); ``pscore`` is the file's
``propensity_score``; the context is the one-hot encoding of
``user_feature_0..3`` and, optionally, the ``user-item_affinity_*`` columns.

The one-hot vocabulary is shared: by default it holds every value of a feature in
*both* policies' files of the campaign (:func:`obd_vocabulary`), so a ``random``
log and a ``bts`` log of one campaign have the same context columns and a
contextual policy scored across them reads the same features.

Credit: Y. Saito, S. Aihara, M. Matsutani, Y. Narita, "Open Bandit Dataset and
Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation",
NeurIPS 2021 Datasets and Benchmarks. Data by ZOZO, Inc., CC BY 4.0.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from simulator.errors import LogFormatError
from simulator.logs.schema import Catalog, LogMetadata, SlateLog

OBD_POLICIES = ("random", "bts")
OBD_CREDIT = ("Open Bandit Dataset, ZOZO, Inc., CC BY 4.0 (Saito et al., NeurIPS 2021 "
              "Datasets and Benchmarks)")
USER_FEATURES = tuple(f"user_feature_{i}" for i in range(4))
REQUIRED_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score",
                    *USER_FEATURES)
N_POSITIONS = 3


def _campaign_files(data_dir: Path, policy: str, campaign: str) -> tuple[Path, Path]:
    if policy not in OBD_POLICIES:
        raise LogFormatError(f"`policy` must be one of {list(OBD_POLICIES)}, found {policy!r}.")
    if not data_dir.is_dir():
        raise LogFormatError(f"{data_dir} is not a folder; point DATA_DIR at the Open Bandit "
                             "Dataset folder that holds random/ and bts/.")
    folder = data_dir / policy / campaign
    if not folder.is_dir():
        found = sorted(p.name for p in (data_dir / policy).iterdir() if p.is_dir()) \
            if (data_dir / policy).is_dir() else []
        policies = sorted(p.name for p in data_dir.iterdir() if p.is_dir())
        raise LogFormatError(
            f"{data_dir} is not in the Open Bandit Dataset layout: no folder {policy}/{campaign}/ "
            f"(policies found: {policies}; campaigns under {policy}/: {found}). Expected "
            f"{{random,bts}}/{{campaign}}/{{campaign}}.csv and item_context.csv.")
    log_file = folder / f"{campaign}.csv"
    item_file = folder / "item_context.csv"
    for path in (log_file, item_file):
        if not path.is_file():
            raise LogFormatError(f"{path} is missing; every campaign folder holds "
                                 f"{campaign}.csv and item_context.csv.")
    return log_file, item_file


def _bad_value(path: Path, column: str, values: pd.Series, offset: int, expected: str,
               ok: np.ndarray[Any, Any]) -> LogFormatError:
    i = int(np.flatnonzero(~ok)[0])
    found = values.iloc[i]
    found = found.item() if isinstance(found, np.generic) else found
    return LogFormatError(
        f"{path}: data row {offset + i} (file line {offset + i + 2}), column `{column}`: "
        f"expected {expected}, found {found!r}.")


def _numeric(path: Path, frame: pd.DataFrame, column: str, offset: int,
             expected: str) -> np.ndarray[Any, Any]:
    values = frame[column]
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(numbers)
    if not ok.all():
        raise _bad_value(path, column, values, offset, expected, ok)
    return numbers


def _read_catalog(item_file: Path) -> tuple[Catalog, int]:
    items = pd.read_csv(item_file, index_col=0)
    needed = ["item_id", "item_feature_0"]
    missing = [c for c in needed if c not in items.columns]
    if missing:
        raise LogFormatError(f"{item_file}: missing columns {missing}; found {list(items.columns)}.")
    item_id = _numeric(item_file, items, "item_id", 0, "an integer item id").astype(np.int64)
    order = np.argsort(item_id, kind="stable")
    items = items.iloc[order].reset_index(drop=True)
    item_id = item_id[order]
    n_items = item_id.shape[0]
    if not np.array_equal(item_id, np.arange(n_items)):
        raise LogFormatError(f"{item_file}: item ids must be 0..{n_items - 1} (one row each), "
                             f"found {item_id.tolist()[:10]}...")
    numeric = _numeric(item_file, items, "item_feature_0", 0, "a number")[:, None]
    cat_cols = [c for c in items.columns if c.startswith("item_feature_") and c != "item_feature_0"]
    blocks = [numeric]
    names = ["item_feature_0"]
    for col in cat_cols:
        codes, uniques = pd.factorize(items[col].astype(str), sort=True)
        blocks.append(np.eye(len(uniques))[codes])
        names += [f"{col}={u}" for u in uniques]
    category = (np.asarray(items[cat_cols[0]].astype(str).to_numpy(), dtype=str) if cat_cols
                else np.full(n_items, "all"))
    catalog = Catalog(item_id=item_id, category=category, price=None,
                      features=np.hstack(blocks), feature_names=tuple(names))
    return catalog, n_items


def _read_chunk(chunk: pd.DataFrame, log_file: Path, offset: int, n_items: int,
                vocab: list[dict[str, int]], parts: dict[str, list[np.ndarray[Any, Any]]],
                affinity_cols: list[str], include_affinity: bool) -> int:
    """Validate and convert one chunk of impressions; return the new row offset."""
    m = len(chunk)
    item = _numeric(log_file, chunk, "item_id", offset, "an integer item id")
    ok = (item == np.round(item)) & (item >= 0) & (item < n_items)
    if not ok.all():
        raise _bad_value(log_file, "item_id", chunk["item_id"], offset,
                         f"an item id in 0..{n_items - 1} (item_context.csv)", ok)
    position = _numeric(log_file, chunk, "position", offset, "a position 1, 2 or 3")
    ok = np.isin(position, (1.0, 2.0, 3.0))
    if not ok.all():
        raise _bad_value(log_file, "position", chunk["position"], offset,
                         "a position 1, 2 or 3", ok)
    click = _numeric(log_file, chunk, "click", offset, "a click 0 or 1")
    ok = np.isin(click, (0.0, 1.0))
    if not ok.all():
        raise _bad_value(log_file, "click", chunk["click"], offset, "a click 0 or 1", ok)
    pscore = _numeric(log_file, chunk, "propensity_score", offset, "a probability in (0, 1]")
    ok = (pscore > 0) & (pscore <= 1)
    if not ok.all():
        raise _bad_value(log_file, "propensity_score", chunk["propensity_score"], offset,
                         "a probability in (0, 1]", ok)
    stamps = pd.to_datetime(chunk["timestamp"], utc=True, errors="coerce", format="ISO8601")
    ok = stamps.notna().to_numpy()
    if not ok.all():
        raise _bad_value(log_file, "timestamp", chunk["timestamp"], offset,
                         "an ISO 8601 time such as 2019-11-24 00:00:17+00:00", ok)
    codes = np.empty((m, len(USER_FEATURES)), dtype=np.int32)
    for j, col in enumerate(USER_FEATURES):
        values = chunk[col]
        if values.isna().any():
            raise _bad_value(log_file, col, values, offset, "a hashed feature value",
                             values.notna().to_numpy())
        local, uniques = pd.factorize(values)
        table = np.array([vocab[j].setdefault(str(u), len(vocab[j])) for u in uniques],
                         dtype=np.int32)
        codes[:, j] = table[local]
    if include_affinity:
        aff = chunk[affinity_cols].apply(pd.to_numeric, errors="coerce").to_numpy(np.float32)
        bad = ~np.isfinite(aff)
        if bad.any():
            row, col_idx = np.argwhere(bad)[0]
            raise LogFormatError(
                f"{log_file}: data row {offset + row} (file line {offset + row + 2}), "
                f"column `{affinity_cols[col_idx]}`: expected a number, found "
                f"{chunk[affinity_cols[col_idx]].iloc[row]!r}.")
        parts["affinity"].append(aff)
    parts["item"].append(item.astype(np.int64))
    parts["position"].append(position.astype(np.int64) - 1)
    parts["click"].append(click)
    parts["pscore"].append(pscore)
    parts["codes"].append(codes)
    parts["timestamp"].append(stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]"))
    return offset + len(chunk)


def obd_vocabulary(data_dir: str | os.PathLike[str], campaign: str = "all",
                   policies: tuple[str, ...] = OBD_POLICIES,
                   chunk_rows: int = 1_000_000) -> dict[str, tuple[str, ...]]:
    """Sorted values of each ``user_feature_j`` over the campaign's files of ``policies``.

    Policies whose folder is missing are skipped; at least one must be present.
    """
    root = Path(data_dir)
    seen: dict[str, set[str]] = {c: set() for c in USER_FEATURES}
    found = 0
    for policy in policies:
        if not (root / policy / campaign / f"{campaign}.csv").is_file():
            continue
        log_file, _ = _campaign_files(root, policy, campaign)
        found += 1
        with pd.read_csv(log_file, usecols=list(USER_FEATURES), chunksize=chunk_rows,
                         dtype=dict.fromkeys(USER_FEATURES, str)) as reader:
            for chunk in reader:
                for col in USER_FEATURES:
                    seen[col].update(chunk[col].dropna().unique().tolist())
    if not found:
        _campaign_files(root, policies[0], campaign)  # raises the layout error
    return {c: tuple(sorted(v)) for c, v in seen.items()}


def import_obd(
    data_dir: str | os.PathLike[str],
    *,
    policy: str = "random",
    campaign: str = "all",
    include_affinity: bool = False,
    chunk_rows: int = 1_000_000,
    vocabulary: dict[str, tuple[str, ...]] | None = None,
) -> SlateLog:
    """Read one campaign of the Open Bandit Dataset into a :class:`SlateLog`.

    Reads the impressions in chunks of ``chunk_rows`` rows, so the full
    26-million-row release needs memory for the result only (about 100 bytes
    per row plus 4 bytes per context column).

    Args:
        data_dir: folder holding ``random/`` and ``bts/``.
        policy: ``random`` or ``bts``, the logging policy.
        campaign: ``all``, ``men`` or ``women``.
        include_affinity: append the ``user-item_affinity_*`` columns to the context.
        chunk_rows: rows read at once.
        vocabulary: the values of each ``user_feature_j`` that get a context column
            (default: :func:`obd_vocabulary` over both policies' files of the campaign);
            a value outside it is a :class:`LogFormatError`.

    Returns:
        A log with ``k = 1``, ``position`` 0..2, float32 context, click reward.
    """
    root = Path(data_dir)
    log_file, item_file = _campaign_files(root, policy, campaign)
    catalog, n_items = _read_catalog(item_file)
    header = pd.read_csv(log_file, index_col=0, nrows=0)
    missing = [c for c in REQUIRED_COLUMNS if c not in header.columns]
    if missing:
        raise LogFormatError(f"{log_file}: missing columns {missing}; an Open Bandit Dataset "
                             f"impression file has {list(REQUIRED_COLUMNS)} and "
                             "user-item_affinity_<j> columns.")
    affinity_cols = [c for c in header.columns if c.startswith("user-item_affinity_")]
    usecols = [*REQUIRED_COLUMNS, *(affinity_cols if include_affinity else [])]

    shared = vocabulary if vocabulary is not None else obd_vocabulary(root, campaign, chunk_rows=chunk_rows)
    vocab: list[dict[str, int]] = [{} for _ in USER_FEATURES]
    parts: dict[str, list[np.ndarray[Any, Any]]] = {name: [] for name in (
        "item", "position", "click", "pscore", "codes", "affinity", "timestamp")}
    offset = 0
    with pd.read_csv(log_file, usecols=usecols, chunksize=chunk_rows,
                     dtype={c: str for c in USER_FEATURES}) as reader:
        for chunk in reader:
            offset = _read_chunk(chunk, log_file, offset, n_items, vocab, parts, affinity_cols,
                                 include_affinity)

    if offset == 0:
        raise LogFormatError(f"{log_file} has a header but no impressions.")
    codes = np.concatenate(parts["codes"])
    # Columns in sorted value order per feature, so the encoding does not depend on row order.
    blocks: list[np.ndarray[Any, Any]] = []
    names: list[str] = []
    for j, col in enumerate(USER_FEATURES):
        ordered = sorted(shared.get(col, ()))
        outside = sorted(set(vocab[j]) - set(ordered))
        if outside:
            raise LogFormatError(f"{log_file}: {col} holds {outside[:3]!r}, outside the given vocabulary "
                                 f"({len(ordered)} values); pass vocabulary=obd_vocabulary(...) over every "
                                 "file you will compare.")
        position = {value: new for new, value in enumerate(ordered)}
        rank = np.empty(len(vocab[j]), dtype=np.int32)
        for value, code in vocab[j].items():
            rank[code] = position[value]
        onehot = np.zeros((offset, len(ordered)), dtype=np.float32)
        onehot[np.arange(offset), rank[codes[:, j]]] = 1.0
        blocks.append(onehot)
        names += [f"{col}={v}" for v in ordered]
    if include_affinity:
        blocks.append(np.concatenate(parts["affinity"]))
        names += affinity_cols
    context = np.hstack(blocks)
    pscore_all = np.concatenate(parts["pscore"])
    metadata = LogMetadata(logging_policy=policy, reward_type="click", n_positions=N_POSITIONS,
                           context_names=tuple(names),
                           source=f"{OBD_CREDIT}; campaign {campaign}, policy {policy}")
    return SlateLog.from_arrays(
        context=context,
        slate=np.concatenate(parts["item"])[:, None],
        reward=np.concatenate(parts["click"])[:, None],
        pscore=pscore_all,
        pscore_item=pscore_all[:, None],
        catalog=catalog,
        metadata=metadata,
        position=np.concatenate(parts["position"]),
        timestamp=np.concatenate(parts["timestamp"]),
    )
