from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.store import InsertResult, Store


def decision(store: Store, user: Any = "u") -> int:
    return store.add_decision(ts=1.0, user_id=user, experiment="e", arm="a", policy="p", policy_version=0,
                              traffic_version=1, context=np.array([0.5, -1.0]), slate=np.array([2, 0]),
                              pscore=0.25, pscore_item=np.array([0.5, 0.5]), anchor=None)


def test_decisions_round_trip(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    event = decision(store)
    got = store.decision(event)
    assert got is not None and got.slate.tolist() == [2, 0] and got.context.tolist() == [0.5, -1.0]
    assert got.pscore == 0.25 and got.pscore_item.tolist() == [0.5, 0.5]
    assert store.decision(event + 1) is None
    assert store.integrity_check() == "ok"


def test_group_commit_under_many_threads(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    ids: list[int] = []
    lock = threading.Lock()

    owners: dict[int, str] = {}

    def work(t: int) -> None:
        mine = {decision(store, f"t{t}-{i}"): f"t{t}-{i}" for i in range(50)}
        with lock:
            ids.extend(mine)
            owners.update(mine)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 400
    with sqlite3.connect(tmp_path / "s.db") as conn:  # an independent reader sees every one
        stored = {r[0]: r[1] for r in conn.execute("SELECT event_id, user_id FROM decisions")}
    assert set(ids) == set(stored) and len(set(stored.values())) == 400
    assert stored == owners  # every caller got the id of its own row
    with sqlite3.connect(tmp_path / "s.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_failed_decision_stores_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    with pytest.raises(sqlite3.IntegrityError):
        decision(store, None)  # NOT NULL user_id
    assert store.event_ids() == set()
    assert decision(store) >= 1  # the store keeps working


def test_reward_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    event = decision(store)
    args: dict[str, Any] = {"event_id": event, "ts": 2.0, "reward": np.array([1.0, 0.0]), "purchase": None,
                            "revenue": None}
    assert store.add_reward(**args, digest="a") == InsertResult.STORED
    assert store.add_reward(**args, digest="a") == InsertResult.DUPLICATE
    assert store.add_reward(**args, digest="b") == InsertResult.CONFLICT
    with pytest.raises(sqlite3.IntegrityError):  # foreign key: no reward without its decision
        store.add_reward(**{**args, "event_id": event + 10}, digest="c")
