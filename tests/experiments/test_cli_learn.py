"""`slatewise learn`: fit from a log, prove on held-out sessions, save a policy file with its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bandits import SlatePolicy
from experiments.cli import main
from simulator.logs import save_parquet
from simulator.world import World, WorldConfig, generate_log, make_logging_policy
from simulator.world.truth import first_decision_value

WORLD = World(WorldConfig(n_categories=4, items_per_category=5, k=2, max_steps=1, n_taste=0), 0)


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("learn") / "log.parquet"
    save_parquet(generate_log(WORLD, make_logging_policy("uniform"), 5_000, seed=3), path)
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_offline_pl_beats_the_logger_and_its_bound_is_honest(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.npz"
    code, text = run("learn", str(log_file), "--policy", "offline_pl", "--out", str(out), "--json",
                     "--n-bootstrap", "0")
    assert code == 0, text
    doc = json.loads(text)
    policy = SlatePolicy.load(out)
    truth = first_decision_value(WORLD, policy).value
    logger = first_decision_value(WORLD, make_logging_policy("uniform")).value
    assert truth > 1.5 * logger
    rows = {e["estimator"]: e for e in doc["estimates"]}
    assert set(rows) == {"ips", "snips", "dr"}
    for row in rows.values():  # the one-sided bound sits below the true gain; the interval holds it
        assert row["lower_bound"] < truth - logger
        assert row["improvement_low"] <= truth - logger <= row["improvement_high"]
    assert abs(doc["logger_value"] - logger) < 4 * (doc["logger_high"] - doc["logger_low"])
    assert doc["train_rows"] + doc["test_rows"] == 5_000 and doc["method"] == "offline-ips"
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["stamp"]["n_items"] == 20 and report["stamp"]["dim_context"] == WORLD.dim_context


@pytest.mark.parametrize("spec", ["linucb:alpha=0.1", "epsilon_greedy:warm=replay,epsilon=0.05",
                                  "ucb1", "linear_ts"])
def test_bandits_warm_start(log_file: Path, tmp_path: Path, spec: str) -> None:
    out = tmp_path / "b.npz"
    code, text = run("learn", str(log_file), "--policy", spec, "--out", str(out), "--json",
                     "--n-bootstrap", "0")
    assert code == 0, text
    doc = json.loads(text)
    assert doc["method"].startswith("warm-") and doc["details"]["warm_updates"] > 0
    assert SlatePolicy.load(out).n_items == 20


@pytest.mark.slow
def test_ppo_in_a_calibrated_world(log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "ppo.npz"
    code, text = run("learn", str(log_file), "--policy", "ppo:total_steps=2048", "--out", str(out),
                     "--json", "--n-bootstrap", "0")
    assert code == 0, text
    doc = json.loads(text)
    assert doc["method"] == "ppo-calibrated" and doc["policy_name"] == "ppo"
    policy = SlatePolicy.load(out)
    assert policy.dim_context == WORLD.dim_context
    assert len(doc["estimates"]) == 3


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--policy", "nope"], "unknown policy 'nope'", id="unknown-policy"),
    pytest.param(["--policy", "linucb:alpha"], "is not key=value", id="bad-spec"),
    pytest.param(["--policy", "offline_pl:depth=3"], "does not take ['depth']", id="bad-key"),
    pytest.param(["--policy", "ppo:depth=3"], "ppo does not take ['depth']; its keys are ['temperature'",
                 id="ppo-bad-key"),
    pytest.param(["--policy", "linucb:depth=3"], "linucb does not take ['depth']; its keys are ['warm'",
                 id="warm-bad-key"),
    pytest.param(["--policy", "bought_together"], "pass bought_together:anchor_column=J", id="anchored"),
    pytest.param(["--policy", "linucb", "--holdout", "0.9999"], "leaves nothing", id="holdout"),
    pytest.param(["--policy", "linucb:warm=magic"], "`rule` must be one of", id="warm-rule"),
])
def test_bad_input(log_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    code, text = run("learn", str(log_file), "--out", str(tmp_path / "x.npz"), *args)
    assert code != 0 and message in text, text
    assert not (tmp_path / "x.npz").exists()


def test_missing_log_and_bad_out(tmp_path: Path, log_file: Path) -> None:
    code, text = run("learn", str(tmp_path / "none.parquet"), "--policy", "linucb", "--out", str(tmp_path / "x.npz"))
    assert code != 0 and "no such log file" in text
    code, text = run("learn", str(log_file), "--policy", "linucb", "--out", str(tmp_path / "x.pkl"))
    assert code != 0 and "must end in .npz" in text


# ---------------------------------------------------------------------------- world evaluate
@pytest.fixture(scope="module")
def world_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.world import save_world

    return save_world(WORLD, tmp_path_factory.mktemp("world") / "world.json")


def test_world_evaluate_matches_the_exact_truth(world_file: Path, log_file: Path, tmp_path: Path) -> None:
    code, text = run("world", "evaluate", "uniform", "--world", str(world_file), "--sessions", "4000", "--json")
    assert code == 0, text
    doc = json.loads(text)
    exact = first_decision_value(WORLD, make_logging_policy("uniform")).value
    assert doc["first_decision"]["exact"] and doc["first_decision"]["value"] == pytest.approx(exact)
    # one decision per session: the Monte Carlo session value must agree with the exact first decision
    mc = doc["per_session"]
    assert not mc["exact"] and mc["stderr"] > 0
    assert abs(mc["value"] - exact) < 4 * mc["stderr"]
    out = tmp_path / "p.npz"
    assert run("learn", str(log_file), "--policy", "offline_pl", "--out", str(out), "--n-bootstrap", "0")[0] == 0
    code, text = run("world", "evaluate", str(out), "--world", str(world_file), "--sessions", "3000", "--json")
    assert code == 0, text
    doc = json.loads(text)
    truth = first_decision_value(WORLD, SlatePolicy.load(out)).value
    assert doc["first_decision"]["value"] == pytest.approx(truth)
    assert abs(doc["per_decision"]["value"] - truth) < 4 * doc["per_decision"]["stderr"]
    code, text = run("world", "evaluate", str(out), "--sessions", "100")  # the default world: 300 items
    assert code != 0 and "n_items=20" in text and "n_items=300" in text


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["nothing.npz"], "no such policy file", id="no-policy"),
    pytest.param(["uniform", "--world", "nowhere.json"], "no such world file", id="no-world"),
])
def test_world_evaluate_bad_input(args: list[str], message: str) -> None:
    code, text = run("world", "evaluate", *args, "--sessions", "10")
    assert code != 0 and message in text, text


def test_a_saved_ppo_policy_is_a_policy_file(log_file: Path, world_file: Path, tmp_path: Path) -> None:
    """`ope --policy ppo.npz` and `world evaluate ppo.npz` take a PPO file like any other."""
    from bandits.ppo import PPOSlatePolicy

    path = PPOSlatePolicy(WORLD.n_items, WORLD.k, WORLD.dim_context, net_arch=(8,), seed=0).save(tmp_path / "ppo.npz")
    code, text = run("ope", str(log_file), "--policy", str(path), "--estimators", "ips,snips", "--n-bootstrap",
                     "0", "--json")
    assert code == 0, text
    assert [e["estimator"] for e in json.loads(text)["policies"][0]["estimates"]] == ["ips", "snips"]
    code, text = run("world", "evaluate", str(path), "--world", str(world_file), "--sessions", "500", "--json")
    assert code == 0, text


# ---------------------------------------------------------------------------- train-ppo flags
def test_train_ppo_takes_total_steps_and_seeds(tmp_path: Path) -> None:
    tiny = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "ppo_tiny.toml"
    code, text = run("train-ppo", "--config", str(tiny), "--out", str(tmp_path / "o"), "--no-progress",
                     "--total-steps", "2048", "--seeds", "7,8", "--json")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["steps"] == 2048 and summary["eval_seeds"] == [7, 8]
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["ppo"]["total_steps"] == 2048 and config["eval"]["seeds"] == [7, 8]
    code, text = run("train-ppo", "--config", str(tiny), "--out", str(tmp_path / "p"), "--seeds", "0,1")
    assert code != 0 and "training seed 0 is among" in text
    code, text = run("train-ppo", "--config", str(tiny), "--out", str(tmp_path / "p"), "--seeds", "x")
    assert code != 0 and "comma-separated integers" in text


def test_every_learner_is_one_spec_looked_up_by_name() -> None:
    from experiments.cli.learn import OFFLINE_LEARNERS, learner

    assert set(OFFLINE_LEARNERS) == {"offline_pl", "ppo"}
    assert learner("ppo") is OFFLINE_LEARNERS["ppo"]
    assert "max_epochs" in learner("offline_pl").key_names()
    assert "total_steps" in learner("ppo").key_names()
    warm = learner("linucb")
    assert warm.name == "linucb" and {"warm", "alpha"} <= set(warm.key_names())
