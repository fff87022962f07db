"""The event store: decisions, rewards, traffic history and running totals behind one interface.

:class:`EventStore` (``base``) is the interface; :class:`SQLiteStore` (``sqlite``,
with its tables in ``schema``, its write queue in ``writer`` and its reads in
``queries``) is the embedded backend; results are the frozen records of ``records``
and ``totals``. :class:`PostgresStore` (``postgres``, imported when first used) is
the shared backend of several hosts. :func:`open_store` builds the backend a
configuration names.
"""

from serving.store.base import EventStore
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
from serving.store.sqlite import SQLiteStore
from serving.store.totals import ArmTotals, ExperimentTotals, OutcomeBatch, SeriesPoint, SplitCounts, Totals


def open_store(target: str, synchronous: str = "NORMAL") -> EventStore:
    """The store at ``target``: a ``postgresql://`` URL (``serving.store``), else a SQLite file path.

    Args:
        target: the database URL or the SQLite file (``serving.db_path``).
        synchronous: SQLite's ``synchronous`` mode (PostgreSQL uses the server's settings).
    """
    if target.startswith(("postgresql://", "postgres://")):
        from serving.store.postgres import PostgresStore  # psycopg is needed only for PostgreSQL

        return PostgresStore(target)
    return SQLiteStore(target, synchronous)


__all__ = ["ArmTotals", "Decision", "EventStore", "ExperimentTotals", "ExportedDecisions", "FeedbackBatch",
           "FileLeaderLock", "LeaderLock", "LoggedDecisions", "NewDecision", "NewReward", "OffPolicyCheck",
           "OutcomeBatch", "Removal", "RewardStatus", "SQLiteStore", "SeriesPoint", "SplitCounts",
           "StoreMeta", "Totals", "TrafficChange", "TrafficSplit", "open_store"]
