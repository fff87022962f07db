"""Reads of the event store, each returning a frozen record (the schema is :mod:`serving.store.schema`).

The SQL is common to SQLite and PostgreSQL: each function takes a :class:`Conn`,
which a ``sqlite3.Connection`` is, and :class:`serving.store.postgres.PgConn`
(``?`` placeholders, ``BEGIN`` opening one snapshot) wraps for psycopg.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from serving.store.records import (
    Decision,
    ExportedDecisions,
    FeedbackBatch,
    FloatArray,
    LoggedDecisions,
    OffPolicyCheck,
    StoreMeta,
    TrafficChange,
    TrafficSplit,
)
from serving.store.schema import f64, i64
from serving.store.totals import OutcomeBatch, SeriesPoint, Totals


class Rows(Protocol):
    """The result of a statement (a DB-API cursor)."""

    def fetchone(self) -> Any: ...  # noqa: D102
    def fetchall(self) -> list[Any]: ...  # noqa: D102
    def __iter__(self) -> Iterator[Any]: ...
    def close(self) -> None: ...  # noqa: D102


class Conn(Protocol):
    """A connection that runs one statement with ``?`` placeholders."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Rows: ...  # noqa: D102


#: decisions after a cursor up to (not including) the first still inside its reward window:
#: the walk of expired decisions, bounded in SQL so a backend that sends whole results sends few rows
_WALK = ("FROM decisions d LEFT JOIN rewards r ON r.event_id = d.event_id "
         "WHERE d.event_id > ? AND d.event_id < coalesce((SELECT o.event_id FROM decisions o "
         "WHERE o.event_id > ? AND o.ts >= ? ORDER BY o.event_id LIMIT 1), 9223372036854775807) "
         "ORDER BY d.event_id LIMIT ?")


def decision(conn: Conn, event_id: int) -> Decision | None:
    """The decision ``event_id``, or None."""
    row = conn.execute(
        "SELECT event_id, ts, user_id, experiment, arm, policy, policy_version, traffic_version, "
        "context, slate, pscore, pscore_item, anchor FROM decisions WHERE event_id = ?",
        (event_id,)).fetchone()
    if row is None:
        return None
    return Decision(event_id=row[0], ts=row[1], user_id=row[2], experiment=row[3], arm=row[4], policy=row[5],
                    policy_version=row[6], traffic_version=row[7], context=f64(row[8]), slate=i64(row[9]),
                    pscore=row[10], pscore_item=f64(row[11]), anchor=row[12])


def count_decisions(conn: Conn) -> dict[tuple[str, str], int]:
    """Decisions per (experiment, arm)."""
    rows = conn.execute("SELECT experiment, arm, count(*) FROM decisions GROUP BY experiment, arm").fetchall()
    return {(r[0], r[1]): int(r[2]) for r in rows}


def _stack_f64(blobs: list[bytes], width: int) -> FloatArray:
    return np.frombuffer(b"".join(blobs), dtype="<f8").reshape(len(blobs), width).astype(np.float64)


