"""Write logs: run sessions of a world under a policy and record every decision."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError
from simulator.logs import LogMetadata, SlateLog
from simulator.rollout import Agent, PolicyLike, Step, rollout
from simulator.world.core import World
from simulator.world.policies import WorldPolicy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
logger = logging.getLogger(__name__)


def policy_name(policy: Agent | PolicyLike) -> str:
    """A readable name of a policy for log metadata."""
    if isinstance(policy, WorldPolicy):
        return policy.describe()
    inner = getattr(policy, "policy", policy)
    return str(getattr(inner, "policy_name", type(inner).__name__))


def slot_reward(world: World, outcome: Any) -> FloatArray:
    """Per-slot reward (n, k) of the world's reward type: clicks, purchases or revenue."""
    rt = world.reward_type
    out: FloatArray = outcome.click if rt == "click" else outcome.purchase if rt == "purchase" \
        else outcome.revenue
    return out


class LogRecorder:
    """An ``on_step`` for :func:`~simulator.rollout.rollout` that keeps every decision as a log row.

    Args:
        world: the world the rollout runs in (its context, catalog and reward type go in the log).
    """

    FIELDS = ("context", "slate", "reward", "pscore", "pscore_item", "purchase", "revenue", "session", "step")

    def __init__(self, world: World) -> None:
        self.world = world
        self.parts: dict[str, list[Any]] = {key: [] for key in self.FIELDS}

    def __call__(self, step: Step) -> None:
        """Record the live sessions' decisions and outcomes of one step."""
        d, out, parts = step.decision, step.outcome, self.parts
        if d.pscore is None or d.pscore_item is None:
            raise WorldError("a logged decision needs its propensities: the agent returned no "
                             "`pscore`/`pscore_item`; log under a policy that computes them.")
        parts["context"].append(d.context if d.context is not None else self.world.context(step.state))
        parts["slate"].append(d.slate)
        parts["pscore"].append(d.pscore)
        parts["pscore_item"].append(d.pscore_item)
        parts["purchase"].append(out.purchase)
        parts["revenue"].append(out.revenue)
        parts["reward"].append(slot_reward(self.world, out))
        parts["session"].append(step.session)
        parts["step"].append(step.state.step)

    def to_log(self, logging_policy: str, *, by_session: bool = True) -> SlateLog:
        """The recorded rows as a validated log, sorted by session then step.

        ``by_session=False`` keeps the rows in the order they were recorded (step by
        step, every live session at each step).
        """
        world = self.world
        cat = {key: np.concatenate(value) for key, value in self.parts.items()}
        order = np.lexsort((cat["step"], cat["session"])) if by_session else np.arange(cat["step"].shape[0])
        meta = LogMetadata(logging_policy=logging_policy, reward_type=world.reward_type,
                           context_names=world.context_names,
                           source=f"slatewise world (seed {world.seed})")
        return SlateLog.from_arrays(
            context=cat["context"][order], slate=cat["slate"][order], reward=cat["reward"][order],
            pscore=cat["pscore"][order], pscore_item=cat["pscore_item"][order], catalog=world.catalog,
            metadata=meta, purchase=cat["purchase"][order], revenue=cat["revenue"][order],
            session_id=cat["session"][order], step=cat["step"][order],
        )


def generate_log(world: World, policy: Agent | PolicyLike, n_sessions: int,
                 seed: int | None = None) -> SlateLog:
    """Log ``n_sessions`` sessions of ``world`` under ``policy``.

    One row per decision, sorted by session then step, with the context the
    policy saw, the slate, the per-slot reward of the world's ``reward_type``,
    ``purchase`` and ``revenue``, and the policy's ``pscore`` / ``pscore_item``.

    Args:
        world: the shop.
        policy: a built-in :class:`WorldPolicy`, any :class:`~simulator.rollout.Agent`
            or any :class:`~simulator.rollout.PolicyLike`.
        n_sessions: number of sessions (>= 1).
        seed: seed of the shoppers and their responses (a :class:`PolicyLike`
            draws its slates from its own generator).

    Returns:
        A validated :class:`~simulator.logs.SlateLog` with the world's catalog.
    """
    recorder = LogRecorder(world)
    rollout(world, policy, n_sessions, np.random.default_rng(seed), on_step=recorder)
    name = policy_name(policy)
    log = recorder.to_log(name)
    logger.info("generated %d decisions in %d sessions under %s", log.n_rounds, n_sessions, name)
    return log
