from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving import rollout
from serving.assignment import assign
from serving.config import ABExperimentConfig, ArmConfig
from serving.store import EventStore, NewDecision, NewReward
from tests.serving.conftest import TOKEN, admin, slate_body


def fill(app: Flask, experiment: str, n: int, p_click: dict[str, float], seed: int = 0,
         arm_of: Callable[[str], str] | None = None, user_of: Callable[[int], str] | None = None,
         rewarded: Callable[[int], bool] | None = None) -> list[tuple[str, float]]:
    """Store n decisions (users assigned by the live split) with Bernoulli clicks per arm.

    Returns:
        (arm, click) of every decision, in order (click NaN where no reward was posted).
    """
    svc = app.extensions["slatewise"]
    exp = svc.cfg.experiment(experiment)
    split = svc.traffic.refresh(experiment)
    rng = np.random.default_rng(seed)
    store: EventStore = svc.store
    out = []
    for i in range(n):
        user = user_of(i) if user_of else f"{experiment}-{seed}-{i}"
        arm = arm_of(user) if arm_of else exp.arms[assign(user, exp.salt, split.buckets)].name
        event = store.add_decision(NewDecision(
            ts=svc.clock(), user_id=user, experiment=experiment, arm=arm, policy="x", policy_version=0,
            traffic_version=split.version, context=np.zeros(4), slate=np.arange(3), pscore=1.0,
            pscore_item=np.ones(3), anchor=None))
        click = float(rng.random() < p_click[arm])
        if rewarded is None or rewarded(i):
            store.add_reward(NewReward(event_id=event, ts=svc.clock(), reward=np.array([click, 0, 0]),
                                       purchase=None, revenue=None, digest=str(click)))
            out.append((arm, click))
        else:
            out.append((arm, float("nan")))
    return out


def ab(**changes: Any) -> ABExperimentConfig:
    base: dict[str, Any] = {
        "name": "ab", "salt": "ab-v1", "control": "control", "min_decisions_per_stage": 50,
        "arms": (ArmConfig("control", "linucb", 0.5), ArmConfig("treatment", "uniform", 0.5, learn=False))}
    base.update(changes)
    return ABExperimentConfig(**base)


def test_report_has_arms_weights_tests_and_decision(app: Flask, client: FlaskClient) -> None:
    filled = fill(app, "ab", 400, {"control": 0.3, "treatment": 0.3})
    report = client.get("/v1/experiments/ab").get_json()
    assert report["weights"] == {"control": 0.5, "treatment": 0.5}
    arms = {a["name"]: a for a in report["arms"]}
    assert arms["control"]["decisions"] + arms["treatment"]["decisions"] == 400
    for name, arm in arms.items():
        r = np.array([click for a, click in filled if a == name])
        assert arm["mean_reward"] == pytest.approx(r.mean())
        half = 1.959963984540054 * r.std(ddof=1) / np.sqrt(r.size)
        assert arm["interval"] == pytest.approx([r.mean() - half, r.mean() + half])
    assert 0.0 <= report["srm_p"] <= 1.0 and report["srm_p"] > 0.001
    assert arms["control"]["msprt_p"] is None and 0 < arms["treatment"]["msprt_p"] <= 1
    assert report["decision"]["action"] in ("continue", "ship", "ramp")
    assert report["history"][-1]["actor"] == "config"


def test_unknown_experiment_is_404(client: FlaskClient) -> None:
    res = client.get("/v1/experiments/nope")
    assert res.status_code == 404 and "nope" in res.get_json()["error"]["message"]


def test_worse_treatment_is_rolled_back_with_a_reason(app: Flask, client: FlaskClient) -> None:
    fill(app, "ab", 1200, {"control": 0.5, "treatment": 0.1})
    report = client.get("/v1/experiments/ab").get_json()
    assert report["decision"]["action"] == "roll back"
    assert "worse than control" in report["decision"]["reason"]
    res = client.post("/v1/experiments/ab/traffic", json={"action": "apply"}, headers=admin())
    assert res.status_code == 200 and res.get_json()["weights"] == {"control": 1.0, "treatment": 0.0}
    history = client.get("/v1/experiments/ab").get_json()["history"]
    assert history[0]["reason"].startswith("roll back: guardrail") and history[0]["actor"] == "admin"
    arms = {client.post("/v1/slates", json=slate_body(f"x{i}", experiment="ab")).get_json()["arm"]
            for i in range(30)}
    assert arms == {"control"}


