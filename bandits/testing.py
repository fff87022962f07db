"""Known-answer worlds for tests: tiny click models whose best slate is known exactly.

Each world draws contexts, gives the click probability of every slot of a
slate under a position-based model (``P(click at slot j) = examination[j] *
attraction(context, item)``), samples clicks as :class:`~bandits.policy.Feedback`,
and knows the best slate: the ``k`` most attractive items with the most
attractive in the most examined slot. :func:`run_online` plays a policy against
a world; :func:`value` is the exact expected clicks per slate of a policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bandits.policy import BoolArray, Feedback, FloatArray, IntArray, SlatePolicy
from bandits.slates import slot_order, topk_slates


@dataclass(frozen=True)
class SlateWorld:
    """A position-based click world over ``attraction(context) -> (n, n_items)``.

    Subclasses define :meth:`contexts` and :meth:`attraction`.

    Attributes:
        examination: shape (k,), probability that each slot is examined.
    """

    examination: FloatArray

    @property
    def k(self) -> int:
        """Slate length."""
        return int(np.asarray(self.examination).shape[0])

    @property
    def n_items(self) -> int:
        """Catalog size."""
        raise NotImplementedError

    @property
    def dim_context(self) -> int:
        """Context dimension."""
        raise NotImplementedError

    def contexts(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Draw ``n`` contexts, shape (n, dim_context)."""
        raise NotImplementedError

    def attraction(self, context: FloatArray) -> FloatArray:
        """Click probability of each item when examined, shape (n, n_items), in [0, 1]."""
        raise NotImplementedError

    def click_prob(self, context: FloatArray, slate: IntArray) -> FloatArray:
        """Click probability of each slot, shape (n, k)."""
        attract = np.take_along_axis(self.attraction(context), slate, axis=1)
        return attract * np.asarray(self.examination)[None, :]

    def expected_reward(self, context: FloatArray, slate: IntArray) -> FloatArray:
        """Expected clicks per slate, shape (n,)."""
        return np.asarray(self.click_prob(context, slate).sum(axis=1), dtype=np.float64)

    def best_slate(self, context: FloatArray, eligible: BoolArray | None = None) -> IntArray:
        """The slate of highest expected clicks, shape (n, k)."""
        order = slot_order(np.asarray(self.examination), self.k)
        return topk_slates(self.attraction(context), self.k, eligible, None, order)

    def best_reward(self, context: FloatArray) -> FloatArray:
        """Expected clicks of the best slate, shape (n,)."""
        return self.expected_reward(context, self.best_slate(context))

    def feedback(self, rng: np.random.Generator, context: FloatArray, slate: IntArray,
                 pscore: FloatArray | None = None) -> Feedback:
        """Sample clicks for shown slates."""
        clicks = (rng.random(slate.shape) < self.click_prob(context, slate)).astype(np.float64)
        return Feedback(context=context, slate=slate, reward=clicks, pscore=pscore)


