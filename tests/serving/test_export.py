from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from experiments.cli import main
from serving import create_app
from serving.export import export_log, session_of
from simulator.errors import ConfigError
from simulator.logs import load_parquet
from tests.serving.conftest import Clock, make_config, store_target

# export_log reads the store named by serving.store (PostgreSQL) or serving.db_path (SQLite)


def test_export_is_the_log_format_with_what_was_served(app: Flask, client: FlaskClient, clock: Clock) -> None:
    served = []
    for i in range(6):
        ctx = [float(i), 1.0, -1.0, 0.5]
        body = client.post("/v1/slates", json={"user_id": f"u{i % 2}", "context": ctx}).get_json()
        served.append((body, ctx))
    client.post("/v1/rewards", json={"event_id": served[0][0]["event_id"], "clicks": [0, 1, 0]})
    client.post("/v1/rewards", json={"event_id": served[1][0]["event_id"], "clicks": [1, 0, 0],
                                     "revenue": [12.5, 0, 0]})
    client.post("/v1/slates", json={"user_id": "short", "context": [0, 0, 0, 0], "k": 2})
    db = store_target(app.extensions["slatewise"].cfg)
    final = export_log(db, now=clock.now)
    assert final.n_rounds == 2  # only rewarded ones are final inside the window
    log = export_log(db, include_pending=True)
    assert log.n_rounds == 6 and log.k == 3 and log.dim_context == 4 and log.n_items == 20
    tokens = app.extensions["slatewise"].tokens  # the log keeps the store's int64 ids; answers carry tokens
    assert log.event_id.tolist() == [tokens.verify(b["event_id"]) for b, _ in served] == list(range(1, 7))
    assert log.slate.tolist() == [b["slate"] for b, _ in served]
    np.testing.assert_array_equal(log.context, [c for _, c in served])
    assert log.reward[0].tolist() == [0, 1, 0] and log.reward[1].tolist() == [1, 0, 0]
    assert log.reward[2:].sum() == 0
    assert log.revenue is not None and log.revenue[1, 0] == 12.5 and log.purchase is None
    assert log.pscore.tolist() == [1.0] * 6
    u0 = app.extensions["slatewise"].pseudonyms.of("u0")  # the store holds pseudonyms only
    assert log.session_id[0] == log.session_id[2] == session_of(u0) != log.session_id[1]
    assert log.policy[0] == "default/control/linucb@v0"
    assert log.metadata.reward_type == "click"
    later = export_log(db, now=clock.now + 3601.0)
    assert later.n_rounds == 6


def test_export_cli_writes_a_valid_log(app: Flask, client: FlaskClient, tmp_path: Path) -> None:
    for i in range(3):
        body = client.post("/v1/slates", json={"user_id": f"u{i}", "context": [1, 2, 3, 4]}).get_json()
        client.post("/v1/rewards", json={"event_id": body["event_id"], "reward": [0.5, 0, 0]})
    out = tmp_path / "served.parquet"
    db = store_target(app.extensions["slatewise"].cfg)
    res = CliRunner().invoke(main, ["logs", "export-serving", db, "-o", str(out), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["rows"] == 3 and summary["k"] == 3 and summary["rewarded_share"] == 1.0
    log = load_parquet(out)
    assert log.n_rounds == 3 and log.metadata.reward_type == "custom"
    assert log.reward[:, 0].tolist() == [0.5, 0.5, 0.5]


def test_export_refuses_what_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        export_log(tmp_path / "nope.db")
    res = CliRunner().invoke(main, ["logs", "export-serving", str(tmp_path / "nope.db"), "-o",
                                    str(tmp_path / "x.parquet")])
    assert res.exit_code == 1 and "does not exist" in res.output


def test_export_of_an_empty_store_is_an_empty_log(app: Flask, tmp_path: Path) -> None:
    db = store_target(app.extensions["slatewise"].cfg)
    assert export_log(db).n_rounds == 0
    res = CliRunner().invoke(main, ["logs", "export-serving", db, "-o", str(tmp_path / "e.parquet"), "--json"])
    assert res.exit_code == 0 and json.loads(res.output)["rows"] == 0


def test_export_is_the_same_from_either_store(tmp_path: Path, pg_schema_url: str, clock: Clock) -> None:
    """The same requests served on SQLite and on PostgreSQL export to the same log."""
    logs = []
    for name, store in (("sqlite", ""), ("postgresql", pg_schema_url)):
        app = create_app(make_config(tmp_path / name, store=store, user_id_secret="one-secret-for-both-stores"),
                         clock=clock)
        try:
            client = app.test_client()
            for i in range(5):
                body = client.post("/v1/slates", json={"user_id": f"u{i % 2}", "context": [i, 1, 0, 2]}).get_json()
                if i % 2 == 0:
                    client.post("/v1/rewards", json={"event_id": body["event_id"], "clicks": [0, 1, 0],
                                                     "revenue": [0, 3.5, 0]})
            out = tmp_path / f"{name}.parquet"
            res = CliRunner().invoke(main, ["logs", "export-serving", store_target(app.extensions["slatewise"].cfg),
                                            "-o", str(out), "--include-pending", "--json"])
            assert res.exit_code == 0, res.output
            logs.append(load_parquet(out))
        finally:
            app.extensions["slatewise"].store.close()
    lite, pg = logs
    assert lite.n_rounds == pg.n_rounds == 5
    for field in ("context", "slate", "reward", "pscore", "pscore_item", "event_id", "session_id", "timestamp",
                  "revenue"):
        np.testing.assert_array_equal(getattr(lite, field), getattr(pg, field), err_msg=field)
    assert list(lite.policy) == list(pg.policy) and lite.reward.sum() == 3
