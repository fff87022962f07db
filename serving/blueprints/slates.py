"""``POST /v1/slates``: choose a slate, store the decision, then answer.

The work is :func:`decide` (body bytes in, answer bytes out). The Flask route
serves it; with ``serving.slates_app`` (the default) :func:`serving.app.create_app`
mounts :class:`SlatesApp` at ``/v1/slates`` instead (Werkzeug's
``DispatcherMiddleware``), an explicit WSGI sub-application that calls the same
:func:`decide` without Flask's per-request machinery. Both read the body with
:func:`serving.http.read_body`, answer errors with :func:`serving.http.error_answer`
and are counted by the one :class:`serving.http.MetricsMiddleware`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import Blueprint, Response, request
from werkzeug.exceptions import MethodNotAllowed, NotFound

from bandits import PolicyError
from serving.assignment import assign
from serving.errors import InvalidField
from serving.http import ROUTE_KEY, StartResponse, encode, error_answer, read_body, status_line
from serving.service import service
from serving.store import NewDecision
from serving.validation import parse_json, parse_slate_request

if TYPE_CHECKING:
    from serving.service import Service

bp = Blueprint("slates", __name__)

ENDPOINT = "/v1/slates"
_ALLOW = [("Allow", "OPTIONS, POST")]


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


def decide(svc: Service, data: bytes) -> bytes:
    """Choose a slate for the request body ``data``, commit the decision, return the answer.

    Returns:
        The JSON answer (bytes, newline-terminated), written only after the decision is
        committed to the store.

    Raises:
        ServingError: the body is not a valid slate request (nothing is stored).
    """
    shape = svc.shape
    req = parse_slate_request(parse_json(data), shape, svc.cfg.max_abs_context)
    if req.experiment is None:
        exp = svc.cfg.experiments[0]
    else:
        try:
            exp = svc.cfg.experiment(req.experiment)
        except KeyError:
            raise InvalidField("experiment", f"one of {[e.name for e in svc.cfg.experiments]}",
                               repr(req.experiment)[:60]) from None
    user = svc.pseudonyms.of(req.user_id)  # the raw id goes no further
    split = svc.traffic.get(exp.name)
    arm = exp.arms[assign(user, exp.salt, split.buckets)]
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
    event_id = svc.store.add_decision(NewDecision(
        ts=svc.clock(), user_id=user, experiment=exp.name, arm=arm.name, policy=served.name,
        policy_version=served.version, traffic_version=split.version, context=req.context, slate=slate,
        pscore=pscore, pscore_item=pscore_item, anchor=req.anchor))
    svc.metrics.decision(exp.name, arm.name)
    item_ids = shape.item_ids
    return encode({"event_id": svc.tokens.issue(event_id), "slate": [item_ids[i] for i in slate.tolist()],
                   "propensity": pscore, "propensity_item": pscore_item.tolist(), "arm": arm.name,
                   "policy": served.name, "policy_version": served.version, "experiment": exp.name})


@bp.post(ENDPOINT)
def choose_slate() -> Response:
    """Choose a slate for one shopper; the decision is committed before the answer."""
    svc = service()
    return Response(decide(svc, read_body(request.environ, svc.cfg.max_body_bytes)),
                    mimetype="application/json")


class SlatesApp:
    """The WSGI sub-application mounted at ``/v1/slates``: ``POST`` answers a slate, nothing else.

    Args:
        svc: the service the Flask app is bound to (same store, policies and metrics).
    """

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.limit = svc.cfg.max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer ``POST /v1/slates`` (the mount point itself); 405 or 404 for anything else."""
        try:
            if environ.get("PATH_INFO"):  # below the mount point: /v1/slates/...
                raise NotFound()
            method = environ.get("REQUEST_METHOD")
            if method == "OPTIONS":  # what Flask answers for a route's automatic OPTIONS
                start_response(status_line(200), [*_ALLOW, ("Content-Type", "text/html; charset=utf-8"),
                                                  ("Content-Length", "0")])
                return [b""]
            if method != "POST":
                raise MethodNotAllowed(valid_methods=["OPTIONS", "POST"])
            environ[ROUTE_KEY] = ENDPOINT
            body = decide(self.svc, read_body(environ, self.limit))
            status, headers = 200, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        except Exception as err:
            status, headers, body = error_answer(environ, err, self.limit)
        start_response(status_line(status), headers)
        return [body]
