"""``POST /v1/rewards``: attach an outcome to a decision this service issued, once."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from serving.errors import Conflict, Gone, NotFound
from serving.service import check_bearer, service
from serving.store import NewReward, RewardStatus
from serving.validation import outcome_arrays, parse_reward_request

bp = Blueprint("rewards", __name__)


@bp.post("/v1/rewards")
def add_reward() -> tuple[dict[str, Any], int]:
    """Store an outcome: 202 stored (or identical repeat), 404 not issued, 409 conflict, 410 too late."""
    svc = service()
    if svc.cfg.client_key:
        check_bearer(svc.cfg.client_key, "client key")
    req = parse_reward_request(svc.request_json())
    event_id = svc.tokens.verify(req.event_id)
    if event_id is None:  # refused before any database read
        raise NotFound("`event_id`: this service issued no such event id; use the event_id of a "
                       "POST /v1/slates answer, unchanged.", field="event_id")
    decision = svc.store.decision(event_id)
    if decision is None:
        raise NotFound("`event_id`: the decision is not in the store (was the store replaced?); use the "
                       "event_id of a POST /v1/slates answer of this store.", field="event_id")
    outcome = outcome_arrays(req, int(decision.slate.shape[0]))
    now = svc.clock()
    age = now - decision.ts
    if age > svc.cfg.reward_window_s:
        raise Gone(f"`event_id`: the decision is {age:.0f} s old; rewards are accepted for "
                   f"{svc.cfg.reward_window_s:g} s (serving.reward_window_s).", field="event_id")
    result = svc.store.add_reward(NewReward(
        event_id=event_id, ts=now, reward=outcome.reward, purchase=outcome.purchase, revenue=outcome.revenue,
        digest=outcome.digest, kind="click" if req.body.get("clicks") is not None else "reward"))
    if result == RewardStatus.CONFLICT:
        raise Conflict("`event_id`: the decision already has a different outcome; an outcome is recorded "
                       "once.", field="event_id")
    return {"event_id": req.event_id, "status": str(result)}, 202
