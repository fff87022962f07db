"""The session environments over the real ground-truth world (simulator.world)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import simulator.envs  # noqa: F401  (registers the ids)
from simulator.envs import (
    SESSION_ID,
    BatchSessionEnv,
    InvalidSlateError,
    SessionEnv,
    SlateMask,
    TopKSlate,
    top_k,
)
from simulator.world import World, WorldConfig
from tests.simulator.world.reference import ReferenceWorld


@pytest.fixture(scope="module")
def world() -> World:
    return World.default(seed=0)


def test_default_env_via_make_passes_checkers() -> None:
    env = gym.make(SESSION_ID)
    base = env.unwrapped
    assert isinstance(base, SessionEnv) and isinstance(base.world, World)
    assert env.action_space.shape == (3,)
    gym_check_env(base, skip_render_check=True)
    sb3_check_env(SessionEnv(), warn=True)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version:UserWarning")
def test_wrapped_default_env_passes_checkers(world: World) -> None:
    sb3_check_env(TopKSlate(SessionEnv(world)), warn=True)
    sb3_check_env(SlateMask(SessionEnv(world), repair=True), warn=True)


def test_observation_within_world_bounds(world: World) -> None:
    env = SessionEnv(world, diagnostics=False)
    obs, info = env.reset(seed=0)
    for _ in range(150):
        assert env.observation_space.contains(obs)
        obs, _, terminated, truncated, info = env.step(np.flatnonzero(info["action_mask"])[:3])
        if terminated or truncated:
            obs, info = env.reset()


def rollout(world: World, seed: int) -> list[Any]:
    env = SessionEnv(world)
    env.action_space.seed(seed)
    obs, info = env.reset(seed=seed)
    out: list[Any] = [obs]
    for _ in range(40):
        action = env.action_space.sample(mask=(info["action_mask"].astype(np.int8),) * env.k)
        obs, reward, terminated, truncated, info = env.step(action)
        out += [obs, reward, terminated, truncated, info["click"], info["revenue"], info["best_reward"]]
        if terminated or truncated:
            obs, info = env.reset()
            out.append(obs)
    return out


def test_same_seed_same_rollout(world: World) -> None:
    a, b, c = rollout(world, 5), rollout(world, 5), rollout(world, 6)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(a) != len(c) or not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_info_matches_world_truth(world: World) -> None:
    env = SessionEnv(world)
    _, info = env.reset(seed=1)
    for _ in range(30):
        state = env._state.take(np.arange(1))  # a copy of the session before the step (the env steps in place)
        slate = np.flatnonzero(info["action_mask"])[[0, 5, 9]]
        _, reward, terminated, truncated, info = env.step(slate)
        assert info["expected_reward"] == pytest.approx(float(world.expected_reward(state, slate[None])[0]))
        best_slate, best = world.best_slate(state)
        assert info["best_slate"].tolist() == best_slate[0].tolist()
        assert info["best_reward"] == pytest.approx(float(best[0]))
        assert info["regret"] >= -1e-12
        assert info["cross_sell"].tolist() == world.cross_sell(state)[0, slate].tolist()
        assert info["up_sell"].tolist() == world.up_sell(state)[0, slate].tolist()
        assert reward == pytest.approx(float(info["revenue"].sum()))  # default reward: revenue
        assert terminated == (info["checkout"] or info["abandon"])
        if terminated or truncated:
            assert truncated != terminated
            _, info = env.reset()


def test_best_slate_has_zero_regret(world: World) -> None:
    env = SessionEnv(world)
    _, info = env.reset(seed=2)
    slate = world.best_slate(env._state)[0][0]
    _, _, _, _, info = env.step(slate)
    assert info["regret"] == pytest.approx(0.0, abs=1e-12)


def test_click_rate_matches_expected_reward(world: World) -> None:
    """Mean simulated clicks of first steps against the world's exact expectation."""
    clicks = world.with_config(reward_type="click")
    env = BatchSessionEnv(4000, clicks)
    _, info = env.reset(seed=3)
    actions = top_k(np.zeros((4000, clicks.n_items)), clicks.k, info["action_mask"])
    _, reward, _, _, info = env.step(actions)
    se = reward.std(ddof=1) / np.sqrt(reward.size)
    assert abs(reward.mean() - info["expected_reward"].mean()) < 4 * se


def test_truncated_only_at_step_limit(world: World) -> None:
    short = world.with_config(max_steps=2)
    env = BatchSessionEnv(256, short, diagnostics=False)
    _, info = env.reset(seed=4)
    for _ in range(6):
        actions = top_k(np.zeros((256, short.n_items)), short.k, info["action_mask"])
        _, _, terminated, truncated, info = env.step(actions)
        assert not (terminated & truncated).any()
        assert (info["step"][truncated] == 2).all()
        assert (terminated == (info["checkout"] | info["abandon"])).all()
    assert truncated.any() or terminated.all()


