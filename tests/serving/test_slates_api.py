from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from bandits import make_policy
from tests.serving.conftest import slate_body


def count_decisions(app: Flask) -> int:
    return len(app.extensions["slatewise"].store.event_ids())


def test_slate_answer_is_stored_with_everything_before_it_returns(app: Flask, client: FlaskClient) -> None:
    res = client.post("/v1/slates", json=slate_body("alice"))
    assert res.status_code == 200
    body = res.get_json()
    assert set(body) >= {"event_id", "slate", "propensity", "arm", "policy", "policy_version"}
    assert body["policy"] == "linucb" and body["arm"] == "control" and body["policy_version"] == 0
    svc = app.extensions["slatewise"]
    stored = svc.store.decision(svc.tokens.verify(body["event_id"]))
    assert stored is not None
    assert stored.user_id == app.extensions["slatewise"].pseudonyms.of("alice") != "alice" and stored.arm == "control" and stored.policy == "linucb"
    np.testing.assert_array_equal(stored.context, [0.5, -1.0, 0.25, 2.0])
    assert stored.slate.tolist() == body["slate"]  # anonymous catalog: item id == index
    assert stored.pscore == body["propensity"] == 1.0
    assert stored.ts == pytest.approx(1_700_000_000.0)


def test_slate_matches_the_policy_run_directly(client: FlaskClient) -> None:
    # The served slate is LinUCB's own choice for the context (an untrained LinUCB, same config).
    policy = make_policy("linucb", n_items=20, k=3, dim_context=4, alpha=1.0, seed=0)
    ctx = np.array([[0.5, -1.0, 0.25, 2.0]])
    expected = policy.select(ctx).slate[0].tolist()
    assert client.post("/v1/slates", json=slate_body()).get_json()["slate"] == expected


def test_candidates_exclude_and_anchor_are_respected(client: FlaskClient) -> None:
    body = client.post("/v1/slates", json=slate_body(candidates=[3, 5, 7, 9, 11], exclude=[5],
                                                     anchor_item=7)).get_json()
    assert set(body["slate"]) <= {3, 9, 11} and len(set(body["slate"])) == 3


def test_shorter_k_is_a_prefix(client: FlaskClient) -> None:
    full = client.post("/v1/slates", json=slate_body()).get_json()
    short = client.post("/v1/slates", json=slate_body(k=2)).get_json()
    assert short["slate"] == full["slate"][:2] and short["propensity"] == 1.0


def test_named_features(app_factory: Any) -> None:
    client = app_factory(context_names=("age", "price", "hour", "device")).test_client()
    named = client.post("/v1/slates", json={"user_id": "u", "context": {
        "age": 0.5, "price": -1.0, "hour": 0.25, "device": 2.0}}).get_json()
    listed = client.post("/v1/slates", json=slate_body("u")).get_json()
    assert named["slate"] == listed["slate"]
    res = client.post("/v1/slates", json={"user_id": "u", "context": {"age": 1}})
    assert res.status_code == 422 and res.get_json()["error"]["field"] == "context"


def test_experiment_field_and_sticky_arms(client: FlaskClient) -> None:
    arms = {client.post("/v1/slates", json=slate_body(f"user{i}", experiment="ab")).get_json()["arm"]
            for i in range(40)}
    assert arms == {"control", "treatment"}
    first = [client.post("/v1/slates", json=slate_body(f"user{i}", experiment="ab")).get_json()["arm"]
             for i in range(10)]
    again = [client.post("/v1/slates", json=slate_body(f"user{i}", experiment="ab")).get_json()["arm"]
             for i in range(10)]
    assert first == again


def test_uniform_arm_reports_exact_propensity(client: FlaskClient) -> None:
    for i in range(40):
        body = client.post("/v1/slates", json=slate_body(f"user{i}", experiment="ab")).get_json()
        if body["arm"] == "treatment":
            assert body["propensity"] == pytest.approx(1 / (20 * 19 * 18))
            return
    pytest.fail("no user landed in the treatment arm")


