"""The rollout dashboard: ``GET /`` (the experiments) and ``GET /experiments/<name>`` (one experiment).

Both pages are HTML rendered by :mod:`serving.render` from the document of
``GET /v1/experiments/<name>`` (:func:`serving.report.experiment_document`), and
refresh themselves: their inline script fetches ``GET /parts`` or
``GET /experiments/<name>/parts`` (JSON: the re-rendered parts by element id)
every few seconds and swaps them in. Traffic changes go through the admin
endpoint ``POST /v1/experiments/<name>/traffic`` with the admin token typed into
the page. With ``serving.dashboard_token`` set, every dashboard route needs that
token: ``Authorization: Bearer <token>``, or the cookie the login form
(``POST /dashboard/login``) sets; a page answers 401 with that form, a ``parts``
route a JSON 401.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import Blueprint, Response, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from serving import render
from serving.blueprints.experiments import HISTORY_LIMIT, _experiment, _query_int
from serving.errors import Unauthorized
from serving.report import experiment_document
from serving.service import service

bp = Blueprint("dashboard", __name__)

#: the cookie holding proof of the viewer token (an HMAC of it, never the token)
VIEWER_COOKIE = "slatewise_viewer"


def _viewer_proof(token: str) -> str:
    return hmac.new(token.encode(), b"slatewise dashboard viewer", hashlib.sha256).hexdigest()


def viewer_allowed() -> bool:
    """Whether the request may read the dashboard (always, when no viewer token is configured)."""
    token = service().cfg.dashboard_token
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(VIEWER_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), _viewer_proof(token).encode())


def _html(text: str, nonce: str, status: int = 200) -> Response:
    res = Response(text, status=status, mimetype="text/html")
    res.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; connect-src 'self'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
    res.headers["X-Content-Type-Options"] = "nosniff"
    res.headers["Referrer-Policy"] = "no-referrer"
    res.headers["Cache-Control"] = "no-store"
    return res


def _login(nonce: str, wrong: bool = False) -> Response:
    return _html(render.login_page(nonce, request.full_path.rstrip("?"), wrong), nonce, 401)


def _require_viewer_json() -> None:
    if not viewer_allowed():
        raise Unauthorized("`Authorization`: expected `Bearer <dashboard token>` or the dashboard's login "
                           "cookie (serving.dashboard_token is set).", field="Authorization")


def _history_before() -> int | None:
    return _query_int("history_before", None, 1, 2**62)


def _document(name: str) -> tuple[dict[str, Any], int | None, str]:
    exp = _experiment(name)
    before = _history_before()
    doc = experiment_document(service(), exp, HISTORY_LIMIT, before, series=True)
    return doc, before, f"/experiments/{exp.name}"


def _index_docs() -> list[dict[str, Any]]:
    svc = service()
    return [experiment_document(svc, exp, 1, None) for exp in svc.cfg.experiments]


@bp.get("/")
def index() -> Response:
    """The experiments with their split, decisions, SRM p-value and decision (HTML)."""
    nonce = secrets.token_urlsafe(16)
    if not viewer_allowed():
        return _login(nonce)
    body = ('<section id="part-experiments">' + render.index_rows(_index_docs()) + "</section>")
    return _html(render.page("slatewise experiments", nonce, "/parts", body), nonce)


@bp.get("/parts")
def index_parts() -> tuple[dict[str, Any], int]:
    """The experiment list re-rendered (JSON ``parts``), for the index page's refresh."""
    _require_viewer_json()
    return {"parts": {"part-experiments": render.index_rows(_index_docs())}}, 200


@bp.get("/experiments/<name>")
def experiment_page(name: str) -> Response:
    """One experiment: decision, arms, plots over time, guardrails, history, traffic form (HTML)."""
    nonce = secrets.token_urlsafe(16)
    if not viewer_allowed():
        return _login(nonce)
    doc, before, path = _document(name)
    parts_url = f"{path}/parts" + ("" if before is None else f"?history_before={before}")
    sections = "".join(f'<section id="{key}">{html}</section>'
                       for key, html in render.experiment_parts(doc, path, before).items())
    form = render.traffic_form(doc, f"/v1/experiments/{doc['name']}/traffic", bool(service().cfg.admin_token))
    return _html(render.page(f"Experiment {doc['name']}", nonce, parts_url,
                             sections + f'<section id="traffic">{form}</section>'), nonce)


@bp.get("/experiments/<name>/parts")
def experiment_parts(name: str) -> tuple[dict[str, Any], int]:
    """The experiment page's parts re-rendered from a fresh document (JSON), for its refresh."""
    _require_viewer_json()
    doc, before, path = _document(name)
    parts = render.experiment_parts(doc, path, before)
    return {"traffic_version": doc["traffic_version"], "parts": parts}, 200


@bp.post("/dashboard/login")
def login() -> BaseResponse:
    """Check the viewer token of the login form; on success set the viewer cookie and go back."""
    nonce = secrets.token_urlsafe(16)
    token = service().cfg.dashboard_token
    given = request.form.get("token", "")
    target = request.form.get("next", "/")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = "/"
    if token and not hmac.compare_digest(given.encode(), token.encode()):
        return _html(render.login_page(nonce, target, wrong=True), nonce, 401)
    res = redirect(target, code=303)
    if token:
        res.set_cookie(VIEWER_COOKIE, _viewer_proof(token), httponly=True, samesite="Strict", path="/")
    return res
