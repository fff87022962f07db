"""``slatewise serve``: run the serving app under gunicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from serving.config import load_serving_config
from simulator.errors import ConfigError


def gunicorn_options(host: str, port: int, workers: int, threads: int,
                     client_timeout_s: float = 5.0) -> dict[str, Any]:
    """Gunicorn settings: threaded workers whose reads time out, keep-alive, no access log (metrics)."""
    from serving.worker import worker_class

    return {"bind": f"{host}:{port}", "workers": workers, "worker_class": worker_class(client_timeout_s),
            "threads": threads,
            "keepalive": 5, "timeout": 30, "graceful_timeout": 10, "accesslog": None,
            "errorlog": "-", "loglevel": "warning", "preload_app": False}


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Serving TOML file (default: the embedded LinUCB experiment).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (one of them runs the learner).")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256),
              help="Threads per worker (requests one worker works on at once).")
def serve_cmd(config_path: Path | None, host: str, port: int, workers: int, threads: int) -> None:
    """Serve slates over HTTP under gunicorn (Ctrl-C stops it).

    Each worker thread gives up on a client that stops sending its request for
    serving.client_timeout_s seconds (default 5; a stalled body is answered 408), so
    stalled clients cannot hold every thread. A client that drips a byte at a time
    still holds one: in front of untrusted clients run a buffering proxy (nginx with
    its default proxy_request_buffering on; docs/serving.md has the config).
    """
    from gunicorn.app.base import BaseApplication

    from serving.catalog import resolve_shape
    from serving.models import ModelHub

    path = None if config_path is None else config_path.resolve()
    try:  # fail here, once, with the key at fault, rather than in every worker
        cfg = load_serving_config(path)
        ModelHub(cfg, resolve_shape(cfg))
    except ConfigError as err:
        raise click.ClickException(str(err)) from None

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in gunicorn_options(host, port, workers, threads, cfg.client_timeout_s).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from serving import create_app

            return create_app(load_serving_config(path))

    click.echo(f"slatewise serving on http://{host}:{port} ({workers} workers x {threads} threads)",
               err=True)
    _App().run()
