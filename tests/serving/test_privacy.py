"""Privacy: pseudonymous user ids at rest, erasure, retention, export options, noisy aggregates."""

from __future__ import annotations

import hashlib
import hmac
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flask import Flask

from experiments.cli import main
from serving.config import ServingConfig, load_serving_config
from serving.export import export_log, session_of
from serving.privacy import SECRET_FILE, Pseudonyms, noisy_release, resolve_secret
from simulator.errors import ConfigError
from tests.serving.conftest import Clock, admin, read_rows, slate_body, store_target
from tests.serving.live import free_port, request, start_server, stop_server

PLANTED = "planted.shopper+7731@example.com"


def _decide(client: object, user: str, n: int = 1, reward: bool = True) -> list[str]:
    tokens = []
    for i in range(n):
        body = client.post("/v1/slates", json=slate_body(user)).get_json()  # type: ignore[attr-defined]
        tokens.append(body["event_id"])
        if reward and i % 2 == 0:
            res = client.post("/v1/rewards", json={"event_id": body["event_id"],  # type: ignore[attr-defined]
                                                   "clicks": [1, 0, 0]})
            assert res.status_code == 202
    return tokens


def test_pseudonym_is_hmac_sha256_of_the_id_under_the_secret() -> None:
    secret = "k" * 32
    expected = hmac.new(secret.encode(), b"alice", hashlib.sha256).hexdigest()[:32]
    assert Pseudonyms(secret).of("alice") == expected
    assert Pseudonyms("j" * 32).of("alice") != expected  # another secret, another pseudonym
    with pytest.raises(ConfigError, match=r"user_id_secret.*at least 16"):
        Pseudonyms("short")


def test_the_store_holds_pseudonyms_and_assignment_stays_sticky(app: Flask) -> None:
    client = app.test_client()
    arms = {client.post("/v1/slates", json=slate_body("bob", experiment="ab")).get_json()["arm"]
            for _ in range(5)}
    assert len(arms) == 1  # sticky, from the hash
    stored = {r[0] for r in read_rows(app.extensions["slatewise"].cfg, "SELECT user_id FROM decisions")}
    assert stored == {app.extensions["slatewise"].pseudonyms.of("bob")}
    assert all(re.fullmatch(r"[0-9a-f]{32}", u) for u in stored)  # type: ignore[arg-type]


def test_planted_id_is_in_no_file_no_log_no_row_and_no_export(tmp_path: Path, store_url: str) -> None:
    port = free_port()
    env = {"SLATEWISE_USER_ID_SECRET": "a-secret-for-the-planted-id-test", "SLATEWISE_ADMIN_TOKEN": "adm",
           "SLATEWISE_LEARN_INTERVAL_S": "0.2", "SLATEWISE_N_ITEMS": "20", "SLATEWISE_K": "3",
           "SLATEWISE_DIM_CONTEXT": "4", "SLATEWISE_STORE": store_url}
    proc = start_server(tmp_path, port, env, workers=1, threads=2)
    try:
        for i in range(20):
            status, body = request(port, "POST", "/v1/slates", {"user_id": PLANTED, "context": [i, 1, 0, 0]})
            assert status == 200
            status, _ = request(port, "POST", "/v1/rewards", {"event_id": body["event_id"], "clicks": [1, 0, 0]})
            assert status == 202
        status, _ = request(port, "POST", "/v1/slates", {"user_id": PLANTED, "context": "bad"})
        assert status == 422  # an error answer about the request must not echo the id into a log either
        status, page = request(port, "GET", "/metrics")
        assert status == 200 and PLANTED.encode() not in page
    finally:
        stop_server(proc)
    out = tmp_path / "export.parquet"
    cfg = ServingConfig(db_path=str(tmp_path / "serving.db"), store=store_url)
    res = CliRunner().invoke(main, ["logs", "export-serving", store_target(cfg), "-o", str(out),
                                    "--include-pending"])
    assert res.exit_code == 0, res.output
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "server.log" for p in files) and any(p.name == "export.parquet" for p in files)
    assert any(p.name == "serving.db" for p in files) != bool(store_url)  # on PostgreSQL no SQLite file
    needles = (PLANTED.encode(), PLANTED.encode("utf-16-le"))
    for path in files:  # the database, its WAL and shm, the export, the server's log, the policy files
        data = path.read_bytes()
        assert not any(n in data for n in needles), f"the raw user id is in {path.name}"
    if store_url:  # the database's files are the server's: read every row of every table as text instead
        for table in ("decisions", "rewards", "meta", "traffic", "assignments", "totals", "audit"):
            rows = read_rows(cfg, f"SELECT t::text FROM {table} t")
            assert not any(PLANTED in str(r[0]) for r in rows), f"the raw user id is in table {table}"
    assert read_rows(cfg, "SELECT count(*) FROM decisions")[0][0] == 21 - 1


