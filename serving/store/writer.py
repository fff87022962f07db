"""The one thread of a process that writes to the SQLite store, fed by a queue.

Request threads queue their write and sleep (without the GIL) on a lock of their
own until the writer has committed it. The writer takes everything queued at
once: the decisions go into one multi-row INSERT (one statement, one
transaction: group commit), then each other write (rewards, traffic, meta,
totals) runs in its own ``BEGIN IMMEDIATE`` transaction. Nobody returns before
its own write is committed, and a failed statement fails exactly the writes in
it. The writer owns the process's only write connection.

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
from typing import Any, Generic, TypeVar

from serving.store.schema import INSERT_ONE_DECISION, insert_decisions_sql

T = TypeVar("T")

BUSY_PAUSES_S = (50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1e-3)
BUSY_TIMEOUT_S = 30.0


class _Job(Generic[T]):
    """One queued write; ``wake`` is held from creation until the writer has done it."""

    __slots__ = ("error", "value", "wake", "work")

    def __init__(self, work: Any) -> None:
        self.work = work
        self.value: T | None = None
        self.error: BaseException | None = None
        self.wake = threading.Lock()
        self.wake.acquire()

    def result(self) -> T:
        self.wake.acquire()  # sleeps (without the GIL) until the writer is done with this job
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


class Writer:
    """The writer thread of one process (started on first use, and again after a fork).

    Args:
        connect: opens the write connection (called on the writer thread).
    """

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._pid = -1
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._decisions: list[_Job[int]] = []
        self._jobs: list[_Job[Any]] = []
        self._thread: threading.Thread | None = None
        self._closing = False

    def _queue(self, job: _Job[Any], decisions: bool) -> None:
        if self._pid != os.getpid():  # a forked child inherits no thread
            self._reset()
        with self._cond:
            (self._decisions if decisions else self._jobs).append(job)
            if self._thread is None:
                self._closing = False
                self._thread = threading.Thread(target=self._loop, name="slatewise-store-writer",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def add_decision(self, params: tuple[Any, ...]) -> int:
        """Store one decision row (values in :data:`serving.store.schema.DECISION_COLUMNS` order).

        Returns:
            Its ``event_id``, once committed.
        """
        job: _Job[int] = _Job(params)
        self._queue(job, decisions=True)
        return job.result()

    def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in one immediate (write-locking) transaction; its result once committed."""
        job: _Job[T] = _Job(work)
        self._queue(job, decisions=False)
        return job.result()

    def close(self) -> None:
        """Finish what is queued, stop the thread and close the connection (restarted on next use)."""
        if self._pid != os.getpid():
            self._reset()
            return
        with self._cond:
            thread = self._thread
            self._closing = True
            self._cond.notify()
        if thread is not None:
            thread.join(timeout=60)

    # ------------------------------------------------------------------ the thread
    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                with self._cond:
                    while not self._decisions and not self._jobs and not self._closing:
                        self._cond.wait()
                    decisions, self._decisions = self._decisions, []
                    jobs, self._jobs = self._jobs, []
                    if not decisions and not jobs:  # closing with nothing left
                        self._thread = None
                        return
                if conn is None:
                    try:
                        conn = self._connect()
                    except BaseException as err:
                        _fail([*decisions, *jobs], err)
                        continue
                if decisions:
                    self._insert(conn, decisions)
                for job in jobs:
                    self._transaction(conn, job)
        finally:
            if conn is not None:
                conn.close()

    @staticmethod
    def _insert(conn: sqlite3.Connection, batch: list[_Job[int]]) -> None:
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
            _fail(batch, err)
            return
        for job, event_id in zip(batch, ids, strict=True):
            job.value = event_id
            job.wake.release()

    @staticmethod
    def _transaction(conn: sqlite3.Connection, job: _Job[Any]) -> None:
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
        job.wake.release()


def _fail(jobs: list[_Job[Any]], err: BaseException) -> None:
    for job in jobs:
        job.error = err
        job.wake.release()
