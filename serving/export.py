"""Export the event store as a slatewise log, so what was served can be replayed and evaluated."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from serving.store import SQLiteStore
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
        ``pscore`` (n,), ``pscore_item`` (n, k), ``event_id`` = the store's int64 ids
        (the HTTP answers carry them as tagged tokens, :mod:`serving.tokens`),
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
    store = SQLiteStore(path)
    try:
        meta = store.meta()
        if meta is None:
            raise ConfigError(f"{path} holds no served catalog; it is not a slatewise serving store.")
        at = time.time() if now is None else now
        final_before = None if include_pending else at - meta.reward_window_s
        rows = store.export(meta.k, final_before)
    finally:
        store.close()
    metadata = LogMetadata(logging_policy="slatewise-serving",
                           reward_type="click" if rows.kinds <= {"click"} else "custom",
                           context_names=meta.context_names, source=f"slatewise serving store {path.name}")
    n = int(rows.event_id.shape[0])
    return SlateLog.from_arrays(
        context=rows.context, slate=rows.slate, reward=rows.reward, pscore=rows.pscore,
        pscore_item=rows.pscore_item, catalog=catalog_from_json(meta.catalog), metadata=metadata,
        purchase=rows.purchase, revenue=rows.revenue, event_id=rows.event_id,
        session_id=np.array([session_of(u) for u in rows.user_id.tolist()], dtype=np.int64),
        step=np.zeros(n, dtype=np.int64), timestamp=(rows.ts * 1e9).astype("datetime64[ns]"),
        policy=rows.label,
    )
