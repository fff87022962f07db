from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from tests.serving.conftest import slate_body


def test_healthz_and_readyz(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["n_items"] == 20 and ready["k"] == 3
    assert ready["policies"] == {"default/control": 0, "ab/control": 0, "ab/treatment": 0}


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
