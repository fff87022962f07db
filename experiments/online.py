"""Agents playing a world in rounds of sessions: learning online, per-round metrics, held-out value.

Every function runs whole sessions through :func:`simulator.rollout.rollout`
and watches them with an ``on_step``: :class:`Learner` updates the policy
after every step from the per-slot reward of the world's reward type;
:class:`RoundMetrics` adds up what a round of an online simulation reports.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from bandits import Feedback
from experiments.agents import WorldAgent
from simulator.rollout import Step, rollout
from simulator.world import World, slot_reward

FloatArray = npt.NDArray[np.float64]


class Learner:
    """An ``on_step`` that makes the agent's policy learn from every step.

    Args:
        world: the world (its reward type is what the policy learns from).
        agent: the learning agent (its decisions carry the context the policy saw).
    """

    def __init__(self, world: World, agent: WorldAgent) -> None:
        self.world = world
        self.agent = agent

    def __call__(self, step: Step) -> None:
        """``policy.update`` with the step's contexts, slates and per-slot rewards (n, k)."""
        d = step.decision
        assert d.context is not None  # a WorldAgent's decisions carry their context
        self.agent.policy.update(Feedback(d.context, d.slate, slot_reward(self.world, step.outcome)))


class RoundMetrics:
    """An ``on_step`` adding up a round's decisions, rewards, regret terms and cross-/up-sell shares.

    Args:
        world: the world (its exact expectations give the regret terms).
        n_sessions: sessions in the round.
        learner: also learn from every step (after the step is counted).
    """

    KEYS = ("decisions", "reward", "expected", "best", "clicks", "purchases", "revenue", "cross_clicks",
            "up_clicks", "cross_revenue", "up_revenue", "cross_shown", "up_shown")

    def __init__(self, world: World, n_sessions: int, learner: Learner | None = None) -> None:
        self.world = world
        self.learner = learner
        self.totals = dict.fromkeys(self.KEYS, 0.0)
        self.totals["sessions"] = float(n_sessions)
        for j in range(world.k):
            self.totals[f"clicks_slot{j}"] = 0.0

    def __call__(self, step: Step) -> None:
        """Count one step of the round's live sessions."""
        world, m, state, out = self.world, self.totals, step.state, step.outcome
        slate = step.decision.slate
        m["expected"] += float(world.expected_reward(state, slate).sum())
        m["best"] += float(world.best_slate(state)[1].sum())
        cross = np.take_along_axis(world.cross_sell(state), slate, axis=1)
        up = np.take_along_axis(world.up_sell(state), slate, axis=1)
        m["decisions"] += state.n
        m["reward"] += float(out.reward.sum())
        m["clicks"] += float(out.click.sum())
        m["purchases"] += float(out.purchase.sum())
        m["revenue"] += float(out.revenue.sum())
        m["cross_clicks"] += float((out.click * cross).sum())
        m["up_clicks"] += float((out.click * up).sum())
        m["cross_revenue"] += float((out.revenue * cross).sum())
        m["up_revenue"] += float((out.revenue * up).sum())
        m["cross_shown"] += float(cross.sum())
        for j, clicks in enumerate(out.click.sum(axis=0)):
            m[f"clicks_slot{j}"] += float(clicks)
        m["up_shown"] += float(up.sum())
        if self.learner is not None:
            self.learner(step)


def run_round(world: World, agent: WorldAgent, n_sessions: int, rng: np.random.Generator, *,
              learn: bool) -> dict[str, float]:
    """Run ``n_sessions`` sessions to their end; learn after every step when ``learn``.

    Returns:
        The round's totals (:attr:`RoundMetrics.KEYS`, ``sessions`` and ``clicks_slot<j>``),
        one row of an online simulation's metrics.
    """
    metrics = RoundMetrics(world, n_sessions, Learner(world, agent) if learn else None)
    rollout(world, agent, n_sessions, rng, on_step=metrics)
    return metrics.totals


def train_online(world: World, agent: WorldAgent, n_sessions: int, batch_sessions: int,
                 rng: np.random.Generator) -> None:
    """Let ``agent`` learn online for ``n_sessions`` sessions, ``batch_sessions`` at a time."""
    learner = Learner(world, agent)
    done = 0
    while done < n_sessions:
        b = min(batch_sessions, n_sessions - done)
        rollout(world, agent, b, rng, on_step=learner)
        done += b


def evaluate(world: World, agent: WorldAgent, n_sessions: int, rng: np.random.Generator) -> FloatArray:
    """Reward of each of ``n_sessions`` held-out sessions under the frozen policy, shape (n_sessions,)."""
    return rollout(world, agent, n_sessions, rng)
