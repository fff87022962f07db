"""The event store: decisions, rewards, traffic history and running totals behind one interface.

:class:`EventStore` (``base``) is the interface; :class:`SQLiteStore` (``sqlite``,
with its tables in ``schema``, its write queue in ``writer`` and its reads in
``queries``) is the embedded backend; results are the frozen records of ``records``
and ``totals``. :func:`open_store` builds the backend a configuration names.
"""

from serving.store.base import EventStore
from serving.store.records import (
    Decision,
    ExportedDecisions,
    FeedbackBatch,
    LoggedDecisions,
    NewDecision,
    NewReward,
    Removal,
    RewardStatus,
    StoreMeta,
    TrafficChange,
    TrafficSplit,
)
from serving.store.sqlite import SQLiteStore
from serving.store.totals import ArmTotals, ExperimentTotals, OutcomeBatch, SplitCounts, Totals


def open_store(target: str, synchronous: str = "NORMAL") -> EventStore:
    """The store at ``target``: today a SQLite file path (``serving.db_path``)."""
    return SQLiteStore(target, synchronous)


__all__ = ["ArmTotals", "Decision", "EventStore", "ExperimentTotals", "ExportedDecisions", "FeedbackBatch",
           "LoggedDecisions", "NewDecision", "NewReward", "OutcomeBatch", "Removal", "RewardStatus",
           "SQLiteStore", "SplitCounts", "StoreMeta", "Totals", "TrafficChange", "TrafficSplit", "open_store"]
