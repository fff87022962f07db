from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from experiments.cli import main
from experiments.cli.serve import gunicorn_options


def test_gunicorn_options_bind_loopback_with_threads() -> None:
    opts = gunicorn_options("127.0.0.1", 8123, 3, 4)
    assert opts["bind"] == "127.0.0.1:8123" and opts["workers"] == 3 and opts["threads"] == 4
    from gunicorn.workers.gthread import ThreadWorker

    assert issubclass(opts["worker_class"], ThreadWorker) and opts["preload_app"] is False
    assert gunicorn_options("127.0.0.1", 8123, 3, 4, 1.5)["worker_class"].client_timeout_s == 1.5


def test_serve_rejects_a_bad_config_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[serving]\nreward_window_s = -5\n")
    res = CliRunner().invoke(main, ["serve", "--config", str(bad), "--port", "8123"])
    assert res.exit_code == 1 and "reward_window_s" in res.output


def test_serve_help_lists_the_options() -> None:
    res = CliRunner().invoke(main, ["serve", "--help"])
    assert res.exit_code == 0
    for option in ("--config", "--host", "--port", "--workers", "--threads"):
        assert option in res.output


def test_serve_rejects_an_unknown_policy_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[serving]\nuser_id_secret = "0123456789abcdef0123"\nn_items = 5\nk = 2\ndim_context = 2\n[[experiments]]\nname = "e"\n'
                   '[[experiments.arms]]\nname = "a"\npolicy = "no-such-policy"\nweight = 1.0\n')
    res = CliRunner().invoke(main, ["serve", "--config", str(bad)])
    assert res.exit_code == 1 and "registered policy" in res.output
