"""Value of a slate policy per session on held-out seeds, and bandits trained online.

Both run on :class:`~simulator.envs.vector.BatchSessionEnv`. A policy is
evaluated frozen (``select`` only) on ``n_sessions`` sessions that each run
to their end (checkout, abandonment or the step limit). A bandit is trained
online exactly as it would be served: every batch step it chooses slates,
sees the per-slot outcome (the configured reward) and updates — for the same
number of environment steps PPO trains for.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats

from bandits import Feedback, SlatePolicy, make_policy
from simulator.envs import BatchSessionEnv, WorldLike

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SessionValues:
    """Per-session totals of a policy on one seed.

    Attributes:
        reward: shape (n_sessions,), the configured reward summed over each session.
        revenue: shape (n_sessions,), revenue summed over each session.
        steps: shape (n_sessions,), steps each session lasted.
    """

    reward: FloatArray
    revenue: FloatArray
    steps: npt.NDArray[np.int64]


def choose_with(policy: SlatePolicy) -> Callable[[FloatArray, BoolArray], IntArray]:
    """``(context, eligible) -> slates`` of a policy.

    Its ``select``, or a faster sampler of the same distribution when it has one
    (``sample_slates``, e.g. the PPO policy's, which skips the per-slot marginals).
    """
    sampler = getattr(policy, "sample_slates", None)
    if sampler is not None:
        return lambda ctx, mask: np.asarray(sampler(ctx, eligible=mask)[0])
    return lambda ctx, mask: policy.select(ctx, eligible=mask).slate


def session_values(policy: SlatePolicy, world: WorldLike, n_sessions: int, seed: int,
                   reward: str = "revenue") -> SessionValues:
    """Run ``n_sessions`` whole sessions under ``policy`` (frozen) and total them.

    Args:
        policy: any slate policy whose ``dim_context`` fits the world (or 0).
        world: the ground truth.
        n_sessions: sessions, all stepped together.
        seed: seed of the sessions (use seeds the policy was not trained on).
        reward: ``click``, ``purchase`` or ``revenue``.

    Returns:
        Per-session totals.
    """
    choose = choose_with(policy)
    env = BatchSessionEnv(n_sessions, world, diagnostics=False)
    obs, info = env.reset(seed=seed)
    mask = info["action_mask"]
    live = np.ones(n_sessions, dtype=bool)
    total = np.zeros(n_sessions)
    revenue = np.zeros(n_sessions)
    steps = np.zeros(n_sessions, dtype=np.int64)
    for _ in range(env.max_steps):
        obs, _, terminated, truncated, info = env.step(choose(np.asarray(obs, dtype=np.float64), mask))
        total += live * np.asarray(info[reward], dtype=np.float64).sum(axis=1)
        revenue += live * np.asarray(info["revenue"], dtype=np.float64).sum(axis=1)
        steps += live
        live &= ~(terminated | truncated)
        mask = info["action_mask"]
        if not live.any():
            break
    return SessionValues(reward=total, revenue=revenue, steps=steps)


class OnlineBandit:
    """A bandit learning online in its own batch of sessions, advanced step by step.

    Args:
        name: a registered policy name.
        world: the ground truth.
        num_envs: sessions stepped together (one ``select`` and ``update`` per batch step).
        reward: the per-slot outcome the bandit learns from.
        seed: seed of the policy and of its sessions.
        params: extra constructor arguments.
    """

    def __init__(self, name: str, world: WorldLike, num_envs: int, reward: str, seed: int,
                 params: dict[str, object] | None = None) -> None:
        self.name = name
        self.reward = reward
        self.policy = make_policy(name, n_items=int(world.n_items), k=int(world.k),
                                  dim_context=int(world.dim_context), seed=seed, **(params or {}))
        self._env = BatchSessionEnv(num_envs, world, diagnostics=False)
        obs, info = self._env.reset(seed=seed)
        self._obs = np.asarray(obs, dtype=np.float64)
        self._mask = info["action_mask"]
        self.steps = 0

    def advance(self, steps: int) -> None:
        """Learn online for at least ``steps`` more environment steps (whole batches)."""
        target = self.steps + steps
        while self.steps < target:
            decision = self.policy.select(self._obs, eligible=self._mask)
            obs, _, _, _, info = self._env.step(decision.slate)
            reward = np.asarray(info[self.reward], dtype=np.float64)
            self.policy.update(Feedback(self._obs, decision.slate, reward, decision.pscore))
            self._obs = np.asarray(obs, dtype=np.float64)
            self._mask = info["action_mask"]
            self.steps += self._env.num_envs

    def frozen(self) -> SlatePolicy:
        """A copy to evaluate without disturbing the learner."""
        return copy.deepcopy(self.policy)


@dataclass(frozen=True, slots=True)
class Interval:
    """A mean over seeds with its 95% t-interval."""

    mean: float
    low: float
    high: float
    n: int

    def to_json(self) -> dict[str, float | int]:
        """Plain JSON."""
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def t_interval(values: FloatArray, level: float = 0.95) -> Interval:
    """Mean of ``values`` (one per seed) and its t-interval (zero width for one value)."""
    v = np.asarray(values, dtype=np.float64)
    mean = float(v.mean())
    if v.size < 2:
        return Interval(mean, mean, mean, int(v.size))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return Interval(mean, mean - half, mean + half, int(v.size))
