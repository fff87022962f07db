"""``POST /v1/slates``: choose a slate, store the decision, then answer.

The work is :func:`decide` (body bytes in, answer bytes out). Flask serves it at
``POST /v1/slates`` like every other route; :class:`SlatesFastPath`, installed in
front of the Flask app by :func:`serving.app.create_app`, answers the common case
(a ``POST`` to exactly ``/v1/slates`` with a ``Content-Length``) itself, with the
same answer, the same JSON errors and the same metrics, without building Flask's
request context, URL adapter and response object for every slate. Everything
else (other routes and methods, chunked bodies) goes to Flask unchanged.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import Blueprint, Response
from werkzeug.http import HTTP_STATUS_CODES

from bandits import PolicyError
from serving.assignment import assign
from serving.blueprints.body import body_bytes, declared_length, read_body
from serving.errors import INTERNAL_ERROR, InvalidField
from serving.service import service
from serving.validation import parse_json, parse_slate_request
from simulator.errors import ServingError

if TYPE_CHECKING:
    from serving.service import Service

logger = logging.getLogger(__name__)

bp = Blueprint("slates", __name__)

ENDPOINT = "/v1/slates"

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
    return (_encode(answer) + "\n").encode()


@bp.post(ENDPOINT)
def choose_slate() -> Response:
    """Choose a slate for one shopper; the decision is committed before the answer."""
    svc = service()
    return Response(decide(svc, body_bytes(svc.cfg.max_body_bytes)), mimetype="application/json")


StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

# the status lines Werkzeug writes ("422 UNPROCESSABLE ENTITY")
_STATUS = {code: f"{code} {reason.upper()}" for code, reason in HTTP_STATUS_CODES.items()}
_INTERNAL = (_encode(INTERNAL_ERROR) + "\n").encode()


class SlatesFastPath:
    """WSGI middleware answering ``POST /v1/slates`` with a ``Content-Length`` body itself.

    The answer, the JSON errors (same status, body and error metrics as the Flask
    error handlers) and the request metrics are those of the Flask route; only
    Flask's per-request machinery is skipped. Any other request goes to ``app``.

    Args:
        app: the Flask app's WSGI callable.
        svc: the service the Flask app is bound to.
    """

    def __init__(self, app: WSGIApp, svc: Service) -> None:
        self.app = app
        self.svc = svc
        self.limit = svc.cfg.max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer a plain ``POST /v1/slates`` here; hand anything else to the Flask app."""
        if environ.get("PATH_INFO") != ENDPOINT or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        length = declared_length(environ)
        if length is None:
            return self.app(environ, start_response)
        started = time.perf_counter()
        svc = self.svc
        try:
            body = decide(svc, read_body(environ, length, self.limit))
            status = 200
        except ServingError as err:
            svc.metrics.error(ENDPOINT, err.code)
            body, status = (_encode(err.to_json()) + "\n").encode(), err.status
        except Exception:
            logger.exception("unexpected error answering POST %s", ENDPOINT)
            svc.metrics.error(ENDPOINT, "internal")
            body, status = _INTERNAL, 500
        start_response(_STATUS.get(status, f"{status} UNKNOWN"),
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        svc.metrics.observe(ENDPOINT, "POST", status, time.perf_counter() - started)
        return [body]