def test_auto_rollout_rolls_back_by_itself(app_factory: Any) -> None:
    app = app_factory(experiments=(ab(auto=True),))
    fill(app, "ab", 1200, {"control": 0.5, "treatment": 0.1})
    app.extensions["slatewise"].learner.run_once()
    report = app.test_client().get("/v1/experiments/ab").get_json()
    assert report["weights"]["treatment"] == 0.0
    assert report["history"][0]["actor"] == "rollout" and "worse" in report["history"][0]["reason"]


def test_sample_ratio_mismatch_is_a_guardrail(app: Flask, client: FlaskClient) -> None:
    fill(app, "ab", 300, {"control": 0.3, "treatment": 0.3}, arm_of=lambda user: "control")
    report = client.get("/v1/experiments/ab").get_json()
    assert report["srm_p"] < 1e-10
    assert report["decision"]["action"] == "roll back" and "sample ratio" in report["decision"]["reason"]


def test_ramp_advances_while_treatment_holds_up(app_factory: Any) -> None:
    exp = ab(arms=(ArmConfig("control", "linucb", 0.95), ArmConfig("treatment", "uniform", 0.05)))
    app = app_factory(experiments=(exp,))
    client = app.test_client()
    assert client.get("/v1/experiments/ab").get_json()["decision"]["action"] == "continue"
    fill(app, "ab", 2000, {"control": 1.0, "treatment": 1.0})  # equal: lower bound of diff = 0
    decision = client.get("/v1/experiments/ab").get_json()["decision"]
    assert decision["action"] == "ramp"
    assert decision["weights"] == pytest.approx({"control": 0.75, "treatment": 0.25})
    res = client.post("/v1/experiments/ab/traffic", json={"action": "apply"}, headers=admin())
    assert res.get_json()["weights"] == pytest.approx({"control": 0.75, "treatment": 0.25})
    # a new stage starts counting from zero decisions at the new split
    assert client.get("/v1/experiments/ab").get_json()["decision"]["action"] == "continue"


def test_better_treatment_at_the_last_stage_ships(app: Flask, client: FlaskClient) -> None:
    fill(app, "ab", 1200, {"control": 0.1, "treatment": 0.5})
    decision = client.get("/v1/experiments/ab").get_json()["decision"]
    assert decision["action"] == "ship" and decision["weights"] == {"control": 0.0, "treatment": 1.0}


def test_weight_change_moves_the_fewest_users(app: Flask, client: FlaskClient) -> None:
    users = [f"shopper{i}" for i in range(300)]
    before = {u: client.post("/v1/slates", json=slate_body(u, experiment="ab")).get_json()["arm"]
              for u in users}
    res = client.post("/v1/experiments/ab/traffic", headers=admin(),
                      json={"weights": {"control": 0.8, "treatment": 0.2}, "reason": "less risk"})
    assert res.status_code == 200 and res.get_json()["traffic_version"] == 2
    after = {u: client.post("/v1/slates", json=slate_body(u, experiment="ab")).get_json()["arm"]
             for u in users}
    moved = [u for u in users if before[u] != after[u]]
    assert all(before[u] == "treatment" and after[u] == "control" for u in moved)
    assert not any(before[u] == "control" and after[u] == "treatment" for u in users)
    assert 0.2 < len(moved) / len(users) < 0.4  # 30% of buckets moved


AUTH = [
    pytest.param({}, 401, "nothing", id="no-header"),
    pytest.param({"Authorization": "Bearer wrong"}, 401, "wrong token", id="wrong-token"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, 401, "wrong token", id="wrong-scheme"),
]


@pytest.mark.parametrize(("headers", "status", "message"), AUTH)
def test_traffic_needs_the_admin_token(client: FlaskClient, headers: dict[str, str], status: int,
                                       message: str) -> None:
    res = client.post("/v1/experiments/ab/traffic", json={"weights": {"control": 1.0}}, headers=headers)
    assert res.status_code == status and message in res.get_json()["error"]["message"]
    assert client.get("/v1/experiments/ab").get_json()["traffic_version"] == 1


