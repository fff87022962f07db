"""Value of a slate policy per session on held-out seeds, and bandits trained online.

Both step the world directly (batch-first, numpy over sessions). A policy is
evaluated frozen (``select`` only) on ``n_sessions`` sessions that each run
to their end (checkout, abandonment or the step limit). A bandit is trained
online as it would be served: it keeps ``num_envs`` sessions going (a session
that ends is replaced by a new shopper), and every step it chooses slates,
sees the per-slot outcome (the configured reward) and updates — for the same
number of environment steps (decisions) PPO trains for.

Bandits are built as the experiment runner builds them
(``experiments.simulate.build_agent``): what the world knows is filled in —
the slot examination probabilities, the catalog's item features, prices and
categories when a policy needs them, and the anchor item appended to the
context for anchored policies (``bought_together``, ``item_similarity``,
``upsell``).
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from bandits import Feedback, SlatePolicy, make_policy, registered_policies
from simulator.envs import WorldLike

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


@dataclass(frozen=True, slots=True)
class WorldPolicy:
    """A slate policy placed in a world: it may need the anchor item as an extra context column.

    Attributes:
        policy: the slate policy.
        anchored: append ``state.anchor`` to the world's context (column ``dim_context``).
    """

    policy: SlatePolicy
    anchored: bool = False

    def context(self, world: WorldLike, state: Any) -> FloatArray:
        """Shape (n, d) or (n, d + 1): the world's context, plus the anchor item when anchored."""
        ctx = np.asarray(world.context(state), dtype=np.float64)
        if self.anchored:
            ctx = np.hstack([ctx, np.asarray(state.anchor, dtype=np.float64)[:, None]])
        return ctx


def _world_fill(world: WorldLike) -> dict[str, Any]:
    """What the world can tell a policy's constructor (the experiment runner's rules)."""
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


def bandit_policy(name: str, world: WorldLike, seed: int,
                  params: dict[str, Any] | None = None) -> WorldPolicy:
    """The registered policy ``name`` built for ``world`` (as ``experiments.simulate.build_agent`` does).

    Fills ``examination`` and, when the policy requires them, ``item_features``
    (the catalog's), ``price`` and ``category``; a policy with an ``anchor_column``
    gets the anchor item appended to the context. ``params`` override all of it.

    Raises:
        KeyError: ``name`` is not a registered policy.
    """
    cls = registered_policies()[name]
    accepted = inspect.signature(cls.__init__).parameters
    anchored = "anchor_column" in accepted and hasattr(world.new_sessions(1, np.random.default_rng(0)),
                                                        "anchor")
    given = dict(params or {})
    args: dict[str, Any] = {"n_items": int(world.n_items), "k": int(world.k),
                            "dim_context": int(world.dim_context) + (1 if anchored else 0), "seed": seed}
    if anchored:
        args["anchor_column"] = int(world.dim_context)
    for key, value in _world_fill(world).items():
        if key in accepted and key not in given and (
                key == "examination" or accepted[key].default is inspect.Parameter.empty):
            args[key] = value
    return WorldPolicy(make_policy(name, **(args | given)), anchored)


def choose_with(policy: WorldPolicy) -> Callable[[FloatArray, BoolArray], IntArray]:
    """``(context, eligible) -> slates`` of a policy.

    Its ``select``, or a faster sampler of the same distribution when it has one
    (``sample_slates``, e.g. the PPO policy's, which skips the per-slot marginals).
    """
    sampler = getattr(policy.policy, "sample_slates", None)
    if sampler is not None:
        return lambda ctx, mask: np.asarray(sampler(ctx, eligible=mask)[0])
    return lambda ctx, mask: policy.policy.select(ctx, eligible=mask).slate


def _take(state: Any, rows: IntArray) -> Any:
    """The sessions at ``rows`` of a dataclass of per-session arrays."""
    if not is_dataclass(state) or isinstance(state, type):
        raise TypeError(f"a world state must be a dataclass of per-session arrays, found {type(state)}.")
    n = int(np.asarray(getattr(state, fields(state)[0].name)).shape[0])
    changes = {f.name: getattr(state, f.name)[rows] for f in fields(state)
               if isinstance(getattr(state, f.name), np.ndarray) and getattr(state, f.name).shape[:1] == (n,)}
    return replace(state, **changes)


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


