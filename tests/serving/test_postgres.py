"""What only the PostgreSQL store does: its config, ordered ids across handles, the advisory leader lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from flask import Flask

from serving.config import ServingConfig, load_serving_config
from serving.store import EventStore, NewDecision, NewReward, open_store
from simulator.errors import ConfigError
from tests.serving.conftest import make_config


def add(store: EventStore, user: str) -> int:
    return store.add_decision(NewDecision(
        ts=1.0, user_id=user, experiment="e", arm="a", policy="p", policy_version=0, traffic_version=1,
        context=np.array([0.5]), slate=np.array([1, 0]), pscore=0.5, pscore_item=np.array([0.5, 1.0])))


@pytest.mark.parametrize("target", ["mysql://x@h/db", "serving.db", "sqlite:///x.db"])
def test_the_store_key_takes_only_postgresql_urls(tmp_path: Path, target: str) -> None:
    with pytest.raises(ConfigError, match=r"serving\.store.*postgresql://"):
        ServingConfig(db_path=str(tmp_path / "s.db"), store=target)


def test_the_store_url_comes_from_the_environment(tmp_path: Path) -> None:
    cfg = load_serving_config(env={"SLATEWISE_STORE": "postgresql://u:p@127.0.0.1:5/db"})
    assert cfg.store == "postgresql://u:p@127.0.0.1:5/db"


def test_an_unreachable_server_is_a_config_error_without_the_password(tmp_path: Path) -> None:
    url = "postgresql://slatewise:hunter2@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(ConfigError, match=r"serving\.store.*127\.0\.0\.1:1/none") as err:
        open_store(url)
    assert "hunter2" not in str(err.value)


def test_a_missing_schema_is_a_config_error(pg_schema_url: str) -> None:
    url = pg_schema_url.replace("search_path%3Dt_", "search_path%3Dmissing_t_")
    with pytest.raises(ConfigError, match="no current schema"):
        open_store(url)


def test_ids_commit_in_order_so_a_cursor_never_skips_one(pg_schema_url: str) -> None:
    """Readers that walk ids in order while two handles write never see a gap filled later."""
    writers = [open_store(pg_schema_url) for _ in range(2)]
    reader = open_store(pg_schema_url)
    stop = threading.Event()
    missing: set[int] = set()

    def write(store: EventStore, name: str) -> None:
        for i in range(150):
            add(store, f"{name}{i}")

    def read() -> None:
        while not stop.is_set():
            ids = reader.event_ids()
            if ids:  # ids below the largest visible one that are not visible must never commit
                missing.update(set(range(1, max(ids) + 1)) - ids)

    threads = [threading.Thread(target=write, args=(w, f"w{i}-t{t}-")) for i, w in enumerate(writers)
               for t in range(3)]
    watcher = threading.Thread(target=read)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    watcher.join()
    final = reader.event_ids()
    for store in (*writers, reader):
        store.close()
    assert len(final) == 900
    assert not missing & final  # no id appeared below one a reader had already seen


@pytest.mark.postgresql_only  # the flock of the SQLite store is test_learner.py's
def test_one_leader_among_hosts_and_the_lock_dies_with_its_connection(
        store_factory: Callable[[], EventStore], tmp_path: Path) -> None:
    a, b = store_factory(), store_factory()
    lock_a, lock_b = a.leader_lock(tmp_path / "host-a"), b.leader_lock(tmp_path / "host-b")
    try:
        assert lock_a.try_acquire() is True
        assert lock_b.try_acquire() is False  # other host, other model_dir path: still one leader
        assert lock_a.try_acquire() is True
        lock_a.release()  # as when host a dies: its connection ends
        assert lock_b.try_acquire() is True
        assert lock_a.try_acquire() is False
    finally:
        lock_a.release()
        lock_b.release()


def test_hosts_share_the_meta_so_a_reward_reaches_any_host(app_factory: Callable[..., Flask]) -> None:
    one, two = app_factory(), app_factory()
    assert one.extensions["slatewise"].store.meta() == two.extensions["slatewise"].store.meta()
    body = one.test_client().post("/v1/slates", json={"user_id": "u", "context": [0, 1, 0, 1]}).get_json()
    res = two.test_client().post("/v1/rewards", json={"event_id": body["event_id"], "clicks": [0, 1, 0]})
    assert res.status_code == 202 and res.get_json()["status"] == "stored"
    store = two.extensions["slatewise"].store
    assert store.add_reward(NewReward(event_id=store.event_ids().pop(), ts=0.0, reward=np.zeros(3),
                                      purchase=None, revenue=None, digest="x")).value == "conflict"


@pytest.mark.postgresql_only  # the SQLite case is test_ops.py's
def test_readyz_is_503_when_the_database_is_gone(app_factory: Callable[..., Flask]) -> None:
    app = app_factory()
    store = app.extensions["slatewise"].store
    store.close()
    store.url = "postgresql://slatewise:x@127.0.0.1:1/none?connect_timeout=1"
    res = app.test_client().get("/readyz")
    assert res.status_code == 503 and res.get_json()["error"]["code"] == "not_ready"


def test_a_config_on_postgresql_serves(tmp_path: Path, pg_schema_url: str) -> None:
    cfg = make_config(tmp_path, store=pg_schema_url)
    store = open_store(cfg.store)
    try:
        assert store.meta() is None and store.count_decisions() == {}
    finally:
        store.close()
