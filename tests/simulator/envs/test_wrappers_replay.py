"""Wrappers over the replay environment (every item is eligible there)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from simulator.envs import EnvError, InvalidSlateError, NormalizeContext, ReplayEnv, SlateMask, TopKSlate
from simulator.logs import SlateLog


@pytest.fixture
def small_log(obd_random_men: SlateLog) -> SlateLog:
    return obd_random_men.take(np.arange(300))


@pytest.mark.parametrize(
    "wrap",
    [
        pytest.param(lambda e: TopKSlate(e), id="topk"),
        pytest.param(lambda e: SlateMask(e, repair=True), id="mask-repair"),
        pytest.param(lambda e: SlateMask(e, in_observation=True), id="mask-in-obs"),
        pytest.param(lambda e: NormalizeContext(e), id="normalize"),
        pytest.param(lambda e: TopKSlate(NormalizeContext(e)), id="normalize-topk"),
    ],
)
@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version:UserWarning")
def test_wrapped_replay_passes_checkers(small_log: SlateLog, wrap: object) -> None:
    env = wrap(ReplayEnv(small_log))  # type: ignore[operator]
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(wrap(ReplayEnv(small_log)), warn=True)  # type: ignore[operator]


def test_topk_scores_give_the_same_rollout_as_the_slate(small_log: SlateLog) -> None:
    scores = np.zeros(34, dtype=np.float32)
    scores[[11, 0, 30]] = [0.9, 0.8, 0.7]
    wrapped = TopKSlate(ReplayEnv(small_log))
    plain = ReplayEnv(small_log)
    wrapped.reset(seed=0)
    plain.reset(seed=0)
    for _ in range(len(small_log)):
        a = wrapped.step(scores)
        b = plain.step(np.array([11, 0, 30]))
        assert a[1] == b[1] and a[4]["counted"] == b[4]["counted"]
    assert wrapped.unwrapped.estimate() == plain.estimate()  # type: ignore[attr-defined]
    assert isinstance(wrapped.action_space, gym.spaces.Box)
    assert wrapped.action_space.shape == (34,)


def test_topk_rejects_wrong_shape(small_log: SlateLog) -> None:
    env = TopKSlate(ReplayEnv(small_log))
    env.reset(seed=0)
    with pytest.raises(InvalidSlateError, match=r"shape \(34,\), one score per item, found shape \(3,\)"):
        env.step(np.zeros(3, dtype=np.float32))


def test_slate_mask_repairs_duplicates(small_log: SlateLog) -> None:
    env = SlateMask(ReplayEnv(small_log), repair=True)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([4, 4, 1]))
    assert info["repaired"] is True
    slate, changed = env.repair_slate(np.array([4, 4, 1]))
    assert slate.tolist() == [4, 0, 1] and changed is True
    assert env.repair_slate(np.array([4, 0, 0]))[0].tolist() == [4, 0, 1]
    _, _, _, _, info = env.step(np.array([5, 6, 7]))
    assert info["repaired"] is False
    assert env.action_masks().shape == (3 * 34,) and env.action_masks().all()
    with pytest.raises(InvalidSlateError, match=r"\[0, 33\]"):
        env.step(np.array([4, 40, 1]))


def test_slate_mask_without_repair_still_rejects(small_log: SlateLog) -> None:
    env = SlateMask(ReplayEnv(small_log))
    env.reset(seed=0)
    with pytest.raises(InvalidSlateError, match="distinct"):
        env.step(np.array([4, 4, 1]))


def test_normalize_context_uses_log_statistics(small_log: SlateLog) -> None:
    env = NormalizeContext(ReplayEnv(small_log))
    ctx = np.asarray(small_log.context, dtype=np.float64)
    mean, std = ctx.mean(axis=0), ctx.std(axis=0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(obs, (ctx[0] - mean) / (std + 1e-8), rtol=1e-5, atol=1e-5)
    seen = [obs]
    for _ in range(len(small_log) - 1):
        seen.append(env.step(np.array([0, 1, 2]))[0])
    z = np.array(seen, dtype=np.float64)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    keep = std > 0
    np.testing.assert_allclose(z[:, keep].std(axis=0), 1.0, rtol=1e-4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"mean": np.zeros(3), "std": np.ones(3)}, r"`mean` must have shape \(26,\)", id="shape"),
        pytest.param({"mean": np.zeros(26)}, "pass both `mean` and `std`", id="half"),
        pytest.param({"mean": np.zeros(26), "std": -np.ones(26)}, "`std` must be >= 0", id="negative"),
    ],
)
def test_normalize_context_bad_stats(small_log: SlateLog, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(EnvError, match=message):
        NormalizeContext(ReplayEnv(small_log), **kwargs)  # type: ignore[arg-type]


def test_wrappers_refuse_foreign_envs() -> None:
    with pytest.raises(EnvError, match=r"wraps slatewise slate environments.*CartPoleEnv"):
        TopKSlate(gym.make("CartPole-v1"))
