"""The Flask application factory."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from serving.blueprints.dashboard import bp as dashboard_bp
from serving.blueprints.experiments import bp as experiments_bp
from serving.blueprints.ops import bp as ops_bp
from serving.blueprints.rewards import bp as rewards_bp
from serving.blueprints.slates import ENDPOINT, SlatesApp
from serving.blueprints.slates import bp as slates_bp
from serving.blueprints.users import bp as users_bp
from serving.config import ServingConfig, load_serving_config
from serving.http import MetricsMiddleware, RouteLabels, StartResponse, WSGIApp
from serving.service import Service
from simulator.errors import ConfigError

#: Flask's per-request hook registries that a mounted sub-application never runs
_HOOKS = ("before_request_funcs", "after_request_funcs", "teardown_request_funcs", "url_value_preprocessors")


def create_app(config: ServingConfig | None = None, *, clock: Callable[[], float] = time.time) -> Flask:
    """Build the slatewise serving app.

    Args:
        config: the configuration; None reads :func:`serving.config.load_serving_config`
            (the embedded default, a file named by ``SLATEWISE_CONFIG``, and
            ``SLATEWISE_*`` environment variables).
        clock: UNIX time source for decisions and the reward window.

    Returns:
        The Flask app, with the learner thread started when ``config.learner`` is true.
        Its WSGI callable is :class:`serving.http.MetricsMiddleware` around the Flask
        app; with ``config.slates_app`` (default) ``/v1/slates`` is answered by the
        sub-application :class:`serving.blueprints.slates.SlatesApp`, mounted with
        Werkzeug's ``DispatcherMiddleware``.

    Raises:
        ConfigError: the configuration is invalid, or ``slates_app`` is on while request
            hooks are registered (the sub-application would skip them).
    """
    cfg = load_serving_config() if config is None else config
    app = Flask("serving")
    svc = Service(cfg, clock=clock)
    try:
        svc.init_app(app)
        app.register_blueprint(slates_bp)
        app.register_blueprint(rewards_bp)
        app.register_blueprint(experiments_bp)
        app.register_blueprint(ops_bp)
        app.register_blueprint(users_bp)
        app.register_blueprint(dashboard_bp)
        inner: WSGIApp = app.wsgi_app
        if cfg.slates_app:
            refuse_request_hooks(app)
            inner = _Mounted(app, DispatcherMiddleware(app.wsgi_app, {ENDPOINT: SlatesApp(svc)}))
        app.wsgi_app = MetricsMiddleware(  # type: ignore[method-assign]
            inner, svc.metrics, RouteLabels(app.url_map))
    except BaseException:
        svc.store.close()  # an app that does not start keeps no connection open
        raise
    if cfg.learner:
        svc.learner.start()
    return app


def refuse_request_hooks(app: Flask) -> None:
    """Refuse to serve ``/v1/slates`` from the sub-application when Flask request hooks exist.

    Raises:
        ConfigError: naming the hooks and the fix (``serving.slates_app = false``).
    """
    found = [f"{kind}[{key or 'app'}]" for kind in _HOOKS
             for key, funcs in getattr(app, kind).items() if funcs]
    if found:
        raise ConfigError(f"request hooks are registered ({', '.join(found)}), which the /v1/slates "
                          "sub-application (serving.slates_app = true) would skip; set serving.slates_app = "
                          "false (SLATEWISE_SLATES_APP=0) to serve slates through Flask, or remove the "
                          "hooks.")


class _Mounted:
    """The dispatcher, checking once at the first request that no request hook was added since."""

    def __init__(self, app: Flask, dispatcher: WSGIApp) -> None:
        self.app = app
        self.dispatcher = dispatcher
        self.checked = False

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not self.checked:
            refuse_request_hooks(self.app)
            self.checked = True
        return self.dispatcher(environ, start_response)
