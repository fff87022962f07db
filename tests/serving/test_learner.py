from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bandits import Feedback, SlatePolicy, make_policy
from serving.learner import Learner
from serving.models import KEEP_VERSIONS, arm_dir, read_pointer
from tests.serving.conftest import Clock, slate_body


def serve_and_reward(client: FlaskClient, n: int, clicks: list[int] | None = None) -> list[dict[str, Any]]:
    answers = []
    rng = np.random.default_rng(0)
    for i in range(n):
        ctx = rng.standard_normal(4).round(3).tolist()
        body = client.post("/v1/slates", json={"user_id": f"u{i}", "context": ctx}).get_json()
        body["context"] = ctx
        if clicks is not None:
            client.post("/v1/rewards", json={"event_id": body["event_id"], "clicks": clicks})
        answers.append(body)
    return answers


def test_learner_publishes_the_policy_a_direct_update_would_give(app: Flask, client: FlaskClient) -> None:
    answers = serve_and_reward(client, 20, clicks=[1, 0, 0])
    svc = app.extensions["slatewise"]
    assert svc.learner.run_once() == {("default", "control"): 1}
    directory = arm_dir(svc.cfg.model_dir, "default", "control")
    pointer = read_pointer(directory)
    assert pointer is not None and pointer["version"] == 1 and pointer["seq"] == 20
    learned = SlatePolicy.load(directory / pointer["file"])
    # independent: the same feedback fed to a fresh LinUCB by hand
    direct = make_policy("linucb", n_items=20, k=3, dim_context=4, alpha=1.0, seed=0)
    direct.update(Feedback(np.array([a["context"] for a in answers]), np.array([a["slate"] for a in answers]),
                           np.tile([1.0, 0.0, 0.0], (20, 1))))
    ctx = np.random.default_rng(1).standard_normal((50, 4))
    np.testing.assert_array_equal(learned.select(ctx).slate, direct.select(ctx).slate)
    # nothing new: no new version
    assert svc.learner.run_once() == {}


def test_workers_pick_up_new_versions(app: Flask, client: FlaskClient) -> None:
    serve_and_reward(client, 10, clicks=[0, 1, 0])
    svc = app.extensions["slatewise"]
    svc.learner.run_once()
    svc.hub.reload(force=True)
    body = client.post("/v1/slates", json=slate_body()).get_json()
    assert body["policy_version"] == 1
    assert svc.store.decision(svc.tokens.verify(body["event_id"])).policy_version == 1


def test_unrewarded_decisions_count_as_zero_after_the_window(app: Flask, client: FlaskClient,
                                                             clock: Clock) -> None:
    serve_and_reward(client, 5)
    svc = app.extensions["slatewise"]
    assert svc.learner.run_once() == {}
    clock.now += 3601.0
    assert svc.learner.run_once() == {("default", "control"): 1}
    pointer = read_pointer(arm_dir(svc.cfg.model_dir, "default", "control"))
    assert pointer is not None and pointer["event"] == 5


def test_a_new_learner_resumes_from_the_pointer(app: Flask, client: FlaskClient, clock: Clock) -> None:
    serve_and_reward(client, 6, clicks=[1, 1, 0])
    svc = app.extensions["slatewise"]
    svc.learner.run_once()
    fresh = Learner(svc.cfg, svc.shape, svc.store, clock=clock)
    assert fresh.run_once() == {}  # cursors come from CURRENT.json: nothing is learned twice
    serve_and_reward(client, 2, clicks=[0, 0, 1])
    assert fresh.run_once() == {("default", "control"): 2}


def test_old_versions_are_pruned(app: Flask, client: FlaskClient) -> None:
    svc = app.extensions["slatewise"]
    for _ in range(KEEP_VERSIONS + 2):
        serve_and_reward(client, 1, clicks=[1, 0, 0])
        svc.learner.run_once()
    files = sorted(p.name for p in arm_dir(svc.cfg.model_dir, "default", "control").glob("v*.npz"))
    assert len(files) == KEEP_VERSIONS and files[-1] == f"v{KEEP_VERSIONS + 2:08d}.npz"


def test_only_one_learner_holds_the_lock(app: Flask, tmp_path: Path) -> None:
    svc = app.extensions["slatewise"]
    first = Learner(svc.cfg, svc.shape, svc.store)
    second = Learner(svc.cfg, svc.shape, svc.store)
    try:
        assert first.try_lead() is True
        assert second.try_lead() is False
        first.release()
        assert second.try_lead() is True
    finally:
        first.release()
        second.release()


def test_a_corrupt_pointer_keeps_the_served_policy(app: Flask, client: FlaskClient) -> None:
    svc = app.extensions["slatewise"]
    directory = arm_dir(svc.cfg.model_dir, "default", "control")
    directory.mkdir(parents=True)
    (directory / "CURRENT.json").write_text(json.dumps({"version": 3, "file": "missing.npz"}))
    assert svc.hub.reload(force=True) == 0
    assert client.post("/v1/slates", json=slate_body()).get_json()["policy_version"] == 0


@pytest.mark.parametrize("learn", [False])
def test_arms_that_do_not_learn_are_left_alone(app: Flask, client: FlaskClient, learn: bool) -> None:
    svc = app.extensions["slatewise"]
    exp = svc.cfg.experiment("ab")
    assert exp.arm("treatment").learn is learn
    client.post("/v1/slates", json=slate_body(experiment="ab"))
    published = svc.learner.run_once()
    assert ("ab", "treatment") not in published
