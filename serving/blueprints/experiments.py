"""``GET /v1/experiments/<name>`` and the admin-only ``POST /v1/experiments/<name>/traffic``."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, request

from serving import rollout
from serving.blueprints.body import json_body
from serving.config import ExperimentConfig
from serving.errors import InvalidField, NotFound, Unauthorized
from serving.service import service
from serving.traffic import change_split, check_weights
from serving.validation import is_clean_text
from simulator.errors import ServingError

bp = Blueprint("experiments", __name__)


def _experiment(name: str) -> ExperimentConfig:
    try:
        return service().cfg.experiment(name)
    except KeyError:
        names = [e.name for e in service().cfg.experiments]
        raise NotFound(f"no experiment {name!r}; experiments are {names}.", field="name") from None


def _require_admin() -> None:
    token = service().cfg.admin_token
    if not token:
        raise ServingError("admin endpoints are disabled: set serving.admin_token or "
                           "SLATEWISE_ADMIN_TOKEN.", field="Authorization", status=403)
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Unauthorized("`Authorization`: expected `Bearer <admin token>`, found "
                           + ("nothing" if not header else "a wrong token") + ".", field="Authorization")


@bp.get("/v1/experiments/<name>")
def get_experiment(name: str) -> tuple[dict[str, Any], int]:
    """Arms, weights, per-arm statistics, SRM and mSPRT tests, and the rollout decision."""
    exp = _experiment(name)
    store = service().store
    report = rollout.evaluate(store, exp)
    return report.to_json(store.traffic_history(exp.name)), 200


@bp.post("/v1/experiments/<name>/traffic")
def set_traffic(name: str) -> tuple[dict[str, Any], int]:
    """Change the split (``weights``) or apply the current decision (``action = "apply"``); admin only."""
    exp = _experiment(name)
    _require_admin()
    svc = service()
    body = json_body(svc.cfg.max_body_bytes)
    unknown = sorted(set(body) - {"weights", "reason", "action"})
    if unknown:
        raise InvalidField(unknown[0], "only `weights`, `reason` or `action`",
                           f"unknown field {unknown[0]!r}")
    reason = body.get("reason", "manual change")
    if not isinstance(reason, str) or len(reason) > 500 or not is_clean_text(reason):
        raise InvalidField("reason", "a string of at most 500 characters", repr(reason)[:60])
    if ("weights" in body) == ("action" in body):
        raise InvalidField("weights", "exactly one of `weights` or `action`",
                           "both" if "weights" in body else "neither")
    current = svc.traffic.refresh(exp.name)
    if "action" in body:
        if body["action"] != "apply":
            raise InvalidField("action", '"apply" (carry out the current rollout decision)',
                               repr(body["action"])[:60])
        decision = rollout.evaluate(svc.store, exp).decision
        if decision.weights is None:
            return {"applied": False, "decision": decision.action, "reason": decision.reason,
                    "traffic_version": current.version, "weights": current.weights}, 200
        weights = decision.weights
        reason = f"{decision.action}: {decision.reason} (applied by admin)"
    else:
        if not isinstance(body["weights"], dict):
            raise InvalidField("weights", "an object of arm name -> share", repr(body["weights"])[:60])
        weights = check_weights(exp, body["weights"])
    policies = {arm.name: svc.hub.get(exp.name, arm.name).policy for arm in exp.arms}
    estimates = rollout.check_ope_bar(svc.store, exp, current.weights, weights, policies)
    split = change_split(svc.store, exp, weights, reason, "admin")
    svc.traffic.refresh(exp.name)
    return {"applied": True, "traffic_version": split.version, "weights": split.weights,
            "reason": split.reason,
            "ope": {arm: {"value": e.value, "low": e.low, "high": e.high, "n": e.n}
                    for arm, e in estimates.items()}}, 200
