"""The SQLite event store: one file in WAL mode, shared by every worker process of one machine.

Writes go through the process's write queue (:mod:`serving.store.writer`);
reads use one connection per thread. In WAL mode with ``synchronous=NORMAL`` a
committed transaction survives a killed process (it is in the WAL file);
``synchronous=FULL`` also survives power loss. Request connections checkpoint
the WAL only when it passes :data:`AUTOCHECKPOINT_PAGES`; :meth:`SQLiteStore.maintain`,
called by the learner thread, runs a passive checkpoint instead, so the copy back
into the database (and its fsync) stays off the request path.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from serving.store import queries
from serving.store.base import EventStore
from serving.store.records import (
    Decision,
    ExportedDecisions,
    FeedbackBatch,
    LoggedDecisions,
    NewDecision,
    NewReward,
    OffPolicyCheck,
    Removal,
    RewardStatus,
    StoreMeta,
    TrafficChange,
    TrafficSplit,
)
from serving.store.schema import SCHEMA, f64_blob, i64_blob
from serving.store.totals import OutcomeBatch, SeriesPoint, Totals
from serving.store.writer import Writer
from simulator.errors import ConfigError

AUTOCHECKPOINT_PAGES = 20_000


class SQLiteStore(EventStore):
    """The event store in one SQLite file.

    Args:
        path: database file; created with its tables when missing.
        synchronous: SQLite ``synchronous`` mode (``NORMAL`` or ``FULL`` in practice).
    """

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._writer = Writer(lambda: self._connect(busy_timeout_ms=0))
        setup = self._connect()
        try:
            setup.executescript(SCHEMA)
        finally:
            setup.close()

    # ------------------------------------------------------------------ connections
    def _connect(self, busy_timeout_ms: int = 30_000) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout_ms / 1000,
                               check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        """Close this thread's read connection and the write connection (both reopen when next needed).

        Other threads' read connections close when their threads end.
        """
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._writer.close()

    # ------------------------------------------------------------------ decisions and rewards
    def add_decision(self, decision: NewDecision) -> int:
        """Store one decision (group commit through the write queue); its ``event_id`` once committed."""
        d = decision
        return self._writer.add_decision(
            (d.ts, d.user_id, d.experiment, d.arm, d.policy, d.policy_version, d.traffic_version,
             int(d.slate.shape[0]), f64_blob(d.context), i64_blob(d.slate), float(d.pscore),
             f64_blob(d.pscore_item), d.anchor))

    def decision(self, event_id: int) -> Decision | None:
        """The decision ``event_id``, or None."""
        return queries.decision(self._conn(), event_id)

    def add_reward(self, reward: NewReward) -> RewardStatus:
        """Store the outcome once: ``stored``, an identical ``duplicate``, or a ``conflict``."""
        r = reward
        params = (r.event_id, r.ts, f64_blob(r.reward), float(np.sum(r.reward)),
                  None if r.purchase is None else f64_blob(r.purchase),
                  None if r.revenue is None else f64_blob(r.revenue), r.kind, r.digest)

        def insert(conn: sqlite3.Connection) -> RewardStatus:
            try:
                stored = conn.execute(
                    "INSERT INTO rewards (event_id, ts, reward, reward_total, purchase, revenue, kind, "
                    "digest) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING", params).rowcount == 1
            except sqlite3.IntegrityError:  # the foreign key: no such decision
                raise LookupError(f"no decision {r.event_id}") from None
            if stored:
                return RewardStatus.STORED
            row = conn.execute("SELECT digest FROM rewards WHERE event_id = ?", (r.event_id,)).fetchone()
            return RewardStatus.DUPLICATE if row[0] == r.digest else RewardStatus.CONFLICT

        return self._writer.run(insert)

    def count_decisions(self) -> dict[tuple[str, str], int]:
        """Decisions per (experiment, arm)."""
        return queries.count_decisions(self._conn())

    def event_ids(self) -> set[int]:
        """Every stored ``event_id`` (for tests and checks)."""
        return {int(r[0]) for r in self._conn().execute("SELECT event_id FROM decisions")}

    def rewarded_event_ids(self) -> set[int]:
        """The ``event_id`` of every decision with a stored reward."""
        return {int(r[0]) for r in self._conn().execute("SELECT event_id FROM rewards")}

    # ------------------------------------------------------------------ learning and evaluation
    def new_feedback(self, experiment: str, arm: str, k: int, after_seq: int, after_event: int,
                     expired_before: float, limit: int) -> FeedbackBatch:
        """Outcomes of one arm that became final since the cursors (see the interface)."""
        return queries.new_feedback(self._conn(), experiment, arm, k, after_seq, after_event, expired_before,
                                    limit)

    def recent_decisions(self, experiment: str, limit: int) -> LoggedDecisions:
        """The last ``limit`` full-length decisions of an experiment with their rewards."""
        return queries.recent_decisions(self._conn(), experiment, limit)

    def totals(self) -> Totals:
        """The running totals as last advanced."""
        return queries.totals(self._conn())

    def advance_totals(self, expired_before: float, limit: int,
                       fold: Callable[[Totals, OutcomeBatch], Totals]) -> Totals:
        """Fold new rows into the totals, one write transaction per ``limit`` rows (see the interface)."""

        def step(conn: sqlite3.Connection) -> tuple[Totals, bool]:
            current = queries.totals(conn)
            batch = queries.outcome_batch(conn, current, expired_before, limit)
            if (batch.decision_cursor, batch.reward_cursor, batch.expired_cursor) == \
                    (current.decision_cursor, current.reward_cursor, current.expired_cursor):
                return current, False
            new = fold(current, batch).with_cursors(batch)
            conn.execute("INSERT INTO totals (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE "
                         "SET state = excluded.state", (new.to_json(),))
            return new, batch.more

        current = self.totals()
        if not self._has_new(current, expired_before):
            return current
        while True:
            current, more = self._writer.run(step)
            if not more:
                return current

    def _has_new(self, current: Totals, expired_before: float) -> bool:
        """Whether anything happened since ``current``'s cursors (a cheap read, no write lock)."""
        conn = self._conn()
        top_event = conn.execute("SELECT coalesce(max(event_id), 0) FROM decisions").fetchone()[0]
        top_seq = conn.execute("SELECT coalesce(max(seq), 0) FROM rewards").fetchone()[0]
        first_open = conn.execute("SELECT ts FROM decisions WHERE event_id > ? ORDER BY event_id LIMIT 1",
                                  (current.expired_cursor,)).fetchone()  # the walk's next decision
        expired = first_open is not None and first_open[0] < expired_before
        return top_event > current.decision_cursor or top_seq > current.reward_cursor or expired

    def add_series_points(self, ts: float, min_interval_s: float, cap: int) -> int:
        """Append each experiment's totals as a series point, thinning beyond ``cap`` (see the interface)."""
        return self._writer.run(lambda conn: queries.append_series(conn, ts, min_interval_s, cap))

    def series(self, experiment: str) -> list[SeriesPoint]:
        """The experiment's series points, oldest first."""
        return queries.series(self._conn(), experiment)

    # ------------------------------------------------------------------ traffic
    def traffic(self, experiment: str) -> TrafficSplit | None:
        """The split in force, or None before the first one is written."""
        return queries.traffic(self._conn(), experiment)

    def traffic_version(self, experiment: str) -> int:
        """Version of the split in force (0 when none)."""
        return queries.traffic_version(self._conn(), experiment)

    def traffic_weights(self, experiment: str) -> dict[int, dict[str, float]]:
        """Weights of every version of the split."""
        return queries.traffic_weights(self._conn(), experiment)

    def traffic_history(self, experiment: str, before: int | None, limit: int) -> list[TrafficChange]:
        """Up to ``limit`` changes below version ``before``, newest first."""
        return queries.traffic_history(self._conn(), experiment, before, limit)

    def add_traffic(self, split: TrafficSplit, expected_version: int) -> bool:
        """Write ``split`` if the version in force is still ``expected_version``."""

        def write(conn: sqlite3.Connection) -> bool:
            if queries.traffic_version(conn, split.experiment) != expected_version:
                return False
            conn.execute("INSERT INTO traffic VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (split.experiment, split.version, split.ts, json.dumps(split.weights),
                          split.buckets.tobytes(), split.reason, split.actor))
            return True

        return self._writer.run(write)

    def add_ope_check(self, check: OffPolicyCheck) -> None:
        """Record an off-policy check (replacing the arm's previous one)."""
        self._writer.run(lambda conn: queries.put_ope_check(conn, check))

    def ope_checks(self, experiment: str) -> list[OffPolicyCheck]:
        """The last off-policy check of each arm that had one, by arm name."""
        return queries.ope_checks(self._conn(), experiment)

    # ------------------------------------------------------------------ privacy
    def erase_user(self, user_id: str, ts: float) -> Removal:
        """Delete one shopper's decisions, rewards and assignments, and record it (see the interface)."""

        def erase(conn: sqlite3.Connection) -> Removal:
            rewards = conn.execute("DELETE FROM rewards WHERE event_id IN "
                                   "(SELECT event_id FROM decisions WHERE user_id = ?)", (user_id,)).rowcount
            decisions = conn.execute("DELETE FROM decisions WHERE user_id = ?", (user_id,)).rowcount
            conn.execute("DELETE FROM assignments WHERE user_id = ?", (user_id,))
            removal = Removal("erase", int(decisions), int(rewards))
            _audit(conn, ts, removal, "one shopper, on request")
            return removal

        return self._writer.run(erase)

    def expire(self, before_ts: float, up_to_event: int, mode: str, ts: float) -> Removal:
        """Remove (or strip the contexts of) decisions older than ``before_ts`` (see the interface)."""
        self._require_autoincrement()
        where = "event_id <= ? AND ts < ?"
        args = (up_to_event, before_ts)

        def run(conn: sqlite3.Connection) -> Removal:
            if mode == "drop_context":
                n = conn.execute(f"UPDATE decisions SET context = x'' WHERE {where} AND length(context) > 0",
                                 args).rowcount
                removal = Removal("drop_context", int(n), 0)
            else:
                rewards = conn.execute(f"DELETE FROM rewards WHERE event_id IN "
                                       f"(SELECT event_id FROM decisions WHERE {where})", args).rowcount
                conn.execute(f"DELETE FROM assignments WHERE event_id IN (SELECT event_id FROM decisions "
                             f"WHERE {where})", args)
                decisions = conn.execute(f"DELETE FROM decisions WHERE {where}", args).rowcount
                removal = Removal("expire", int(decisions), int(rewards))
            if removal.decisions or removal.rewards:
                _audit(conn, ts, removal, f"retention: made before {before_ts:.0f}")
            return removal

        return self._writer.run(run)

    def _require_autoincrement(self) -> None:
        row = self._conn().execute("SELECT sql FROM sqlite_master WHERE name = 'decisions'").fetchone()
        if row is None or "AUTOINCREMENT" not in str(row[0]).upper():
            raise ConfigError(f"the store {self.path} was created by an earlier slatewise whose decision ids "
                              "could be reused after deletions, so retention cannot run on it; export it "
                              "(`slatewise logs export-serving`) and start a new serving.db_path.")

    def audit(self, limit: int) -> list[tuple[float, str, int, int, str]]:
        """The last ``limit`` audit rows, newest first."""
        rows = self._conn().execute("SELECT ts, action, decisions, rewards, detail FROM audit "
                                    "ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
        return [(float(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4])) for r in rows]

    # ------------------------------------------------------------------ meta, export, operations
    def ensure_meta(self, meta: StoreMeta) -> StoreMeta:
        """Write ``meta`` unless the store holds one; return what it holds."""
        values: dict[str, Any] = {"catalog": meta.catalog, "k": meta.k, "dim_context": meta.dim_context,
                                  "context_names": list(meta.context_names),
                                  "reward_window_s": meta.reward_window_s, "event_key": meta.event_key}

        def write(conn: sqlite3.Connection) -> StoreMeta:
            held = queries.meta(conn)
            if held is None or not held.event_key:  # a new store (or one made before event keys)
                missing = values if held is None else {"event_key": meta.event_key}
                for key, value in missing.items():
                    conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
                held = queries.meta(conn)
            return meta if held is None else held

        return self._writer.run(write)

    def meta(self) -> StoreMeta | None:
        """What the store was created for, or None."""
        return queries.meta(self._conn())

    def export(self, k: int, final_before: float | None) -> ExportedDecisions:
        """Decisions with ``k``-slates and their outcomes, in event order."""
        held = self.meta()
        d = 0 if held is None else held.dim_context
        return queries.export(self._conn(), k, d, final_before)

    def maintain(self) -> None:
        """A passive WAL checkpoint (never waits for readers or writers)."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` (``"ok"`` for a sound database)."""
        return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

    def ping(self) -> bool:
        """True when the database answers a trivial query."""
        try:
            self._conn().execute("SELECT 1 FROM decisions LIMIT 1").fetchall()
        except sqlite3.Error:
            return False
        return True


def _audit(conn: sqlite3.Connection, ts: float, removal: Removal, detail: str) -> None:
    conn.execute("INSERT INTO audit (ts, action, decisions, rewards, detail) VALUES (?, ?, ?, ?, ?)",
                 (ts, removal.action, removal.decisions, removal.rewards, detail))
