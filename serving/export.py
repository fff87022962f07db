"""Export the event store as a slatewise log, so what was served can be replayed and evaluated."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from serving.store import Store
from simulator.errors import ConfigError
from simulator.logs import LogMetadata, SlateLog
from simulator.logs.io import catalog_from_json


def session_of(user_id: str) -> int:
    """A stable non-negative 63-bit session id for a ``user_id``."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "little") >> 1


def export_log(db_path: str | Path, *, include_pending: bool = False, now: float | None = None) -> SlateLog:
    """The store's decisions at the served ``k`` as a :class:`SlateLog`.

    A decision is exported once its outcome is final: its reward arrived, or its
    reward window closed without one (reward 0, as the learner counts it). With
    ``include_pending`` every decision is exported, unrewarded ones with reward 0.
    Shorter slates (requests with a smaller ``k``) are left out: a log has one ``k``.

    Args:
        db_path: the SQLite store.
        include_pending: also export decisions still inside their reward window.
        now: UNIX time that closes windows (default: the current time).

    Returns:
        The log: ``context`` (n, d), ``slate`` (n, k) catalog indices, ``reward`` (n, k),
        ``pscore`` (n,), ``pscore_item`` (n, k), ``event_id`` = the store's ids,
        ``session_id`` = a hash of ``user_id``, ``timestamp`` (UTC), ``policy`` =
        ``"<experiment>/<arm>/<policy>@v<version>"``; ``purchase`` and ``revenue`` when any
        reward carried them (0 elsewhere).

    Raises:
        ConfigError: the file is not a slatewise serving store.
        LogValidationError: no decision to export (a log needs at least one row).
    """
    path = Path(db_path)
    if not path.exists():
        raise ConfigError(f"{path} does not exist; pass the serving.db_path of a slatewise service.")
    store = Store(path)
    try:
        meta = store.meta()
        if "catalog" not in meta:
            raise ConfigError(f"{path} holds no served catalog; it is not a slatewise serving store.")
        k, d = int(meta["k"]), int(meta["dim_context"])
        window = float(meta.get("reward_window_s", 86_400.0))
        final_before = None if include_pending else (time.time() if now is None else now) - window
        rows = store.export_rows(k, final_before)
    finally:
        store.close()
    catalog = catalog_from_json(meta["catalog"])
    n = len(rows)
    context = np.zeros((n, d))
    slate = np.zeros((n, k), dtype=np.int64)
    reward = np.zeros((n, k))
    purchase = np.zeros((n, k))
    revenue = np.zeros((n, k))
    pscore_item = np.zeros((n, k))
    has_purchase = has_revenue = False
    kinds = set()
    for i, row in enumerate(rows):
        context[i] = np.frombuffer(row[7], dtype="<f8")
        slate[i] = np.frombuffer(row[8], dtype="<i8")
        pscore_item[i] = np.frombuffer(row[10], dtype="<f8")
        if row[11] is not None:
            reward[i] = np.frombuffer(row[11], dtype="<f8")
            kinds.add(row[14])
        if row[12] is not None:
            purchase[i] = np.frombuffer(row[12], dtype="<f8")
            has_purchase = True
        if row[13] is not None:
            revenue[i] = np.frombuffer(row[13], dtype="<f8")
            has_revenue = True
    metadata = LogMetadata(logging_policy="slatewise-serving",
                           reward_type="click" if kinds <= {"click"} else "custom",
                           context_names=tuple(meta.get("context_names", ())),
                           source=f"slatewise serving store {path.name}")
    return SlateLog.from_arrays(
        context=context, slate=slate, reward=reward, pscore=np.array([r[9] for r in rows], dtype=np.float64),
        pscore_item=pscore_item, catalog=catalog, metadata=metadata,
        purchase=purchase if has_purchase else None, revenue=revenue if has_revenue else None,
        event_id=np.array([r[0] for r in rows], dtype=np.int64),
        session_id=np.array([session_of(r[2]) for r in rows], dtype=np.int64),
        step=np.zeros(n, dtype=np.int64),
        timestamp=(np.array([r[1] for r in rows], dtype=np.float64) * 1e9).astype("datetime64[ns]"),
        policy=np.array([f"{r[3]}/{r[4]}/{r[5]}@v{r[6]}" for r in rows], dtype=str),
    )
