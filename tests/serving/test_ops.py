from __future__ import annotations

import json
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.serving.conftest import slate_body


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["n_items"] == 20 and ready["k"] == 3
    assert ready["policies"] == {"default/control": 0, "ab/control": 0, "ab/treatment": 0}


@pytest.mark.sqlite_only  # points the SQLite store at a missing file; PostgreSQL: test_postgres.py
def test_readyz_is_503_when_the_store_is_gone(app: Flask, client: FlaskClient) -> None:
    store = app.extensions["slatewise"].store
    store.close()
    store.path = "/nonexistent-dir/x.db"
    res = client.get("/readyz")
    assert res.status_code == 503 and res.get_json()["error"]["code"] == "not_ready"


def test_metrics_count_requests_decisions_and_errors(client: FlaskClient) -> None:
    for i in range(3):
        client.post("/v1/slates", json=slate_body(f"u{i}"))
    client.post("/v1/slates", json={"user_id": "u"})
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(r'slatewise_requests_total\{pid="\d+",endpoint="/v1/slates",method="POST",'
                     r'status="200"\} 3', text)
    assert re.search(r'slatewise_errors_total\{pid="\d+",endpoint="/v1/slates",code="invalid_field"\} 1', text)
    assert 'slatewise_decisions_stored{experiment="default",arm="control"} 3' in text
    assert re.search(r'slatewise_request_latency_seconds_count\{pid="\d+",endpoint="/v1/slates"\} 4', text)
    assert re.search(r'slatewise_request_latency_seconds_bucket\{pid="\d+",endpoint="/v1/slates",'
                     r'le="\+Inf"\} 4', text)


def test_openapi_describes_every_endpoint(app: Flask, client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    documented = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        served |= {(path, m) for m in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert documented == served


def test_openapi_is_valid_openapi_3_0_3(client: FlaskClient) -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.0.3"
    validate(spec)  # raises on any violation of the 3.0 schema
    broken = json.loads(json.dumps(spec))
    broken["paths"]["/v1/slates"]["post"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]["propensity"]["exclusiveMinimum"] = 0  # a 3.1 number where 3.0 wants a boolean
    with pytest.raises(OpenAPIValidationError):
        validate(broken)


def test_openapi_states_exactly_one_of_clicks_or_reward(client: FlaskClient) -> None:
    from jsonschema import Draft4Validator

    spec = client.get("/openapi.json").get_json()
    op = spec["paths"]["/v1/rewards"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert "exactly one of clicks or reward" in schema["description"] + op["summary"]
    validator = Draft4Validator(schema)
    token = "A" * 32
    assert validator.is_valid({"event_id": token, "clicks": [0, 1, 0]})
    assert validator.is_valid({"event_id": token, "reward": 1.5})
    assert not validator.is_valid({"event_id": token})
    assert not validator.is_valid({"event_id": token, "clicks": [0, 1, 0], "reward": 1.5})
    answer = spec["paths"]["/v1/slates"]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
    body = client.post("/v1/slates", json=slate_body()).get_json()
    assert Draft4Validator(answer).is_valid(body)
    assert not Draft4Validator(answer).is_valid({**body, "propensity": 0.0})
