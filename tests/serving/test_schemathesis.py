"""A bounded schemathesis run against /openapi.json: no generated request gets a 5xx."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation import GenerationMode

from serving import create_app
from tests.serving.conftest import admin, make_config

EXAMPLES = int(os.environ.get("SLATEWISE_SCHEMATHESIS_EXAMPLES", "15"))  # raise it for a deeper local run


def make_check(operation: Any, mode: GenerationMode, headers: dict[str, str] | None,
               statuses: list[int]) -> Callable[[], None]:
    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])

    return check


@pytest.mark.slow
def test_no_server_errors_on_generated_requests(tmp_path: Path) -> None:
    app = create_app(make_config(tmp_path))
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    statuses: list[int] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7  # every endpoint (schemathesis may skip the spec itself)
    for operation in operations:
        headers = admin() if "traffic" in operation.path else None
        make_check(operation, GenerationMode.POSITIVE, headers, statuses)()
        if operation.method.upper() == "POST":  # a GET without a body has nothing to break
            make_check(operation, GenerationMode.NEGATIVE, headers, statuses)()
    assert statuses and max(statuses) < 500
    assert any(400 <= s < 500 for s in statuses) and any(s < 300 for s in statuses)
