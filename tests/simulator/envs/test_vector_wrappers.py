from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO

from simulator.envs import BatchSessionEnv, InvalidSlateError, ToyWorld, check_slates
from simulator.envs.sb3 import SB3BatchEnv
from simulator.envs.vector_wrappers import BatchSlateRepair, BatchTopKSlate, repair_slates


def reference_repair(slate: list[int], eligible: list[bool]) -> list[int]:
    free = list(eligible)
    out, bad = list(slate), []
    for j, item in enumerate(slate):
        if free[item]:
            free[item] = False
        else:
            bad.append(j)
    for j in bad:
        first = free.index(True)
        out[j] = first
        free[first] = False
    return out


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 9).flatmap(lambda n: st.integers(1, n).flatmap(lambda k: st.tuples(
    st.lists(st.lists(st.integers(0, n - 1), min_size=k, max_size=k), min_size=1, max_size=6),
    st.lists(st.lists(st.booleans(), min_size=n, max_size=n), min_size=6, max_size=6),
    st.just(k),
))))
def test_repair_matches_reference(case: tuple[list[list[int]], list[list[bool]], int]) -> None:
    slates, masks, k = case
    eligible = np.array(masks[: len(slates)])
    slates_arr = np.array(slates)
    if (eligible.sum(axis=1) < k).any():
        with pytest.raises(InvalidSlateError, match="fewer than k"):
            repair_slates(slates_arr, eligible)
        return
    out, changed = repair_slates(slates_arr, eligible)
    expected = [reference_repair(s, m) for s, m in zip(slates, eligible.tolist(), strict=True)]
    assert out.tolist() == expected
    assert changed.tolist() == [e != s for e, s in zip(expected, slates, strict=True)]
    check_slates(out, eligible.shape[1], k, eligible)


def test_batch_topk_picks_best_eligible() -> None:
    env = BatchTopKSlate(BatchSessionEnv(4, ToyWorld()))
    env.reset(seed=0)
    scores = np.tile(np.linspace(1, -1, 8, dtype=np.float32), (4, 1))
    assert env.actions(scores).tolist() == [[0, 1, 2]] * 4  # all eligible at the start
    _, _, _, _, info = env.step(scores)
    assert info["click"].shape == (4, 3)
    expected = [np.flatnonzero(m)[:3].tolist() for m in info["action_mask"]]
    assert env.actions(scores).tolist() == expected
    with pytest.raises(InvalidSlateError, match=r"shape \(4, 8\)"):
        env.step(np.zeros((4, 3), dtype=np.float32))


def test_batch_repair_steps_duplicates() -> None:
    env = BatchSlateRepair(BatchSessionEnv(3, ToyWorld()))
    env.reset(seed=0)
    env.step(np.array([[1, 1, 1], [0, 1, 2], [7, 7, 0]]))
    assert env.actions(np.array([[1, 1, 1], [0, 1, 2], [7, 7, 0]])).tolist() == [
        [1, 0, 2], [0, 1, 2], [7, 1, 0]]


@pytest.mark.slow
def test_sb3_adapter_runs_ppo_and_reports_terminal_obs() -> None:
    venv = SB3BatchEnv(BatchTopKSlate(BatchSessionEnv(16, ToyWorld(abandon_prob=0.5), diagnostics=False)))
    venv.seed(3)
    obs = venv.reset()
    assert obs.shape == (16, 6)
    venv.step_async(np.zeros((16, 8), dtype=np.float32))
    obs, rewards, dones, infos = venv.step_wait()
    assert rewards.dtype == np.float32 and dones.any()
    for i in np.flatnonzero(dones):
        assert infos[i]["terminal_observation"].shape == (6,)
    model = PPO("MlpPolicy", venv, n_steps=8, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(16 * 8)


def test_sb3_adapter_needs_same_step_autoreset() -> None:
    from gymnasium.vector import SyncVectorEnv

    from simulator.envs import SessionEnv

    sync = SyncVectorEnv([lambda: SessionEnv(ToyWorld())])
    with pytest.raises(ValueError, match="same-step autoreset"):
        SB3BatchEnv(sync)
