"""Value of a slate policy per session on held-out seeds, and bandits trained online.

Both play the world through ``simulator.rollout`` with agents of
:mod:`experiments.agents` (built as every experiment builds them: what the world
knows is filled in, anchored policies see the anchor item). A policy is
evaluated frozen on ``n_sessions`` sessions that each run to their end
(:func:`~simulator.rollout.rollout`; checkout, abandonment or the step limit).
A bandit is trained online as it would be served: it keeps ``num_envs``
sessions going (a session that ends is replaced by a new shopper), and every
step it chooses slates, sees the per-slot outcome (the configured reward) and
updates — for the same number of environment steps (decisions) PPO trains for.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from bandits import Feedback, SlatePolicy
from experiments.agents import WorldAgent, build_agent
from simulator.envs import WorldLike
from simulator.rollout import Step, play_step, rollout

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


class _Totals:
    """An ``on_step`` adding up each session's reward, revenue and steps."""

    def __init__(self, n_sessions: int, reward: str) -> None:
        self.reward_kind = reward
        self.reward = np.zeros(n_sessions)
        self.revenue = np.zeros(n_sessions)
        self.steps = np.zeros(n_sessions, dtype=np.int64)

    def __call__(self, step: Step) -> None:
        out, rows = step.outcome, step.session
        np.add.at(self.reward, rows, np.asarray(getattr(out, self.reward_kind), dtype=np.float64).sum(axis=1))
        np.add.at(self.revenue, rows, np.asarray(out.revenue, dtype=np.float64).sum(axis=1))
        self.steps[rows] += 1


def session_values(policy: SlatePolicy | WorldAgent, world: WorldLike, n_sessions: int, seed: int,
                   reward: str = "revenue") -> SessionValues:
    """Run ``n_sessions`` whole sessions under ``policy`` (frozen) and total them.

    Slates come from the policy's ``sample_slates`` when it has one (the same
    distribution as ``select``, without the per-slot marginals).

    Args:
        policy: a slate policy whose ``dim_context`` fits the world (or 0), or a
            :class:`~experiments.agents.WorldAgent` (e.g. an anchored bandit from
            :func:`~experiments.agents.build_agent`).
        world: the ground truth.
        n_sessions: sessions, all stepped together.
        seed: seed of the sessions (use seeds the policy was not trained on).
        reward: ``click``, ``purchase`` or ``revenue``.

    Returns:
        Per-session totals.
    """
    agent = policy if isinstance(policy, WorldAgent) else WorldAgent(policy)
    totals = _Totals(n_sessions, reward)
    rollout(world, agent.sampler(), n_sessions, np.random.default_rng(seed), on_step=totals)
    return SessionValues(reward=totals.reward, revenue=totals.revenue, steps=totals.steps)


def _merge(state: Any, rows: BoolArray, new: Any) -> Any:
    """``state`` with the sessions at ``rows`` replaced by ``new`` (one per True row)."""
    n = rows.shape[0]
    changes: dict[str, Any] = {}
    for f in fields(state):
        old = getattr(state, f.name)
        if isinstance(old, np.ndarray) and old.shape[:1] == (n,):
            merged = old.copy()
            merged[rows] = getattr(new, f.name)
            changes[f.name] = merged
    return replace(state, **changes)


class OnlineBandit:
    """A bandit learning online in its own batch of sessions, advanced step by step.

    Args:
        name: a registered policy name.
        world: the ground truth.
        num_envs: sessions stepped together (one ``select`` and one ``update`` per batch
            step); a session that ends is replaced by a new shopper.
        reward: the per-slot outcome the bandit learns from.
        seed: seed of the policy and of its sessions.
        params: constructor arguments beyond what :func:`~experiments.agents.build_agent` fills in.
    """

    def __init__(self, name: str, world: WorldLike, num_envs: int, reward: str, seed: int,
                 params: dict[str, Any] | None = None) -> None:
        self.name = name
        self.reward = reward
        self.world = world
        self.num_envs = int(num_envs)
        self.agent = build_agent(name, world, seed, params)
        self._rng = np.random.default_rng(seed)
        self._state = world.new_sessions(self.num_envs, self._rng)
        self._rows = np.arange(self.num_envs, dtype=np.int64)
        self.steps = 0

    @property
    def policy(self) -> SlatePolicy:
        """The learning policy."""
        return self.agent.policy

    @policy.setter
    def policy(self, value: SlatePolicy) -> None:
        self.agent = WorldAgent(value, self.agent.anchored)

    def advance(self, steps: int) -> None:
        """Learn online for at least ``steps`` more environment steps (whole batch steps)."""
        target = self.steps + steps
        world = self.world
        while self.steps < target:
            step = play_step(world, self.agent, self._state, self._rows, self._rng)
            d = step.decision
            assert d.context is not None  # a WorldAgent's decisions carry their context
            reward = np.asarray(getattr(step.outcome, self.reward), dtype=np.float64)
            self.policy.update(Feedback(d.context, d.slate, reward, d.pscore))
            state = step.outcome.state
            if step.ended.any():
                state = _merge(state, step.ended, world.new_sessions(int(step.ended.sum()), self._rng))
            self._state = state
            self.steps += self.num_envs

    def frozen(self) -> WorldAgent:
        """A copy to evaluate without disturbing the learner."""
        return copy.deepcopy(self.agent)


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
