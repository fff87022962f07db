"""Two apps on one store and one model directory behave like two gunicorn workers."""

from __future__ import annotations

import time
from pathlib import Path

from serving import create_app
from tests.serving.conftest import admin, make_config, slate_body


def test_a_second_worker_sees_new_splits_and_policy_versions(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, reload_interval_s=0.05)
    first, second = create_app(cfg), create_app(cfg)
    a, b = first.test_client(), second.test_client()
    users = [f"w{i}" for i in range(60)]
    assert [a.post("/v1/slates", json=slate_body(u, experiment="ab")).get_json()["arm"] for u in users] == \
        [b.post("/v1/slates", json=slate_body(u, experiment="ab")).get_json()["arm"] for u in users]
    res = a.post("/v1/experiments/ab/traffic", json={"weights": {"control": 1.0}}, headers=admin())
    assert res.status_code == 200
    time.sleep(0.1)
    assert {b.post("/v1/slates", json=slate_body(u, experiment="ab")).get_json()["arm"] for u in users} == \
        {"control"}
    # worker 1 learns and publishes; worker 2 answers with the new version after its reload interval
    event = b.post("/v1/slates", json=slate_body("learner-food")).get_json()["event_id"]
    a.post("/v1/rewards", json={"event_id": event, "clicks": [1, 0, 0]})
    assert first.extensions["slatewise"].learner.run_once() == {("default", "control"): 1}
    time.sleep(0.1)
    assert b.post("/v1/slates", json=slate_body("after")).get_json()["policy_version"] == 1
    ids = {a.post("/v1/slates", json=slate_body(f"x{i}")).get_json()["event_id"] for i in range(5)}
    ids |= {b.post("/v1/slates", json=slate_body(f"y{i}")).get_json()["event_id"] for i in range(5)}
    assert len(ids) == 10  # event ids are unique across workers