def test_traffic_disabled_without_a_token(app_factory: Any) -> None:
    client = app_factory(admin_token="").test_client()
    res = client.post("/v1/experiments/ab/traffic", json={"weights": {"control": 1.0}},
                      headers={"Authorization": "Bearer "})
    assert res.status_code == 403 and "SLATEWISE_ADMIN_TOKEN" in res.get_json()["error"]["message"]


BAD_TRAFFIC = [
    pytest.param({"weights": {"control": 0.5}}, "weights", "summing to 1", id="sum"),
    pytest.param({"weights": {"control": 0.5, "other": 0.5}}, "weights", "unknown arms", id="unknown-arm"),
    pytest.param({"weights": {"control": 1.5, "treatment": -0.5}}, "weights.control", r"\[0, 1\]",
                 id="range"),
    pytest.param({"weights": {"control": "1"}}, "weights.control", "share", id="string"),
    pytest.param({"weights": [1.0]}, "weights", "object", id="list"),
    pytest.param({}, "weights", "exactly one", id="empty"),
    pytest.param({"action": "explode"}, "action", "apply", id="bad-action"),
    pytest.param({"weights": {"control": 1.0}, "reason": 3}, "reason", "string", id="reason-int"),
    pytest.param({"weights": {"control": 1.0}, "reason": "\ud800"}, "reason", "string", id="reason-surrogate"),
    pytest.param({"weights": {"control": 1.0}, "hack": 1}, "hack", "unknown field", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "field", "message"), BAD_TRAFFIC)
def test_bad_traffic_changes_are_422(client: FlaskClient, body: dict[str, Any], field: str,
                                     message: str) -> None:
    import re

    res = client.post("/v1/experiments/ab/traffic", json=body, headers=admin())
    assert res.status_code == 422
    assert res.get_json()["error"]["field"] == field and re.search(message, res.get_json()["error"]["message"])
    assert client.get("/v1/experiments/ab").get_json()["traffic_version"] == 1


def test_off_policy_bar_guards_a_new_arm(app_factory: Any) -> None:
    exp = ab(arms=(ArmConfig("control", "uniform", 1.0), ArmConfig("candidate", "uniform", 0.0, ope_bar=0.9)))
    app = app_factory(experiments=(exp,))
    client = app.test_client()
    fill(app, "ab", 300, {"control": 0.3, "candidate": 0.3})
    res = client.post("/v1/experiments/ab/traffic", headers=admin(),
                      json={"weights": {"control": 0.95, "candidate": 0.05}})
    assert res.status_code == 409 and res.get_json()["error"]["field"] == "weights.candidate"
    assert "ope_bar = 0.9" in res.get_json()["error"]["message"]


def test_off_policy_estimate_matches_a_hand_computation(app_factory: Any) -> None:
    # Logged by a deterministic arm (pscore_item = 1) with slate [0, 1, 2]; the uniform
    # candidate shows item j at slot j with probability 1/20, so each decision is worth
    # clicks_on_slot0 / 20 (fill only clicks slot 0).
    exp = ab(arms=(ArmConfig("control", "linucb", 1.0), ArmConfig("candidate", "uniform", 0.0, ope_bar=-1.0)))
    app = app_factory(experiments=(exp,))
    filled = fill(app, "ab", 200, {"control": 0.4, "candidate": 0.0})
    svc = app.extensions["slatewise"]
    est = rollout.off_policy_estimate(svc.store, exp, svc.hub.get("ab", "candidate").policy)
    clicks = np.array([click for _, click in filled])
    assert est.n == 200 and est.value == pytest.approx(clicks.mean() / 20)
    res = app.test_client().post("/v1/experiments/ab/traffic", headers=admin(),
                                 json={"weights": {"control": 0.9, "candidate": 0.1}})
    assert res.status_code == 200 and res.get_json()["ope"]["candidate"]["n"] == 200


def test_changed_arms_reset_the_split_with_a_reason(app_factory: Any, client: FlaskClient) -> None:
    client.post("/v1/slates", json=slate_body(experiment="ab"))
    three = ab(arms=(ArmConfig("control", "linucb", 0.6), ArmConfig("treatment", "uniform", 0.2),
                     ArmConfig("other", "uniform", 0.2)))
    report = app_factory(experiments=(three,)).test_client().get("/v1/experiments/ab").get_json()
    assert report["traffic_version"] == 2 and report["weights"] == {"control": 0.6, "treatment": 0.2,
                                                                     "other": 0.2}
    assert "arms changed" in report["history"][0]["reason"]
