"""``POST /v1/slates`` answered in front of Flask (``SlatesFastPath``) is the Flask route, bit for bit."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import Client, TestResponse

from serving.blueprints.slates import SlatesFastPath
from serving.validation import parse_slate_request
from tests.serving.conftest import slate_body
from tests.serving.test_slates_api import BAD_SLATES


def flask_route(app: Flask) -> Client:
    """A test client of the Flask app behind the fast path (the route every other request takes)."""
    assert isinstance(app.wsgi_app, SlatesFastPath)
    return Client(app.wsgi_app.app)


def post(client: FlaskClient | Client, body: Any, **kwargs: Any) -> TestResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/slates", data=data, content_type="application/json", **kwargs)


def count_decisions(app: Flask) -> int:
    return len(app.extensions["slatewise"].store.event_ids())


def test_the_fast_path_is_installed_and_takes_plain_posts(app: Flask, client: FlaskClient,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    inner = app.wsgi_app.app  # type: ignore[attr-defined]

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        return inner(environ, start_response)

    monkeypatch.setattr(app.wsgi_app, "app", spy)
    assert post(client, slate_body()).status_code == 200
    assert seen == []  # answered without Flask
    assert client.get("/v1/slates").status_code == 405
    assert client.post("/v1/slates/", json=slate_body()).status_code == 404
    assert client.post("/v1/rewards", json={"event_id": 1, "clicks": [0, 0, 0]}).status_code == 202
    assert seen == ["GET /v1/slates", "POST /v1/slates/", "POST /v1/rewards"]


def test_fast_path_off_sends_slates_through_flask(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(fast_path=False)
    assert not isinstance(app.wsgi_app, SlatesFastPath)
    client = app.test_client()
    res = post(client, slate_body())
    assert res.status_code == 200 and res.get_json()["event_id"] == 1 and count_decisions(app) == 1
    assert post(client, {"user_id": "u"}).status_code == 422 and count_decisions(app) == 1


def test_fast_path_is_read_from_the_environment() -> None:
    from serving.config import load_config

    assert load_config(env={}).fast_path is True
    assert load_config(env={"SLATEWISE_FAST_PATH": "0"}).fast_path is False


@pytest.mark.parametrize("body", [slate_body(), slate_body(k=2), slate_body(experiment="ab"),
                                  slate_body(candidates=[3, 5, 7, 9, 11], exclude=[5], anchor_item=7),
                                  {"user_id": 17, "context": [0, 1, 0, 1]}])
def test_answers_match_the_flask_route(app: Flask, client: FlaskClient, body: Any) -> None:
    fast, slow = post(client, body), post(flask_route(app), body)
    assert fast.status_code == slow.status_code == 200
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"] == "application/json"
    a, b = fast.get_json(), slow.get_json()
    assert b["event_id"] == a["event_id"] + 1
    assert {**a, "event_id": 0} == {**b, "event_id": 0}
    assert fast.get_data().decode() == slow.get_data().decode().replace(
        f'"event_id":{b["event_id"]}', f'"event_id":{a["event_id"]}')
    assert count_decisions(app) == 2


@pytest.mark.parametrize(("body", "status", "field", "message"), BAD_SLATES)
def test_errors_match_the_flask_route(app: Flask, client: FlaskClient, body: Any, status: int, field: str,
                                      message: str) -> None:
    fast, slow = post(client, body), post(flask_route(app), body)
    assert fast.status_code == slow.status_code == status
    assert fast.headers["Content-Type"] == slow.headers["Content-Type"] == "application/json"
    assert fast.get_data() == slow.get_data()
    assert fast.get_json()["error"]["field"] == field
    assert count_decisions(app) == 0


def test_oversized_and_chunked_bodies(app: Flask, client: FlaskClient) -> None:
    big = json.dumps(slate_body(exclude=[1] * 40_000)).encode()
    fast, slow = post(client, big), post(flask_route(app), big)
    assert fast.status_code == slow.status_code == 413 and fast.get_data() == slow.get_data()
    # a chunked body (the server has removed the framing, like gunicorn) is left to Flask
    seen: list[str] = []
    inner = app.wsgi_app.app  # type: ignore[attr-defined]

    def spy(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ["PATH_INFO"])
        return inner(environ, start_response)

    app.wsgi_app.app = spy  # type: ignore[attr-defined]
    res = client.post("/v1/slates", input_stream=io.BytesIO(json.dumps(slate_body()).encode()),
                      content_type="application/json", headers={"Transfer-Encoding": "chunked"},
                      environ_overrides={"wsgi.input_terminated": True})
    assert res.status_code == 200 and seen == ["/v1/slates"] and count_decisions(app) == 1


def test_metrics_count_both_paths_alike(app: Flask, client: FlaskClient) -> None:
    for target in (client, flask_route(app)):
        post(target, slate_body())
        post(target, {"user_id": "u"})
        post(target, b"{")
    text = client.get("/metrics").get_data(as_text=True)
    for status, n in (("200", 2), ("422", 2), ("400", 2)):
        assert re.search(r'slatewise_requests_total\{pid="\d+",endpoint="/v1/slates",method="POST",'
                         rf'status="{status}"\}} {n}', text), text
    for code in ("invalid_field", "bad_request"):
        assert re.search(rf'slatewise_errors_total\{{pid="\d+",endpoint="/v1/slates",code="{code}"\}} 2', text)
    assert re.search(r'slatewise_request_latency_seconds_count\{pid="\d+",endpoint="/v1/slates"\} 6', text)
    assert re.search(r'slatewise_worker_decisions_total\{pid="\d+",experiment="default",arm="control"\} 2',
                     text)


def test_an_unexpected_error_is_a_json_500_on_both_paths(app: Flask, client: FlaskClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(**_: Any) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(app.extensions["slatewise"].store, "add_decision", broken)
    fast, slow = post(client, slate_body()), post(flask_route(app), slate_body())
    assert fast.status_code == slow.status_code == 500
    assert fast.get_json() == slow.get_json() == {
        "error": {"code": "internal", "message": "internal error; see the server log.", "field": None}}
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'slatewise_errors_total\{pid="\d+",endpoint="/v1/slates",code="internal"\} 2', text)


def test_integer_and_float_contexts_are_the_same_request(app: Flask) -> None:
    shape = app.extensions["slatewise"].shape
    ints = parse_slate_request({"user_id": "u", "context": [0, 1, -2, 3]}, shape)
    floats = parse_slate_request({"user_id": "u", "context": [0.0, 1.0, -2.0, 3.0]}, shape)
    assert ints.context.dtype == floats.context.dtype == np.float64
    np.testing.assert_array_equal(ints.context, floats.context)


@pytest.mark.parametrize(("context", "field", "message"), [
    ([0.0, float("nan"), 0.0, 0.0], "context[1]", "finite"),
    ([0.0, 0.0, float("-inf"), 0.0], "context[2]", "finite"),
    ([0, 0, 0, 2_000_000], "context[3]", "within"),
    ([0.0, 0.0, 0.0, True], "context[3]", "a number"),
])
def test_contexts_the_common_path_refuses_are_named(app: Flask, context: list[Any], field: str,
                                                    message: str) -> None:
    from serving.errors import InvalidField

    with pytest.raises(InvalidField, match=message) as err:
        parse_slate_request({"user_id": "u", "context": context}, app.extensions["slatewise"].shape)
    assert err.value.field == field
