from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from serving.store import EventStore, NewDecision, NewReward, RewardStatus
from serving.store import SQLiteStore as Store


def decision(store: EventStore, user: Any = "u") -> int:
    return store.add_decision(NewDecision(
        ts=1.0, user_id=user, experiment="e", arm="a", policy="p", policy_version=0, traffic_version=1,
        context=np.array([0.5, -1.0]), slate=np.array([2, 0]), pscore=0.25, pscore_item=np.array([0.5, 0.5]),
        anchor=None))


def test_decisions_round_trip(store: EventStore) -> None:
    event = decision(store)
    got = store.decision(event)
    assert got is not None and got.slate.tolist() == [2, 0] and got.context.tolist() == [0.5, -1.0]
    assert got.pscore == 0.25 and got.pscore_item.tolist() == [0.5, 0.5]
    assert store.decision(event + 1) is None
    assert store.event_ids() == {event}


def test_a_second_handle_sees_every_decision_with_the_id_its_caller_got(
        store_factory: Callable[[], EventStore]) -> None:
    first, second = store_factory(), store_factory()  # stand for two processes (or hosts)
    owners: dict[int, str] = {}
    lock = threading.Lock()

    def work(t: int) -> None:
        mine = {decision(first if t % 2 else second, f"t{t}-{i}"): f"t{t}-{i}" for i in range(40)}
        with lock:
            owners.update(mine)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(owners) == 320 and first.event_ids() == second.event_ids() == set(owners)
    for event, user in list(owners.items())[::37]:
        got = second.decision(event)
        assert got is not None and got.user_id == user


def test_reward_once_on_each_store(store: EventStore) -> None:
    event = decision(store)
    args: dict[str, Any] = {"event_id": event, "ts": 2.0, "reward": np.array([1.0, 0.0]), "purchase": None,
                            "revenue": None}
    assert store.add_reward(NewReward(**args, digest="a")) == RewardStatus.STORED
    assert store.add_reward(NewReward(**args, digest="a")) == RewardStatus.DUPLICATE
    assert store.add_reward(NewReward(**args, digest="b")) == RewardStatus.CONFLICT
    with pytest.raises(LookupError):  # no reward without its decision, and nothing stored
        store.add_reward(NewReward(**{**args, "event_id": event + 10}, digest="c"))
    assert store.rewarded_event_ids() == {event}
    assert decision(store) > event  # the store keeps working after the refused reward


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
    assert store.add_reward(NewReward(**args, digest="a")) == RewardStatus.STORED
    assert store.add_reward(NewReward(**args, digest="a")) == RewardStatus.DUPLICATE
    assert store.add_reward(NewReward(**args, digest="b")) == RewardStatus.CONFLICT
    with pytest.raises(LookupError):  # foreign key: no reward without its decision
        store.add_reward(NewReward(**{**args, "event_id": event + 10}, digest="c"))


def _decisions_of_one_process(path: str, proc: int, n_threads: int, per_thread: int, out: Any) -> None:
    store = Store(path)
    owners: dict[int, str] = {}
    lock = threading.Lock()

    def work(t: int) -> None:
        mine = {decision(store, f"p{proc}-t{t}-{i}"): f"p{proc}-t{t}-{i}" for i in range(per_thread)}
        with lock:
            owners.update(mine)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(owners)


def test_group_commit_across_processes_numbers_every_decision_right(tmp_path: Path) -> None:
    import multiprocessing as mp

    path = str(tmp_path / "s.db")
    Store(path)
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_decisions_of_one_process, args=(path, p, 4, 60, out)) for p in range(3)]
    for p in procs:
        p.start()
    parts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    owners = {event: user for part in parts for event, user in part.items()}
    assert len(owners) == sum(len(part) for part in parts) == 3 * 4 * 60  # no id handed out twice
    with sqlite3.connect(path) as conn:
        stored = {r[0]: r[1] for r in conn.execute("SELECT event_id, user_id FROM decisions")}
    assert stored == owners  # every caller in every process got the id of its own row


