"""The Flask application factory."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask

from serving.blueprints.experiments import bp as experiments_bp
from serving.blueprints.ops import bp as ops_bp
from serving.blueprints.rewards import bp as rewards_bp
from serving.blueprints.slates import SlatesFastPath
from serving.blueprints.slates import bp as slates_bp
from serving.config import ServingConfig, load_config
from serving.service import Service


def create_app(config: ServingConfig | None = None, *, clock: Callable[[], float] = time.time) -> Flask:
    """Build the slatewise serving app.

    Args:
        config: the configuration; None reads :func:`serving.config.load_config` (the
            embedded default, a file named by ``SLATEWISE_CONFIG``, and ``SLATEWISE_*``
            environment variables).
        clock: UNIX time source for decisions and the reward window.

    Returns:
        The Flask app, with the learner thread started when ``config.learner`` is true.
        With ``config.fast_path`` (default), ``POST /v1/slates`` is answered by
        :class:`serving.blueprints.slates.SlatesFastPath` in front of the app's WSGI
        callable (the Flask route answers what it passes on).
    """
    cfg = load_config() if config is None else config
    app = Flask("serving")
    svc = Service(cfg, clock=clock)
    svc.init_app(app)
    app.register_blueprint(slates_bp)
    app.register_blueprint(rewards_bp)
    app.register_blueprint(experiments_bp)
    app.register_blueprint(ops_bp)
    if cfg.fast_path:  # POST /v1/slates, the hot route, answered in front of Flask's request machinery
        app.wsgi_app = SlatesFastPath(app.wsgi_app, svc)  # type: ignore[method-assign]
    if cfg.learner:
        svc.learner.start()
    return app