def test_batch_env_same_seed_and_autoreset(world: World) -> None:
    def run(seed: int) -> list[np.ndarray]:
        env = gym.make_vec(SESSION_ID, num_envs=32, world=world)
        obs, info = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        out = [obs]
        for _ in range(12):
            actions = top_k(rng.random((32, world.n_items)), world.k, info["action_mask"])
            obs, reward, terminated, truncated, info = env.step(actions)
            out += [obs, reward, terminated | truncated, info["regret"]]
            if "_final_obs" in info:
                done = terminated | truncated
                assert (info["_final_obs"] == done).all()
                assert (obs[done, -1] == 0).all()  # step fraction of the new sessions
        return out

    a, b = run(7), run(7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_candidates_only_world_rejects_ineligible(world: World) -> None:
    strict = World(WorldConfig(candidates_only=True), seed=0)
    env = SessionEnv(strict)
    _, info = env.reset(seed=0)
    bad = np.flatnonzero(~info["action_mask"])
    good = np.flatnonzero(info["action_mask"])
    with pytest.raises(InvalidSlateError, match=rf"ineligible items \[{bad[0]}\]"):
        env.step(np.array([bad[0], good[0], good[1]]))


def test_require_cross_sell_rule_is_enforced() -> None:
    ruled = World(WorldConfig(require_cross_sell=True), seed=0)
    env = SessionEnv(ruled)
    _, info = env.reset(seed=0)
    required = info["required_mask"]
    assert required.any()
    plain = np.flatnonzero(info["action_mask"] & ~required)[:3]
    with pytest.raises(InvalidSlateError, match="holds no required item"):
        env.step(plain)
    env.step(np.array([np.flatnonzero(required)[0], plain[0], plain[1]]))
    batch = BatchSessionEnv(4, ruled)
    _, info = batch.reset(seed=0)
    actions = np.stack([np.flatnonzero(m & ~r)[:3] for m, r in zip(info["action_mask"],
                                                                    info["required_mask"], strict=True)])
    with pytest.raises(InvalidSlateError, match=r"at row 0 .*holds no required item"):
        batch.step(actions)


@pytest.mark.parametrize(
    "config",
    [pytest.param(WorldConfig(require_cross_sell=True), id="require-cross-sell"),
     pytest.param(WorldConfig(candidates_only=True), id="candidates-only")],
)
def test_sampled_actions_follow_the_rules(config: WorldConfig) -> None:
    env = SessionEnv(World(config, seed=0))
    env.action_space.seed(0)
    env.reset(seed=0)
    for _ in range(200):  # every sampled slate is accepted, whatever the state
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    sb3_check_env(env, warn=True)


@pytest.mark.parametrize("config", [WorldConfig(), WorldConfig(reward_type="click", require_cross_sell=True,
                                                               candidates_only=True)])
def test_the_world_and_its_numpy_reference_give_the_same_episodes(config: WorldConfig) -> None:
    world = World(config, seed=2)
    fast, plain = SessionEnv(world), SessionEnv(ReferenceWorld.of(world))
    for seed in range(3):
        (obs_a, info_a), (obs_b, info_b) = fast.reset(seed=seed), plain.reset(seed=seed)
        done = False
        while not done:
            assert np.array_equal(obs_a, obs_b) and np.array_equal(info_a["action_mask"], info_b["action_mask"])
            action = fast.action_space.sample()
            obs_a, r_a, te_a, tr_a, info_a = fast.step(action)
            obs_b, r_b, te_b, tr_b, info_b = plain.step(action)
            assert (r_a, te_a, tr_a) == (r_b, te_b, tr_b)
            for key in ("click", "purchase", "revenue", "cross_sell", "up_sell", "best_slate"):
                assert np.array_equal(info_a[key], info_b[key]), key
            for key in ("expected_reward", "best_reward", "regret"):
                assert info_a[key] == pytest.approx(info_b[key], rel=1e-12, abs=1e-12), key
            done = te_a or tr_a


def test_the_world_and_its_numpy_reference_give_the_same_batches() -> None:
    world = World(WorldConfig(require_cross_sell=True), seed=4)
    fast, plain = BatchSessionEnv(64, world), BatchSessionEnv(64, ReferenceWorld.of(world))
    (obs_a, info_a), (obs_b, info_b) = fast.reset(seed=3), plain.reset(seed=3)
    scores = np.random.default_rng(0).random((64, world.n_items))
    for t in range(40):
        assert np.array_equal(obs_a, obs_b)
        assert np.array_equal(info_a["action_mask"], info_b["action_mask"])
        assert np.array_equal(info_a["required_mask"], info_b["required_mask"])
        eligible = info_a["action_mask"] & ~info_a["required_mask"]
        actions = top_k(scores, world.k, eligible)
        # one required item per slate, in the last slot
        actions[:, -1] = top_k(scores, 1, info_a["required_mask"])[:, 0]
        if t == 20:
            reset = np.zeros(64, dtype=bool)
            reset[::5] = True
            (obs_a, info_a), (obs_b, info_b) = (fast.reset(options={"reset_mask": reset}),
                                                plain.reset(options={"reset_mask": reset}))
            continue
        obs_a, r_a, te_a, tr_a, info_a = fast.step(actions)
        obs_b, r_b, te_b, tr_b, info_b = plain.step(actions)
        assert np.array_equal(r_a, r_b) and np.array_equal(te_a, te_b) and np.array_equal(tr_a, tr_b)
        for key in ("click", "purchase", "cross_sell", "up_sell", "best_slate", "step"):
            assert np.array_equal(info_a[key], info_b[key]), key
        np.testing.assert_allclose(info_a["expected_reward"], info_b["expected_reward"], rtol=1e-12)
        np.testing.assert_allclose(info_a["best_reward"], info_b["best_reward"], rtol=1e-12)
        assert ("final_obs" in info_a) == ("final_obs" in info_b)
        if "final_obs" in info_a:
            assert np.array_equal(info_a["final_obs"], info_b["final_obs"])
            assert np.array_equal(info_a["_final_obs"], info_b["_final_obs"])
