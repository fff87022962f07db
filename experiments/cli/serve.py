"""``slatewise serve``: run the serving app under gunicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from serving.config import load_serving_config
from simulator.errors import ConfigError


def gunicorn_options(host: str, port: int, workers: int, threads: int) -> dict[str, Any]:
    """Gunicorn settings: threaded workers with keep-alive, access log off (metrics instead)."""
    return {"bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread", "threads": threads,
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
    """Serve slates over HTTP under gunicorn (Ctrl-C stops it)."""
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
            for key, value in gunicorn_options(host, port, workers, threads).items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from serving import create_app

            return create_app(load_serving_config(path))

    click.echo(f"slatewise serving on http://{host}:{port} ({workers} workers x {threads} threads)",
               err=True)
    _App().run()