def test_erasure_removes_one_shopper_only_and_survives_a_restart(app_factory: Callable[..., Flask],
                                                                   clock: Clock) -> None:
    app = app_factory()
    client = app.test_client()
    _decide(client, "u-erase", n=4)
    _decide(client, "u-keep", n=3)
    svc = app.extensions["slatewise"]
    svc.learner.run_once()  # the totals record each shopper's assignment
    assigned = "SELECT count(*) FROM assignments WHERE user_id = '{}'"
    assert read_rows(svc.cfg, assigned.format(svc.pseudonyms.of("u-erase")))[0][0] == 1
    assert client.delete("/v1/users/u-erase").status_code == 401  # admin only
    res = client.delete("/v1/users/u-erase", headers=admin())
    assert res.status_code == 200 and res.get_json() == {"erased": True, "decisions": 4, "rewards": 2}
    gone, kept = svc.pseudonyms.of("u-erase"), svc.pseudonyms.of("u-keep")
    assert read_rows(svc.cfg, "SELECT user_id, count(*) FROM decisions GROUP BY user_id") == [(kept, 3)]
    assert read_rows(svc.cfg, "SELECT count(*) FROM rewards")[0][0] == 2  # u-keep's rewards stay
    assert read_rows(svc.cfg, assigned.format(gone))[0][0] == 0
    assert read_rows(svc.cfg, assigned.format(kept))[0][0] == 1
    audit = read_rows(svc.cfg, "SELECT action, decisions, rewards, detail FROM audit")
    assert audit == [("erase", 4, 2, "one shopper, on request")]
    assert client.delete("/v1/users/u-erase", headers=admin()).get_json()["decisions"] == 0
    restarted = app_factory().test_client()  # same db_path and model_dir: a restarted service
    _decide(restarted, "u-keep", n=1, reward=False)
    log = export_log(store_target(svc.cfg), include_pending=True, now=clock.now)
    assert session_of(gone) not in set(log.session_id.tolist())
    assert set(log.session_id.tolist()) == {session_of(kept)} and log.n_rounds == 4


def test_retention_deletes_exactly_the_expired_rows(app_factory: Callable[..., Flask], clock: Clock) -> None:
    app = app_factory(retention_days=1.0)
    client = app.test_client()
    svc = app.extensions["slatewise"]
    old = [svc.tokens.verify(t) for t in _decide(client, "old", n=3)]
    clock.now += 0.5 * 86_400
    middle = [svc.tokens.verify(t) for t in _decide(client, "mid", n=2)]
    clock.now += 0.7 * 86_400  # the first three are 1.2 days old, the next two 0.7 days
    new = [svc.tokens.verify(t) for t in _decide(client, "new", n=1)]
    svc.learner.run_once()  # advances the totals, then retention
    assert svc.store.event_ids() == set(middle + new) and not set(old) & svc.store.event_ids()
    assert read_rows(svc.cfg, "SELECT count(*) FROM rewards")[0][0] == 2  # the old rewards went too
    assert svc.store.audit(5)[0][1:4] == ("expire", 3, 2)
    totals = svc.store.totals().experiment("default")
    assert totals.decisions("control") == 6  # the statistics had counted every decision first
    stats = client.get("/v1/experiments/default").get_json()["statistics_window"]
    assert stats["retention_days"] == 1.0 and "experiment started" in stats["description"]


def test_retention_can_drop_only_the_contexts(app_factory: Callable[..., Flask], clock: Clock) -> None:
    app = app_factory(retention_days=1.0, retention_mode="drop_context")
    client = app.test_client()
    svc = app.extensions["slatewise"]
    _decide(client, "old", n=2)
    clock.now += 2 * 86_400
    _decide(client, "new", n=1, reward=False)
    svc.learner.run_once()
    assert len(svc.store.event_ids()) == 3
    assert sorted(r[0] for r in read_rows(svc.cfg, "SELECT length(context) FROM decisions")) == [0, 0, 32]
    assert svc.store.audit(5)[0][1:4] == ("drop_context", 2, 0)
    log = export_log(store_target(svc.cfg), include_pending=True, now=clock.now)
    assert log.n_rounds == 1  # rows without a context leave the exports


