"""The event store interface: what the service asks of whichever database holds its events.

A backend (:class:`serving.store.sqlite.SQLiteStore`, embedded, one machine;
:class:`serving.store.postgres.PostgresStore`, any number of hosts) keeps five promises:

* a decision is committed before :meth:`EventStore.add_decision` returns, so an
  answered decision survives a killed process;
* ``event_id`` values are positive int64, unique, handed out once, and a decision
  committed later never has a smaller id than one already visible (the learner's
  and the totals' cursors walk ids in order);
* a reward is stored at most once per decision (first wins; an identical repeat is
  a duplicate, a different one a conflict);
* a traffic split is written only when the version in force is the one the writer
  read (compare and set), so concurrent writers never fork the history;
* :meth:`EventStore.leader_lock` is held by one process at a time, of every
  process that opens the same store.

Every result is a frozen record of :mod:`serving.store.records`.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from pathlib import Path

from serving.store.leader import FileLeaderLock, LeaderLock
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
from serving.store.totals import OutcomeBatch, SeriesPoint, Totals


class EventStore(abc.ABC):
    """Decisions, rewards, traffic history, meta and the experiments' running totals."""

    # ------------------------------------------------------------------ decisions and rewards
    @abc.abstractmethod
    def add_decision(self, decision: NewDecision) -> int:
        """Store one decision; returns its ``event_id`` once the decision is committed."""

    @abc.abstractmethod
    def decision(self, event_id: int) -> Decision | None:
        """The decision ``event_id``, or None."""

    @abc.abstractmethod
    def add_reward(self, reward: NewReward) -> RewardStatus:
        """Store the outcome of ``reward.event_id`` once.

        Raises:
            LookupError: no decision ``reward.event_id`` (nothing is stored).
        """

    @abc.abstractmethod
    def count_decisions(self) -> dict[tuple[str, str], int]:
        """Decisions per (experiment, arm)."""

    @abc.abstractmethod
    def event_ids(self) -> set[int]:
        """Every stored decision's ``event_id`` (for checks and benchmarks, not for requests)."""

    @abc.abstractmethod
    def rewarded_event_ids(self) -> set[int]:
        """The ``event_id`` of every decision with a stored reward (for checks and benchmarks)."""

    # ------------------------------------------------------------------ learning and evaluation
    @abc.abstractmethod
    def new_feedback(self, experiment: str, arm: str, k: int, after_seq: int, after_event: int,
                     expired_before: float, limit: int) -> FeedbackBatch:
        """Outcomes of one arm with full ``k``-slates that became final since the cursors.

        Final means: a reward arrived (``seq > after_seq``), or no reward came and the
        decision's reward window closed (``ts < expired_before``; reward 0). Expired
        decisions are walked in ``event_id`` order and the walk stops at the first
        decision still inside its window, so each call reads only new rows.
        """

    @abc.abstractmethod
    def recent_decisions(self, experiment: str, limit: int) -> LoggedDecisions:
        """The last ``limit`` decisions of an experiment at full length, with their rewards."""

    @abc.abstractmethod
    def totals(self) -> Totals:
        """The experiments' running totals as last advanced."""

    @abc.abstractmethod
    def advance_totals(self, expired_before: float, limit: int,
                       fold: Callable[[Totals, OutcomeBatch], Totals]) -> Totals:
        """Fold what happened since the totals' cursors into them, in one transaction.

        Reads at most ``limit`` new decisions and ``limit`` newly final outcomes (see
        :class:`~serving.store.totals.OutcomeBatch`), records each user's first
        decision per experiment, and stores ``fold(totals, batch)``, so the cost is
        that of the new rows, whatever the history. Concurrent callers are serialised;
        none folds a row twice.
        """

    @abc.abstractmethod
    def add_series_points(self, ts: float, min_interval_s: float, cap: int) -> int:
        """Append each experiment's running totals as a :class:`SeriesPoint` at ``ts``.

        An experiment gets no point when its last one is less than ``min_interval_s``
        old or holds the same sums. When an experiment has more than ``cap`` points,
        every other one is dropped (the first and the last kept), so the series spans
        the whole experiment at half the resolution. One write transaction.

        Returns:
            The number of points appended.
        """

    @abc.abstractmethod
    def series(self, experiment: str) -> list[SeriesPoint]:
        """The experiment's points, oldest first (at most the ``cap`` of the last append)."""

    # ------------------------------------------------------------------ traffic
    @abc.abstractmethod
    def traffic(self, experiment: str) -> TrafficSplit | None:
        """The split in force, or None before the first one is written."""

    @abc.abstractmethod
    def traffic_version(self, experiment: str) -> int:
        """Version of the split in force (0 when none)."""

    @abc.abstractmethod
    def traffic_weights(self, experiment: str) -> dict[int, dict[str, float]]:
        """Weights of every version of an experiment's split (without the bucket tables)."""

    @abc.abstractmethod
    def traffic_history(self, experiment: str, before: int | None, limit: int) -> list[TrafficChange]:
        """Up to ``limit`` changes, newest first, with versions below ``before`` (None: from the newest)."""

    @abc.abstractmethod
    def add_traffic(self, split: TrafficSplit, expected_version: int) -> bool:
        """Write ``split`` if the version in force is still ``expected_version`` (False otherwise)."""

    @abc.abstractmethod
    def add_ope_check(self, check: OffPolicyCheck) -> None:
        """Record an arm's off-policy check against its bar (replacing the arm's previous one)."""

    @abc.abstractmethod
    def ope_checks(self, experiment: str) -> list[OffPolicyCheck]:
        """The last off-policy check of each arm of the experiment that had one."""

    # ------------------------------------------------------------------ privacy
    @abc.abstractmethod
    def erase_user(self, user_id: str, ts: float) -> Removal:
        """Delete every decision, reward and assignment of one shopper (``user_id`` is the stored pseudonym).

        Records the erasure (counts, no id) in the audit table, in the same transaction.
        The running totals keep the shopper's past outcomes only inside their sums.
        """

    @abc.abstractmethod
    def expire(self, before_ts: float, up_to_event: int, mode: str, ts: float) -> Removal:
        """Retention: remove decisions made before ``before_ts`` with ``event_id <= up_to_event``.

        ``mode`` ``delete`` deletes them with their rewards and assignments;
        ``drop_context`` deletes only their contexts (such rows leave the exports and
        the recent-decision reads). ``up_to_event`` is the totals' cursor, so no row
        is removed before the statistics have counted it. Recorded in the audit table.
        """

    @abc.abstractmethod
    def audit(self, limit: int) -> list[tuple[float, str, int, int, str]]:
        """The last ``limit`` audit rows, newest first: (ts, action, decisions, rewards, detail)."""

    # ------------------------------------------------------------------ meta, export, operations
    @abc.abstractmethod
    def ensure_meta(self, meta: StoreMeta) -> StoreMeta:
        """Write ``meta`` unless the store already holds one; return what the store holds."""

    @abc.abstractmethod
    def meta(self) -> StoreMeta | None:
        """What the store was created for, or None when no service wrote it yet."""

    @abc.abstractmethod
    def export(self, k: int, final_before: float | None) -> ExportedDecisions:
        """Decisions with ``k``-slates and their outcomes, in event order.

        Args:
            k: slate length to export.
            final_before: keep only decisions rewarded or made before this time (their
                window closed); None keeps every decision.
        """

    def leader_lock(self, model_dir: str | Path) -> LeaderLock:
        """The lock of the one learner among the processes sharing this store.

        The default is a ``flock`` on ``<model_dir>/learner.lock`` (processes of one
        machine); a backend shared by several hosts overrides it.
        """
        return FileLeaderLock(Path(model_dir) / "learner.lock")

    @abc.abstractmethod
    def maintain(self) -> None:
        """Background upkeep, called by the learner thread every fraction of a second."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the database answers a trivial query."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close this process's connections (they reopen when next needed)."""
