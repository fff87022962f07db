from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from simulator.envs import (
    REPLAY_ID,
    EnvError,
    InvalidSlateError,
    ReplayEnv,
    ResetNeededError,
)
from simulator.logs import Catalog, LogMetadata, SlateLog

N_ITEMS = 34


def run_fixed(env: ReplayEnv, slate: Any, seed: int | None = 0) -> float:
    """Play one constant slate through a whole pass; return the summed revealed reward."""
    env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, _ = env.step(np.asarray(slate))
        total += float(reward)
        done = terminated or truncated
    return total


def read_obd_csv(obd_dir: Path) -> pd.DataFrame:
    """The raw random/men impressions, read without the slatewise importer."""
    return pd.read_csv(obd_dir / "random" / "men" / "men.csv", index_col=0)


# ---------------------------------------------------------------- API contracts
def test_gymnasium_check_env(obd_random_men: SlateLog) -> None:
    env = gym.make(REPLAY_ID, log=obd_random_men.take(np.arange(200)))
    gym_check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("method", ["replay", "ips"])
def test_sb3_check_env(obd_random_men: SlateLog, method: str) -> None:
    env = ReplayEnv(obd_random_men.take(np.arange(200)), method=method)  # type: ignore[arg-type]
    sb3_check_env(env, warn=True)


def test_gymnasium_make_passes_options(obd_random_men: SlateLog) -> None:
    env = gym.make(REPLAY_ID, log=obd_random_men, method="ips", shuffle=True)
    base = env.unwrapped
    assert isinstance(base, ReplayEnv)
    assert (base.method, base.shuffle, base.k, base.n_items) == ("ips", True, 3, N_ITEMS)
    obs, _ = env.reset(seed=1)
    assert env.observation_space.contains(obs)


def test_same_seed_same_rollout(obd_random_men: SlateLog) -> None:
    def rollout(seed: int) -> list[Any]:
        env = ReplayEnv(obd_random_men.take(np.arange(500)), shuffle=True, episode_length=100)
        env.action_space.seed(seed)
        obs, info = env.reset(seed=seed)
        out: list[Any] = [obs, info["event_id"]]
        for _ in range(3):
            done = False
            while not done:
                obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
                out += [obs, reward, info["event_id"], info["counted"]]
                done = terminated or truncated
            env.reset()
        return out

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert len(a) == len(b)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_shuffled_pass_visits_every_event_once(obd_random_men: SlateLog) -> None:
    log = obd_random_men.take(np.arange(300))
    env = ReplayEnv(log, shuffle=True)
    _, info = env.reset(seed=3)
    seen = [info["event_id"]]
    done = False
    while not done:
        _, _, _, done, info = env.step(np.array([0, 1, 2]))
        seen.append(info["logged_event_id"])
    assert sorted(seen[1:]) == list(range(300))
    assert seen[1:] != list(range(300))  # shuffled


def test_episode_length_and_truncation(obd_random_men: SlateLog) -> None:
    env = ReplayEnv(obd_random_men.take(np.arange(25)), episode_length=10)
    lengths = []
    env.reset(seed=0)
    for _ in range(4):
        n, done = 0, False
        while not done:
            _, _, terminated, truncated, _ = env.step(np.array([0, 1, 2]))
            assert terminated is False
            n, done = n + 1, truncated
        lengths.append(n)
        env.reset()
    # 10 + 10 + 5 (pass ends), then a new pass.
    assert lengths == [10, 10, 5, 10]


# ---------------------------------------------------------------- estimates on OBD
@pytest.mark.slow
def test_uniform_policy_replay_equals_mean_click(obd_random_men: SlateLog) -> None:
    """The uniform policy is the equal mixture of the 34 rotations (j, j+1, j+2) mod 34.

    Played one pass each, every logged row is matched exactly once, so the
    pooled replay estimate is exactly the log's mean click.
    """
    env = ReplayEnv(obd_random_men)
    for j in range(N_ITEMS):
        run_fixed(env, (j + np.arange(3)) % N_ITEMS, seed=0 if j == 0 else None)
    est = env.estimate()
    assert est.n_events == N_ITEMS * len(obd_random_men)
    assert est.n_used == len(obd_random_men)
    assert est.value == pytest.approx(float(obd_random_men.reward.mean()), rel=1e-12)
    assert est.ci_low < est.value < est.ci_high


def test_uniform_policy_ips_equals_mean_click(obd_random_men: SlateLog) -> None:
    log = obd_random_men.take(np.arange(0, len(obd_random_men), 10))  # 1,000 rows: same identity
    env = ReplayEnv(log, method="ips")
    for j in range(N_ITEMS):
        run_fixed(env, (j + np.arange(3)) % N_ITEMS, seed=0 if j == 0 else None)
    assert env.estimate().value == pytest.approx(float(log.reward.mean()), rel=1e-9)


