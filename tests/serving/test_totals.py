"""Running totals: the statistics from cursors equal a full pass, pending is not zero, users not decisions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving import rollout
from serving.config import ABExperimentConfig, ArmConfig
from serving.stats import msprt_pvalue, srm_pvalue
from serving.store import NewDecision, NewReward, SQLiteStore
from tests.serving.conftest import Clock, admin
from tests.serving.test_experiments_api import ab, fill

EXP = ABExperimentConfig(name="ab", salt="ab-v1", control="control", msprt_tau=0.2,
                         arms=(ArmConfig("control", "uniform", 0.5), ArmConfig("treatment", "uniform", 0.5)))


def add(store: SQLiteStore, user: str, arm: str, ts: float) -> int:
    return store.add_decision(NewDecision(ts=ts, user_id=user, experiment="ab", arm=arm, policy="x",
                                          policy_version=0, traffic_version=1, context=np.zeros(2),
                                          slate=np.arange(2), pscore=1.0, pscore_item=np.ones(2)))


def reward(store: SQLiteStore, event: int, value: float) -> None:
    store.add_reward(NewReward(event_id=event, ts=0.0, reward=np.array([value, 0.0]), purchase=None,
                               revenue=None, digest=str(value)))


def test_totals_advanced_in_steps_equal_one_pass_over_the_same_order(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    rng = np.random.default_rng(4)
    order: list[tuple[str, float]] = []  # (arm, reward) in the order outcomes become final
    for step in range(4):
        events = []
        for i in range(150):
            arm = "treatment" if rng.random() < 0.5 else "control"
            events.append((add(store, f"u{step}-{i}", arm, ts=100.0 * step), arm))
        rewarded = []
        for event, arm in events:
            if rng.random() < 0.6:
                value = float(rng.random() < (0.5 if arm == "treatment" else 0.3))
                reward(store, event, value)
                rewarded.append((arm, value))
        rollout.evaluate(store, EXP, (EXP,), expired_before=-1.0)  # nothing expired yet: rewards only
        order += rewarded
        totals = store.totals().experiment("ab")
        assert totals.decisions("control") + totals.decisions("treatment") == 150 * (step + 1)
    report = rollout.evaluate(store, EXP, (EXP,), expired_before=1e9)  # every window closed: zeros now
    rewarded_ids = {int(r[0]) for r in store._conn().execute("SELECT event_id FROM rewards")}
    arms = dict(store._conn().execute("SELECT event_id, arm FROM decisions").fetchall())
    order += [(arms[e], 0.0) for e in sorted(set(arms) - rewarded_ids)]
    x = np.array([v for _, v in order])
    is_t = np.array([a == "treatment" for a, _ in order])
    by_name = {a.name: a for a in report.arms}
    for name, mask in (("treatment", is_t), ("control", ~is_t)):
        assert by_name[name].summary.n_final == by_name[name].summary.n_decisions == int(mask.sum())
        assert by_name[name].summary.mean == pytest.approx(x[mask].mean())
        assert by_name[name].summary.sd == pytest.approx(x[mask].std(ddof=1))
    assert by_name["treatment"].msprt_p == pytest.approx(msprt_pvalue(x, is_t, tau=0.2))


def test_pending_decisions_are_not_counted_as_zero(app: Flask, client: FlaskClient, clock: Clock) -> None:
    # half the decisions get their reward (all clicks) now; the rest are still inside their window
    filled = fill(app, "ab", 200, {"control": 1.0, "treatment": 1.0}, rewarded=lambda i: i % 2 == 0)
    report = client.get("/v1/experiments/ab").get_json()
    for arm in report["arms"]:
        assert arm["mean_reward"] == pytest.approx(1.0)  # as zeros they would pull it to about 0.5
        assert arm["pending"] == arm["decisions"] - arm["final"] > 0
    clock.now += 3601.0  # the windows close: the missing rewards are final zeros now
    report = client.get("/v1/experiments/ab").get_json()
    for arm in report["arms"]:
        mine = [c for a, c in filled if a == arm["name"]]
        assert arm["pending"] == 0 and arm["final"] == len(mine)
        assert arm["mean_reward"] == pytest.approx(np.nansum(mine) / len(mine))


def test_srm_counts_distinct_users_not_decisions(app: Flask, client: FlaskClient) -> None:
    # one heavy user (300 requests) among 400 users, assigned by the live split
    heavy = "heavy-user"
    filled = fill(app, "ab", 700, {"control": 0.3, "treatment": 0.3},
                  user_of=lambda i: heavy if i < 300 else f"light-{i}")
    report = client.get("/v1/experiments/ab").get_json()
    assert report["srm"]["unit"] == "user" and sum(report["srm"]["users"].values()) == 401
    by_decisions = srm_pvalue(np.array([sum(a == n for a, _ in filled) for n in ("control", "treatment")]),
                              np.array([350.0, 350.0]))
    assert by_decisions < 1e-6  # what counting decisions said (and rolled back for)
    assert report["srm_p"] > 0.001 and report["decision"]["action"] != "roll back"


def test_a_shipped_rollout_writes_no_more_versions(app_factory: Any) -> None:
    app = app_factory(experiments=(ab(auto=True),))
    fill(app, "ab", 1200, {"control": 0.1, "treatment": 0.5})
    learner = app.extensions["slatewise"].learner
    learner.run_once()
    client = app.test_client()
    shipped = client.get("/v1/experiments/ab").get_json()
    assert shipped["weights"] == {"control": 0.0, "treatment": 1.0}
    for _ in range(5):  # idle passes
        learner.run_once()
    again = client.get("/v1/experiments/ab").get_json()
    assert again["traffic_version"] == shipped["traffic_version"] == 2
    assert again["decision"]["action"] == "continue" and "shipped" in again["decision"]["reason"]
    res = client.post("/v1/experiments/ab/traffic", json={"weights": {"treatment": 1.0}}, headers=admin())
    assert res.status_code == 200 and res.get_json()["applied"] is False
    assert client.get("/v1/experiments/ab").get_json()["traffic_version"] == 2


def test_the_history_is_paged_newest_first(client: FlaskClient) -> None:
    for i in range(5):
        w = 0.1 * (i + 1)
        assert client.post("/v1/experiments/ab/traffic", headers=admin(),
                           json={"weights": {"control": 1 - w, "treatment": w}, "reason": f"c{i}"}).status_code == 200
    seen, before = [], None
    for _ in range(4):
        query = "?history_limit=2" + (f"&history_before={before}" if before else "")
        page = client.get("/v1/experiments/ab" + query).get_json()
        assert len(page["history"]) <= 2
        seen += [h["version"] for h in page["history"]]
        before = page["history_next"]
        if before is None:
            break
    assert seen == [6, 5, 4, 3, 2, 1]
    assert len(client.get("/v1/experiments/ab").get_json()["history"]) == 6  # default page of 20
    for bad in ("0", "101", "x", "-1"):
        res = client.get(f"/v1/experiments/ab?history_limit={bad}")
        assert res.status_code == 422 and res.get_json()["error"]["field"] == "history_limit"
