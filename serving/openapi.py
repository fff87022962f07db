"""The OpenAPI 3.0 description of the service, sized to the served ``k`` and ``d``."""

from __future__ import annotations

from typing import Any


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def openapi_spec(k: int, dim_context: int, max_body_bytes: int) -> dict[str, Any]:
    """The spec as a JSON-ready dict.

    Args:
        k: slate length of the service.
        dim_context: context width ``d``.
        max_body_bytes: the body size limit (documented on every POST).
    """
    # the catalog's own ids: integers, or a shop's text ids (``serving.catalog``)
    item_id: dict[str, Any] = {"oneOf": [{"type": "integer"}, {"type": "string"}]}
    number_list = {"type": "array", "items": {"type": "number"}, "minItems": k, "maxItems": k}
    errors = {
        "400": _error_response("The body is not a JSON object."),
        "413": _error_response(f"The body is larger than {max_body_bytes} bytes."),
        "422": _error_response("A field is missing, of the wrong type or out of range; `field` names it."),
    }
    slate_request = {
        "type": "object", "additionalProperties": False, "required": ["user_id", "context"],
        "properties": {
            "user_id": {"type": "string", "minLength": 1, "maxLength": 256},
            "context": {"oneOf": [
                {"type": "array", "items": {"type": "number"}, "minItems": dim_context,
                 "maxItems": dim_context},
                {"type": "object", "additionalProperties": {"type": "number"},
                 "description": "named features (when the service has context names)"},
            ]},
            "k": {"type": "integer", "minimum": 1, "maximum": k},
            "candidates": {"type": "array", "items": item_id,
                           "description": "item ids allowed in the slate"},
            "exclude": {"type": "array", "items": item_id},
            "anchor_item": item_id | {"description": "the item being viewed (never shown)"},
            "experiment": {"type": "string"},
        },
    }
    slate_answer = {
        "type": "object",
        "required": ["event_id", "slate", "propensity", "arm", "policy", "policy_version"],
        "properties": {
            "event_id": {"type": "string", "minLength": 32, "maxLength": 32,
                         "description": "an opaque token naming the decision; post it unchanged with its "
                                        "reward"},
            "slate": {"type": "array", "items": item_id},
            "propensity": {"type": "number", "minimum": 0, "exclusiveMinimum": True, "maximum": 1},
            "propensity_item": {"type": "array", "items": {"type": "number"}},
            "arm": {"type": "string"}, "policy": {"type": "string"},
            "policy_version": {"type": "integer"}, "experiment": {"type": "string"},
        },
    }
    reward_request = {
        "type": "object", "additionalProperties": False, "required": ["event_id"],
        "description": "exactly one of clicks or reward, with the event_id of a slate answer",
        "oneOf": [{"required": ["clicks"], "not": {"required": ["reward"]}},
                  {"required": ["reward"], "not": {"required": ["clicks"]}}],
        "properties": {
            "event_id": {"type": "string", "minLength": 1, "maxLength": 64,
                         "description": "the event_id of a POST /v1/slates answer, unchanged"},
            "clicks": {"type": "array", "items": {"type": "integer", "enum": [0, 1]},
                       "minItems": 1, "maxItems": k},
            "reward": {"oneOf": [{"type": "number"}, number_list]},
            "purchase": {"type": "array", "items": {"type": "integer", "enum": [0, 1]}},
            "revenue": {"type": "array", "items": {"type": "number", "minimum": 0}},
        },
    }
    traffic_request = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0,
                                                                    "maximum": 1}},
            "action": {"type": "string", "enum": ["apply"]},
            "reason": {"type": "string", "maxLength": 500},
        },
    }
    json_ok = {"content": {"application/json": {"schema": {"type": "object"}}}}
    name_param = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    history_params = [
        {"name": "history_limit", "in": "query", "required": False,
         "description": "traffic changes per page, newest first (default 20)",
         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
        {"name": "history_before", "in": "query", "required": False,
         "description": "only versions below this (the history_next of the previous page)",
         "schema": {"type": "integer", "minimum": 1}},
        {"name": "epsilon", "in": "query", "required": False,
         "description": "also release per-arm decisions and reward sums with Laplace noise, "
                        "epsilon-differentially private per release (the `noisy` member)",
         "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
        {"name": "reward_range", "in": "query", "required": False,
         "description": "largest total reward of one decision, the sensitivity of the noisy sums "
                        "(default k)",
         "schema": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
    ]
    return {
        "openapi": "3.0.3",
        "info": {"title": "slatewise serving", "version": "1",
                 "description": "Choose slates, record outcomes, run A/B rollouts."},
        "paths": {
            "/v1/slates": {"post": {
                "summary": "Choose a slate; the decision is stored before the answer.",
                "security": [],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": slate_request}}},
                "responses": {"200": {"description": "The slate and its propensity.",
                                      "content": {"application/json": {"schema": slate_answer}}},
                              **errors},
            }},
            "/v1/rewards": {"post": {
                "summary": "Record the outcome of a decision (once): exactly one of clicks or reward.",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": reward_request}}},
                "security": [{}, {"bearer": []}],
                "responses": {"202": {"description": "Stored (or an identical repeat).", **json_ok},
                              "401": _error_response("Missing or wrong client key (when one is set)."),
                              "404": _error_response("An event_id this service did not issue."),
                              "409": _error_response("A different outcome was already recorded."),
                              "410": _error_response("The reward window has closed."), **errors},
            }},
            "/v1/experiments/{name}": {"get": {
                "summary": "Arms, weights, statistics, tests, the rollout decision and a page of history.",
                "parameters": name_param + history_params,
                "responses": {"200": {"description": "The experiment report.", **json_ok},
                              "404": _error_response("Unknown experiment."),
                              "422": _error_response("A bad history_limit, history_before or epsilon.")},
            }},
            "/v1/users/{user_id}": {"delete": {
                "summary": "Erase one shopper: every decision, reward and assignment (admin).",
                "parameters": [{"name": "user_id", "in": "path", "required": True,
                                "schema": {"type": "string", "minLength": 1, "maxLength": 256}}],
                "security": [{"bearer": []}],
                "responses": {"200": {"description": "How many decisions and rewards were removed.",
                                      **json_ok},
                              "401": _error_response("Missing or wrong admin token."),
                              "403": _error_response("Admin endpoints are disabled."),
                              "422": _error_response("Not a valid user id.")},
            }},
            "/v1/experiments/{name}/traffic": {"post": {
                "summary": "Change the traffic split or apply the rollout decision (admin).",
                "parameters": name_param,
                "security": [{"bearer": []}],
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": traffic_request}}},
                "responses": {"200": {"description": "The new split.", **json_ok},
                              "401": _error_response("Missing or wrong admin token."),
                              "403": _error_response("Admin endpoints are disabled."),
                              "404": _error_response("Unknown experiment."),
                              "409": _error_response("The off-policy bar is not cleared."), **errors},
            }},
            "/healthz": {"get": {"summary": "Liveness.",
                                 "responses": {"200": {"description": "Alive.", **json_ok}}}},
            "/readyz": {"get": {"summary": "Readiness.",
                                "responses": {"200": {"description": "Ready.", **json_ok},
                                              "503": _error_response("Not ready.")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics.",
                                 "responses": {"200": {"description": "Text format 0.0.4.",
                                                       "content": {"text/plain": {
                                                           "schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document.",
                                      "responses": {"200": {"description": "OpenAPI 3.0.", **json_ok}}}},
        },
        "components": {
            "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "object", "required": ["code", "message"], "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "field": {"type": "string", "nullable": True}}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
