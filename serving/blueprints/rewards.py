"""``POST /v1/rewards``: attach an outcome to a stored decision, once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from serving.blueprints.body import json_body
from serving.errors import Conflict, Gone, NotFound
from serving.service import service
from serving.store import InsertResult
from serving.validation import outcome_arrays, parse_reward_request

bp = Blueprint("rewards", __name__)


@bp.post("/v1/rewards")
def add_reward() -> tuple[dict[str, Any], int]:
    """Store an outcome: 202 stored (or identical repeat), 404 unknown, 409 conflict, 410 too late."""
    svc = service()
    req = parse_reward_request(json_body(svc.cfg.max_body_bytes))
    decision = svc.store.decision(req.event_id)
    if decision is None:
        raise NotFound(f"`event_id`: no decision {req.event_id} in the store; use the event_id of a "
                       "POST /v1/slates answer.", field="event_id")
    outcome = outcome_arrays(req, int(decision.slate.shape[0]))
    now = svc.clock()
    age = now - decision.ts
    if age > svc.cfg.reward_window_s:
        raise Gone(f"`event_id`: decision {req.event_id} is {age:.0f} s old; rewards are accepted for "
                   f"{svc.cfg.reward_window_s:g} s (serving.reward_window_s).", field="event_id")
    result = svc.store.add_reward(event_id=req.event_id, ts=now, reward=outcome.reward,
                                  purchase=outcome.purchase, revenue=outcome.revenue, digest=outcome.digest,
                                  kind="click" if req.body.get("clicks") is not None else "reward")
    if result == InsertResult.CONFLICT:
        raise Conflict(f"`event_id`: decision {req.event_id} already has a different outcome; an "
                       "outcome is recorded once.", field="event_id")
    return {"event_id": req.event_id, "status": result}, 202
