"""The session environment over the known-answer toy world."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from simulator.envs import (
    SESSION_ID,
    EnvError,
    InvalidSlateError,
    ResetNeededError,
    SessionEnv,
    SlateMask,
    TopKSlate,
)
from simulator.envs.toy import ToyWorld


def test_checkers_pass() -> None:
    gym_check_env(SessionEnv(ToyWorld()), skip_render_check=True)
    sb3_check_env(SessionEnv(ToyWorld()), warn=True)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version:UserWarning")
@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda e: TopKSlate(e), id="topk"),
        pytest.param(lambda e: SlateMask(e, repair=True, in_observation=True), id="mask"),
    ],
)
def test_wrapped_checkers_pass(wrap: Any) -> None:
    gym_check_env(wrap(SessionEnv(ToyWorld())), skip_render_check=True)
    sb3_check_env(wrap(SessionEnv(ToyWorld())), warn=True)


def test_make_with_world() -> None:
    env = gym.make(SESSION_ID, world=ToyWorld(n_items=6, k=2))
    assert env.action_space.shape == (2,)
    obs, info = env.reset(seed=0)
    assert obs.shape == (6,) and info["action_mask"].all()


def rollout(seed: int, n_steps: int = 60) -> list[Any]:
    env = SessionEnv(ToyWorld())
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    out: list[Any] = [obs]
    for _ in range(n_steps):
        mask = env.action_mask()
        action = env.action_space.sample(mask=(mask.astype(np.int8),) * env.k)
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs, reward, terminated, truncated, info["click"], info["best_reward"]]
        if terminated or truncated:
            obs, _ = env.reset()
            out.append(obs)
    return out


def test_same_seed_same_rollout() -> None:
    a, b, c = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(a) != len(c) or not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_best_slate_is_known_and_has_zero_regret() -> None:
    world = ToyWorld(n_items=8, k=3, n_types=4)
    env = SessionEnv(world)
    for seed in range(8):
        obs, _ = env.reset(seed=seed)
        shopper = int(np.argmax(obs[:4]))
        best = (shopper + np.arange(3)) % 8
        _, _, _, _, info = env.step(best)
        assert info["best_slate"].tolist() == best.tolist()
        # closed form: attraction 0.85, 0.65, 0.45 seen with probability 1, 1/2, 1/3
        assert info["best_reward"] == pytest.approx(0.85 + 0.65 / 2 + 0.45 / 3)
        assert info["regret"] == pytest.approx(0.0)


def test_expected_reward_matches_simulated_mean() -> None:
    env = SessionEnv(ToyWorld(abandon_prob=1.0))  # one step per session
    total, expected = 0.0, 0.0
    n = 1500
    env.reset(seed=11)
    for _ in range(n):
        _, reward, terminated, truncated, info = env.step(np.array([0, 1, 2]))
        assert terminated or truncated
        total += float(reward)
        expected += info["expected_reward"]
        env.reset()
    # clicks per slate are bounded by 3: four standard errors of the mean is generous
    assert abs(total - expected) / n < 4 * 1.0 / np.sqrt(n)


def test_truncated_at_step_limit_terminated_on_abandon() -> None:
    env = SessionEnv(ToyWorld(max_steps=4, buy_prob=0.0, abandon_prob=0.0))
    env.reset(seed=0)
    flags = [env.step(np.array([5, 6, 7]))[2:4] for _ in range(4)]
    assert flags == [(False, False)] * 3 + [(False, True)]
    env = SessionEnv(ToyWorld(abandon_prob=1.0))
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(np.array([5, 6, 7]))
    assert (terminated, truncated, info["abandon"], info["checkout"]) == (True, False, True, False)


def test_purchase_makes_item_ineligible_and_info_flags() -> None:
    world = ToyWorld(buy_prob=1.0, checkout_prob=0.0, abandon_prob=0.0, max_steps=50)
    env = SessionEnv(world)
    obs, _ = env.reset(seed=2)
    shopper = int(np.argmax(obs[:4]))
    slate = (shopper + np.arange(3)) % 8
    info: dict[str, Any] = {}
    while not info.get("purchase", np.zeros(3)).any():
        _, _, _, _, info = env.step(slate)
    bought = slate[info["purchase"] > 0]
    assert not info["action_mask"][bought].any()
    assert info["revenue"] == pytest.approx(info["purchase"] * world.price[slate])
    with pytest.raises(InvalidSlateError, match=rf"ineligible items \[{int(bought[0])}"):
        env.step(slate)
    # what the world calls cross-sell / up-sell now, for a fresh slate of eligible items
    eligible = np.flatnonzero(info["action_mask"])[:3]
    state = env._state  # the env's session, to ask the world independently
    _, _, _, _, info2 = env.step(eligible)
    assert info2["cross_sell"].tolist() == world.cross_sell(state)[0, eligible].tolist()
    assert info2["up_sell"].tolist() == world.up_sell(state)[0, eligible].tolist()
    assert info2["cross_sell"].any() or info2["up_sell"].any()


@pytest.mark.parametrize("reward_type", ["click", "purchase", "revenue"])
def test_reward_type(reward_type: str) -> None:
    world = ToyWorld(reward_type=reward_type, buy_prob=1.0)
    env = SessionEnv(world)
    env.reset(seed=5)
    for _ in range(5):
        _, reward, terminated, truncated, info = env.step(np.flatnonzero(env.action_mask())[:3])
        assert reward == pytest.approx(float(info[reward_type].sum()))
        if terminated or truncated:
            env.reset()


def test_topk_and_mask_respect_eligibility() -> None:
    world = ToyWorld(buy_prob=1.0, checkout_prob=0.0, abandon_prob=0.0, max_steps=50)
    env = SlateMask(TopKSlate(SessionEnv(world)), in_observation=True)
    obs, _ = env.reset(seed=2)
    base = env.unwrapped
    assert isinstance(base, SessionEnv)
    scores = np.linspace(1.0, -1.0, 8).astype(np.float32)  # prefers items 0, 1, 2, ...
    for _ in range(20):
        mask = obs["action_mask"].astype(bool)
        assert env.action_masks().tolist() == np.tile(mask, 3).tolist()
        obs, _, terminated, truncated, _ = env.step(scores)
        if terminated or truncated:
            break
    assert not obs["action_mask"].all()  # something was bought, and the top-k skipped it


def test_repair_replaces_ineligible_items() -> None:
    world = ToyWorld(buy_prob=1.0, checkout_prob=0.0, abandon_prob=0.0, max_steps=50)
    env = SlateMask(SessionEnv(world), repair=True)
    env.reset(seed=2)
    info: dict[str, Any] = {}
    while not info.get("purchase", np.zeros(3)).any():
        _, _, _, _, info = env.step(np.array([0, 1, 2]))
    _, _, _, _, info = env.step(np.array([0, 1, 2]))
    assert info["repaired"] is True


def test_step_before_reset_and_after_end() -> None:
    env = SessionEnv(ToyWorld(abandon_prob=1.0))
    with pytest.raises(ResetNeededError, match=r"Call reset\(\) before step\(\)"):
        env.step(np.array([0, 1, 2]))
    env.reset(seed=0)
    env.step(np.array([0, 1, 2]))
    with pytest.raises(ResetNeededError, match="has ended"):
        env.step(np.array([0, 1, 2]))


@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(np.array([0, 1]), r"shape \(3,\)", id="shape"),
        pytest.param(np.array([0, 1, 8]), r"\[0, 7\].*found 8", id="range"),
        pytest.param(np.array([2, 2, 1]), "distinct", id="dup"),
        pytest.param(np.array([0.2, 1.0, 2.0]), "integer", id="float"),
    ],
)
def test_bad_action(action: Any, message: str) -> None:
    env = SessionEnv(ToyWorld())
    env.reset(seed=0)
    with pytest.raises(InvalidSlateError, match=message):
        env.step(action)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"world": "default"}, r"`world` must be a simulator.world.World.*found str", id="world"),
        pytest.param({"world": ToyWorld(), "render_mode": "human"}, "`render_mode` must be None",
                     id="render"),
    ],
)
def test_bad_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvError, match=message):
        SessionEnv(**kwargs)


def test_bad_reset_options() -> None:
    with pytest.raises(EnvError, match="not used"):
        SessionEnv(ToyWorld()).reset(options={"x": 1})
