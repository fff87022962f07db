"""``GET /v1/experiments/<name>`` and the admin-only ``POST /v1/experiments/<name>/traffic``."""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, request

from serving import rollout
from serving.config import ABExperimentConfig
from serving.errors import InvalidField, NotFound
from serving.privacy import noisy_release
from serving.service import require_admin, service
from serving.traffic import change_split, check_weights
from serving.validation import is_clean_text

bp = Blueprint("experiments", __name__)

HISTORY_LIMIT = 20
MAX_HISTORY_LIMIT = 100


def _experiment(name: str) -> ABExperimentConfig:
    try:
        return service().cfg.experiment(name)
    except KeyError:
        names = [e.name for e in service().cfg.experiments]
        raise NotFound(f"no experiment {name!r}; experiments are {names}.", field="name") from None


def _query_int(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 19) or not low <= int(raw) <= high:
        raise InvalidField(name, f"an integer in [{low}, {high}]", repr(raw)[:60])
    return int(raw)


@bp.get("/v1/experiments/<name>")
def get_experiment(name: str) -> tuple[dict[str, Any], int]:
    """Arms, weights, per-arm statistics, SRM and mSPRT tests, the rollout decision, a page of history.

    Query: ``history_limit`` (1..100, default 20) changes, newest first, with versions
    below ``history_before``; ``history_next`` is the ``history_before`` of the next page.
    """
    exp = _experiment(name)
    limit = _query_int("history_limit", HISTORY_LIMIT, 1, MAX_HISTORY_LIMIT)
    before = _query_int("history_before", None, 1, 2**62)
    svc = service()
    report = rollout.evaluate(svc.store, exp, svc.cfg.experiments, svc.clock() - svc.cfg.reward_window_s)
    page = svc.store.traffic_history(exp.name, before, (limit or HISTORY_LIMIT) + 1)
    shown = page[:limit]
    answer = report.to_json(shown, shown[-1].version if len(page) > len(shown) else None)
    answer["statistics_window"] = statistics_window(svc.cfg.retention_days, svc.cfg.retention_mode)
    epsilon = _query_float("epsilon")
    if epsilon is not None:
        answer["noisy"] = _noisy(exp, epsilon, _query_float("reward_range") or float(svc.shape.k))
    return answer, 200


def statistics_window(retention_days: float, mode: str) -> dict[str, Any]:
    """Over which decisions the experiment statistics are computed, in words and numbers."""
    if not retention_days:
        words = "every decision since the experiment started (nothing is removed: serving.retention_days = 0)"
    else:
        kept = "deleted" if mode == "delete" else "kept without their contexts"
        words = (f"every decision since the experiment started: the running sums count each decision once "
                 f"it is final, and rows older than {retention_days:g} days are then {kept}; the "
                 "off-policy checks and exports see only the retained rows")
    return {"from": "experiment start", "retention_days": retention_days, "retention_mode": mode,
            "description": words}


def _query_float(name: str) -> float | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0 or len(raw) > 30:
        raise InvalidField(name, "a positive number", repr(raw)[:60])
    return value


def _noisy(exp: ABExperimentConfig, epsilon: float, reward_range: float) -> dict[str, Any]:
    """Per-arm decisions and reward sums with Laplace noise (seeded by the totals' state)."""
    svc = service()
    totals = svc.store.totals()
    ours = totals.experiment(exp.name)
    names = [arm.name for arm in exp.arms]
    state = (f"noise/{exp.name}/{totals.decision_cursor}/{totals.reward_cursor}/{totals.expired_cursor}/"
             f"{epsilon}/{reward_range}")
    seed = int(svc.pseudonyms.of(state), 16)  # keyed: not predictable without the secret
    release = noisy_release([ours.decisions(a) for a in names], [ours.arm(a).reward_sum for a in names],
                            epsilon=epsilon, reward_range=reward_range, seed=seed)
    return {"epsilon": release.epsilon, "mechanism": "laplace", "reward_range": reward_range,
            "count_scale": release.count_scale, "sum_scale": release.sum_scale,
            "note": "each release spends epsilon; the same state always returns the same noise",
            "arms": {a: {"decisions": float(c), "reward_sum": float(r)}
                     for a, c, r in zip(names, release.counts, release.sums, strict=True)}}


@bp.post("/v1/experiments/<name>/traffic")
def set_traffic(name: str) -> tuple[dict[str, Any], int]:
    """Change the split (``weights``) or apply the current decision (``action = "apply"``); admin only."""
    require_admin()  # before anything else: an unauthenticated caller learns nothing, not even names
    exp = _experiment(name)
    svc = service()
    body = svc.request_json()
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
        decision = rollout.evaluate(svc.store, exp, svc.cfg.experiments,
                                    svc.clock() - svc.cfg.reward_window_s).decision
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
    return {"applied": split.version != current.version, "traffic_version": split.version,
            "weights": split.weights, "reason": split.reason,
            "ope": {arm: {"value": e.value, "low": e.low, "high": e.high, "n": e.n}
                    for arm, e in estimates.items()}}, 200
