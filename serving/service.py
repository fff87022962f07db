"""The service extension: what every request needs, attached to the app with ``init_app``."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import cast

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from serving.catalog import ServedShape, resolve_shape
from serving.config import ServingConfig
from serving.errors import INTERNAL_ERROR
from serving.learner import Learner
from serving.metrics import Metrics
from serving.models import ModelHub
from serving.store import Store
from serving.traffic import TrafficCache
from simulator.errors import ConfigError, ServingError
from simulator.logs.io import catalog_to_json

logger = logging.getLogger(__name__)


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
        self.store = Store(cfg.db_path, cfg.synchronous)
        check_store_shape(self.store, self.shape, cfg)
        self.hub = ModelHub(cfg, self.shape)
        self.traffic = TrafficCache(self.store, cfg.experiments, cfg.reload_interval_s)
        self.metrics = Metrics()
        self.learner = Learner(cfg, self.shape, self.store, clock=lambda: self.clock())
        self.started = time.time()

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``: request limits, timing hooks and JSON error handlers."""
        app.extensions["slatewise"] = self
        app.config["MAX_CONTENT_LENGTH"] = self.cfg.max_body_bytes
        app.json.sort_keys = False  # type: ignore[attr-defined]
        app.before_request(_start_timer)
        app.after_request(_observe)
        app.register_error_handler(ServingError, _serving_error)
        app.register_error_handler(HTTPException, _http_error)
        app.register_error_handler(Exception, _unexpected_error)


def check_store_shape(store: Store, shape: ServedShape, cfg: ServingConfig) -> None:
    """Record the served catalog and shapes in the store, or refuse a store made for others.

    Raises:
        ConfigError: the store was created for a different catalog, ``k`` or ``d``.
    """
    mine = {"catalog": catalog_to_json(shape.catalog), "k": shape.k, "dim_context": shape.dim_context,
            "context_names": list(shape.context_names)}
    held = store.ensure_meta({**mine, "reward_window_s": cfg.reward_window_s})
    for key, value in mine.items():
        if held.get(key) != value:
            raise ConfigError(f"the store {cfg.db_path} was created for a different `{key}` than this "
                              "configuration serves; use a new serving.db_path for a new catalog or shape.")


def service() -> Service:
    """The :class:`Service` of the current app."""
    return cast(Service, current_app.extensions["slatewise"])


def _endpoint() -> str:
    rule = request.url_rule
    return rule.rule if rule is not None else "unmatched"


def _start_timer() -> None:
    g.started = time.perf_counter()


def _observe(response: Response) -> Response:
    started = g.get("started")
    if started is not None:
        service().metrics.observe(_endpoint(), request.method, response.status_code,
                                  time.perf_counter() - started)
    return response


def _serving_error(err: ServingError) -> tuple[Response, int]:
    service().metrics.error(_endpoint(), err.code)
    return jsonify(err.to_json()), err.status


def _http_error(err: HTTPException) -> tuple[Response, int]:
    status = err.code or 500
    code = (err.name or "error").lower().replace(" ", "_")
    field = "body" if status == 413 else None
    message = err.description or err.name
    if status == 413:
        message = (f"the body is larger than the limit of {service().cfg.max_body_bytes} bytes "
                   "(serving.max_body_bytes); send a smaller body.")
    service().metrics.error(_endpoint(), code)
    return jsonify({"error": {"code": code, "message": message, "field": field}}), status


def _unexpected_error(err: Exception) -> tuple[Response, int]:
    logger.exception("unexpected error answering %s %s", request.method, request.path)
    service().metrics.error(_endpoint(), "internal")
    return jsonify(INTERNAL_ERROR), 500
