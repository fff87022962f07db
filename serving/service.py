"""The service extension: what every request needs, attached to the app with ``init_app``."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from flask import Flask, Response, current_app, request

from serving.catalog import ServedShape, resolve_shape
from serving.config import ServingConfig
from serving.errors import Unauthorized
from serving.http import error_answer, read_body
from serving.learner import Learner
from serving.metrics import Metrics
from serving.models import ModelHub
from serving.privacy import Pseudonyms, resolve_secret
from serving.store import EventStore, StoreMeta, open_store
from serving.tokens import EventTokens, new_key
from serving.traffic import TrafficCache
from serving.validation import parse_json
from simulator.errors import ConfigError, ServingError
from simulator.logs.io import catalog_to_json


class Service:
    """Everything a request needs: config, catalog, store, policies, traffic, metrics, learner.

    Args:
        cfg: the serving configuration.
        clock: UNIX time source (tests replace it to reach the reward window).
    """

    def __init__(self, cfg: ServingConfig, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.clock = clock
        self.shape: ServedShape = resolve_shape(cfg)
        check_policy_files(cfg, self.shape)
        self.pseudonyms = Pseudonyms(resolve_secret(cfg.user_id_secret, cfg.model_dir, generate=True))
        self.store: EventStore = open_store(cfg.store or cfg.db_path, cfg.synchronous)
        try:
            self.tokens = EventTokens(check_store_shape(self.store, self.shape, cfg).event_key)
            self.hub = ModelHub(cfg, self.shape)
            self.traffic = TrafficCache(self.store, cfg.experiments, cfg.reload_interval_s)
            self.metrics = Metrics()
            self.learner = Learner(cfg, self.shape, self.store, clock=lambda: self.clock())
        except BaseException:
            self.store.close()  # a service that does not start keeps no connection open
            raise
        self.started = time.time()

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``: the request limit and the JSON error handlers (no request hooks)."""
        app.extensions["slatewise"] = self
        app.config["MAX_CONTENT_LENGTH"] = self.cfg.max_body_bytes
        app.json.sort_keys = False  # type: ignore[attr-defined]
        app.register_error_handler(Exception, _error)

    def error_response(self, environ: dict[str, Any], err: BaseException) -> Response:
        """The JSON error answer for ``err`` as a Flask response."""
        status, headers, body = error_answer(environ, err, self.cfg.max_body_bytes)
        return Response(body, status=status, headers=headers)

    def request_json(self) -> dict[str, Any]:
        """The current request's JSON object (413 beyond ``max_body_bytes``, 400 when not an object)."""
        return parse_json(read_body(request.environ, self.cfg.max_body_bytes))


def check_policy_files(cfg: ServingConfig, shape: ServedShape) -> None:
    """Refuse to start when an arm's ``policy_file`` was learned on another catalog or context.

    A missing file is named; the learn report beside a file (``POLICY.json``, written by
    ``slatewise learn``) is compared with the served catalog's ids, ``k``, context width
    and context names. (The policy's own sizes are checked when it is built.)

    Raises:
        ConfigError: naming the experiment, the arm and what differs.
    """
    from bandits.offline.stamp import CatalogStamp, read_stamp, stamp_mismatch

    served = CatalogStamp.of(shape.catalog, shape.k, shape.dim_context, shape.context_names)
    for exp in cfg.experiments:
        for arm in exp.arms:
            if not arm.policy_file:
                continue
            where = f"experiments[{exp.name!r}].arms[{arm.name!r}].policy_file"
            if not Path(arm.policy_file).is_file():
                raise ConfigError(f"`{where}`: no policy file at {arm.policy_file}; write one with "
                                  "`slatewise learn LOG --policy NAME --out POLICY.npz`.")
            try:
                learned = read_stamp(arm.policy_file)
            except (ValueError, KeyError, TypeError) as err:
                raise ConfigError(f"`{where}`: the learn report beside {arm.policy_file} cannot be read "
                                  f"({err}); learn the policy again or remove the report.") from None
            problem = None if learned is None else stamp_mismatch(learned, served)
            if problem is not None:
                raise ConfigError(f"`{where}` = {arm.policy_file} does not fit this service: {problem}. "
                                  "Learn it again on a log of the served catalog, or serve its catalog.")


def check_store_shape(store: EventStore, shape: ServedShape, cfg: ServingConfig) -> StoreMeta:
    """Record the served catalog and shapes in the store, or refuse a store made for others.

    Returns:
        What the store holds (its event key included).

    Raises:
        ConfigError: the store was created for a different catalog, ``k`` or ``d``.
    """
    mine = StoreMeta(catalog=catalog_to_json(shape.catalog), k=shape.k, dim_context=shape.dim_context,
                     context_names=tuple(shape.context_names), reward_window_s=cfg.reward_window_s,
                     event_key=new_key())
    held = store.ensure_meta(mine)
    for key in ("catalog", "k", "dim_context", "context_names"):
        if getattr(held, key) != getattr(mine, key):
            where = "the PostgreSQL store (serving.store)" if cfg.store else f"the store {cfg.db_path}"
            raise ConfigError(f"{where} was created for a different `{key}` than this configuration serves; "
                              "use a new serving.db_path (or a new database or schema in serving.store) for "
                              "a new catalog or shape.")
    return held


def check_bearer(expected: str, what: str) -> None:
    """Refuse a request whose ``Authorization`` is not ``Bearer <expected>`` (constant-time compare).

    Raises:
        Unauthorized: naming ``Authorization`` and what was wrong.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise Unauthorized(f"`Authorization`: expected `Bearer <{what}>`, found "
                           + ("nothing" if not header else "a wrong token") + ".", field="Authorization")


def require_admin() -> None:
    """Refuse a request without the admin token (403 when admin endpoints are disabled).

    Raises:
        ServingError: 403 when ``serving.admin_token`` is empty.
        Unauthorized: the token is missing or wrong.
    """
    token = service().cfg.admin_token
    if not token:
        raise ServingError("admin endpoints are disabled: set serving.admin_token or "
                           "SLATEWISE_ADMIN_TOKEN.", field="Authorization", status=403)
    check_bearer(token, "admin token")


def service() -> Service:
    """The :class:`Service` of the current app."""
    return cast(Service, current_app.extensions["slatewise"])


def _error(err: Exception) -> Response:
    return service().error_response(request.environ, err)