def test_a_failed_batch_fails_only_its_own_decisions(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    start = threading.Barrier(12)
    results: dict[str, int | BaseException] = {}
    lock = threading.Lock()

    def work(user: str | None, name: str) -> None:
        start.wait()
        try:
            got: int | BaseException = decision(store, user)
        except sqlite3.IntegrityError as err:
            got = err
        with lock:
            results[name] = got

    threads = [threading.Thread(target=work, args=(None if i % 4 == 0 else f"u{i}", f"u{i}"))
               for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()  # a failed commit still wakes every waiter and hands on the turn
    with sqlite3.connect(tmp_path / "s.db") as conn:
        stored = {r[1]: r[0] for r in conn.execute("SELECT event_id, user_id FROM decisions")}
    for name, got in results.items():
        if name in ("u0", "u4", "u8"):  # NOT NULL user_id
            assert isinstance(got, sqlite3.IntegrityError)
        if isinstance(got, int):
            assert stored[name] == got
        else:
            assert name not in stored  # answered with an error, so nothing is stored
    assert len(results) == 12
    assert decision(store, "after") == max(stored.values(), default=0) + 1  # the store still commits


def test_a_decision_waits_for_another_process_writing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)  # stands for another process
    other.execute("BEGIN IMMEDIATE")  # holds SQLite's write lock
    got: list[int] = []
    thread = threading.Thread(target=lambda: got.append(decision(store)))
    thread.start()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline and thread.is_alive():  # it must keep waiting, not fail
        thread.join(timeout=0.05)
    assert thread.is_alive() and got == []  # retrying, not failed, not stored
    other.execute("INSERT INTO meta VALUES ('k', '1')")
    other.execute("COMMIT")
    thread.join(timeout=10)
    assert got == [1] and store.event_ids() == {1}
    other.close()


def test_a_decision_gives_up_after_the_busy_timeout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import serving.store.writer

    monkeypatch.setattr(serving.store.writer, "BUSY_TIMEOUT_S", 0.2)
    store = Store(tmp_path / "s.db")
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        decision(store)
    other.execute("ROLLBACK")
    other.close()
    assert store.event_ids() == set()
    assert decision(store) == 1  # the store keeps working


def test_a_store_made_without_autoincrement_keeps_counting(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "s.db") as conn:  # decisions as an earlier release created them
        conn.executescript(serving_schema_without_autoincrement())
        conn.execute("INSERT INTO decisions (event_id, ts, user_id, experiment, arm, policy, policy_version, "
                     "traffic_version, k, context, slate, pscore, pscore_item) "
                     "VALUES (41, 0, 'u', 'e', 'a', 'p', 0, 1, 2, x'', x'', 1, x'')")
    store = Store(tmp_path / "s.db")
    assert [decision(store) for _ in range(3)] == [42, 43, 44]
    assert store.integrity_check() == "ok"


def serving_schema_without_autoincrement() -> str:
    from serving.store.schema import SCHEMA

    old = SCHEMA.replace("event_id INTEGER PRIMARY KEY AUTOINCREMENT,", "event_id INTEGER PRIMARY KEY,")
    assert old != SCHEMA
    return old


def test_ids_are_never_reused_after_the_newest_decision_is_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert [decision(store) for _ in range(3)] == [1, 2, 3]
    with sqlite3.connect(tmp_path / "s.db") as conn:  # as an erasure of the last shopper would
        conn.execute("DELETE FROM decisions WHERE event_id = 3")
    assert decision(store) == 4


def test_new_stores_number_decisions_from_one_without_gaps(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    assert [decision(store) for _ in range(5)] == [1, 2, 3, 4, 5]
    store.close()
    assert decision(Store(tmp_path / "s.db")) == 6  # a reopened store goes on from the largest id
