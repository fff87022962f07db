"""The train-ppo config: shipped configs load, every mistake is reported with its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.ppo.config import load_train_config, parse_train_config
from simulator.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("name", ["ppo_session.toml", "ppo_tiny.toml", "ppo_obd.toml"])
def test_shipped_configs_load(name: str) -> None:
    config = load_train_config(ROOT / "experiments" / "configs" / name)
    assert len(config.eval.seeds) >= 3
    assert config.ppo.seed not in config.eval.seeds
    rollout = config.ppo.num_envs * config.ppo.n_steps
    assert rollout % config.ppo.batch_size == 0


def test_session_config_is_the_issue_setting() -> None:
    config = load_train_config(ROOT / "experiments" / "configs" / "ppo_session.toml")
    assert config.world.kind == "default" and config.world.reward == "revenue"
    assert len(config.eval.seeds) >= 5


def test_defaults_and_round_trip() -> None:
    config = parse_train_config({})
    assert config.world.reward == "revenue" and config.ppo.net_arch == (128, 128)
    assert parse_train_config(config.to_json()) == config


def test_the_defaults_are_the_documented_run() -> None:
    """One set of PPO defaults: those of ppo_session.toml, behind docs/ppo.md's figures."""
    session = load_train_config(ROOT / "experiments" / "configs" / "ppo_session.toml")
    assert parse_train_config({}).ppo == session.ppo


BAD = [
    pytest.param({"ppo": {"learning_rte": 0.1}}, r"`ppo.learning_rte`: unknown key \(did you mean `learning_rate`\?\)",
                 id="unknown-key"),
    pytest.param({"wrld": {}}, r"`wrld`: unknown key", id="unknown-table"),
    pytest.param({"world": {"reward": "profit"}}, r"`world.reward`: unknown value 'profit'", id="reward"),
    pytest.param({"world": {"toy": {"n_item": 3}}}, r"`world.toy.n_item`: unknown key", id="toy-key"),
    pytest.param({"ppo": {"num_envs": 0}}, r"`ppo.num_envs`: must be >= 1, found 0", id="num-envs"),
    pytest.param({"ppo": {"gamma": "high"}}, r"`ppo.gamma`: expected float, found str", id="gamma-type"),
    pytest.param({"ppo": {"net_arch": [64, 0]}}, r"`ppo.net_arch`: expected a non-empty list", id="arch"),
    pytest.param({"eval": {"bandits": ["linucbb"]}}, r"unknown policy 'linucbb'", id="bandit"),
    pytest.param({"eval": {"seeds": [0, 1]}}, r"`eval.seeds`: must be held out", id="seeds-not-held-out"),
    pytest.param({"eval": {"bandit_params": {"ucb1": {"c": 2}}}}, r"`eval.bandit_params.ucb1`: is not one of",
                 id="params-of-unused-bandit"),
    pytest.param({"ppo": {"item_features": "yes"}}, r"`ppo.item_features`: expected bool, found str", id="features"),
    pytest.param({"eval": {"bandit_num_envs": 0}}, r"`eval.bandit_num_envs`: must be >= 1", id="bandit-envs"),
    pytest.param({"checkpoint": {"keep": 0}}, r"`checkpoint.keep`: must be >= 1", id="keep"),
    pytest.param({"ppo": []}, r"`ppo`: expected a table", id="not-a-table"),
    pytest.param({"ppo": {"anchor_relation": True, "item_features": False}},
                 r"`ppo.anchor_relation`: needs ppo.item_features = true",
                 id="relation-without-features"),
    pytest.param({"world": {"kind": "calibrated"}}, r"`world.path`: is required when world.kind = \"calibrated\"",
                 id="calibrated-without-path"),
    pytest.param({"world": {"kind": "calibrated", "path": "no/such/world.json"}},
                 r"`world.path`: no file at no/such/world.json", id="calibrated-missing-file"),
    pytest.param({"world": {"path": "world.json"}}, r"`world.path`: is only read when world.kind = \"calibrated\"",
                 id="path-for-default-world"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_bad_configs_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_train_config(raw)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        parse_train_config({"ppo": {"num_envs": 0, "n_steps": 0, "colour": 1}})
    assert len(info.value.problems) == 3


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no config file"):
        load_train_config(tmp_path / "nope.toml")


def test_calibrated_world_path_is_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "w.json").write_text("{}")
    (tmp_path / "run.toml").write_text('[world]\nkind = "calibrated"\npath = "w.json"\nreward = "click"\n')
    config = load_train_config(tmp_path / "run.toml")
    assert config.world.path == str(tmp_path / "w.json")
    assert parse_train_config(config.to_json()) == config
