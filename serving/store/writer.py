"""Every write of a process, through one queue and one connection: the thread that finds it idle writes.

A thread with a write (a decision, or a transaction: rewards, traffic, meta,
totals) that finds nobody writing takes the turn and does its write at once, on
the process's one write connection: no hand-off when uncontended. A thread that
finds the turn taken queues its write and sleeps (without the GIL) on a lock of
its own. When the writer is done it hands the turn to the oldest queued thread,
which takes the whole queue: the decisions go into one multi-row INSERT (one
statement, one transaction: group commit), then each transaction runs in its own
``BEGIN IMMEDIATE``; it wakes exactly the threads whose writes it did, and hands
on. Nobody returns before its own write is committed, and a failed statement
fails exactly the writes in it.

Other processes are ordered by SQLite's own write lock. A statement that finds
another process writing fails at once (``busy_timeout = 0``), having written
nothing, and is retried after :data:`BUSY_PAUSES_S` (the last one repeating) for
up to :data:`BUSY_TIMEOUT_S`, instead of through SQLite's busy handler, which
sleeps 1, 2, 5, 10 ... ms.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from serving.store.schema import INSERT_ONE_DECISION, insert_decisions_sql


class _Closable(Protocol):
    def close(self) -> None: ...


T = TypeVar("T")
C = TypeVar("C", bound=_Closable)  # the write connection: sqlite3, or psycopg (serving.store.postgres)

BUSY_PAUSES_S = (50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1e-3)
BUSY_TIMEOUT_S = 30.0

_DECISION, _TRANSACTION, _CLOSE = 0, 1, 2


class _Job(Generic[T]):
    """One queued write.

    ``wake`` is held from creation; the writer that did the job releases it, or the
    previous writer does, with ``lead`` set, to hand this thread the turn.
    """

    __slots__ = ("error", "kind", "lead", "value", "wake", "work")

    def __init__(self, kind: int, work: Any) -> None:
        self.kind = kind
        self.work = work
        self.value: T | None = None
        self.error: BaseException | None = None
        self.lead = False
        self.wake = threading.Lock()
        self.wake.acquire()

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _is_busy(err: sqlite3.OperationalError) -> bool:
    return getattr(err, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def retry_busy(step: Callable[[], T]) -> T:
    """Run ``step`` until it does not fail with SQLITE_BUSY (at most :data:`BUSY_TIMEOUT_S`)."""
    pauses = iter(BUSY_PAUSES_S)
    deadline = 0.0
    while True:
        try:
            return step()
        except sqlite3.OperationalError as err:
            if not _is_busy(err):
                raise
            now = time.monotonic()
            if not deadline:
                deadline = now + BUSY_TIMEOUT_S
            elif now > deadline:
                raise
            time.sleep(next(pauses, BUSY_PAUSES_S[-1]))


class WriteQueue(Generic[C]):
    """The write queue of one process (state is reset in a forked child).

    The database is the business of :meth:`_insert` and :meth:`_transaction` only:
    :class:`Writer` implements them for SQLite, :class:`serving.store.postgres.PgWriter`
    for PostgreSQL.

    Args:
        connect: opens the write connection (called by whichever thread writes first).
    """

    def __init__(self, connect: Callable[[], C]) -> None:
        self._connect = connect
        self._pid = -1
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()  # guards _queue and _busy only
        self._queue: list[_Job[Any]] = []
        self._busy = False
        self._conn: C | None = None  # used only by the thread holding the turn

    def add_decision(self, params: tuple[Any, ...]) -> int:
        """Store one decision row (values in :data:`serving.store.schema.DECISION_COLUMNS` order).

        Returns:
            Its ``event_id``, once committed.
        """
        job: _Job[int] = _Job(_DECISION, params)
        return self._submit(job)

    def run(self, work: Callable[[C], T]) -> T:
        """Run ``work`` in one immediate (write-locking) transaction; its result once committed."""
        job: _Job[T] = _Job(_TRANSACTION, work)
        return self._submit(job)

    def close(self) -> None:
        """Close the write connection once the writes queued before are done (reopened when next needed)."""
        job: _Job[None] = _Job(_CLOSE, None)
        self._submit(job)

    def _submit(self, job: _Job[T]) -> T:
        if self._pid != os.getpid():  # a forked child inherits no writer and no connection
            self._reset()
        with self._lock:
            queued = self._busy
            if queued:
                self._queue.append(job)
            else:
                self._busy = True
        if queued:
            job.wake.acquire()  # sleeps until done, or until handed the turn
            if not job.lead:
                return job.outcome()
            with self._lock:
                batch, self._queue = self._queue, []
        else:
            batch = [job]
        try:
            self._execute(batch)
        finally:
            self._pass_turn(batch, job)
        return job.outcome()

    def _pass_turn(self, batch: list[_Job[Any]], mine: _Job[Any]) -> None:
        """Wake the threads of ``batch`` and hand the turn to the oldest queued thread (if any)."""
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is None:
                self._busy = False
            else:
                successor.lead = True
        for item in batch:
            if item is not mine:
                item.wake.release()
        if successor is not None:
            successor.wake.release()

    # ------------------------------------------------------------------ the writing turn
    def _execute(self, batch: list[_Job[Any]]) -> None:
        """The decisions of ``batch`` in one INSERT, then its transactions and closes in order."""
        decisions = [j for j in batch if j.kind == _DECISION]
        if decisions:
            self._with_connection(decisions, lambda conn: self._insert(conn, decisions))
        for job in batch:
            if job.kind == _TRANSACTION:
                self._with_connection([job], partial(self._transaction, job=job))
            elif job.kind == _CLOSE and self._conn is not None:
                self._close_connection()

    def _close_connection(self) -> None:
        """Close the write connection (the next write opens a new one)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _with_connection(self, jobs: list[_Job[Any]], write: Callable[[C], None]) -> None:
        """``write`` on the write connection (opened when needed; failing ``jobs`` if it cannot be)."""
        if self._conn is None:
            try:
                self._conn = self._connect()
            except BaseException as err:
                for job in jobs:
                    job.error = err
                return
        write(self._conn)

    def _insert(self, conn: C, batch: list[_Job[int]]) -> None:
        """The decisions of ``batch`` in one statement; sets each job's ``event_id`` or error."""
        raise NotImplementedError

    def _transaction(self, conn: C, *, job: _Job[Any]) -> None:
        """``job.work`` in one write transaction; sets the job's value or error."""
        raise NotImplementedError


