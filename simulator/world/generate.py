"""Write logs: run sessions of a world under a policy and record every decision."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError
from simulator.logs import LogMetadata, SlateLog
from simulator.world.core import SessionState, StepOutcome, World
from simulator.world.policies import PolicyLike, WorldPolicy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
logger = logging.getLogger(__name__)
SESSION_CHUNK = 50_000


@dataclass(frozen=True, slots=True)
class PolicyDecision:
    """A decision of any policy on a batch of sessions.

    Shapes: slate (n, k), pscore (n,), pscore_item (n, k).
    """

    slate: IntArray
    pscore: FloatArray
    pscore_item: FloatArray


def decide(world: World, policy: WorldPolicy | PolicyLike, state: SessionState,
           rng: np.random.Generator) -> PolicyDecision:
    """Ask ``policy`` for slates for ``state``.

    A built-in policy sees the sessions; any other policy sees
    ``world.context`` with the eligible and required masks.
    """
    if isinstance(policy, WorldPolicy):
        d = policy.decide(world, state, rng)
        return PolicyDecision(d.slate, d.pscore, d.pscore_item)
    if not isinstance(policy, PolicyLike):
        raise WorldError(f"`policy` must be a built-in logging policy or have "
                         f"select(context, *, eligible=None, required=None), found "
                         f"{type(policy).__name__}.")
    out = policy.select(world.context(state), eligible=world.eligible(state),
                        required=world.required(state))
    slate = np.asarray(out.slate, dtype=np.int64)
    pscore = np.asarray(out.pscore, dtype=np.float64)
    item = np.asarray(out.pscore_item, dtype=np.float64)
    if slate.shape != (state.n, world.k) or pscore.shape != (state.n,) or item.shape != slate.shape:
        raise WorldError(f"{type(policy).__name__}.select returned slate {slate.shape}, pscore "
                         f"{pscore.shape}, pscore_item {item.shape}; expected ({state.n}, {world.k}), "
                         f"({state.n},), ({state.n}, {world.k}). Does the policy's k match the world's?")
    return PolicyDecision(slate, pscore, item)


def policy_name(policy: WorldPolicy | PolicyLike) -> str:
    """A readable name of a policy for log metadata."""
    if isinstance(policy, WorldPolicy):
        return policy.describe()
    return str(getattr(policy, "policy_name", type(policy).__name__))


def run_sessions(world: World, policy: WorldPolicy | PolicyLike, n_sessions: int,
                 rng: np.random.Generator,
                 on_step: Callable[[SessionState, IntArray, PolicyDecision, StepOutcome], None]
                 | None = None) -> FloatArray:
    """Run ``n_sessions`` sessions to their end; return each session's total reward (n_sessions,).

    ``on_step(state, session_index, decision, outcome)`` sees every step of the
    live sessions (``session_index`` maps rows to ``0 .. n_sessions - 1``).
    """
    if isinstance(n_sessions, bool) or not isinstance(n_sessions, int | np.integer) or n_sessions < 1:
        raise WorldError(f"`n_sessions` must be a positive integer, found {n_sessions!r}.")
    total = np.zeros(int(n_sessions))
    for lo in range(0, int(n_sessions), SESSION_CHUNK):
        hi = min(int(n_sessions), lo + SESSION_CHUNK)
        state = world.new_sessions(hi - lo, rng)
        index = np.arange(lo, hi, dtype=np.int64)
        while state.n:
            d = decide(world, policy, state, rng)
            out = world.step(state, d.slate, rng)
            total[index] += out.reward
            if on_step is not None:
                on_step(state, index, d, out)
            keep = out.state.alive
            state, index = out.state.take(keep), index[keep]
    return total


def generate_log(world: World, policy: WorldPolicy | PolicyLike, n_sessions: int,
                 seed: int | None = None) -> SlateLog:
    """Log ``n_sessions`` sessions of ``world`` under ``policy``.

    One row per decision, sorted by session then step, with the context the
    policy saw, the slate, the per-slot reward of the world's ``reward_type``,
    ``purchase`` and ``revenue``, and the policy's ``pscore`` / ``pscore_item``.

    Args:
        world: the shop.
        policy: a built-in :class:`WorldPolicy` or any :class:`PolicyLike`.
        n_sessions: number of sessions (>= 1).
        seed: seed of the shoppers and their responses (a :class:`PolicyLike`
            draws its slates from its own generator).

    Returns:
        A validated :class:`~simulator.logs.SlateLog` with the world's catalog.
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[Any]] = {key: [] for key in (
        "context", "slate", "reward", "pscore", "pscore_item", "purchase", "revenue", "session",
        "step")}
    rt = world.reward_type

    def record(state: SessionState, index: IntArray, d: PolicyDecision, out: StepOutcome) -> None:
        parts["context"].append(world.context(state))
        parts["slate"].append(d.slate)
        parts["pscore"].append(d.pscore)
        parts["pscore_item"].append(d.pscore_item)
        parts["purchase"].append(out.purchase)
        parts["revenue"].append(out.revenue)
        parts["reward"].append(out.click if rt == "click" else out.purchase if rt == "purchase"
                               else out.revenue)
        parts["session"].append(index)
        parts["step"].append(state.step)

    run_sessions(world, policy, n_sessions, rng, on_step=record)
    cat = {key: np.concatenate(value) for key, value in parts.items()}
    order = np.lexsort((cat["step"], cat["session"]))
    name = policy_name(policy)
    meta = LogMetadata(logging_policy=name, reward_type=rt, context_names=world.context_names,
                       source=f"slatewise world (seed {world.seed})")
    logger.info("generated %d decisions in %d sessions under %s", order.size, n_sessions, name)
    return SlateLog.from_arrays(
        context=cat["context"][order], slate=cat["slate"][order], reward=cat["reward"][order],
        pscore=cat["pscore"][order], pscore_item=cat["pscore_item"][order], catalog=world.catalog,
        metadata=meta, purchase=cat["purchase"][order], revenue=cat["revenue"][order],
        session_id=cat["session"][order], step=cat["step"][order],
    )
