from __future__ import annotations

import json
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.serving.conftest import Clock, read_rows, slate_body


def decide(client: FlaskClient, **extra: Any) -> str:
    return str(client.post("/v1/slates", json=slate_body(**extra)).get_json()["event_id"])


def stored_rewards(app: Flask) -> list[float]:
    """Total reward of every stored reward row, read with a connection of its own."""
    return [r[0] for r in read_rows(app.extensions["slatewise"].cfg, "SELECT reward_total FROM rewards ORDER BY seq")]


def test_reward_is_stored_once_and_identical_repeat_is_harmless(app: Flask, client: FlaskClient) -> None:
    event = decide(client)
    body = {"event_id": event, "clicks": [0, 1, 0], "purchase": [0, 1, 0], "revenue": [0, 19.5, 0]}
    first = client.post("/v1/rewards", json=body)
    assert first.status_code == 202 and first.get_json()["status"] == "stored"
    again = client.post("/v1/rewards", json=body)
    assert again.status_code == 202 and again.get_json()["status"] == "duplicate"
    assert stored_rewards(app) == [1.0]


def test_conflicting_repeat_is_409_and_changes_nothing(app: Flask, client: FlaskClient) -> None:
    event = decide(client)
    assert client.post("/v1/rewards", json={"event_id": event, "clicks": [1, 0, 0]}).status_code == 202
    res = client.post("/v1/rewards", json={"event_id": event, "clicks": [0, 0, 1]})
    assert res.status_code == 409 and res.get_json()["error"]["field"] == "event_id"
    assert stored_rewards(app) == [1.0]


def test_scalar_reward_is_shared_by_the_slots(app: Flask, client: FlaskClient) -> None:
    event = decide(client)
    assert client.post("/v1/rewards", json={"event_id": event, "reward": 0.9}).status_code == 202
    # a second, numerically identical payload in list form is the same outcome
    res = client.post("/v1/rewards", json={"event_id": event, "reward": [0.3, 0.3, 0.3]})
    assert res.status_code == 202 and res.get_json()["status"] == "duplicate"


def test_an_event_id_the_service_did_not_issue_is_404(client: FlaskClient) -> None:
    real = decide(client)
    forged = real[:-2] + ("AA" if real[-2:] != "AA" else "BB")  # same id, another tag
    for event_id in (forged, "1", "x" * 32):
        res = client.post("/v1/rewards", json={"event_id": event_id, "clicks": [1, 0, 0]})
        assert res.status_code == 404 and res.get_json()["error"]["field"] == "event_id"


def test_reward_after_the_window_is_410(app: Flask, client: FlaskClient, clock: Clock) -> None:
    event = decide(client)
    clock.now += 3600.0  # exactly the window: still accepted
    assert client.post("/v1/rewards", json={"event_id": event, "clicks": [1, 0, 0]}).status_code == 202
    late = decide(client)
    clock.now += 3600.5
    res = client.post("/v1/rewards", json={"event_id": late, "clicks": [1, 0, 0]})
    assert res.status_code == 410 and "reward_window_s" in res.get_json()["error"]["message"]


def test_shorter_slate_takes_a_shorter_outcome(client: FlaskClient) -> None:
    event = decide(client, k=2)
    assert client.post("/v1/rewards", json={"event_id": event, "clicks": [1, 0, 0]}).status_code == 422
    assert client.post("/v1/rewards", json={"event_id": event, "clicks": [1, 0]}).status_code == 202


BAD_REWARDS = [
    pytest.param(b"nope", 400, "body", "not valid JSON", id="malformed"),
    pytest.param(b'{"event_id": 1, "reward": NaN}', 400, "body", "NaN", id="nan"),
    pytest.param({"clicks": [1, 0, 0]}, 422, "event_id", "event_id", id="no-event"),
    pytest.param({"event_id": 1, "clicks": [1, 0, 0]}, 422, "event_id", "string", id="event-int"),
    pytest.param({"event_id": "", "clicks": [1, 0, 0]}, 422, "event_id", "string", id="event-empty"),
    pytest.param({"event_id": "x" * 65, "clicks": [1, 0, 0]}, 422, "event_id", "string", id="event-long"),
    pytest.param({"event_id": 2**70, "clicks": [1, 0, 0]}, 422, "event_id", "string", id="event-huge"),
    pytest.param({"event_id": True, "clicks": [1, 0, 0]}, 422, "event_id", "string", id="event-bool"),
    pytest.param({"event_id": "EVENT"}, 422, "clicks", "exactly one", id="no-outcome"),
    pytest.param({"event_id": "EVENT", "clicks": [1, 0, 0], "reward": 1}, 422, "clicks", "both", id="both"),
    pytest.param({"event_id": "EVENT", "clicks": [1, 0]}, 422, "clicks", "3 numbers, found 2",
                 id="clicks-short"),
    pytest.param({"event_id": "EVENT", "clicks": [2, 0, 0]}, 422, "clicks", "0 or 1", id="clicks-two"),
    pytest.param({"event_id": "EVENT", "clicks": "101"}, 422, "clicks", "list", id="clicks-str"),
    pytest.param({"event_id": "EVENT", "reward": "1"}, 422, "reward", "a number", id="reward-str"),
    pytest.param({"event_id": "EVENT", "reward": [1, "x", 0]}, 422, "reward[1]", "a number", id="reward-item"),
    pytest.param({"event_id": "EVENT", "reward": [1e308, 1e308, 0]}, 422, "reward", r"within ±1e\+09",
                 id="reward-huge"),
    pytest.param({"event_id": "EVENT", "clicks": [1, 0, 0], "revenue": [1e300, 0, 0]}, 422, "revenue",
                 r"\[0, 1e\+12\]", id="revenue-huge"),
    pytest.param({"event_id": "EVENT", "clicks": [1, 0, 0], "purchase": [0.5, 0, 0]}, 422, "purchase",
                 "0 or 1", id="purchase-half"),
    pytest.param({"event_id": "EVENT", "clicks": [1, 0, 0], "revenue": [-1, 0, 0]}, 422, "revenue",
                 r"\[0, 1e\+12\]", id="revenue-negative"),
    pytest.param({"event_id": "EVENT", "clicks": [1, 0, 0], "extra": 1}, 422, "extra", "unknown field",
                 id="unknown-field"),
]


@pytest.mark.parametrize(("body", "status", "field", "message"), BAD_REWARDS)
def test_bad_rewards_are_4xx_naming_the_field_and_store_nothing(
        app: Flask, client: FlaskClient, body: Any, status: int, field: str, message: str) -> None:
    event = decide(client)
    if isinstance(body, dict) and body.get("event_id") == "EVENT":
        body = {**body, "event_id": event}
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    res = client.post("/v1/rewards", data=data, content_type="application/json")
    assert res.status_code == status, res.get_json()
    error = res.get_json()["error"]
    assert error["field"] == field
    assert re.search(message, error["message"])
    assert stored_rewards(app) == []
