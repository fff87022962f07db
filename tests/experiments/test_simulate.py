"""Online simulation: same seeds give the same results whatever the parallelism; values match
the world's truth for a policy that does not learn; the tables are what a hand computation gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from experiments.config import parse_experiment_config
from experiments.ppo.evaluate import session_values
from experiments.simulate import TaskResult, metrics_frame, play, run_all, value_table
from experiments.worlds import build_world
from simulator.errors import ConfigError
from simulator.world import UniformPolicy, World, policy_value

CONFIG = {
    "name": "tiny",
    "seeds": [0, 1],
    "data": {"source": "world", "reward": "revenue"},
    "simulate": {"sessions": 60, "batch_sessions": 30},
    "policies": [{"name": "uniform"}, {"name": "linucb", "label": "LinUCB", "params": {"alpha": 0.5}}],
}


def test_parallel_equals_serial() -> None:
    cfg = parse_experiment_config(CONFIG)
    serial = metrics_frame(run_all(cfg, workers=1, progress=False))
    parallel = metrics_frame(run_all(cfg, workers=2, progress=False))
    pd.testing.assert_frame_equal(serial, parallel)
    assert list(serial["policy"].unique()) == ["uniform", "LinUCB"]
    # regret is exact (expected reward of the best slate minus the chosen one): never negative
    assert (serial["regret"] >= -1e-9).all()


def test_uniform_value_matches_world_truth() -> None:
    cfg = parse_experiment_config(CONFIG | {"policies": [{"name": "uniform"}], "seeds": [3, 4]})
    values = value_table(run_all(cfg, workers=1, progress=False))
    ours = values.iloc[0]
    truth = policy_value(World.default(seed=0), UniformPolicy(), n_sessions=4000, seed=11).per_session
    gap = abs(ours["value"] - truth.value)
    assert gap < 4 * np.hypot(ours["stderr"], truth.stderr), (ours.to_dict(), truth)


def test_uniform_rounds_match_world_truth_per_decision() -> None:
    """A policy that does not learn: its rounds' exact expected reward per decision is the world's."""
    cfg = parse_experiment_config(CONFIG | {"policies": [{"name": "uniform"}], "seeds": [5],
                                            "simulate": {"sessions": 1500, "batch_sessions": 500}})
    frame = metrics_frame(run_all(cfg, workers=1, progress=False))
    decisions = frame["decisions"].sum()
    ours = frame["expected"].sum() / decisions
    truth = policy_value(World.default(seed=0), UniformPolicy(), n_sessions=3000, seed=12)
    # decisions within a session are dependent: allow twice the independent-decision error
    err = truth.per_decision.stderr * np.sqrt(1 + truth.per_decision.n / decisions)
    assert abs(ours - truth.per_decision.value) < 4 * 2 * err, (ours, truth.per_decision)
    # and the sessions last as long as the world's do
    per_session = decisions / frame["sessions"].sum()
    length = truth.session_length
    assert abs(per_session - length.value) < 4 * length.stderr * np.sqrt(1 + 3000 / 1500), (per_session, length)


def test_value_table_hand_computed() -> None:
    results = [TaskResult("a", 0, pd.DataFrame(), np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0])),
               TaskResult("b", 0, pd.DataFrame(), np.array([5.0, 5.0]), np.array([5.0, 5.0])),
               TaskResult("a", 1, pd.DataFrame(), np.array([6.0]), np.array([4.0]))]
    table = value_table(results)
    assert table["policy"].tolist() == ["a", "b"]
    a = table.iloc[0]
    # a's held-out sessions over both seeds: 1, 2, 3, 6 -> mean 3, sample sd sqrt(14/3)
    se = np.sqrt(14 / 3) / 2
    z = stats.norm.ppf(0.975)
    assert a["value"] == pytest.approx(3.0) and a["stderr"] == pytest.approx(se)
    assert a["low"] == pytest.approx(3.0 - z * se) and a["high"] == pytest.approx(3.0 + z * se)
    assert a["sessions"] == 4 and table.iloc[1]["stderr"] == 0.0
    # per decision: 12 reward over 8 decisions; residuals r - 1.5 * n = -0.5, 0.5, 0, 0 over mean length 2
    assert a["per_decision"] == pytest.approx(1.5) and a["decisions_per_session"] == pytest.approx(2.0)
    assert a["per_decision_stderr"] == pytest.approx(np.std([-0.25, 0.25, 0.0, 0.0], ddof=1) / 2)
    assert table.iloc[1]["per_decision"] == pytest.approx(1.0)


def test_metrics_frame_hand_computed() -> None:
    def rounds(label: str, rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["sessions", "decisions", "reward", "expected", "best"])
        frame.insert(0, "seed", 0)
        frame.insert(0, "policy", label)
        return frame

    results = [TaskResult("a", 0, rounds("a", [(10, 20, 30.0, 28.0, 40.0), (10, 30, 60.0, 35.0, 41.0)]),
                          np.zeros(2), np.ones(2)),
               TaskResult("b", 0, rounds("b", [(5, 5, 1.0, 1.0, 1.0)]), np.zeros(2), np.ones(2))]
    frame = metrics_frame(results)
    a = frame[frame["policy"] == "a"]
    np.testing.assert_allclose(a["reward_per_session"], [30 / 10, 90 / 20])
    np.testing.assert_allclose(a["regret"], [12.0, 12.0 + 6.0])
    np.testing.assert_allclose(a["regret_per_decision"], [12 / 20, 18 / 50])
    np.testing.assert_allclose(a["round_regret_per_decision"], [12 / 20, 6 / 30])
    np.testing.assert_allclose(a["sessions_seen"], [10, 20])
    assert frame[frame["policy"] == "b"]["regret"].tolist() == [0.0]


@pytest.mark.slow
def test_ppo_entry_trains_then_plays_frozen() -> None:
    """A ppo entry comes trained from its trainer, plays the run without learning, and its held-out
    value is that frozen policy's value in the world."""
    params = {"train_steps": 2048, "num_envs": 16, "batch_size": 512, "temperature": 0.5}
    cfg = parse_experiment_config(CONFIG | {"seeds": [0], "simulate": {"sessions": 40, "batch_sessions": 20},
                                            "policies": [{"name": "ppo", "params": params}]})
    spec = cfg.policies[0]
    assert not spec.trainer.online
    world = build_world(cfg.data)
    agent = spec.trainer.build(spec.params, world, 0)
    trained = {k: v.clone() for k, v in agent.policy.network_state().items()}
    result = play(cfg, spec, agent, world, 0)
    assert result.label == "ppo" and result.rounds["sessions"].sum() == 40
    for key, value in agent.policy.network_state().items():
        assert bool((value == trained[key]).all()), key  # the run's rounds did not train it
    # the frozen policy's value on 3,000 other sessions, its slates drawn by its Gumbel-top-k sampler
    # (not by select, which the run used)
    other = session_values(agent, world, 3000, seed=21).reward
    se = result.eval_rewards.std(ddof=1) / np.sqrt(result.eval_rewards.size)
    gap = abs(result.eval_rewards.mean() - other.mean())
    assert gap < 4 * np.hypot(se, other.std(ddof=1) / np.sqrt(other.size)), (result.eval_rewards.mean(), other.mean())