def test_retention_refuses_a_store_whose_ids_could_be_reused(tmp_path: Path, clock: Clock) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the decisions table as an earlier release created it
        conn.execute("CREATE TABLE decisions (event_id INTEGER PRIMARY KEY, ts REAL NOT NULL, user_id TEXT "
                     "NOT NULL, experiment TEXT NOT NULL, arm TEXT NOT NULL, policy TEXT NOT NULL, "
                     "policy_version INTEGER NOT NULL, traffic_version INTEGER NOT NULL, k INTEGER NOT NULL, "
                     "context BLOB NOT NULL, slate BLOB NOT NULL, pscore REAL NOT NULL, pscore_item BLOB "
                     "NOT NULL, anchor INTEGER)")
    from serving.store import SQLiteStore

    store = SQLiteStore(db)
    with pytest.raises(ConfigError, match=r"retention cannot run.*new serving.db_path"):
        store.expire(clock.now, 10, "delete", clock.now)


def test_export_can_drop_the_user_and_context_columns(app_factory: Callable[..., Flask], tmp_path: Path,
                                                      clock: Clock) -> None:
    app = app_factory(context_names=("a", "b", "c", "d"))
    client = app.test_client()
    for user in ("x", "x", "y"):
        client.post("/v1/slates", json={"user_id": user, "context": {"a": 1, "b": 2, "c": 3, "d": 4}})
    db = store_target(app.extensions["slatewise"].cfg)
    log = export_log(db, include_pending=True, drop_user=True, drop_context=["b", "d"])
    assert log.session_id.tolist() == log.event_id.tolist()  # no shopper links decisions
    assert log.metadata.context_names == ("a", "c") and log.context.tolist() == [[1, 3]] * 3
    with pytest.raises(ConfigError, match=r"drop-context.*'zz'.*columns are"):
        export_log(db, include_pending=True, drop_context=["zz"])
    out = tmp_path / "x.parquet"
    res = CliRunner().invoke(main, ["logs", "export-serving", db, "-o", str(out), "--include-pending",
                                    "--drop-context", "zz"])
    assert res.exit_code == 1 and "drop-context" in res.output and "Traceback" not in res.output


def test_a_config_file_needs_a_secret_and_the_embedded_default_keeps_its_own(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(f'[serving]\ndb_path = "{tmp_path / "s.db"}"\n')
    with pytest.raises(ConfigError, match=r"user_id_secret.*SLATEWISE_USER_ID_SECRET"):
        load_serving_config(path, env={})
    cfg = load_serving_config(path, env={"SLATEWISE_USER_ID_SECRET": "from-the-environment-0123"})
    assert cfg.user_id_secret == "from-the-environment-0123"
    assert "from-the-environment" not in repr(cfg)  # the secret stays out of reprs and logs
    with pytest.raises(ConfigError, match="user_id_secret"):
        resolve_secret("", tmp_path / "m", generate=False)
    first = resolve_secret("", tmp_path / "m", generate=True)
    assert (tmp_path / "m" / SECRET_FILE).stat().st_mode & 0o777 == 0o600
    assert resolve_secret("", tmp_path / "m", generate=True) == first and len(first) == 64


@pytest.mark.parametrize(("changes", "message"), [
    ({"retention_days": -1.0}, "retention_days.*>= 0"),
    ({"retention_days": 0.01, "reward_window_s": 3600.0}, "longer than the reward window"),
    ({"retention_mode": "shred"}, "retention_mode.*delete"),
])
def test_bad_privacy_settings_name_the_key(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServingConfig(**changes)  # type: ignore[arg-type]


def test_laplace_noise_has_the_stated_scale() -> None:
    n = 200_000
    release = noisy_release(np.zeros(n), np.zeros(n), epsilon=0.5, reward_range=3.0, seed=7)
    assert release.count_scale == pytest.approx(4.0) and release.sum_scale == pytest.approx(12.0)
    # a Laplace(b) draw has mean 0, mean absolute value b and standard deviation sqrt(2) b
    assert abs(release.counts.mean()) < 0.05 and np.abs(release.counts).mean() == pytest.approx(4.0, rel=0.02)
    assert release.sums.std() == pytest.approx(np.sqrt(2) * 12.0, rel=0.02)
    with pytest.raises(ConfigError, match="epsilon"):
        noisy_release([1], [1], epsilon=0.0, reward_range=1.0, seed=0)


def test_noisy_aggregates_repeat_for_the_same_state(app: Flask) -> None:
    client = app.test_client()
    _decide(client, "u", n=4)
    first = client.get("/v1/experiments/default?epsilon=1").get_json()
    again = client.get("/v1/experiments/default?epsilon=1").get_json()
    assert first["noisy"] == again["noisy"] and first["noisy"]["count_scale"] == pytest.approx(2.0)
    assert first["noisy"]["sum_scale"] == pytest.approx(6.0)  # reward range = k = 3 clicks by default
    assert client.get("/v1/experiments/default?epsilon=-1").status_code == 422
