"""The SQLite tables of the event store and the byte encoding of the arrays in them.

Tables:
    decisions: one row per answered slate request; ``context`` (d float64),
        ``slate`` (k int64 catalog indices) and ``pscore_item`` (k float64) are
        little-endian byte blobs (``context`` is empty once retention dropped it).
        ``user_id`` is the pseudonym of :mod:`serving.privacy`, never the raw id.
        ``event_id`` is AUTOINCREMENT: retention and erasure delete rows, and an id
        must never be handed out twice.
    rewards: at most one outcome per decision, with a digest of the payload so an
        identical repeat is recognised; ``seq`` orders arrivals for the learner.
    meta: what the decisions index into (:class:`~serving.store.records.StoreMeta`),
        written once by the first service to open the file.
    traffic: every traffic split an experiment had (weights, the bucket table, who
        changed it and why); the highest version is in force.
    assignments: each user's first decision in an experiment (the assignment unit of
        the sample-ratio test), filled by :meth:`~serving.store.base.EventStore.advance_totals`.
    totals: the running sums of the experiment statistics and the cursors they were
        advanced to (one JSON document).
    audit: what retention and erasure removed, when (counts only, no user id).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from serving.store.records import FloatArray, IntArray

SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    user_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    arm TEXT NOT NULL,
    policy TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    traffic_version INTEGER NOT NULL,
    k INTEGER NOT NULL,
    context BLOB NOT NULL,
    slate BLOB NOT NULL,
    pscore REAL NOT NULL,
    pscore_item BLOB NOT NULL,
    anchor INTEGER
);
CREATE TABLE IF NOT EXISTS rewards (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL UNIQUE REFERENCES decisions (event_id),
    ts REAL NOT NULL,
    reward BLOB NOT NULL,
    reward_total REAL NOT NULL,
    purchase BLOB,
    revenue BLOB,
    kind TEXT NOT NULL DEFAULT 'reward',
    digest TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traffic (
    experiment TEXT NOT NULL,
    version INTEGER NOT NULL,
    ts REAL NOT NULL,
    weights TEXT NOT NULL,
    buckets BLOB NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    PRIMARY KEY (experiment, version)
);
CREATE TABLE IF NOT EXISTS assignments (
    experiment TEXT NOT NULL,
    user_id TEXT NOT NULL,
    arm TEXT NOT NULL,
    traffic_version INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (experiment, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    action TEXT NOT NULL,
    decisions INTEGER NOT NULL,
    rewards INTEGER NOT NULL,
    detail TEXT NOT NULL
);
"""

DECISION_COLUMNS = ("ts, user_id, experiment, arm, policy, policy_version, traffic_version, k, context, "
                    "slate, pscore, pscore_item, anchor")
_DECISION_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_ONE_DECISION = f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES {_DECISION_ROW}"


@lru_cache(maxsize=64)
def insert_decisions_sql(n_rows: int) -> str:
    """The INSERT of ``n_rows`` decisions in one statement, returning their ids."""
    return (f"INSERT INTO decisions ({DECISION_COLUMNS}) VALUES "
            + ", ".join([_DECISION_ROW] * n_rows) + " RETURNING event_id")


def f64_blob(values: FloatArray) -> bytes:
    """Little-endian float64 bytes of ``values``."""
    return np.ascontiguousarray(values, dtype="<f8").tobytes()


def i64_blob(values: IntArray) -> bytes:
    """Little-endian int64 bytes of ``values``."""
    return np.ascontiguousarray(values, dtype="<i8").tobytes()


def f64(blob: bytes) -> FloatArray:
    """The float64 array of a blob written by :func:`f64_blob`."""
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


def i64(blob: bytes) -> IntArray:
    """The int64 array of a blob written by :func:`i64_blob`."""
    return np.frombuffer(blob, dtype="<i8").astype(np.int64)