@dataclass(frozen=True)
class BernoulliWorld(SlateWorld):
    """Context-free world: item ``i`` attracts with probability ``theta[i]``.

    Attributes:
        theta: shape (n_items,), attraction probabilities.
        dim: width of the (ignored, standard normal) contexts.
    """

    theta: FloatArray = field(default_factory=lambda: np.zeros(1))
    dim: int = 2

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return int(self.theta.shape[0])

    @property
    def dim_context(self) -> int:
        """Context dimension."""
        return self.dim

    def contexts(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Noise contexts the policies should ignore."""
        return rng.standard_normal((n, self.dim))

    def attraction(self, context: FloatArray) -> FloatArray:
        """The same ``theta`` for every context."""
        return np.broadcast_to(self.theta, (context.shape[0], self.n_items)).copy()


@dataclass(frozen=True)
class SegmentWorld(SlateWorld):
    """Contextual world: a shopper belongs to one of ``S`` segments, each with its own best items.

    The context is ``[1, onehot(segment)]`` (dimension ``S + 1``), so both a
    linear and a logistic model of attraction are exact.

    Attributes:
        attract: shape (S, n_items), attraction of each item in each segment.
    """

    attract: FloatArray = field(default_factory=lambda: np.zeros((1, 1)))

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return int(self.attract.shape[1])

    @property
    def dim_context(self) -> int:
        """Context dimension ``S + 1``."""
        return int(self.attract.shape[0]) + 1

    def contexts(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Contexts ``[1, onehot(segment)]`` with uniformly drawn segments."""
        s = self.attract.shape[0]
        ctx = np.zeros((n, s + 1))
        ctx[:, 0] = 1.0
        ctx[np.arange(n), 1 + rng.integers(0, s, size=n)] = 1.0
        return ctx

    def attraction(self, context: FloatArray) -> FloatArray:
        """Attraction of the row's segment."""
        seg = np.argmax(context[:, 1:], axis=1)
        return np.asarray(self.attract[seg], dtype=np.float64)


@dataclass(frozen=True)
class AnchorWorld(SlateWorld):
    """Cross-sell world: the context's column 0 is the anchor item; its complements attract.

    Attributes:
        attract: shape (n_items, n_items), attraction of item ``j`` next to anchor ``i``.
    """

    attract: FloatArray = field(default_factory=lambda: np.zeros((1, 1)))

    @property
    def n_items(self) -> int:
        """Catalog size."""
        return int(self.attract.shape[0])

    @property
    def dim_context(self) -> int:
        """Context dimension (the anchor only)."""
        return 1

    def contexts(self, rng: np.random.Generator, n: int) -> FloatArray:
        """Uniformly drawn anchors."""
        return rng.integers(0, self.n_items, size=(n, 1)).astype(np.float64)

    def attraction(self, context: FloatArray) -> FloatArray:
        """Attraction next to the row's anchor; the anchor itself does not attract."""
        anchors = context[:, 0].astype(np.int64)
        out = self.attract[anchors].copy()
        out[np.arange(anchors.size), anchors] = 0.0
        return out


def bernoulli_world(n_items: int = 8, k: int = 2, seed: int = 0) -> BernoulliWorld:
    """A context-free world with well separated item click rates in [0.05, 0.6]."""
    rng = np.random.default_rng(seed)
    theta = rng.permutation(np.linspace(0.05, 0.6, n_items))
    return BernoulliWorld(examination=np.linspace(1.0, 0.6, k), theta=theta)


def segment_world(n_items: int = 8, k: int = 2, n_segments: int = 3, seed: int = 0) -> SegmentWorld:
    """A contextual world where each segment has different best items (rates in [0.05, 0.7])."""
    rng = np.random.default_rng(seed)
    attract = np.stack([rng.permutation(np.linspace(0.05, 0.7, n_items)) for _ in range(n_segments)])
    return SegmentWorld(examination=np.linspace(1.0, 0.6, k), attract=attract)


def anchor_world(n_items: int = 12, k: int = 2, seed: int = 0) -> AnchorWorld:
    """A cross-sell world: each anchor has ``k`` complements clicked at 0.5, others at 0.03-0.1."""
    rng = np.random.default_rng(seed)
    attract = rng.uniform(0.03, 0.1, size=(n_items, n_items))
    for i in range(n_items):
        others = np.delete(np.arange(n_items), i)
        comp = rng.choice(others, size=k, replace=False)
        attract[i, comp] = 0.5
        attract[comp, i] = 0.5
    return AnchorWorld(examination=np.linspace(1.0, 0.7, k), attract=attract)


@dataclass(frozen=True)
class OnlineRun:
    """What :func:`run_online` measured.

    Attributes:
        reward: shape (n_rounds,), expected clicks of each shown slate.
        best: shape (n_rounds,), expected clicks of the best slate in that context.
    """

    reward: FloatArray
    best: FloatArray

    def ratio(self, last: int | None = None) -> float:
        """Expected clicks as a fraction of the best, over the last ``last`` rounds (all if None)."""
        sl = slice(None) if last is None else slice(-last, None)
        return float(self.reward[sl].sum() / self.best[sl].sum())


def run_online(policy: SlatePolicy, world: SlateWorld, n_rounds: int, *, batch_size: int = 1,
               seed: int | None = None) -> OnlineRun:
    """Play ``policy`` for ``n_rounds``: decide ``batch_size`` rounds, then learn from them.

    Returns:
        The expected and best expected clicks of every round.
    """
    rng = np.random.default_rng(seed)
    reward = np.empty(n_rounds)
    best = np.empty(n_rounds)
    for lo in range(0, n_rounds, batch_size):
        n = min(batch_size, n_rounds - lo)
        ctx = world.contexts(rng, n)
        decision = policy.select(ctx)
        reward[lo:lo + n] = world.expected_reward(ctx, decision.slate)
        best[lo:lo + n] = world.best_reward(ctx)
        policy.update(world.feedback(rng, ctx, decision.slate, decision.pscore))
    return OnlineRun(reward=reward, best=best)


def value(policy: SlatePolicy, world: SlateWorld, n_contexts: int = 2_000, *,
          seed: int | None = None, **dist_kwargs: Any) -> tuple[float, float]:
    """Exact expected clicks per slate of ``policy`` and of the best slate, over drawn contexts.

    Uses the policy's per-slot action distribution: under a position-based
    model the expected clicks are ``sum_j sum_i P(i at j) examination[j] attraction[i]``.

    Returns:
        ``(policy_value, best_value)``, mean expected clicks per slate.
    """
    rng = np.random.default_rng(seed)
    ctx = world.contexts(rng, n_contexts)
    dist = policy.action_dist(ctx, **dist_kwargs)
    attract = world.attraction(ctx)
    v = np.einsum("nik,ni,k->n", dist, attract, np.asarray(world.examination))
    return float(v.mean()), float(world.best_reward(ctx).mean())