class Writer(WriteQueue[sqlite3.Connection]):
    """The SQLite write queue: multi-row INSERTs and ``BEGIN IMMEDIATE`` transactions, retried when busy."""

    def _insert(self, conn: sqlite3.Connection, batch: list[_Job[int]]) -> None:
        rows = [job.work for job in batch]

        def insert() -> list[int]:
            if len(rows) == 1:
                event_id = conn.execute(INSERT_ONE_DECISION, rows[0]).lastrowid
                if event_id is None:  # pragma: no cover - sqlite sets it after an INSERT
                    raise RuntimeError("SQLite returned no rowid for the decision")
                return [event_id]
            got = conn.execute(insert_decisions_sql(len(rows)), [p for row in rows for p in row]).fetchall()
            return sorted(r[0] for r in got)  # the rows of one statement are numbered in order

        try:
            ids = retry_busy(insert)
        except BaseException as err:
            for job in batch:
                job.error = err
            return
        for job, event_id in zip(batch, ids, strict=True):
            job.value = event_id

    def _transaction(self, conn: sqlite3.Connection, *, job: _Job[Any]) -> None:
        try:
            retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                job.value = job.work(conn)
                retry_busy(lambda: conn.execute("COMMIT"))
            finally:
                if conn.in_transaction:  # the work or the commit failed: nothing of it stays
                    conn.execute("ROLLBACK")
        except BaseException as err:
            job.error = err
