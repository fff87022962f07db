"""The event store: decisions, rewards and traffic history in one SQLite file (WAL mode).

Every write is committed before the call returns, so a decision is in the
database before its answer leaves; concurrent decisions of one process share a
transaction (group commit). A decision INSERT is ordered against other
processes by SQLite's own write lock alone, which is held only inside the
statement (no Python, so no wait for the GIL, runs under it); a statement that
finds another process writing fails at once, having written nothing, and is
retried after a pause of 50 us to 1 ms (:data:`BUSY_PAUSES_S`) rather than
through SQLite's busy handler, which sleeps 1, 2, 5 ... ms. The other writes
(rewards, traffic, meta) take turns on a thread lock and an ``flock`` on
``<db>.writelock``, through one connection per process; reads use one
connection per thread. Request
connections checkpoint the WAL only when it passes :data:`AUTOCHECKPOINT_PAGES`;
the background thread of :mod:`serving.learner` runs a passive checkpoint
every :data:`serving.learner.CHECKPOINT_INTERVAL_S` seconds instead, so the
copy back into the database (and its fsync) stays off the request path. In WAL mode with
``synchronous=NORMAL`` a committed transaction survives a killed process (it is
in the WAL file); ``synchronous=FULL`` also survives power loss. Every worker
process opens the same file.

Tables:
    decisions: one row per answered slate request; ``context`` (d float64),
        ``slate`` (k int64 catalog indices) and ``pscore_item`` (k float64) are
        little-endian byte blobs.
    rewards: at most one outcome per decision, with a digest of the payload so an
        identical repeat is recognised; ``seq`` orders arrivals for the learner.
    meta: what the decisions index into (catalog, ``k``, ``d``, context names, reward
        window), written once by the first service to open the file.
    traffic: every traffic split an experiment ever had (weights, the bucket table,
        who changed it and why); the highest version is in force.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

AUTOCHECKPOINT_PAGES = 20_000
# A decision INSERT that finds another process writing retries after these pauses (the
# last one repeating) for up to BUSY_TIMEOUT_S, instead of SQLite's busy handler, which
# sleeps 1, 2, 5, 10 ... ms.
BUSY_PAUSES_S = (50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1e-3)
BUSY_TIMEOUT_S = 30.0

# ``decisions.event_id`` is a plain rowid alias (stores created before held AUTOINCREMENT,
# which rewrites the ``sqlite_sequence`` page in every commit): decisions are never
# deleted, so a new row's id, one more than the largest, still only grows and is never
# handed out twice; only a rolled-back insert, never answered, leaves its id to the next.
SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    event_id INTEGER PRIMARY KEY,
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
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """One stored decision.

    Attributes:
        event_id: the store's id of the decision.
        ts: UNIX time (s) when it was made.
        user_id: the shopper.
        experiment: experiment name.
        arm: arm that served it.
        policy: registered policy name of the arm.
        policy_version: version of the policy state that chose the slate.
        traffic_version: traffic split in force.
        context: shape (d,).
        slate: shape (k,), catalog indices in position order.
        pscore: probability of the whole slate.
        pscore_item: shape (k,), marginal probability of each item at its slot.
        anchor: catalog index of the anchor item, or None.
    """

    event_id: int
    ts: float
    user_id: str
    experiment: str
    arm: str
    policy: str
    policy_version: int
    traffic_version: int
    context: FloatArray
    slate: IntArray
    pscore: float
    pscore_item: FloatArray
    anchor: int | None = None


@dataclass(frozen=True, slots=True)
class TrafficSplit:
    """A traffic split of an experiment.

    Attributes:
        experiment: experiment name.
        version: 1 for the configured split, +1 per change.
        ts: UNIX time (s) of the change.
        weights: arm name -> share (sums to 1).
        buckets: shape (n_buckets,), arm index (config order) of each hash bucket.
        reason: why it changed.
        actor: ``config``, ``admin`` or ``rollout``.
    """

    experiment: str
    version: int
    ts: float
    weights: dict[str, float]
    buckets: npt.NDArray[np.uint8]
    reason: str
    actor: str


_INSERT_DECISION = (
    "INSERT INTO decisions (ts, user_id, experiment, arm, policy, policy_version, traffic_version, k, "
    "context, slate, pscore, pscore_item, anchor) VALUES ")
_DECISION_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_ONE = _INSERT_DECISION + _DECISION_ROW  # one decision: its id is the cursor's lastrowid


@lru_cache(maxsize=64)
def _insert_sql(n_rows: int) -> str:
    """The INSERT of ``n_rows`` decisions in one statement, returning their ids."""
    return _INSERT_DECISION + ", ".join([_DECISION_ROW] * n_rows) + " RETURNING event_id"


class _Pending:
    """One decision waiting for its group commit.

    ``wake`` is held from creation; the commit that stores the decision releases it,
    or the previous committer does, with ``lead`` set, to make this thread the next
    committer.
    """

    __slots__ = ("error", "event_id", "lead", "params", "wake")

    def __init__(self, params: tuple[Any, ...]) -> None:
        self.params = params
        self.event_id: int | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.wake = threading.Lock()
        self.wake.acquire()

    def result(self) -> int:
        if self.error is not None:
            raise self.error
        if self.event_id is None:  # pragma: no cover - sqlite always sets it after an INSERT
            raise RuntimeError("SQLite returned no rowid for the decision")
        return int(self.event_id)


def _f64(blob: bytes) -> FloatArray:
    return np.frombuffer(blob, dtype="<f8").astype(np.float64)


def _i64(blob: bytes) -> IntArray:
    return np.frombuffer(blob, dtype="<i8").astype(np.int64)


class InsertResult:
    """Outcome of a reward insert: ``stored``, ``duplicate`` or ``conflict``."""

    STORED = "stored"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class Store:
    """SQLite event store shared by every worker (one connection per thread).

    Args:
        path: database file; created with its tables when missing.
        synchronous: SQLite ``synchronous`` mode (``NORMAL`` or ``FULL`` in practice).
    """

    def __init__(self, path: str | Path, synchronous: str = "NORMAL") -> None:
        self.path = str(path)
        self.synchronous = synchronous.upper()
        self._local = threading.local()
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._thread_lock = threading.Lock()
        self._writer: sqlite3.Connection | None = None  # used only under _thread_lock
        self._queue_lock = threading.Lock()
        self._queue: list[_Pending] = []
        self._committing = False
        self._decision_lock = threading.Lock()  # held by the committer (uncontended) and close()
        self._decisions: sqlite3.Connection | None = None  # used only under _decision_lock
        self._lock_fd = os.open(self.path + ".writelock", os.O_RDWR | os.O_CREAT, 0o644)
        with self._writing() as conn:
            conn.executescript(SCHEMA)

    # ------------------------------------------------------------------ connections
    def _connect(self, busy_timeout_ms: int = 30_000) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, for reads."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """Hold the write turn (this process's thread lock, then the cross-process flock).

        Yields:
            The process's write connection, which nothing uses outside the write turn.
        """
        with self._thread_lock:
            if self._writer is None:
                self._writer = self._connect()
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield self._writer
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An immediate (write-locking) transaction, committed on success, rolled back on error."""
        with self._writing() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection and the write connection (reopened when next needed).

        Other threads' read connections close when their threads end.
        """
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        with self._thread_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._decision_lock:
            if self._decisions is not None:
                self._decisions.close()
                self._decisions = None

    def __del__(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)

    # ------------------------------------------------------------------ decisions
    def add_decision(self, *, ts: float, user_id: str, experiment: str, arm: str, policy: str,
                     policy_version: int, traffic_version: int, context: FloatArray, slate: IntArray,
                     pscore: float, pscore_item: FloatArray, anchor: int | None) -> int:
        """Store one decision; returns its ``event_id`` once the decision is committed.

        Group commit: a thread that finds no commit under way becomes the committer and
        stores its decision at once; threads arriving while a commit is under way queue
        and sleep on their own lock. The committer then hands the turn to the oldest
        queued thread, which stores the whole queue in one multi-row INSERT (one
        statement, one transaction) and wakes exactly the threads whose decisions it
        stored, and so on. Nobody returns before its own decision is committed, and a
        failed statement fails every decision in it (none is answered).
        """
        params = (ts, user_id, experiment, arm, policy, policy_version, traffic_version,
                  int(slate.shape[0]), np.ascontiguousarray(context, dtype="<f8").tobytes(),
                  np.ascontiguousarray(slate, dtype="<i8").tobytes(), float(pscore),
                  np.ascontiguousarray(pscore_item, dtype="<f8").tobytes(), anchor)
        waiter = None
        with self._queue_lock:
            if self._committing:
                waiter = _Pending(params)
                self._queue.append(waiter)
            else:
                self._committing = True
        if waiter is None:  # the uncontended case: no lock to make, one row, no hand-off
            try:
                return self._insert([params])[0]
            finally:
                self._pass_turn([])
        waiter.wake.acquire()  # sleeps (without the GIL) until stored or handed the turn
        if not waiter.lead:
            return waiter.result()
        with self._queue_lock:
            batch, self._queue = self._queue, []
        try:
            ids = self._insert([item.params for item in batch])
            for item, event_id in zip(batch, ids, strict=True):
                item.event_id = event_id
        except BaseException as err:
            for item in batch:
                item.error = err
        finally:
            self._pass_turn(batch)
        return waiter.result()

    def _pass_turn(self, batch: list[_Pending]) -> None:
        """After a commit: make the oldest queued thread the next committer, wake ``batch``."""
        with self._queue_lock:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._committing = False
            else:
                successor.lead = True
        for item in batch:
            item.wake.release()
        if successor is not None:
            successor.wake.release()

    def _insert(self, rows: list[tuple[Any, ...]]) -> list[int]:
        """INSERT decisions in one statement (one transaction); their ids, in order.

        Only the committer of the moment calls this, so its connection needs no write
        turn of its own: SQLite's write lock, taken and released inside the statement,
        is all that orders it against other processes. The lock is held only while
        SQLite works (no Python runs, so no wait for the GIL, under it); when another
        process holds it the statement fails at once with SQLITE_BUSY, having written
        nothing, and is retried after a short pause (:data:`BUSY_PAUSES_S`).
        """
        with self._decision_lock:
            conn = self._decisions
            if conn is None:
                conn = self._decisions = self._connect(busy_timeout_ms=0)
            pauses = iter(BUSY_PAUSES_S)
            deadline = 0.0
            while True:
                try:
                    if len(rows) == 1:
                        event_id = conn.execute(_INSERT_ONE, rows[0]).lastrowid
                        if event_id is None:  # pragma: no cover - sqlite sets it after an INSERT
                            raise RuntimeError("SQLite returned no rowid for the decision")
                        return [event_id]
                    got = conn.execute(_insert_sql(len(rows)), [p for row in rows for p in row]).fetchall()
                    return sorted(r[0] for r in got)  # the rows of a statement are numbered in order
                except sqlite3.OperationalError as err:
                    if getattr(err, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                        raise
                    now = time.monotonic()
                    if not deadline:
                        deadline = now + BUSY_TIMEOUT_S
                    elif now > deadline:
                        raise
                    time.sleep(next(pauses, BUSY_PAUSES_S[-1]))

    def decision(self, event_id: int) -> Decision | None:
        """The decision ``event_id``, or None."""
        row = self._conn().execute(
            "SELECT event_id, ts, user_id, experiment, arm, policy, policy_version, traffic_version, "
            "context, slate, pscore, pscore_item, anchor FROM decisions WHERE event_id = ?",
            (event_id,)).fetchone()
        if row is None:
            return None
        return Decision(event_id=row[0], ts=row[1], user_id=row[2], experiment=row[3], arm=row[4],
                        policy=row[5], policy_version=row[6], traffic_version=row[7],
                        context=_f64(row[8]), slate=_i64(row[9]), pscore=row[10],
                        pscore_item=_f64(row[11]), anchor=row[12])

    def event_ids(self) -> set[int]:
        """Every stored ``event_id``."""
        return {int(r[0]) for r in self._conn().execute("SELECT event_id FROM decisions")}

    # ------------------------------------------------------------------ rewards
    def add_reward(self, *, event_id: int, ts: float, reward: FloatArray, purchase: FloatArray | None,
                   revenue: FloatArray | None, digest: str, kind: str = "reward") -> str:
        """Store the outcome of ``event_id`` once; returns an :class:`InsertResult` value.

        A second call with the same ``digest`` is a harmless ``duplicate``; with a
        different one it is a ``conflict`` and nothing changes.
        """
        params = (event_id, ts, np.ascontiguousarray(reward, dtype="<f8").tobytes(), float(np.sum(reward)),
                  None if purchase is None else np.ascontiguousarray(purchase, dtype="<f8").tobytes(),
                  None if revenue is None else np.ascontiguousarray(revenue, dtype="<f8").tobytes(), kind,
                  digest)
        with self._writing() as conn:
            stored = conn.execute(
                "INSERT INTO rewards (event_id, ts, reward, reward_total, purchase, revenue, kind, digest) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING", params).rowcount == 1
        if stored:
            return InsertResult.STORED
        row = self._conn().execute("SELECT digest FROM rewards WHERE event_id = ?", (event_id,)).fetchone()
        return InsertResult.DUPLICATE if row is not None and row[0] == digest else InsertResult.CONFLICT

    def new_feedback(self, experiment: str, arm: str, k: int, after_seq: int, after_event: int,
                     expired_before: float, limit: int) -> dict[str, Any]:
        """Decisions of one arm with full ``k``-slates whose outcome became final since the cursors.

        Final means: a reward arrived (``seq > after_seq``), or no reward came and the
        decision's reward window closed (``ts < expired_before``; reward 0). Expired
        decisions are walked in ``event_id`` order and the walk stops at the first
        decision still inside its window, so each pass reads only new rows.

        Returns:
            ``context`` (m, d), ``slate`` (m, k), ``reward`` (m, k), ``pscore`` (m,), and the
            new cursors ``seq`` and ``event``.
        """
        conn = self._conn()
        conn.execute("BEGIN")  # one snapshot for both reads
        try:
            top = int(conn.execute("SELECT coalesce(max(seq), 0) FROM rewards").fetchone()[0])
            rewarded = conn.execute(
                "SELECT r.seq, d.context, d.slate, r.reward, d.pscore, d.experiment, d.arm, d.k "
                "FROM rewards r JOIN decisions d ON d.event_id = r.event_id "
                "WHERE r.seq > ? AND r.seq <= ? ORDER BY r.seq LIMIT ?", (after_seq, top, limit)).fetchall()
            new_seq = rewarded[-1][0] if len(rewarded) == limit else max(after_seq, top)
            rows: list[tuple[bytes, bytes, FloatArray | None, float]] = [
                (r[1], r[2], _f64(r[3]), r[4]) for r in rewarded
                if r[5] == experiment and r[6] == arm and r[7] == k]
            new_event = after_event
            walk = conn.execute(
                "SELECT d.event_id, d.ts, d.context, d.slate, d.pscore, d.experiment, d.arm, d.k, "
                "r.event_id IS NOT NULL FROM decisions d LEFT JOIN rewards r ON r.event_id = d.event_id "
                "WHERE d.event_id > ? ORDER BY d.event_id LIMIT ?", (after_event, limit))
            for r in walk:  # lazily: the walk usually stops at the first row
                if r[1] >= expired_before:
                    break
                new_event = r[0]
                if not r[8] and r[5] == experiment and r[6] == arm and r[7] == k:
                    rows.append((r[2], r[3], None, r[4]))
            walk.close()
        finally:
            conn.execute("COMMIT")
        if not rows:
            empty = np.zeros((0, 0))
            return {"context": empty, "slate": empty.astype(np.int64), "reward": empty,
                    "pscore": np.zeros(0), "seq": new_seq, "event": new_event}
        context = np.stack([_f64(r[0]) for r in rows])
        slate = np.stack([_i64(r[1]) for r in rows])
        reward = np.stack([np.zeros(slate.shape[1]) if r[2] is None else r[2] for r in rows])
        return {"context": context, "slate": slate, "reward": reward,
                "pscore": np.array([r[3] for r in rows], dtype=np.float64),
                "seq": new_seq, "event": new_event}

    # ------------------------------------------------------------------ experiments
    def arm_outcomes(self, experiment: str) -> dict[str, Any]:
        """Per-decision outcomes of an experiment in event order, for the statistics.

        Returns:
            ``arm`` (n,) str, ``reward`` (n,) float (total reward of the decision, 0 when
            none arrived), ``rewarded`` (n,) bool, ``traffic_version`` (n,) int.
        """
        rows = self._conn().execute(
            "SELECT d.arm, coalesce(r.reward_total, 0.0), r.event_id IS NOT NULL, d.traffic_version "
            "FROM decisions d LEFT JOIN rewards r ON r.event_id = d.event_id "
            "WHERE d.experiment = ? ORDER BY d.event_id", (experiment,)).fetchall()
        if not rows:
            return {"arm": np.zeros(0, dtype=str), "reward": np.zeros(0),
                    "rewarded": np.zeros(0, dtype=bool), "traffic_version": np.zeros(0, dtype=np.int64)}
        arm, reward, rewarded, version = zip(*rows, strict=True)
        return {"arm": np.asarray(arm, dtype=str), "reward": np.asarray(reward, dtype=np.float64),
                "rewarded": np.asarray(rewarded, dtype=bool),
                "traffic_version": np.asarray(version, dtype=np.int64)}

    def recent_decisions(self, experiment: str, limit: int) -> dict[str, Any]:
        """The last ``limit`` decisions of an experiment at full length, with their rewards.

        Returns:
            ``context`` (m, d), ``slate`` (m, k), ``reward`` (m, k) (0 when none arrived),
            ``pscore_item`` (m, k).
        """
        rows = self._conn().execute(
            "SELECT d.context, d.slate, r.reward, d.pscore_item FROM decisions d "
            "LEFT JOIN rewards r ON r.event_id = d.event_id WHERE d.experiment = ? "
            "ORDER BY d.event_id DESC LIMIT ?", (experiment, limit)).fetchall()
        if not rows:
            return {"context": np.zeros((0, 0)), "slate": np.zeros((0, 0), dtype=np.int64),
                    "reward": np.zeros((0, 0)), "pscore_item": np.zeros((0, 0))}
        k_max = max(len(r[1]) for r in rows)
        rows = [r for r in rows if len(r[1]) == k_max]
        slate = np.stack([_i64(r[1]) for r in rows])
        return {"context": np.stack([_f64(r[0]) for r in rows]), "slate": slate,
                "reward": np.stack([np.zeros(slate.shape[1]) if r[2] is None else _f64(r[2])
                                    for r in rows]),
                "pscore_item": np.stack([_f64(r[3]) for r in rows])}

    def counts(self) -> dict[tuple[str, str], int]:
        """Decisions per (experiment, arm)."""
        rows = self._conn().execute(
            "SELECT experiment, arm, count(*) FROM decisions GROUP BY experiment, arm").fetchall()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    # ------------------------------------------------------------------ traffic
    def traffic(self, experiment: str) -> TrafficSplit | None:
        """The traffic split in force, or None before the first one is written."""
        row = self._conn().execute(
            "SELECT experiment, version, ts, weights, buckets, reason, actor FROM traffic "
            "WHERE experiment = ? ORDER BY version DESC LIMIT 1", (experiment,)).fetchone()
        return None if row is None else _split(row)

    def traffic_version(self, experiment: str) -> int:
        """Version of the split in force (0 when none)."""
        row = self._conn().execute("SELECT coalesce(max(version), 0) FROM traffic WHERE experiment = ?",
                                   (experiment,)).fetchone()
        return int(row[0])

    def traffic_history(self, experiment: str) -> list[TrafficSplit]:
        """Every split of an experiment, oldest first."""
        rows = self._conn().execute(
            "SELECT experiment, version, ts, weights, buckets, reason, actor FROM traffic "
            "WHERE experiment = ? ORDER BY version", (experiment,)).fetchall()
        return [_split(r) for r in rows]

    def add_traffic(self, split: TrafficSplit, expected_version: int) -> bool:
        """Write ``split`` if the version in force is still ``expected_version``.

        Returns:
            True when written; False when another writer got there first.
        """
        with self.transaction() as conn:
            row = conn.execute("SELECT coalesce(max(version), 0) FROM traffic WHERE experiment = ?",
                               (split.experiment,)).fetchone()
            if int(row[0]) != expected_version:
                return False
            conn.execute("INSERT INTO traffic VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (split.experiment, split.version, split.ts, json.dumps(split.weights),
                          split.buckets.tobytes(), split.reason, split.actor))
        return True

    # ------------------------------------------------------------------ meta
    def ensure_meta(self, values: dict[str, Any]) -> dict[str, Any]:
        """Write ``values`` (JSON) for keys not yet set; return what the file holds for them."""
        with self.transaction() as conn:
            for key, value in values.items():
                conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
        return self.meta()

    def meta(self) -> dict[str, Any]:
        """Every meta key and its JSON value."""
        return {r[0]: json.loads(r[1]) for r in self._conn().execute("SELECT key, value FROM meta")}

    def export_rows(self, k: int, final_before: float | None) -> list[tuple[Any, ...]]:
        """Decisions with ``k``-slates joined with their outcomes, in event order.

        Args:
            k: slate length to export.
            final_before: keep only decisions rewarded or made before this time (their
                window closed); None keeps every decision.
        """
        sql = ("SELECT d.event_id, d.ts, d.user_id, d.experiment, d.arm, d.policy, d.policy_version, "
               "d.context, d.slate, d.pscore, d.pscore_item, r.reward, r.purchase, r.revenue, r.kind "
               "FROM decisions d LEFT JOIN rewards r ON r.event_id = d.event_id WHERE d.k = ?")
        args: tuple[Any, ...] = (k,)
        if final_before is not None:
            sql += " AND (r.event_id IS NOT NULL OR d.ts < ?)"
            args = (k, final_before)
        return self._conn().execute(sql + " ORDER BY d.event_id", args).fetchall()

    # ------------------------------------------------------------------ checks
    def checkpoint(self) -> tuple[int, int, int]:
        """A passive WAL checkpoint (never waits for readers or writers).

        Returns:
            SQLite's (busy, WAL frames, frames checkpointed).
        """
        row = self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

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


def _split(row: Any) -> TrafficSplit:
    return TrafficSplit(experiment=row[0], version=int(row[1]), ts=float(row[2]),
                        weights={str(k): float(v) for k, v in json.loads(row[3]).items()},
                        buckets=np.frombuffer(row[4], dtype=np.uint8).copy(), reason=row[5], actor=row[6])