BAD_PPO = [
    pytest.param({"steps": 10}, r"policies\[0\]\.params\.steps.*train_steps", id="unknown"),
    pytest.param({"learning_rate": 2.0}, r"`policies\[0\]\.params\.learning_rate`: must be <= 1.0", id="range"),
    pytest.param({"num_envs": 16}, r"`policies\[0\]\.params\.batch_size`: \(2048\) must divide the rollout size "
                 r"num_envs \* n_steps = 512; e\.g\. batch_size = 512", id="batch"),
    pytest.param({"seed": 3}, r"`policies\[0\]\.params\.seed`: is set by the runner", id="reserved"),
    pytest.param({"threads": 2}, r"`policies\[0\]\.params\.threads`: unknown key", id="threads"),
]


@pytest.mark.parametrize(("params", "message"), BAD_PPO)
def test_ppo_entry_rejects_bad_parameters(params: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_experiment_config(CONFIG | {"policies": [{"name": "ppo", "params": params}]})


def test_a_policy_trained_first_needs_a_world() -> None:
    with pytest.raises(ConfigError, match=r"`policies\[0\]\.name`: 'ppo' is trained in a world before it plays"):
        parse_experiment_config({"name": "x", "data": {"source": "log", "path": __file__},
                                 "policies": [{"name": "ppo"}]})
