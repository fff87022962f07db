"""``/v1/slates`` answered by the mounted sub-application (``SlatesApp``) is the Flask route, byte for byte."""

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
from werkzeug.test import TestResponse

from serving.store import EventStore
from serving.validation import parse_slate_request
from simulator.errors import ConfigError
from tests.serving.conftest import slate_body
from tests.serving.test_slates_api import BAD_SLATES


@pytest.fixture
def route(app_factory: Callable[..., Flask], app: Flask) -> FlaskClient:
    """The same service on the same store with slates served by the Flask route (``slates_app = false``)."""
    return app_factory(slates_app=False).test_client()


def post(client: FlaskClient, body: Any, **kwargs: Any) -> TestResponse:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/v1/slates", data=data, content_type="application/json", **kwargs)


def post_chunked(client: FlaskClient, data: bytes) -> TestResponse:
    """A chunked body, unframed by the server (as gunicorn does) and marked terminated."""
    return client.post("/v1/slates", input_stream=io.BytesIO(data), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides={"wsgi.input_terminated": True})


def count_decisions(app: Flask) -> int:
    return len(app.extensions["slatewise"].store.event_ids())


def test_the_sub_app_answers_slates_without_flask(app: Flask, client: FlaskClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def never(*_: Any) -> None:
        raise AssertionError("the Flask route answered")

    monkeypatch.setitem(app.view_functions, "slates.choose_slate", never)
    assert post(client, slate_body()).status_code == 200
    assert client.post("/v1/rewards", json={"event_id": "x", "clicks": [0, 0, 0]}).status_code == 404  # Flask


def test_slates_app_off_sends_slates_through_flask(app_factory: Callable[..., Flask]) -> None:
    app = app_factory(slates_app=False)
    client = app.test_client()
    res = post(client, slate_body())
    assert res.status_code == 200 and len(res.get_json()["event_id"]) == 32 and count_decisions(app) == 1
    assert post(client, {"user_id": "u"}).status_code == 422 and count_decisions(app) == 1


def test_slates_app_is_read_from_the_environment() -> None:
    from serving.config import load_serving_config

    assert load_serving_config(env={}).slates_app is True
    assert load_serving_config(env={"SLATEWISE_SLATES_APP": "0"}).slates_app is False


@pytest.mark.parametrize("body", [slate_body(), slate_body(k=2), slate_body(experiment="ab"),
                                  slate_body(candidates=[3, 5, 7, 9, 11], exclude=[5], anchor_item=7),
                                  {"user_id": 17, "context": [0, 1, 0, 1]}])
def test_answers_match_the_flask_route(app: Flask, client: FlaskClient, route: FlaskClient, body: Any) -> None:
    mounted, flask = post(client, body), post(route, body)
    assert mounted.status_code == flask.status_code == 200
    assert mounted.headers["Content-Type"] == flask.headers["Content-Type"] == "application/json"
    a, b = mounted.get_json(), flask.get_json()
    assert a["event_id"] != b["event_id"]
    assert {**a, "event_id": 0} == {**b, "event_id": 0}
    assert mounted.get_data() == flask.get_data().replace(b["event_id"].encode(), a["event_id"].encode())
    assert count_decisions(app) == 2


@pytest.mark.parametrize(("body", "status", "field", "message"), BAD_SLATES)
def test_errors_match_the_flask_route(app: Flask, client: FlaskClient, route: FlaskClient, body: Any,
                                      status: int, field: str, message: str) -> None:
    mounted, flask = post(client, body), post(route, body)
    assert mounted.status_code == flask.status_code == status
    assert mounted.headers["Content-Type"] == flask.headers["Content-Type"] == "application/json"
    assert mounted.get_data() == flask.get_data()
    assert mounted.get_json()["error"]["field"] == field
    assert count_decisions(app) == 0


@pytest.mark.parametrize("client_name", ["client", "route"])
def test_other_methods_and_paths_are_json_405_with_allow_and_404(request: pytest.FixtureRequest,
                                                                 client_name: str) -> None:
    c: FlaskClient = request.getfixturevalue(client_name)
    res = c.get("/v1/slates")
    allowed = {"OPTIONS", "POST"}
    assert res.status_code == 405 and set(res.headers["Allow"].split(", ")) == allowed
    assert res.get_json()["error"]["code"] == "method_not_allowed"
    res = c.options("/v1/slates")
    assert res.status_code == 200 and set(res.headers["Allow"].split(", ")) == allowed
    res = c.post("/v1/slates/", json=slate_body())
    assert res.status_code == 404 and res.get_json()["error"]["code"] == "not_found"


def test_bodies_over_the_limit_are_413_with_or_without_a_length(app: Flask, client: FlaskClient,
                                                                 route: FlaskClient) -> None:
    big = json.dumps(slate_body(exclude=[1] * 40_000)).encode()
    padded = json.dumps(slate_body()).encode() + b" " * 10_000_000  # valid JSON if cut at the limit
    for c in (client, route):
        for res in (post(c, big), post_chunked(c, padded), post_chunked(c, big)):
            assert res.status_code == 413 and res.get_json()["error"]["field"] == "body"
    assert count_decisions(app) == 0
    for c in (client, route):  # within the limit, chunked is answered
        assert post_chunked(c, json.dumps(slate_body()).encode() + b" " * 1000).status_code == 200
    assert count_decisions(app) == 2


def test_metrics_count_both_alike(app: Flask, client: FlaskClient, route: FlaskClient) -> None:
    texts = []
    for c in (client, route):
        post(c, slate_body())
        post(c, {"user_id": "u"})
        post(c, b"{")
        c.get("/v1/slates")
        texts.append(c.get("/metrics").get_data(as_text=True))
    for text in texts:
        for status, n in (("200", 1), ("422", 1), ("400", 1)):
            assert re.search(r'slatewise_requests_total\{pid="\d+",endpoint="/v1/slates",method="POST",'
                             rf'status="{status}"\}} {n}', text), text
        assert re.search(r'slatewise_requests_total\{pid="\d+",endpoint="unmatched",method="GET",'
                         r'status="405"\} 1', text), text
        for code in ("invalid_field", "bad_request"):
            assert re.search(rf'slatewise_errors_total\{{pid="\d+",endpoint="/v1/slates",code="{code}"\}} 1',
                             text)
        assert re.search(r'slatewise_request_latency_seconds_count\{pid="\d+",endpoint="/v1/slates"\} 3', text)
        assert re.search(r'slatewise_worker_decisions_total\{pid="\d+",experiment="default",arm="control"\} 1',
                         text)


def test_an_unexpected_error_is_a_json_500_on_both(client: FlaskClient, route: FlaskClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: Any) -> int:
        raise RuntimeError("disk on fire")

    for c in (client, route):
        monkeypatch.setattr(c.application.extensions["slatewise"].store, "add_decision", broken)
        res = post(c, slate_body())
        assert res.status_code == 500 and res.get_json() == {
            "error": {"code": "internal", "message": "internal error; see the server log.", "field": None}}
        text = c.get("/metrics").get_data(as_text=True)
        assert re.search(r'slatewise_errors_total\{pid="\d+",endpoint="/v1/slates",code="internal"\} 1', text)


def test_request_hooks_and_the_sub_app_refuse_to_start(app_factory: Callable[..., Flask],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from serving import app as app_module

    real = app_module.Flask

    class Hooked(real):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.before_request(lambda: None)  # what an extension's init_app would add

    from serving import service as service_module

    opened: list[EventStore] = []
    real_open_store = service_module.open_store

    def recording_open_store(*args: Any) -> EventStore:
        opened.append(real_open_store(*args))
        return opened[-1]

    monkeypatch.setattr(app_module, "Flask", Hooked)
    monkeypatch.setattr(service_module, "open_store", recording_open_store)
    with pytest.raises(ConfigError, match="slates_app = false"):
        app_factory()
    assert opened[0]._writer._conn is None  # type: ignore[attr-defined]  # the refused app closed its store
    hooked = app_factory(slates_app=False)  # the Flask route runs hooks: allowed
    assert post(hooked.test_client(), slate_body()).status_code == 200


def test_a_hook_added_after_start_is_refused_at_the_first_request(app: Flask, client: FlaskClient) -> None:
    app.after_request(lambda response: response)
    with pytest.raises(ConfigError, match="after_request_funcs"):
        post(client, slate_body())


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