BAD_SLATES = [
    pytest.param(b"{not json", 400, "body", "not valid JSON", id="malformed-json"),
    pytest.param(b"[1, 2]", 400, "body", "JSON object", id="not-an-object"),
    pytest.param(b'{"user_id": "u", "context": [NaN, 0, 0, 0]}', 400, "body", "NaN", id="nan"),
    pytest.param(b'{"user_id": "u", "context": [Infinity, 0, 0, 0]}', 400, "body", "Infinity", id="inf"),
    pytest.param(b'{"user_id": "u", "context": [1e999, 0, 0, 0]}', 422, "context[0]", "finite", id="overflow"),
    pytest.param(b"[" * 50_000, 400, "body", "", id="deep-nesting"),
    pytest.param({"context": [0, 0, 0, 0]}, 422, "user_id", "non-empty string", id="no-user"),
    pytest.param({"user_id": "", "context": [0, 0, 0, 0]}, 422, "user_id", "non-empty", id="empty-user"),
    pytest.param({"user_id": ["u"], "context": [0, 0, 0, 0]}, 422, "user_id", "string", id="user-list"),
    pytest.param(b'{"user_id": "\\ud800", "context": [0, 0, 0, 0]}', 422, "user_id", "valid characters",
                 id="user-lone-surrogate"),
    pytest.param({"user_id": "u"}, 422, "context", "4 numbers", id="no-context"),
    pytest.param({"user_id": "u", "context": [0, 0, 0]}, 422, "context", "expected 4 numbers, found 3",
                 id="short-context"),
    pytest.param({"user_id": "u", "context": "0,0,0,0"}, 422, "context", "list of 4", id="context-str"),
    pytest.param({"user_id": "u", "context": [0, "a", 0, 0]}, 422, "context[1]", "a number",
                 id="context-text"),
    pytest.param({"user_id": "u", "context": [0, True, 0, 0]}, 422, "context[1]", "a number",
                 id="context-bool"),
    pytest.param({"user_id": "u", "context": [0, 10**400, 0, 0]}, 422, "context[1]", "finite",
                 id="context-huge-int"),
    pytest.param({"user_id": "u", "context": [0, 0, 0, 1.3e154]}, 422, "context[3]", r"within ±1e\+06",
                 id="context-too-large"),
    pytest.param({"user_id": "u", "context": {"a": 1}}, 422, "context", "no feature names",
                 id="named-without-names"),
    pytest.param(slate_body(k=0), 422, "k", r"\[1, 3\]", id="k-zero"),
    pytest.param(slate_body(k=4), 422, "k", r"\[1, 3\]", id="k-too-big"),
    pytest.param(slate_body(k="2"), 422, "k", "integer", id="k-string"),
    pytest.param(slate_body(k=1.5), 422, "k", "integer", id="k-fraction"),
    pytest.param(slate_body(candidates=[1, 2, 999]), 422, "candidates[2]", "item id of the catalog",
                 id="unknown-candidate"),
    pytest.param(slate_body(candidates=[1, 2]), 422, "candidates", "at least 3", id="too-few-candidates"),
    pytest.param(slate_body(candidates="1,2,3"), 422, "candidates", "list of item ids", id="candidates-str"),
    pytest.param(slate_body(exclude=[-1]), 422, "exclude[0]", "item id", id="unknown-exclude"),
    pytest.param(slate_body(exclude=list(range(18))), 422, "exclude", "at least 3", id="exclude-all"),
    pytest.param(slate_body(anchor_item=20), 422, "anchor_item", "item id", id="unknown-anchor"),
    pytest.param(slate_body(anchor_item="x"), 422, "anchor_item", "integer", id="anchor-str"),
    pytest.param(slate_body(experiment="nope"), 422, "experiment", "one of", id="unknown-experiment"),
    pytest.param(slate_body(experiment=3), 422, "experiment", "name", id="experiment-int"),
    pytest.param(slate_body(colour="red"), 422, "colour", "unknown field", id="unknown-field"),
]


@pytest.mark.parametrize(("body", "status", "field", "message"), BAD_SLATES)
def test_bad_slate_requests_are_4xx_naming_the_field_and_store_nothing(
        app: Flask, client: FlaskClient, body: Any, status: int, field: str, message: str) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    res = client.post("/v1/slates", data=data, content_type="application/json")
    assert res.status_code == status, res.get_json()
    error = res.get_json()["error"]
    assert error["field"] == field
    assert re.search(message, error["message"])
    assert count_decisions(app) == 0


def test_oversized_body_is_413(app: Flask, client: FlaskClient) -> None:
    body = json.dumps(slate_body(exclude=[1] * 40_000)).encode()
    res = client.post("/v1/slates", data=body, content_type="application/json")
    assert res.status_code == 413
    assert res.get_json()["error"]["field"] == "body"
    assert count_decisions(app) == 0


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    res = client.get("/v1/slates")
    assert res.status_code == 405 and "error" in res.get_json()
    res = client.get("/nope")
    assert res.status_code == 404 and "error" in res.get_json()
