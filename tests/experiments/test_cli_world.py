from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from experiments.cli import main
from simulator.logs import load_parquet
from simulator.world import load_world


def test_generate_json(tmp_path: Path) -> None:
    config = tmp_path / "small.toml"
    config.write_text("[world]\nn_categories = 4\nitems_per_category = 5\nmax_steps = 3\n"
                      "reward_type = \"click\"\n")
    out = tmp_path / "log.parquet"
    result = CliRunner().invoke(main, ["world", "generate", "--config", str(config), "--sessions", "50",
                                       "--policy", "epsilon_greedy", "--epsilon", "0.2",
                                       "--truth-sessions", "200", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    log = load_parquet(out)
    assert doc["decisions"] == log.n_rounds and doc["n_items"] == 20
    assert doc["reward_type"] == "click" and log.metadata.reward_type == "click"
    truth = doc["true_value"]
    assert truth["per_session"]["ci_low"] <= truth["per_session"]["value"] <= truth["per_session"]["ci_high"]


def test_generate_text_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "log.parquet"
    ok = CliRunner().invoke(main, ["world", "generate", "--sessions", "20", "--truth-sessions", "50",
                                   "-o", str(out)])
    assert ok.exit_code == 0, ok.output
    assert "true value of uniform" in ok.output and "per_session" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text("k = 0\n")
    res = CliRunner().invoke(main, ["world", "generate", "--config", str(bad), "--sessions", "5",
                                    "-o", str(out)])
    assert res.exit_code != 0 and "WorldConfig.k must lie in" in res.output


def test_calibrate_json(tmp_path: Path, obd_dir: Path) -> None:
    data = tmp_path / "men.parquet"
    runner = CliRunner()
    res = runner.invoke(main, ["logs", "import-obd", str(obd_dir), "--policy", "random", "--campaign",
                               "men", "-o", str(data)])
    assert res.exit_code == 0, res.output
    world_file = tmp_path / "world.json"
    res = runner.invoke(main, ["world", "calibrate", str(data), "-o", str(world_file), "--simulated",
                               "30000", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [r["key"] for r in doc["rows"] if r["kind"] == "position"] == [0, 1, 2]
    assert load_world(world_file).n_items == doc["n_items"] == 34
    res = runner.invoke(main, ["world", "calibrate", str(tmp_path / "none.parquet"), "-o",
                               str(world_file)])
    assert res.exit_code != 0


def test_generate_under_a_bandits_policy(tmp_path: Path) -> None:
    config = tmp_path / "small.toml"
    config.write_text("n_categories = 4\nitems_per_category = 5\nmax_steps = 3\n")
    out = tmp_path / "log.parquet"
    res = CliRunner().invoke(main, ["world", "generate", "--config", str(config), "--sessions", "30",
                                    "--policy", "linucb", "--truth-sessions", "50", "-o", str(out),
                                    "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["policy"] == "linucb" and doc["true_value"]["per_decision"]["exact"] is False
    assert load_parquet(out).metadata.logging_policy == "linucb"
    res = CliRunner().invoke(main, ["world", "generate", "--sessions", "5", "--policy", "nope", "-o",
                                    str(out)])
    assert res.exit_code != 0 and "unknown policy 'nope'" in res.output
