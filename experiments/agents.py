"""Policies placed in a world: the agents every experiment runs (``simulator.rollout.Agent``).

A registered policy is built for a world by :func:`build_agent`: the runner fills
in what the world knows (catalog size, slate length, context width, the slot
examination probabilities, and the catalog's item features, prices and
categories when the constructor requires them). A policy that declares
``anchor_context = True`` (``bandits.policies.anchored``: ``bought_together``,
``item_similarity``, ``upsell``) reads the session's anchor item from a context
column: its agent appends ``state.anchor`` to the world's context as column
``dim_context`` and the policy gets ``anchor_column = dim_context``.

Agents decide with ``select`` (exact propensities, what logs and learning need);
:meth:`WorldAgent.sampler` gives the same distribution through a policy's faster
``sample_slates`` when it has one, for runs that only total rewards.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bandits import SlatePolicy, make_policy, registered_policies
from simulator.errors import PolicyError
from simulator.rollout import Decision, PolicyAgent

FloatArray = npt.NDArray[np.float64]


def anchor_context(policy_class: type) -> bool:
    """True when ``policy_class`` declares that it reads the anchor item from its context.

    The declaration is the class attribute ``anchor_context`` (absent: False).
    """
    return getattr(policy_class, "anchor_context", False) is True


@dataclass(frozen=True, slots=True)
class WorldAgent(PolicyAgent):
    """A slate policy in a world: sees the world's context (plus the anchor item when anchored).

    Attributes:
        policy: the slate policy (``select``, ``action_dist``, ``update``).
        anchored: append ``state.anchor`` to the world's context (column ``world.dim_context``).
    """

    policy: SlatePolicy
    anchored: bool = False

    def context(self, world: Any, state: Any) -> FloatArray:
        """Shape (n, d) or (n, d + 1): the world's context, plus the anchor item when anchored."""
        ctx: FloatArray = world.context(state)
        if self.anchored:
            ctx = np.hstack([ctx, np.asarray(state.anchor, dtype=np.float64)[:, None]])
        return ctx

    def sampler(self) -> SamplingAgent:
        """This agent deciding through the policy's ``sample_slates`` when it has one."""
        return SamplingAgent(self.policy, self.anchored)


@dataclass(frozen=True, slots=True)
class SamplingAgent(WorldAgent):
    """Slates from the policy's ``sample_slates`` (same distribution, no per-slot marginals).

    Used where only rewards are totalled: ``pscore_item`` is None. Falls back to
    ``select`` for policies without a sampler and for sessions with required items.
    """

    def decide(self, world: Any, state: Any, rng: np.random.Generator) -> Decision:
        """Slates (n, k) and their ``pscore`` (n,) for every session of ``state``."""
        sampler = getattr(self.policy, "sample_slates", None)
        required = world.required(state) if hasattr(world, "required") else None
        if sampler is None or required is not None:
            return WorldAgent.decide(self, world, state, rng)
        ctx = self.context(world, state)
        slate, pscore = sampler(ctx, eligible=np.asarray(world.eligible(state), dtype=bool))
        return Decision(np.asarray(slate, dtype=np.int64), np.asarray(pscore, dtype=np.float64), None, ctx)


def world_fill(world: Any) -> dict[str, Any]:
    """What a world can tell a policy's constructor: item features, prices, categories, examination.

    Read from ``world.catalog`` when the world has one (else from the world's own
    ``price`` and ``category``) and from ``world.position_bias``.
    """
    catalog = getattr(world, "catalog", None)
    source = catalog if catalog is not None else world
    fill: dict[str, Any] = {}
    features = getattr(catalog, "features", None)
    if features is not None and np.asarray(features).ndim == 2 and np.asarray(features).shape[1]:
        fill["item_features"] = np.asarray(features, dtype=np.float64)
    for key in ("price", "category"):
        value = getattr(source, key, None)
        if value is not None:
            fill[key] = np.asarray(value)
    exam = getattr(world, "position_bias", None)
    if exam is not None:
        fill["examination"] = tuple(float(x) for x in np.asarray(exam))
    return fill


def build_agent(name: str, world: Any, seed: int, params: dict[str, Any] | None = None) -> WorldAgent:
    """The registered policy ``name`` built for ``world``, as an agent.

    Fills ``n_items``, ``k``, ``dim_context`` and ``seed``; ``examination`` (the
    world's slot examination probabilities) whenever the policy takes it;
    ``item_features``, ``price`` and ``category`` when the constructor requires
    them; ``anchor_column`` for a policy that declares ``anchor_context``.
    ``params`` override all of it.

    Raises:
        KeyError: ``name`` is not a registered policy.
        PolicyError: an anchored policy in a world whose sessions have no anchor item.
    """
    cls = registered_policies()[name]
    accepted = inspect.signature(cls.__init__).parameters
    anchored = anchor_context(cls)
    if anchored and not hasattr(world.new_sessions(1, np.random.default_rng(0)), "anchor"):
        raise PolicyError(f"policy {name!r} reads the session's anchor item, but the sessions of "
                          f"{type(world).__name__} have none; use it in a world with anchors "
                          "(simulator.world.World).")
    given = dict(params or {})
    args: dict[str, Any] = {"n_items": int(world.n_items), "k": int(world.k),
                            "dim_context": int(world.dim_context) + (1 if anchored else 0), "seed": seed}
    if anchored:
        args["anchor_column"] = int(world.dim_context)
    for key, value in world_fill(world).items():
        if key in accepted and key not in given and (
                key == "examination" or accepted[key].default is inspect.Parameter.empty):
            args[key] = value
    return WorldAgent(make_policy(name, **(args | given)), anchored)