def new_feedback(conn: Conn, experiment: str, arm: str, k: int, after_seq: int,
                 after_event: int, expired_before: float, limit: int) -> FeedbackBatch:
    """See :meth:`serving.store.base.EventStore.new_feedback` (one read snapshot)."""
    conn.execute("BEGIN")  # one snapshot for both reads
    try:
        top = int(conn.execute("SELECT coalesce(max(seq), 0) FROM rewards").fetchone()[0])
        rewarded = conn.execute(
            "SELECT r.seq, d.context, d.slate, r.reward, d.pscore, d.experiment, d.arm, d.k "
            "FROM rewards r JOIN decisions d ON d.event_id = r.event_id "
            "WHERE r.seq > ? AND r.seq <= ? ORDER BY r.seq LIMIT ?", (after_seq, top, limit)).fetchall()
        new_seq = rewarded[-1][0] if len(rewarded) == limit else max(after_seq, top)
        rows: list[tuple[bytes, bytes, bytes | None, float]] = [
            (r[1], r[2], r[3], r[4]) for r in rewarded
            if r[5] == experiment and r[6] == arm and r[7] == k and r[1]]  # no context: retention dropped it
        new_event = after_event
        walk = conn.execute(
            "SELECT d.event_id, d.ts, d.context, d.slate, d.pscore, d.experiment, d.arm, d.k, "
            "r.event_id IS NOT NULL " + _WALK, (after_event, after_event, expired_before, limit))
        for r in walk:  # lazily: the walk usually stops at the first row
            if r[1] >= expired_before:
                break
            new_event = r[0]
            if not r[8] and r[5] == experiment and r[6] == arm and r[7] == k and r[2]:
                rows.append((r[2], r[3], None, r[4]))
        walk.close()
    finally:
        conn.execute("COMMIT")
    if not rows:
        return FeedbackBatch(np.zeros((0, 0)), np.zeros((0, k), dtype=np.int64), np.zeros((0, k)),
                             np.zeros(0), new_seq, new_event)
    zeros = bytes(8 * k)
    return FeedbackBatch(
        context=_stack_f64([r[0] for r in rows], len(rows[0][0]) // 8),
        slate=np.frombuffer(b"".join(r[1] for r in rows), dtype="<i8").reshape(len(rows), k).astype(np.int64),
        reward=_stack_f64([zeros if r[2] is None else r[2] for r in rows], k),
        pscore=np.array([r[3] for r in rows], dtype=np.float64), seq=new_seq, event=new_event)


def recent_decisions(conn: Conn, experiment: str, limit: int) -> LoggedDecisions:
    """See :meth:`serving.store.base.EventStore.recent_decisions`."""
    rows = conn.execute(
        "SELECT d.context, d.slate, r.reward, d.pscore_item, d.k FROM decisions d "
        "LEFT JOIN rewards r ON r.event_id = d.event_id WHERE d.experiment = ? AND length(d.context) > 0 "
        "ORDER BY d.event_id DESC LIMIT ?", (experiment, limit)).fetchall()
    if not rows:
        empty = np.zeros((0, 0))
        return LoggedDecisions(empty, empty.astype(np.int64), empty, empty)
    k = max(int(r[4]) for r in rows)
    rows = [r for r in rows if r[4] == k]
    zeros = bytes(8 * k)
    return LoggedDecisions(
        context=_stack_f64([r[0] for r in rows], len(rows[0][0]) // 8),
        slate=np.frombuffer(b"".join(r[1] for r in rows), dtype="<i8").reshape(len(rows), k).astype(np.int64),
        reward=_stack_f64([zeros if r[2] is None else r[2] for r in rows], k),
        pscore_item=_stack_f64([r[3] for r in rows], k))


# ---------------------------------------------------------------------- traffic
_SPLIT = "SELECT experiment, version, ts, weights, buckets, reason, actor FROM traffic "


def _split(row: Any) -> TrafficSplit:
    return TrafficSplit(experiment=row[0], version=int(row[1]), ts=float(row[2]), weights=_weights(row[3]),
                        buckets=np.frombuffer(row[4], dtype=np.uint8).copy(), reason=row[5], actor=row[6])


def _weights(text: str) -> dict[str, float]:
    return {str(k): float(v) for k, v in json.loads(text).items()}


def traffic(conn: Conn, experiment: str) -> TrafficSplit | None:
    """The split in force, or None."""
    row = conn.execute(_SPLIT + "WHERE experiment = ? ORDER BY version DESC LIMIT 1",
                       (experiment,)).fetchone()
    return None if row is None else _split(row)


def traffic_version(conn: Conn, experiment: str) -> int:
    """Version of the split in force (0 when none)."""
    row = conn.execute("SELECT coalesce(max(version), 0) FROM traffic WHERE experiment = ?",
                       (experiment,)).fetchone()
    return int(row[0])


def traffic_weights(conn: Conn, experiment: str) -> dict[int, dict[str, float]]:
    """Weights of every version."""
    rows = conn.execute("SELECT version, weights FROM traffic WHERE experiment = ?", (experiment,))
    return {int(r[0]): _weights(r[1]) for r in rows}


def traffic_history(conn: Conn, experiment: str, before: int | None,
                    limit: int) -> list[TrafficChange]:
    """Up to ``limit`` changes below version ``before``, newest first."""
    rows = conn.execute(
        "SELECT version, ts, weights, reason, actor FROM traffic WHERE experiment = ? AND version < ? "
        "ORDER BY version DESC LIMIT ?", (experiment, 2**62 if before is None else before, limit))
    return [TrafficChange(int(r[0]), float(r[1]), _weights(r[2]), r[3], r[4]) for r in rows]


# ---------------------------------------------------------------------- meta and export
def meta(conn: Conn) -> StoreMeta | None:
    """What the store was created for, or None."""
    values = {r[0]: json.loads(r[1]) for r in conn.execute("SELECT key, value FROM meta")}
    if "catalog" not in values:
        return None
    return StoreMeta(catalog=values["catalog"], k=int(values["k"]), dim_context=int(values["dim_context"]),
                     context_names=tuple(str(n) for n in values.get("context_names", ())),
                     reward_window_s=float(values.get("reward_window_s", 86_400.0)),
                     event_key=str(values.get("event_key", "")))


def export(conn: Conn, k: int, d: int, final_before: float | None) -> ExportedDecisions:
    """See :meth:`serving.store.base.EventStore.export`."""
    sql = ("SELECT d.event_id, d.ts, d.user_id, d.experiment || '/' || d.arm || '/' || d.policy || '@v' || "
           "d.policy_version, d.context, d.slate, d.pscore, d.pscore_item, r.reward, r.purchase, r.revenue, "
           "r.kind FROM decisions d LEFT JOIN rewards r ON r.event_id = d.event_id "
           "WHERE d.k = ? AND length(d.context) > 0")
    args: tuple[Any, ...] = (k,)
    if final_before is not None:
        sql += " AND (r.event_id IS NOT NULL OR d.ts < ?)"
        args = (k, final_before)
    rows = conn.execute(sql + " ORDER BY d.event_id", args).fetchall()
    zeros = bytes(8 * k)
    has_purchase = any(r[9] is not None for r in rows)
    has_revenue = any(r[10] is not None for r in rows)
    n = len(rows)
    return ExportedDecisions(
        event_id=np.array([r[0] for r in rows], dtype=np.int64),
        ts=np.array([r[1] for r in rows], dtype=np.float64),
        user_id=np.array([r[2] for r in rows], dtype=str), label=np.array([r[3] for r in rows], dtype=str),
        context=_stack_f64([r[4] for r in rows], d) if n else np.zeros((0, d)),
        slate=np.frombuffer(b"".join(r[5] for r in rows), dtype="<i8").reshape(n, k).astype(np.int64),
        pscore=np.array([r[6] for r in rows], dtype=np.float64),
        pscore_item=_stack_f64([r[7] for r in rows], k) if n else np.zeros((0, k)),
        reward=_stack_f64([zeros if r[8] is None else r[8] for r in rows], k) if n else np.zeros((0, k)),
        purchase=_stack_f64([zeros if r[9] is None else r[9] for r in rows], k) if has_purchase else None,
        revenue=_stack_f64([zeros if r[10] is None else r[10] for r in rows], k) if has_revenue else None,
        kinds=frozenset(r[11] for r in rows if r[11] is not None))


# ---------------------------------------------------------------------- totals
def totals(conn: Conn) -> Totals:
    """The running totals as last advanced (empty before the first advance)."""
    row = conn.execute("SELECT state FROM totals WHERE id = 1").fetchone()
    return Totals() if row is None else Totals.from_json(row[0])


def series(conn: Conn, experiment: str) -> list[SeriesPoint]:
    """The experiment's series points, oldest first."""
    rows = conn.execute("SELECT point FROM series WHERE experiment = ? ORDER BY seq",
                        (experiment,)).fetchall()
    return [SeriesPoint.from_json(r[0]) for r in rows]


def ope_checks(conn: Conn, experiment: str) -> list[OffPolicyCheck]:
    """The last off-policy check of each arm (NULL numbers read back as NaN or infinities)."""
    rows = conn.execute("SELECT arm, ts, value, low, high, n, bar, passed FROM ope_checks "
                        "WHERE experiment = ? ORDER BY arm", (experiment,)).fetchall()
    return [OffPolicyCheck(experiment, str(r[0]), float(r[1]), float("nan") if r[2] is None else float(r[2]),
                           float("-inf") if r[3] is None else float(r[3]),
                           float("inf") if r[4] is None else float(r[4]), int(r[5]), float(r[6]), bool(r[7]))
            for r in rows]


def append_series(conn: Conn, ts: float, min_interval_s: float, cap: int) -> int:
    """Append each experiment's totals as a series point, thinning beyond ``cap`` (inside a write).

    A point is skipped when the experiment's last one is under ``min_interval_s`` old or
    holds the same sums; beyond ``cap`` points every other older one is dropped (the first
    and the last kept). Returns the number of points added.
    """
    added = 0
    for name, sums in totals(conn).experiments.items():
        last = conn.execute("SELECT point FROM series WHERE experiment = ? ORDER BY seq DESC LIMIT 1",
                            (name,)).fetchone()
        point = SeriesPoint.of(ts, traffic_version(conn, name), sums)
        if last is not None:
            previous = SeriesPoint.from_json(last[0])
            if ts - previous.ts < min_interval_s or point.same_sums(previous):
                continue
        conn.execute("INSERT INTO series (experiment, ts, point) VALUES (?, ?, ?)",
                     (name, ts, point.to_json()))
        added += 1
        seqs = [r[0] for r in conn.execute("SELECT seq FROM series WHERE experiment = ? ORDER BY seq",
                                           (name,)).fetchall()]
        if len(seqs) > cap:
            for seq in seqs[1:-1:2]:
                conn.execute("DELETE FROM series WHERE seq = ?", (seq,))
    return added


def put_ope_check(conn: Conn, check: OffPolicyCheck) -> None:
    """Record an off-policy check, replacing the arm's previous one (NaN and infinities as NULL)."""
    c = check
    conn.execute("INSERT INTO ope_checks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (experiment, arm) DO "
                 "UPDATE SET ts = excluded.ts, value = excluded.value, low = excluded.low, "
                 "high = excluded.high, n = excluded.n, bar = excluded.bar, passed = excluded.passed",
                 (c.experiment, c.arm, c.ts, _finite(c.value), _finite(c.low), _finite(c.high), c.n, c.bar,
                  int(c.passed)))


def _finite(x: float) -> float | None:
    """``x``, or None (SQL NULL) for NaN and infinities."""
    return x if math.isfinite(x) else None


def outcome_batch(conn: Conn, current: Totals, expired_before: float,
                  limit: int) -> OutcomeBatch:
    """What happened since ``current``'s cursors; records first-seen users (inside a write transaction)."""
    last = conn.execute("SELECT event_id FROM decisions WHERE event_id > ? ORDER BY event_id "
                        "LIMIT 1 OFFSET ?",
                        (current.decision_cursor, limit - 1)).fetchone()
    more = last is not None
    top = int(last[0]) if more else int(conn.execute("SELECT coalesce(max(event_id), 0) FROM decisions")
                                        .fetchone()[0])
    top = max(top, current.decision_cursor)
    lo = current.decision_cursor
    first: dict[tuple[str, int, str], int] = {}
    for r in conn.execute("INSERT INTO assignments (experiment, user_id, arm, traffic_version, event_id) "
                          "SELECT experiment, user_id, arm, traffic_version, event_id FROM decisions "
                          "WHERE event_id > ? AND event_id <= ? ORDER BY event_id "
                          "ON CONFLICT (experiment, user_id) DO NOTHING "
                          "RETURNING experiment, traffic_version, arm", (lo, top)).fetchall():
        key = (r[0], int(r[1]), r[2])  # only the users seen for the first time come back
        first[key] = first.get(key, 0) + 1
    decided = {(r[0], int(r[1]), r[2]): int(r[3]) for r in conn.execute(
        "SELECT experiment, traffic_version, arm, count(*) FROM decisions "
        "WHERE event_id > ? AND event_id <= ? "
        "GROUP BY experiment, traffic_version, arm", (lo, top))}
    counts = tuple((e, v, a, n, first.get((e, v, a), 0)) for (e, v, a), n in sorted(decided.items()))
    shown = _shown(conn.execute("SELECT experiment, arm, slate FROM decisions WHERE event_id > ? AND "
                                "event_id <= ?", (lo, top)))

    rewarded = conn.execute(
        "SELECT r.seq, d.experiment, d.arm, r.reward_total, d.slate, r.reward FROM rewards r "
        "JOIN decisions d ON d.event_id = r.event_id WHERE r.seq > ? ORDER BY r.seq LIMIT ?",
        (current.reward_cursor, limit)).fetchall()
    item_reward: dict[tuple[str, str, int], float] = {}
    for r in rewarded:
        for item, value in zip(i64(r[4]).tolist(), f64(r[5]).tolist(), strict=False):
            if item >= 0 and value:
                cell = (str(r[1]), str(r[2]), int(item))
                item_reward[cell] = item_reward.get(cell, 0.0) + float(value)
    more = more or len(rewarded) == limit
    reward_cursor = int(rewarded[-1][0]) if rewarded else current.reward_cursor
    finals: list[tuple[str, str, float, bool]] = [(r[1], r[2], float(r[3]), True) for r in rewarded]
    expired_cursor = current.expired_cursor
    walk = conn.execute(
        "SELECT d.event_id, d.ts, d.experiment, d.arm, r.event_id IS NOT NULL " + _WALK,
        (current.expired_cursor, current.expired_cursor, expired_before, limit))
    n_walked = 0
    for r in walk:  # stops at the first decision still inside its window
        if r[1] >= expired_before:
            break
        n_walked += 1
        expired_cursor = int(r[0])
        if not r[4]:
            finals.append((r[2], r[3], 0.0, False))
    walk.close()
    more = more or n_walked == limit
    return OutcomeBatch(
        decision_cursor=top, reward_cursor=reward_cursor, expired_cursor=expired_cursor, counts=counts,
        experiment=np.array([f[0] for f in finals], dtype=str),
        arm=np.array([f[1] for f in finals], dtype=str),
        reward=np.array([f[2] for f in finals], dtype=np.float64),
        rewarded=np.array([f[3] for f in finals], dtype=bool), more=more, shown=shown,
        item_reward=tuple((e, a, i, v) for (e, a, i), v in sorted(item_reward.items())))


def _shown(rows: Any) -> tuple[tuple[str, str, int, int, int], ...]:
    """(experiment, arm, item, slot, count) of the decision rows ``(experiment, arm, slate)``."""
    cells: dict[tuple[str, str], list[Any]] = {}
    for experiment, arm, slate in rows:
        cells.setdefault((experiment, arm), []).append(i64(slate))
    out = []
    for (experiment, arm), slates in sorted(cells.items()):
        item = np.concatenate(slates)
        slot = np.concatenate([np.arange(s.shape[0]) for s in slates])
        keep = item >= 0
        pairs, count = np.unique(np.stack([item[keep], slot[keep]], axis=1), axis=0, return_counts=True)
        out += [(experiment, arm, int(i), int(j), int(c)) for (i, j), c in zip(pairs, count, strict=True)]
    return tuple(out)
