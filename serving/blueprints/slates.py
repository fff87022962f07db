"""``POST /v1/slates``: choose a slate, store the decision, then answer."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from flask import Blueprint, Response

from bandits import PolicyError
from serving.assignment import assign
from serving.blueprints.body import json_body
from serving.errors import InvalidField
from serving.service import service
from serving.validation import parse_slate_request

bp = Blueprint("slates", __name__)

# What Flask's JSON provider writes for a dict (compact, ASCII, keys in order), without
# building an encoder per answer.
_encode = json.JSONEncoder(separators=(",", ":")).encode


def prefix_pscore(pscore: float, pscore_item: np.ndarray[Any, Any], k: int, k_full: int) -> float:
    """Propensity of the first ``k`` items of a ``k_full``-slate.

    Exact for the whole slate, for a deterministic policy (1) and for ``k = 1`` (the
    first slot's marginal); otherwise the whole slate's propensity, a lower bound.
    """
    if k == k_full or pscore >= 1.0:
        return float(pscore)
    if k == 1:
        return float(pscore_item[0])
    return float(pscore)


@bp.post("/v1/slates")
def choose_slate() -> Response:
    """Choose a slate for one shopper; the decision is committed before the answer."""
    svc = service()
    shape = svc.shape
    req = parse_slate_request(json_body(svc.cfg.max_body_bytes), shape, svc.cfg.max_abs_context)
    if req.experiment is None:
        exp = svc.cfg.experiments[0]
    else:
        try:
            exp = svc.cfg.experiment(req.experiment)
        except KeyError:
            raise InvalidField("experiment", f"one of {[e.name for e in svc.cfg.experiments]}",
                               repr(req.experiment)) from None
    split = svc.traffic.get(exp.name)
    arm = exp.arms[assign(req.user_id, exp.salt, split.buckets)]
    served = svc.hub.get(exp.name, arm.name)
    policy = served.policy
    try:
        with served.lock, np.errstate(over="raise", invalid="raise", divide="raise"):
            # select_one returns what select does for one unmasked context, on a faster path
            decision = policy.select_one(req.context) if req.eligible is None else \
                policy.select(req.context[None, :], eligible=req.eligible)
    except PolicyError as err:
        raise InvalidField("context", "input the arm's policy accepts", str(err)) from None
    except FloatingPointError as err:
        raise InvalidField("context", "features the policy can score without overflow",
                           f"an overflow ({err})", "Scale the features down.") from None
    k = req.k
    slate = decision.slate[0, :k]
    pscore_item = decision.pscore_item[0, :k]
    pscore = prefix_pscore(float(decision.pscore[0]), decision.pscore_item[0], k, shape.k)
    event_id = svc.store.add_decision(
        ts=svc.clock(), user_id=req.user_id, experiment=exp.name, arm=arm.name, policy=served.name,
        policy_version=served.version, traffic_version=split.version, context=req.context, slate=slate,
        pscore=pscore, pscore_item=pscore_item, anchor=req.anchor)
    svc.metrics.decision(exp.name, arm.name)
    item_ids = shape.item_ids
    answer = {"event_id": event_id, "slate": [item_ids[i] for i in slate.tolist()], "propensity": pscore,
              "propensity_item": pscore_item.tolist(), "arm": arm.name, "policy": served.name,
              "policy_version": served.version, "experiment": exp.name}
    return Response(_encode(answer) + "\n", mimetype="application/json")
