"""Operations: ``/healthz``, ``/readyz``, ``/metrics`` and ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from serving.errors import NotReady
from serving.openapi import openapi_spec
from serving.service import service

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz() -> tuple[dict[str, Any], int]:
    """The process is alive."""
    return {"status": "ok"}, 200


@bp.get("/readyz")
def readyz() -> tuple[dict[str, Any], int]:
    """The store answers and every arm has a policy: ready for traffic (503 otherwise)."""
    svc = service()
    if not svc.store.ping():
        raise NotReady("the event store does not answer; check serving.db_path.", field=None)
    versions = svc.hub.versions()
    return {"status": "ready", "catalog": svc.shape.source, "n_items": svc.shape.n_items, "k": svc.shape.k,
            "dim_context": svc.shape.dim_context,
            "policies": {f"{exp}/{arm}": v for (exp, arm), v in versions.items()}}, 200


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text format: requests, latencies, errors, decisions per arm."""
    svc = service()
    text = svc.metrics.render(svc.store.count_decisions())
    return Response(text, mimetype="text/plain", content_type="text/plain; version=0.0.4; charset=utf-8")


@bp.get("/openapi.json")
def openapi() -> tuple[dict[str, Any], int]:
    """The OpenAPI 3 description of every endpoint."""
    svc = service()
    return openapi_spec(svc.shape.k, svc.shape.dim_context, svc.cfg.max_body_bytes), 200