def _ended(world: WorldLike, out: Any) -> BoolArray:
    """Sessions that ended in this step: checkout, abandonment or the step limit."""
    ended: BoolArray = np.asarray(out.checkout, dtype=bool) | np.asarray(out.abandon, dtype=bool)
    return ended | (np.asarray(out.state.step) >= int(world.max_steps))


def session_values(policy: SlatePolicy | WorldPolicy, world: WorldLike, n_sessions: int, seed: int,
                   reward: str = "revenue") -> SessionValues:
    """Run ``n_sessions`` whole sessions under ``policy`` (frozen) and total them.

    Args:
        policy: a slate policy whose ``dim_context`` fits the world (or 0), or a
            :class:`WorldPolicy` (e.g. an anchored bandit from :func:`bandit_policy`).
        world: the ground truth.
        n_sessions: sessions, all stepped together.
        seed: seed of the sessions (use seeds the policy was not trained on).
        reward: ``click``, ``purchase`` or ``revenue``.

    Returns:
        Per-session totals.
    """
    placed = policy if isinstance(policy, WorldPolicy) else WorldPolicy(policy)
    choose = choose_with(placed)
    rng = np.random.default_rng(seed)
    state = world.new_sessions(n_sessions, rng)
    rows = np.arange(n_sessions)
    total = np.zeros(n_sessions)
    revenue = np.zeros(n_sessions)
    steps = np.zeros(n_sessions, dtype=np.int64)
    while rows.size:
        slate = choose(placed.context(world, state), np.asarray(world.eligible(state), dtype=bool))
        out = world.step(state, slate, rng)
        np.add.at(total, rows, np.asarray(getattr(out, reward), dtype=np.float64).sum(axis=1))
        np.add.at(revenue, rows, np.asarray(out.revenue, dtype=np.float64).sum(axis=1))
        steps[rows] += 1
        live = np.flatnonzero(~_ended(world, out))
        rows = rows[live]
        state = _take(out.state, live)
    return SessionValues(reward=total, revenue=revenue, steps=steps)


class OnlineBandit:
    """A bandit learning online in its own batch of sessions, advanced step by step.

    Args:
        name: a registered policy name.
        world: the ground truth.
        num_envs: sessions stepped together (one ``select`` and one ``update`` per batch
            step); a session that ends is replaced by a new shopper.
        reward: the per-slot outcome the bandit learns from.
        seed: seed of the policy and of its sessions.
        params: constructor arguments beyond what :func:`bandit_policy` fills in.
    """

    def __init__(self, name: str, world: WorldLike, num_envs: int, reward: str, seed: int,
                 params: dict[str, Any] | None = None) -> None:
        self.name = name
        self.reward = reward
        self.world = world
        self.num_envs = int(num_envs)
        self.placed = bandit_policy(name, world, seed, params)
        self._rng = np.random.default_rng(seed)
        self._state = world.new_sessions(self.num_envs, self._rng)
        self.steps = 0

    @property
    def policy(self) -> SlatePolicy:
        """The learning policy."""
        return self.placed.policy

    @policy.setter
    def policy(self, value: SlatePolicy) -> None:
        self.placed = WorldPolicy(value, self.placed.anchored)

    def advance(self, steps: int) -> None:
        """Learn online for at least ``steps`` more environment steps (whole batch steps)."""
        target = self.steps + steps
        world = self.world
        while self.steps < target:
            ctx = self.placed.context(world, self._state)
            decision = self.policy.select(ctx, eligible=np.asarray(world.eligible(self._state), dtype=bool))
            out = world.step(self._state, decision.slate, self._rng)
            reward = np.asarray(getattr(out, self.reward), dtype=np.float64)
            self.policy.update(Feedback(ctx, decision.slate, reward, decision.pscore))
            ended = _ended(world, out)
            state = out.state
            if ended.any():
                state = _merge(state, ended, world.new_sessions(int(ended.sum()), self._rng))
            self._state = state
            self.steps += self.num_envs

    def frozen(self) -> WorldPolicy:
        """A copy to evaluate without disturbing the learner."""
        return copy.deepcopy(self.placed)


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
