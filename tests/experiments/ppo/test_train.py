"""train-ppo end to end on the tiny ToyWorld: it learns, resumes, and its saved policy reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bandits import SlatePolicy
from bandits.ppo import PPOSlatePolicy
from experiments.cli import main
from experiments.ppo.config import load_train_config, parse_train_config
from experiments.ppo.train import summarize, train
from simulator.envs import BatchSessionEnv, ToyWorld
from simulator.errors import TrainingError

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "experiments" / "configs" / "ppo_tiny.toml"


def run_tiny(out: Path) -> dict:
    result = CliRunner().invoke(main, ["train-ppo", "--config", str(TINY), "--out", str(out),
                                       "--no-progress", "--json"])
    assert result.exit_code == 0, result.output
    summary: dict = json.loads(result.stdout)
    return summary


def check_learns(summary: dict) -> None:
    values = summary["reward_per_session"]
    assert values["ppo"]["low"] > values["uniform"]["high"]
    assert summary["best_bandit"] == "uniform"
    assert summary["ratio_to_best_bandit"]["mean"] > 1.2
    assert summary["steps"] >= 12_288


def check_outputs(out: Path, summary: dict) -> None:
    for name in ("policy.npz", "model.zip", "model.json", "learning_curves.csv", "learning_curves.png",
                 "summary.json", "config.json"):
        assert (out / name).is_file(), name
    curves = pd.read_csv(out / "learning_curves.csv")
    assert set(curves["policy"]) == {"ppo", "uniform"}
    assert sorted(curves["step"].unique()) == [4_096, 8_192, 12_288]
    assert json.loads((out / "summary.json").read_text()) == {k: v for k, v in summary.items() if k != "out"}


def check_reloads(out: Path) -> None:
    npz = SlatePolicy.load(out / "policy.npz")
    sb3 = PPOSlatePolicy.load_sb3(out / "model.zip")
    # The last checkpoint is a full PPO.save file; our metadata makes it loadable the same way.
    ckpt = sorted((out / "checkpoints").glob("step_*.zip"))[-1]
    from_ckpt = PPOSlatePolicy.load_sb3(ckpt, metadata=out / "model.json")
    world = ToyWorld(n_items=6, k=2, n_types=3, max_steps=4, abandon_prob=0.1)
    env = BatchSessionEnv(300, world, diagnostics=False)
    obs, info = env.reset(seed=3)
    decisions = [p.select(np.asarray(obs, dtype=float), eligible=info["action_mask"])
                 for p in (npz, sb3, from_ckpt)]
    for d in decisions[1:]:
        np.testing.assert_array_equal(d.slate, decisions[0].slate)
        np.testing.assert_array_equal(d.pscore, decisions[0].pscore)


def check_resume(out: Path, tmp_path: Path) -> None:
    longer = tmp_path / "longer.toml"
    longer.write_text(TINY.read_text().replace("total_steps = 12_288", "total_steps = 16_384"))
    summary = train(load_train_config(longer), out, resume=True)
    assert summary["steps"] == 16_384
    curves = pd.read_csv(out / "learning_curves.csv")
    assert sorted(curves["step"].unique()) == [4_096, 8_192, 12_288, 16_384]
    changed = tmp_path / "changed.toml"
    changed.write_text(TINY.read_text().replace("learning_rate = 0.003", "learning_rate = 0.001"))
    with pytest.raises(TrainingError, match=r"ppo.learning_rate changed"):
        train(load_train_config(changed), out, resume=True)


@pytest.mark.slow
def test_tiny_run_beats_random_writes_reloads_and_resumes(tmp_path: Path) -> None:
    """One training run (seconds) checked four ways, so the suite trains only once."""
    out = tmp_path / "run"
    summary = run_tiny(out)
    check_learns(summary)
    check_outputs(out, summary)
    check_reloads(out)
    check_resume(out, tmp_path)


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["train-ppo", "--config", str(TINY), "--out", str(tmp_path),
                                       "--resume", "--no-progress"])
    assert result.exit_code == 1
    assert "nothing to resume: no checkpoint" in result.output


def test_batch_size_must_divide_the_rollout(tmp_path: Path) -> None:
    config = parse_train_config({"world": {"kind": "toy"}, "ppo": {"num_envs": 10, "n_steps": 3,
                                                              "batch_size": 7}})
    with pytest.raises(TrainingError, match=r"`ppo.batch_size` \(7\) must divide the rollout size"):
        train(config, tmp_path)


def test_bad_config_file_exits_with_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[ppo]\nlearning_rte = 0.1\n")
    result = CliRunner().invoke(main, ["train-ppo", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "ppo.learning_rte" in result.output


def test_summary_hand_computed() -> None:
    config = parse_train_config({"world": {"kind": "toy"}})
    summary = summarize(config, {"ppo": [2.0, 4.0], "a": [1.0, 2.0], "b": [1.0, 1.0]}, steps=10, seconds=1.0)
    assert summary["best_bandit"] == "a"  # mean 1.5 beats 1.0
    # PPO / a is 2 on both seeds: a zero-width interval at 2, above the 1.10 goal.
    assert summary["ratio_to_best_bandit"] == {"mean": 2.0, "low": 2.0, "high": 2.0, "n": 2}
    assert summary["meets_goal"] is True
    assert summary["reward_per_session"]["ppo"]["per_seed"] == [2.0, 4.0]
    assert summary["eval_seeds"] == list(config.eval.seeds)
    worse = summarize(config, {"ppo": [1.0, 1.1], "a": [1.0, 1.0]}, steps=10, seconds=1.0)
    assert worse["meets_goal"] is False


def test_cli_prints_a_table(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = load_train_config(TINY)
    fake = summarize(config, {"ppo": [3.0, 3.3, 3.6], "uniform": [1.0, 1.1, 1.2]}, steps=12_288, seconds=2.0)
    monkeypatch.setattr("experiments.ppo.train.train", lambda *args, **kwargs: fake)
    result = CliRunner().invoke(main, ["train-ppo", "--config", str(TINY), "--out", str(tmp_path),
                                       "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "PPO / best bandit (uniform): 3.000" in result.output
    assert "meets the 1.10x goal" in result.output
