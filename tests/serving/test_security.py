"""Callers who lie: forged event ids, missing keys, unauthenticated probes, integers too long to read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving.tokens import EventTokens, new_key
from tests.serving.conftest import TOKEN, admin, slate_body

HUGE = "9" * 5000  # longer than Python's int-string limit (4,300 digits)


def post_raw(client: FlaskClient, path: str, text: str, **kwargs: Any) -> Any:
    return client.post(path, data=text.encode(), content_type="application/json", **kwargs)


def test_tokens_round_trip_and_a_changed_bit_is_refused() -> None:
    tokens = EventTokens(new_key())
    for event_id in (1, 2, 2**40 + 7, 2**63 - 1):
        token = tokens.issue(event_id)
        assert len(token) == 32 and tokens.verify(token) == event_id
    token = tokens.issue(12)
    for i in range(32):  # every single-character change is refused
        other = "A" if token[i] != "A" else "B"
        assert tokens.verify(token[:i] + other + token[i + 1:]) in (None,)
    assert EventTokens(new_key()).verify(token) is None  # another store's key
    assert tokens.verify(token[:-1]) is None and tokens.verify("é" * 32) is None


def test_a_reward_for_an_id_never_issued_is_refused_without_a_database_read(
        app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    svc = app.extensions["slatewise"]
    event = client.post("/v1/slates", json=slate_body()).get_json()["event_id"]
    reads: list[int] = []
    real = svc.store.decision
    monkeypatch.setattr(svc.store, "decision", lambda e: reads.append(e) or real(e))
    next_id = svc.tokens.verify(event) + 1  # the next sequential id, guessed
    forged = EventTokens(new_key()).issue(next_id)
    for guess in (forged, str(next_id), event[:-4] + "AAAA"):
        res = client.post("/v1/rewards", json={"event_id": guess, "clicks": [1, 0, 0]})
        assert res.status_code == 404 and res.get_json()["error"]["field"] == "event_id"
    assert reads == []
    assert client.post("/v1/rewards", json={"event_id": event, "clicks": [1, 0, 0]}).status_code == 202
    assert reads == [svc.tokens.verify(event)]


def test_rewards_need_the_client_key_when_one_is_set(app_factory: Callable[..., Flask]) -> None:
    client = app_factory(client_key="shop-backend-key").test_client()
    event = client.post("/v1/slates", json=slate_body()).get_json()["event_id"]
    body = {"event_id": event, "clicks": [1, 0, 0]}
    for headers, found in (({}, "nothing"), ({"Authorization": "Bearer nope"}, "wrong token")):
        res = client.post("/v1/rewards", json=body, headers=headers)
        assert res.status_code == 401 and found in res.get_json()["error"]["message"]
    res = client.post("/v1/rewards", json=body, headers={"Authorization": "Bearer shop-backend-key"})
    assert res.status_code == 202


def test_the_traffic_endpoint_checks_the_token_before_the_experiment(client: FlaskClient) -> None:
    for name in ("ab", "no-such-experiment"):  # the same answer: names are not revealed
        res = client.post(f"/v1/experiments/{name}/traffic", json={"weights": {"control": 1.0}})
        assert res.status_code == 401 and res.get_json()["error"]["field"] == "Authorization"
    res = client.post("/v1/experiments/no-such-experiment/traffic", json={"weights": {"control": 1.0}},
                      headers=admin())
    assert res.status_code == 404 and TOKEN not in res.get_data(as_text=True)


SLATE_FIELDS = [
    pytest.param('{"user_id": %s, "context": [0, 0, 0, 0]}', "user_id", id="user_id"),
    pytest.param('{"user_id": "u", "context": [0, %s, 0, 0]}', "context[1]", id="context"),
    pytest.param('{"user_id": "u", "context": [0, -%s, 0, 0]}', "context[1]", id="context-negative"),
    pytest.param('{"user_id": "u", "context": [0, 0, 0, 0], "k": %s}', "k", id="k"),
    pytest.param('{"user_id": "u", "context": [0, 0, 0, 0], "candidates": [1, %s]}', "candidates[1]",
                 id="candidates"),
    pytest.param('{"user_id": "u", "context": [0, 0, 0, 0], "exclude": [%s]}', "exclude[0]", id="exclude"),
    pytest.param('{"user_id": "u", "context": [0, 0, 0, 0], "anchor_item": %s}', "anchor_item", id="anchor"),
]


@pytest.mark.parametrize(("template", "field"), SLATE_FIELDS)
@pytest.mark.parametrize("slates_app", [True, False])
def test_an_integer_too_long_to_read_is_4xx_naming_the_field_on_slates(
        app_factory: Callable[..., Flask], template: str, field: str, slates_app: bool) -> None:
    client = app_factory(slates_app=slates_app).test_client()
    res = post_raw(client, "/v1/slates", template % HUGE)
    assert res.status_code in (400, 422) and res.get_json()["error"]["field"] == field


REWARD_FIELDS = [
    pytest.param('{"event_id": %s, "clicks": [1, 0, 0]}', "event_id", id="event_id"),
    pytest.param('{"event_id": "EVENT", "reward": %s}', "reward", id="reward"),
    pytest.param('{"event_id": "EVENT", "reward": [0, %s, 0]}', "reward[1]", id="reward-list"),
    pytest.param('{"event_id": "EVENT", "clicks": [0, %s, 0]}', "clicks[1]", id="clicks"),
    pytest.param('{"event_id": "EVENT", "clicks": [1, 0, 0], "revenue": [%s, 0, 0]}', "revenue[0]",
                 id="revenue"),
]


@pytest.mark.parametrize(("template", "field"), REWARD_FIELDS)
def test_an_integer_too_long_to_read_is_4xx_naming_the_field_on_rewards(client: FlaskClient, template: str,
                                                                        field: str) -> None:
    event = client.post("/v1/slates", json=slate_body()).get_json()["event_id"]
    res = post_raw(client, "/v1/rewards", template.replace("EVENT", event) % HUGE)
    assert res.status_code in (400, 422) and res.get_json()["error"]["field"] == field


def test_an_integer_too_long_to_read_is_4xx_naming_the_field_on_traffic(client: FlaskClient) -> None:
    res = post_raw(client, "/v1/experiments/ab/traffic", '{"weights": {"control": ' + HUGE + "}}",
                   headers=admin())
    assert res.status_code == 422 and res.get_json()["error"]["field"] == "weights.control"
