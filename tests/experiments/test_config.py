"""Experiment configs: every problem reported at once, by key, and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from experiments.cli import main
from experiments.config import load_experiment_config
from experiments.runs import DEMO_CONFIG
from simulator.errors import ConfigError

GOOD = """
name = "tiny"
seeds = [0, 1]
[data]
source = "world"
reward = "click"
[simulate]
sessions = 40
batch_sessions = 20
[[policies]]
name = "uniform"
[[policies]]
name = "linucb"
label = "LinUCB"
params = { alpha = 0.5 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_demo_config_loads() -> None:
    cfg = load_experiment_config(DEMO_CONFIG)
    assert "LinUCB" in cfg.labels
    assert cfg.data.source == "world"


def test_good_config(tmp_path: Path) -> None:
    cfg = load_experiment_config(write(tmp_path, GOOD))
    assert cfg.seeds == (0, 1)
    assert cfg.policies[1].params == {"alpha": 0.5}
    assert cfg.labels == ["uniform", "LinUCB"]


BAD = [
    pytest.param(GOOD.replace("seeds", "sedes"), r"`sedes`: unknown key \(did you mean `seeds`\?\)", id="typo-top"),
    pytest.param(GOOD.replace('name = "linucb"', 'name = "linucbb"'),
                 r"`policies\[1\].name`: unknown value 'linucbb' \(did you mean `linucb`\?\); choose from",
                 id="unknown-policy"),
    pytest.param(GOOD.replace("alpha = 0.5", "alpah = 0.5"), r"`policies\[1\].params.alpah`: unknown parameter",
                 id="unknown-param"),
    pytest.param(GOOD.replace("alpha = 0.5", "n_items = 3"), r"`policies\[1\].params.n_items`: is set by the runner",
                 id="reserved-param"),
    pytest.param(GOOD.replace("sessions = 40", "sessions = -1"), r"`simulate.sessions`: must be >= 1", id="range"),
    pytest.param(GOOD.replace('reward = "click"', 'reward = "clicks"'), r"`data.reward`: unknown value 'clicks'",
                 id="reward"),
    pytest.param(GOOD.replace("batch_sessions = 20", 'batch_sessions = "20"'),
                 r"`simulate.batch_sessions`: expected int, found str", id="type"),
    pytest.param(GOOD + '\n[compare]\nestimators = ["ipss"]\n', r"`compare.estimators\[0\]`: unknown estimator 'ipss'",
                 id="estimator"),
    pytest.param(GOOD + '\n[compare]\nestimators = ["ips", "pi"]\n',
                 r"`compare.estimators\[1\]`: 'pi' needs slates logged uniformly", id="slate-only-pi"),
    pytest.param(GOOD.replace('label = "LinUCB"', 'label = "uniform"'), r"label 'uniform' is used twice", id="dup-label"),
    pytest.param("name = [", r"not valid TOML", id="syntax"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_config(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_experiment_config(write(tmp_path, text))


def test_every_problem_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("seeds", "sedes").replace('name = "linucb"', 'name = "lin"').replace(
        "sessions = 40", "sessions = 0")
    with pytest.raises(ConfigError) as info:
        load_experiment_config(write(tmp_path, text))
    keys = {p.key for p in info.value.problems}
    assert keys == {"sedes", "policies[1].name", "simulate.sessions"}


def test_broken_config_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("seeds", "sedes"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["simulate", str(path), "--out", str(out)])
    assert result.exit_code == 1
    assert "`sedes`: unknown key" in result.output
    assert not out.exists()