def test_fixed_policy_replay_matches_independent_ips(obd_random_men: SlateLog, obd_dir: Path) -> None:
    slate = np.array([11, 0, 30])
    df = read_obd_csv(obd_dir)
    matched = slate[df["position"].to_numpy() - 1] == df["item_id"].to_numpy()
    terms = matched * df["click"].to_numpy() / df["propensity_score"].to_numpy()
    ips, ips_se = terms.mean(), terms.std(ddof=1) / math.sqrt(terms.size)
    assert matched.sum() > 200 and ips > 0  # the case is informative

    replay = ReplayEnv(obd_random_men)
    run_fixed(replay, slate)
    est = replay.estimate()
    assert est.n_used == int(matched.sum())
    assert abs(est.value - ips) <= ips_se

    ips_env = ReplayEnv(obd_random_men, method="ips")
    run_fixed(ips_env, slate)
    ips_est = ips_env.estimate()
    assert ips_est.value == pytest.approx(ips, rel=1e-12)
    assert ips_est.stderr == pytest.approx(ips_se, rel=1e-9)


def test_info_reports_counted_and_running_estimate(obd_random_men: SlateLog) -> None:
    log = obd_random_men.take(np.arange(400))
    env = ReplayEnv(log)
    slate = np.array([11, 0, 30])
    _, info = env.reset(seed=0)
    assert info["n_events"] == 0 and info["estimate"] is None
    rewards, counted = [], []
    position = log.position
    assert position is not None
    done = False
    while not done:
        _, reward, _, done, info = env.step(slate)
        rewards.append(reward)
        counted.append(info["counted"])
        assert info["counted"] == (slate[position[info["logged_event_id"]]]
                                   == log.slate[info["logged_event_id"], 0])
    c = np.array(counted)
    r = np.array(rewards)
    assert info["n_events"] == 400 and info["n_used"] == c.sum()
    assert (r[~c] == 0).all()
    assert info["estimate"] == pytest.approx(r[c].mean())
    assert info["stderr"] == pytest.approx(r[c].std(ddof=1) / math.sqrt(c.sum()))
    assert info["ci_low"] < info["estimate"] < info["ci_high"] or info["stderr"] == 0


def test_seed_clears_estimate_and_option_clears_it(obd_random_men: SlateLog) -> None:
    env = ReplayEnv(obd_random_men.take(np.arange(50)))
    run_fixed(env, [0, 1, 2])
    assert env.estimate().n_events == 50
    env.reset()
    env.step(np.array([0, 1, 2]))
    assert env.estimate().n_events == 51
    env.reset(options={"clear_estimate": True})
    assert env.estimate().n_events == 0
    run_fixed(env, [0, 1, 2], seed=5)
    assert env.estimate().n_events == 50


def test_replay_on_non_uniform_log_warns(obd_bts_men: SlateLog, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="simulator.envs.replay"):
        ReplayEnv(obd_bts_men)
    assert "uniform logging" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="simulator.envs.replay"):
        ReplayEnv(obd_bts_men, method="ips")
    assert caplog.text == ""


# ---------------------------------------------------------------- slate logs, hand computed
def slate_log() -> SlateLog:
    """Three decisions, k = 2 of 4 items, with per-slot and whole-slate propensities."""
    return SlateLog.from_arrays(
        context=np.array([[0.0], [1.0], [2.0]]),
        slate=np.array([[0, 1], [2, 1], [0, 3]]),
        reward=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
        pscore=np.array([0.1, 0.2, 0.25]),
        pscore_item=np.array([[0.5, 0.25], [0.5, 0.4], [0.5, 0.5]]),
        catalog=Catalog.anonymous(4),
        metadata=LogMetadata(logging_policy="hand"),
    )


@pytest.mark.parametrize(
    ("method", "match", "expected", "revealed"),
    [
        # action (0, 1): slot matches row0 [T, T], row1 [F, T], row2 [T, F]
        # replay/slot: rewards on matched slots (1 + 0) + 1 + 1 = 3 over 4 matched slots
        pytest.param("replay", "slot", 3 / 4, [1.0, 1.0, 1.0], id="replay-slot"),
        # ips/slot: (1/0.5 + 0/0.25) + 1/0.4 + 1/0.5 = 6.5 over 3 rows x 2 impressions
        pytest.param("ips", "slot", 6.5 / 6, [2.0, 2.5, 2.0], id="ips-slot"),
        # replay/slate: only row0 matches whole, its total reward 1
        pytest.param("replay", "slate", 1.0, [1.0, 0.0, 0.0], id="replay-slate"),
        # ips/slate: 1 / 0.1 over 3 rows
        pytest.param("ips", "slate", 10.0 / 3, [10.0, 0.0, 0.0], id="ips-slate"),
    ],
)
def test_slate_log_hand_computed(method: str, match: str, expected: float, revealed: list[float]) -> None:
    env = ReplayEnv(slate_log(), method=method, match=match)  # type: ignore[arg-type]
    assert env.k == 2
    env.reset(seed=0)
    got = [float(env.step(np.array([0, 1]))[1]) for _ in range(3)]
    assert got == pytest.approx(revealed)
    assert env.estimate().value == pytest.approx(expected)


