from __future__ import annotations

from pathlib import Path

import pytest

from serving.catalog import FALLBACK_N_ITEMS, resolve_shape
from serving.config import ServingConfig, load_serving_config
from simulator.errors import ConfigError

TOML = """
[serving]
db_path = "{db}"
admin_token = "from-file"
user_id_secret = "a-test-secret-of-32-characters!!"
n_items = 30
k = 2
dim_context = 3
context_names = ["a", "b", "c"]

[[experiments]]
name = "launch"
ramp = [0.1, 0.5]

[[experiments.arms]]
name = "base"
policy = "linucb"
weight = 0.9
params = {{ alpha = 0.3 }}

[[experiments.arms]]
name = "new"
policy = "epsilon_greedy"
weight = 0.1
ope_bar = 0.05
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "serving.toml"
    path.write_text(text)
    return path


def test_toml_then_environment(tmp_path: Path) -> None:
    path = write(tmp_path, TOML.format(db=tmp_path / "x.db"))
    cfg = load_serving_config(path, env={"SLATEWISE_ADMIN_TOKEN": "from-env", "SLATEWISE_REWARD_WINDOW_S": "60",
                                 "SLATEWISE_LEARNER": "false"})
    assert cfg.admin_token == "from-env" and cfg.reward_window_s == 60.0 and cfg.learner is False
    assert cfg.n_items == 30 and cfg.context_names == ("a", "b", "c")
    exp = cfg.experiment("launch")
    assert exp.control == "base" and exp.salt == "launch-v1" and exp.ramp == (0.1, 0.5)
    assert exp.arm("base").params == {"alpha": 0.3} and exp.arm("new").ope_bar == 0.05


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, TOML.format(db=tmp_path / "x.db"))
    assert load_serving_config(env={"SLATEWISE_CONFIG": str(path)}).admin_token == "from-file"


def test_embedded_default_serves_linucb(tmp_path: Path) -> None:
    cfg = load_serving_config(env={})
    assert cfg.experiments[0].arms[0].policy == "linucb" and cfg.experiments[0].arms[0].weight == 1.0
    shape = resolve_shape(cfg)
    if shape.source == "fallback":
        assert shape.n_items == FALLBACK_N_ITEMS and shape.k == 3 and shape.dim_context == 8
    else:
        assert shape.source == "world" and shape.n_items >= shape.k >= 1


BAD = [
    pytest.param({"SLATEWISE_REWARD_WINDOW_S": "soon"}, "", "reward_window_s.*float", id="env-type"),
    pytest.param({"SLATEWISE_LEARNER": "maybe"}, "", "learner.*bool", id="env-bool"),
    pytest.param({"SLATEWISE_DB_PATH": ":memory:"}, "", "db_path.*file path", id="memory-db"),
    pytest.param({"SLATEWISE_SYNCHRONOUS": "SOMETIMES"}, "", "synchronous", id="sync-mode"),
    pytest.param({"SLATEWISE_REWARD_WINDOW_S": "-1"}, "", "reward_window_s.*positive", id="negative-window"),
    pytest.param({}, "[serving]\ncolour = 1\n", "unknown keys.*colour", id="unknown-key"),
    pytest.param({}, "[extra]\n", "unknown tables", id="unknown-table"),
    pytest.param({}, "[serving\n", "not valid TOML", id="bad-toml"),
    pytest.param({}, '[[experiments]]\nname = "e"\n[[experiments.arms]]\nname = "a"\npolicy = "uniform"\n'
                 "weight = 0.5\n", "sum to 1", id="weights-sum"),
    pytest.param({}, '[[experiments]]\nname = "e"\ncontrol = "z"\n[[experiments.arms]]\nname = "a"\n'
                 'policy = "uniform"\nweight = 1.0\n', "control", id="unknown-control"),
    pytest.param({}, '[[experiments]]\nname = "e"\nramp = [0.5, 0.1]\n[[experiments.arms]]\nname = "a"\n'
                 'policy = "uniform"\nweight = 1.0\n', "ramp", id="ramp-order"),
    pytest.param({}, '[[experiments]]\nname = "e"\n[[experiments.arms]]\nname = "a"\npolicy = "uniform"\n',
                 "weight.*missing", id="missing-weight"),
    pytest.param({}, '[[experiments]]\nname = "e f"\n[[experiments.arms]]\nname = "a"\npolicy = "uniform"\n'
                 "weight = 1.0\n", "name", id="bad-name"),
]


@pytest.mark.parametrize(("env", "toml", "message"), BAD)
def test_bad_config_names_the_key(tmp_path: Path, env: dict[str, str], toml: str, message: str) -> None:
    path = write(tmp_path, toml) if toml else None
    with pytest.raises(ConfigError, match=message):
        load_serving_config(path, env=env)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_serving_config(tmp_path / "none.toml", env={})


def test_unknown_policy_and_bad_params_fail_at_startup(tmp_path: Path) -> None:
    from serving import create_app
    from serving.config import ABExperimentConfig, ArmConfig

    for arm, message in ((ArmConfig("a", "nope", 1.0), "registered policy"),
                         (ArmConfig("a", "linucb", 1.0, {"alpha": -1}), "alpha")):
        cfg = ServingConfig(db_path=str(tmp_path / "c.db"), model_dir=str(tmp_path / "m"), learner=False,
                            n_items=5, k=2, dim_context=2,
                            experiments=(ABExperimentConfig("e", "s", (arm,), "a"),))
        with pytest.raises(ConfigError, match=message):
            create_app(cfg)


def test_a_store_refuses_another_catalog(tmp_path: Path) -> None:
    from serving import create_app

    base = {"db_path": str(tmp_path / "s.db"), "model_dir": str(tmp_path / "m"), "learner": False,
            "k": 2, "dim_context": 2}
    create_app(ServingConfig(n_items=5, **base))
    with pytest.raises(ConfigError, match="different `catalog`"):
        create_app(ServingConfig(n_items=6, **base))
