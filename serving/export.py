"""Export the event store as a slatewise log, so what was served can be replayed and evaluated."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from serving.store import open_store
from simulator.errors import ConfigError
from simulator.logs import LogMetadata, SlateLog
from simulator.logs.io import catalog_from_json


def session_of(user_id: str) -> int:
    """A stable non-negative 63-bit session id for a ``user_id``."""
    return int.from_bytes(hashlib.blake2b(user_id.encode(), digest_size=8).digest(), "little") >> 1


def export_log(db_path: str | Path, *, include_pending: bool = False, now: float | None = None,
               drop_user: bool = False, drop_context: Sequence[str] = ()) -> SlateLog:
    """The store's decisions at the served ``k`` as a :class:`SlateLog`.

    A decision is exported once its outcome is final: its reward arrived, or its
    reward window closed without one (reward 0, as the learner counts it). With
    ``include_pending`` every decision is exported, unrewarded ones with reward 0.
    Shorter slates (requests with a smaller ``k``) are left out: a log has one ``k``.

    Args:
        db_path: the store: a SQLite file (``serving.db_path``) or a ``postgresql://`` URL
            (``serving.store``).
        include_pending: also export decisions still inside their reward window.
        now: UNIX time that closes windows (default: the current time).
        drop_user: leave the shopper out: every decision becomes its own session
            (``session_id`` = ``event_id``); otherwise ``session_id`` is a hash of the
            stored pseudonym (the raw id is never in the store).
        drop_context: context columns to leave out, by name (``serving.context_names``)
            or, for unnamed contexts, as ``x<i>``.

    Returns:
        The log: ``context`` (n, d), ``slate`` (n, k) catalog indices, ``reward`` (n, k),
        ``pscore`` (n,), ``pscore_item`` (n, k), ``event_id`` = the store's int64 ids
        (the HTTP answers carry them as tagged tokens, :mod:`serving.tokens`),
        ``session_id`` = a hash of ``user_id``, ``timestamp`` (UTC), ``policy`` =
        ``"<experiment>/<arm>/<policy>@v<version>"``; ``purchase`` and ``revenue`` when any
        reward carried them (0 elsewhere).

    Raises:
        ConfigError: the file or database is not a slatewise serving store (or the
            database does not answer), or ``drop_context`` names a column it does not have.
        LogValidationError: no decision to export (a log needs at least one row).
    """
    target = str(db_path)
    if target.startswith(("postgresql://", "postgres://")):
        from serving.store.postgres import display_url  # psycopg is needed only for PostgreSQL

        shown = source = display_url(target)  # never the password
    else:
        shown, source = target, Path(target).name
        if not Path(target).exists():
            raise ConfigError(f"{target} does not exist; pass the serving.db_path (or the serving.store URL) "
                              "of a slatewise service.")
    store = open_store(target)
    try:
        meta = store.meta()
        if meta is None:
            raise ConfigError(f"{shown} holds no served catalog; it is not a slatewise serving store.")
        at = time.time() if now is None else now
        final_before = None if include_pending else at - meta.reward_window_s
        rows = store.export(meta.k, final_before)
    finally:
        store.close()
    names = tuple(meta.context_names) or tuple(f"x{i}" for i in range(meta.dim_context))
    unknown = sorted(set(drop_context) - set(names))
    if unknown:
        raise ConfigError(f"`--drop-context` names {unknown}, which the store's context does not have; its "
                          f"columns are {list(names)}.")
    keep = [i for i, name in enumerate(names) if name not in set(drop_context)]
    context = rows.context[:, keep]
    kept_names = tuple(meta.context_names[i] for i in keep) if meta.context_names else ()
    metadata = LogMetadata(logging_policy="slatewise-serving",
                           reward_type="click" if rows.kinds <= {"click"} else "custom",
                           context_names=kept_names, source=f"slatewise serving store {source}")
    n = int(rows.event_id.shape[0])
    if drop_user:
        session_id = rows.event_id.copy()
    else:
        session_id = np.array([session_of(u) for u in rows.user_id.tolist()], dtype=np.int64)
    return SlateLog.from_arrays(
        context=context, slate=rows.slate, reward=rows.reward, pscore=rows.pscore,
        pscore_item=rows.pscore_item, catalog=catalog_from_json(meta.catalog), metadata=metadata,
        purchase=rows.purchase, revenue=rows.revenue, event_id=rows.event_id,
        session_id=session_id,
        step=np.zeros(n, dtype=np.int64), timestamp=(rows.ts * 1e9).astype("datetime64[ns]"),
        policy=rows.label,
    )
