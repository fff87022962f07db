"""Run shopping sessions to their end under an agent: the one rollout loop.

Everything that plays whole sessions — writing a log (``simulator.world.generate_log``),
an online simulation, a comparison's logging run, the held-out value of a
frozen policy — calls :func:`rollout` and watches the steps it cares about
through ``on_step``. Shapes are batch-first: a step holds the ``n`` sessions
still alive; ``session`` maps each row to its session ``0 .. n_sessions - 1``.

The world is anything with ``new_sessions(n, rng)`` and ``step(state, slate, rng)``
(:class:`simulator.world.World`, the toy world of ``simulator.envs``): its
outcome carries ``reward (n,)``, ``checkout``/``abandon (n,)`` and the next
``state``, whose ``step (n,)`` counts the steps taken and whose
``take(rows)`` keeps the given sessions. A session ends on checkout,
abandonment or the world's ``max_steps``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Sessions drawn and stepped together at most; more are run chunk after chunk.
SESSION_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class Decision:
    """What an agent showed ``n`` live sessions.

    Attributes:
        slate: shape (n, k) int64 item indices in slot order.
        pscore: shape (n,), exact probability of each whole ordered slate (None when the
            agent does not compute propensities: an evaluation-only sampler).
        pscore_item: shape (n, k), marginal probability of each shown item at its slot, or None.
        context: shape (n, d), what the policy saw (None when the agent keeps none).
    """

    slate: IntArray
    pscore: FloatArray | None = None
    pscore_item: FloatArray | None = None
    context: FloatArray | None = None


@runtime_checkable
class Agent(Protocol):
    """Chooses slates for the live sessions of a world (the world's logging policies are agents)."""

    def decide(self, world: Any, state: Any, rng: np.random.Generator) -> Decision:
        """Slates for every session of ``state`` (``rng`` is the rollout's, for agents without their own)."""
        ...


class DecisionLike(Protocol):
    """What a policy's ``select`` returns."""

    @property
    def slate(self) -> Any:
        """Shape (n, k) item indices."""
        ...

    @property
    def pscore(self) -> Any:
        """Shape (n,), probability of each whole slate."""
        ...

    @property
    def pscore_item(self) -> Any:
        """Shape (n, k), marginal probability of each item at its slot."""
        ...


@runtime_checkable
class PolicyLike(Protocol):
    """Anything that chooses slates for contexts (``bandits.SlatePolicy`` is one).

    The simulator states what it needs of a policy here and never imports ``bandits``.
    """

    def select(self, context: Any, *, eligible: Any = None, required: Any = None) -> DecisionLike:
        """Slates (n, k) for contexts (n, d) with their propensities."""
        ...


@runtime_checkable
class DistPolicyLike(PolicyLike, Protocol):
    """A policy that also gives its per-slot action distribution."""

    def action_dist(self, context: Any, *, eligible: Any = None, required: Any = None) -> Any:
        """Shape (n, n_items, k), probability of each item at each slot."""
        ...


@dataclass(frozen=True, slots=True)
class PolicyAgent:
    """A policy that sees the world's context and the eligible and required items of each session."""

    policy: PolicyLike

    def context(self, world: Any, state: Any) -> Any:
        """Shape (n, d): what the policy sees, ``world.context(state)`` (a subclass may add columns)."""
        return world.context(state)

    def decide(self, world: Any, state: Any, rng: np.random.Generator) -> Decision:
        """``policy.select(self.context(world, state), eligible=..., required=...)``, checked for shape."""
        context = self.context(world, state)
        required = world.required(state) if hasattr(world, "required") else None
        out = self.policy.select(context, eligible=world.eligible(state), required=required)
        slate = np.asarray(out.slate, dtype=np.int64)
        pscore = np.asarray(out.pscore, dtype=np.float64)
        item = np.asarray(out.pscore_item, dtype=np.float64)
        n, k = context.shape[0], int(world.k)
        if slate.shape != (n, k) or pscore.shape != (n,) or item.shape != slate.shape:
            raise WorldError(f"{type(self.policy).__name__}.select returned slate {slate.shape}, pscore "
                             f"{pscore.shape}, pscore_item {item.shape}; expected ({n}, {k}), ({n},), "
                             f"({n}, {k}). Does the policy's k match the world's?")
        return Decision(slate, pscore, item, context)


def as_agent(policy: Agent | PolicyLike) -> Agent:
    """``policy`` itself when it is an :class:`Agent`, else a :class:`PolicyAgent` around it."""
    if isinstance(policy, Agent):
        return policy
    if isinstance(policy, PolicyLike):
        return PolicyAgent(policy)
    raise WorldError(f"`policy` must be a built-in logging policy or have select(context, *, eligible=None, "
                     f"required=None) or decide(world, state, rng), found {type(policy).__name__}.")


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the live sessions, as :func:`rollout` hands it to ``on_step``.

    Attributes:
        state: the sessions before the step (``n`` rows, all alive).
        session: shape (n,) int64, each row's session in ``0 .. n_sessions - 1``.
        decision: what the agent showed.
        outcome: the world's outcome of the step (its ``state`` is the sessions after it).
        ended: shape (n,) bool, the sessions that ended with this step.
    """

    state: Any
    session: IntArray
    decision: Decision
    outcome: Any
    ended: BoolArray


def ended(world: Any, outcome: Any) -> BoolArray:
    """Shape (n,) bool: the sessions that ended with ``outcome`` (checkout, abandonment, step limit)."""
    out: BoolArray = (np.asarray(outcome.checkout, dtype=bool) | np.asarray(outcome.abandon, dtype=bool)
                      | (np.asarray(outcome.state.step) >= int(world.max_steps)))
    return out


def play_step(world: Any, agent: Agent, state: Any, session: IntArray, rng: np.random.Generator) -> Step:
    """One step of the live sessions ``state``: the agent decides, the world responds (both from ``rng``).

    :func:`rollout` repeats it until every session has ended; a runner that keeps a
    fixed number of sessions going (replacing each one that ends) calls it directly.

    Args:
        world: the shop.
        agent: chooses the slates.
        state: the live sessions (``n`` rows).
        session: shape (n,) int64, each row's session id (carried into the :class:`Step`).
        rng: draws the responses (and the slates of agents without their own generator).
    """
    decision = agent.decide(world, state, rng)
    outcome = world.step(state, decision.slate, rng)
    return Step(state, session, decision, outcome, ended(world, outcome))


def rollout(world: Any, agent: Agent | PolicyLike, n_sessions: int, rng: np.random.Generator, *,
            on_step: Callable[[Step], None] | None = None, chunk: int = SESSION_CHUNK) -> FloatArray:
    """Run ``n_sessions`` fresh sessions of ``world`` under ``agent`` until each one ends.

    Sessions are drawn ``chunk`` at a time (all at once when ``n_sessions <= chunk``)
    from ``rng``, which also draws every outcome, so a run is repeated by its seed.

    Args:
        world: the shop (see the module docstring for what it must offer).
        agent: an :class:`Agent`, or a policy with ``select`` (wrapped by :func:`as_agent`).
        n_sessions: sessions to run (>= 1).
        rng: draws the shoppers and their responses.
        on_step: called once per step with the live sessions' :class:`Step`
            (to record a log, learn online, or add up metrics).
        chunk: sessions stepped together at most.

    Returns:
        Shape (n_sessions,): each session's total reward.
    """
    if isinstance(n_sessions, bool) or not isinstance(n_sessions, int | np.integer) or n_sessions < 1:
        raise WorldError(f"`n_sessions` must be a positive integer, found {n_sessions!r}.")
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise WorldError(f"`chunk` must be a positive integer, found {chunk!r}.")
    player = as_agent(agent)
    n_sessions = int(n_sessions)
    total = np.zeros(n_sessions)
    for lo in range(0, n_sessions, int(chunk)):
        hi = min(n_sessions, lo + int(chunk))
        state = world.new_sessions(hi - lo, rng)
        session = np.arange(lo, hi, dtype=np.int64)
        while session.size:
            step = play_step(world, player, state, session, rng)
            total[session] += np.asarray(step.outcome.reward, dtype=np.float64)
            if on_step is not None:
                on_step(step)
            live = np.flatnonzero(~step.ended)
            state, session = step.outcome.state.take(live), session[live]
    return total