def test_from_arrays_without_pscore_replays() -> None:
    env = ReplayEnv.from_arrays(context=np.zeros((4, 2)), slate=np.array([[0], [1], [2], [1]]),
                                reward=np.array([[1.0], [0.0], [1.0], [1.0]]), n_items=3)
    env.reset(seed=0)
    for _ in range(4):
        env.step(np.array([1]))
    est = env.estimate()
    assert (est.n_used, est.value) == (2, 0.5)


# ---------------------------------------------------------------- bad input
def test_step_before_reset(obd_random_men: SlateLog) -> None:
    env = ReplayEnv(obd_random_men)
    with pytest.raises(ResetNeededError, match=r"Call reset\(\) before step\(\)"):
        env.step(np.array([0, 1, 2]))


def test_step_after_truncation(obd_random_men: SlateLog) -> None:
    env = ReplayEnv(obd_random_men.take(np.arange(2)))
    run_fixed(env, [0, 1, 2])
    with pytest.raises(ResetNeededError, match="truncated=True"):
        env.step(np.array([0, 1, 2]))


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        pytest.param(np.array([0, 1]), InvalidSlateError, r"shape \(3,\).*found shape \(2,\)", id="short"),
        pytest.param(np.array([[0, 1, 2]]), InvalidSlateError, r"found shape \(1, 3\)", id="2d"),
        pytest.param(np.array([0, 1, 34]), InvalidSlateError, r"\[0, 33\].*found 34", id="too-high"),
        pytest.param(np.array([-1, 1, 2]), InvalidSlateError, r"\[0, 33\].*found -1", id="negative"),
        pytest.param(np.array([4, 1, 4]), InvalidSlateError, r"3 distinct items.*\[4, 1, 4\]", id="dup"),
        pytest.param(np.array([0.5, 1, 2]), InvalidSlateError, r"integer item indices.*float64",
                     id="float"),
        pytest.param(np.array(["a", "b", "c"]), InvalidSlateError, r"integer item indices", id="text"),
    ],
)
def test_bad_action(obd_random_men: SlateLog, action: Any, error: type[Exception], message: str) -> None:
    env = ReplayEnv(obd_random_men)
    env.reset(seed=0)
    with pytest.raises(error, match=message):
        env.step(action)


def test_integral_float_action_is_accepted(obd_random_men: SlateLog) -> None:
    """A float slate of whole numbers steps exactly as the same slate of integers does."""
    as_float, as_int = ReplayEnv(obd_random_men), ReplayEnv(obd_random_men)
    as_float.reset(seed=0)
    as_int.reset(seed=0)
    for _ in range(20):
        obs_f, reward_f, term_f, trunc_f, info_f = as_float.step(np.array([0.0, 1.0, 2.0]))
        obs_i, reward_i, term_i, trunc_i, info_i = as_int.step(np.array([0, 1, 2]))
        assert np.array_equal(obs_f, obs_i)
        assert (reward_f, term_f, trunc_f) == (reward_i, term_i, trunc_i)
        assert sorted(info_f) == sorted(info_i)
        for key, value in info_i.items():
            assert np.array_equal(np.asarray(info_f[key]), np.asarray(value)), key
        if term_i or trunc_i:
            break


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"method": "dr"}, r"`method` must be one of \['replay', 'ips'\], found 'dr'",
                     id="method"),
        pytest.param({"match": "item"}, r"`match` must be one of", id="match"),
        pytest.param({"match": "slate"}, r"one row per position.*use match='slot'", id="slate-on-obd"),
        pytest.param({"reward": "purchase"}, r"no `purchase` column", id="no-purchase"),
        pytest.param({"reward": "clicks"}, r"`reward` must be one of", id="reward-name"),
        pytest.param({"episode_length": 0}, r"`episode_length` must be a positive", id="episode-length"),
        pytest.param({"method": "ips", "pscore_known": False}, r"needs the logging propensities",
                     id="ips-without-pscore"),
        pytest.param({"render_mode": "human"}, r"`render_mode` must be None", id="render"),
    ],
)
def test_bad_options(obd_random_men: SlateLog, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(EnvError, match=message):
        ReplayEnv(obd_random_men, **kwargs)


def test_ips_from_arrays_without_pscore() -> None:
    with pytest.raises(EnvError, match=r"`method='ips'` needs the logging propensities.*`pscore` is None"):
        ReplayEnv.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0], [1]]),
                              reward=np.zeros((2, 1)), n_items=2, method="ips")


def test_not_a_log() -> None:
    with pytest.raises(EnvError, match="`log` must be a SlateLog, found dict"):
        ReplayEnv({"context": []})  # type: ignore[arg-type]


def test_make_without_log() -> None:
    with pytest.raises(EnvError, match=r"`log` is required: gymnasium.make\('slatewise/Replay-v0', log=log\)"):
        gym.make(REPLAY_ID)


def test_bad_reset_option(obd_random_men: SlateLog) -> None:
    with pytest.raises(EnvError, match="'clear_estimate'"):
        ReplayEnv(obd_random_men).reset(options={"rewind": True})
