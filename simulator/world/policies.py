"""Logging policies with exact propensities, and the structural policy interface.

Built-in logging policies act on a world's sessions (:class:`WorldPolicy`):
uniform random over eligible items, epsilon-greedy around a score, and a
Plackett-Luce softmax over scores. Each returns the slate with the exact
probability of the whole ordered slate (``pscore``) and of each shown item at
its slot (``pscore_item``), and gives its exact per-slot action distribution
``(n, n_items, k)``.

Each is an :class:`~simulator.rollout.Agent` (``decide(world, state, rng)``);
any other object with ``select(context, *, eligible=None, required=None)`` (the
bandits' ``SlatePolicy`` among them) satisfies :class:`~simulator.rollout.PolicyLike`,
and :class:`~simulator.rollout.DistPolicyLike` adds ``action_dist`` for exact truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError
from simulator.rollout import Decision
from simulator.world.core import SessionState, World

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
PL_CHUNK = 8


# ---------------------------------------------------------------------- scores
def _patient_scores(world: World, state: SessionState) -> FloatArray:
    log_price = np.log(world.params.price)
    jump = np.maximum(log_price[None, :] - log_price[state.anchor][:, None], 0.0)
    out: FloatArray = world.item_value(state) * np.exp(-jump)
    return out


SCORES: dict[str, Callable[[World, SessionState], FloatArray]] = {
    "value": lambda world, state: world.item_value(state),
    "attraction": lambda world, state: world.attraction(state),
    "patient": _patient_scores,
}
"""Item scores (n, n_items) a built-in policy can rank by: ``value`` (the expected
reward of the item on a surely examined slot: myopic), ``attraction`` (click
probability), ``patient`` (value discounted by ``exp(-log price jump over the
anchor)``: avoids pushing expensive up-sells)."""


def _score(world: World, state: SessionState, name: str) -> FloatArray:
    return SCORES[name](world, state)


# ---------------------------------------------------------------------- uniform
def _falling(a: FloatArray, b: int) -> FloatArray:
    """``a (a-1) ... (a-b+1)`` elementwise, 0 where ``a < b``."""
    out = np.ones_like(a, dtype=np.float64)
    for j in range(b):
        out = out * np.maximum(a - j, 0.0)
    return out


def uniform_counts(eligible: BoolArray, required: BoolArray | None,
                   k: int) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Number of valid ordered slates per row, and per-item slot counts.

    Returns:
        ``(total, count_required, count_other)``, each (n,): valid slates, and valid
        slates holding a given required (resp. other) eligible item at a given slot.
    """
    m = eligible.sum(axis=1).astype(np.float64)
    r = np.zeros_like(m) if required is None else (required & eligible).sum(axis=1).astype(np.float64)
    total = _falling(m, k) - np.where(r > 0, _falling(m - r, k), 0.0)
    with_req = _falling(m - 1, k - 1)
    with_other = with_req - np.where(r > 0, _falling(m - r - 1, k - 1), 0.0)
    return total, with_req, with_other


def uniform_sample(rng: np.random.Generator, eligible: BoolArray, required: BoolArray | None,
                   k: int) -> IntArray:
    """Slates (n, k) drawn uniformly over the valid ordered slates.

    Valid: k distinct eligible items,
    holding at least one required item (when a row has any).
    """
    n, n_items = eligible.shape
    req = None if required is None else required & eligible
    need_req = np.zeros(n, dtype=np.bool_) if req is None else np.asarray(req.any(axis=1), dtype=np.bool_)
    slate = np.zeros((n, k), dtype=np.int64)
    todo = np.arange(n)
    for _ in range(6):  # fast path: independent draws, keep valid rows (exact rejection)
        if not todo.size:
            break
        draw = rng.integers(0, n_items, size=(todo.size, k))
        ok = np.asarray(np.take_along_axis(eligible[todo], draw, axis=1).all(axis=1), dtype=np.bool_)
        if k > 1:
            srt = np.sort(draw, axis=1)
            ok &= ~(srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if req is not None:
            ok &= ~need_req[todo] | np.take_along_axis(req[todo], draw, axis=1).any(axis=1)
        slate[todo[ok]] = draw[ok]
        todo = todo[~ok]
    for _ in range(1000):  # slow path: uniform permutations of eligible items, reject on the rule
        if not todo.size:
            break
        keys = np.where(eligible[todo], rng.random((todo.size, n_items)), 2.0)
        part = np.argpartition(keys, k - 1, axis=1)[:, :k]
        draw = np.take_along_axis(part, np.argsort(np.take_along_axis(keys, part, axis=1), axis=1),
                                  axis=1)
        ok = np.ones(todo.size, dtype=np.bool_)
        if req is not None:
            ok = ~need_req[todo] | np.take_along_axis(req[todo], draw, axis=1).any(axis=1)
        slate[todo[ok]] = draw[ok]
        todo = todo[~ok]
    if todo.size:
        raise WorldError("uniform sampling could not meet the required-item rule; too few "
                         "required items are eligible.")
    return slate


def uniform_propensities(slate: IntArray, eligible: BoolArray,
                         required: BoolArray | None) -> tuple[FloatArray, FloatArray]:
    """Exact ``pscore`` (n,) and ``pscore_item`` (n, k) of uniform slates."""
    k = slate.shape[1]
    total, with_req, with_other = uniform_counts(eligible, required, k)
    pscore = 1.0 / total
    if required is None:
        item = np.broadcast_to((with_req / total)[:, None], slate.shape)
    else:
        is_req = np.take_along_axis(required & eligible, slate, axis=1)
        item = np.where(is_req, with_req[:, None], with_other[:, None]) / total[:, None]
    return pscore, np.array(item, dtype=np.float64)


def uniform_dist(eligible: BoolArray, required: BoolArray | None, k: int) -> FloatArray:
    """Per-slot distribution (n, n_items, k) of uniform slates."""
    total, with_req, with_other = uniform_counts(eligible, required, k)
    if required is None:
        item = eligible * (with_req / total)[:, None]
    else:
        item = np.where(required & eligible, with_req[:, None], with_other[:, None]) * eligible
        item = item / total[:, None]
    return np.repeat(item[:, :, None], k, axis=2)


# ---------------------------------------------------------------------- Plackett-Luce
def _pl_weights(scores: FloatArray, eligible: BoolArray, temperature: float) -> FloatArray:
    z = np.where(eligible, scores / temperature, -np.inf)
    z = z - z.max(axis=1, keepdims=True)
    w: FloatArray = np.exp(z)
    out: FloatArray = w / w.sum(axis=1, keepdims=True)
    return out


def pl_marginals(p: FloatArray, k: int) -> FloatArray:
    """Exact per-slot marginals (n, n_items, k) of Plackett-Luce sampling, for ``k <= 3``.

    Sampling without replacement with first-stage probabilities ``p`` (n, n_items), for ``k <= 3``.
    """
    n, m = p.shape
    out = np.zeros((n, m, k))
    out[:, :, 0] = p
    if k >= 2:
        rest = np.maximum(1.0 - p, 1e-300)
        a = (p / rest).sum(axis=1, keepdims=True)
        out[:, :, 1] = p * (a - p / rest)
    if k >= 3:
        # slot 2: p_i * sum over ordered pairs (a, b), both != i, of (p_a / r_a) * G[a, b]
        # with r_a = 1 - p_a and G[a, b] = p_b / (r_a - p_b) (0 on the diagonal).
        idx = np.arange(m)
        for lo in range(0, n, PL_CHUNK):
            pc = p[lo:lo + PL_CHUNK]
            ratio = pc / np.maximum(1.0 - pc, 1e-300)
            g = (1.0 - pc)[:, :, None] - pc[:, None, :]
            np.maximum(g, 1e-300, out=g)
            np.divide(pc[:, None, :], g, out=g)
            g[:, idx, idx] = 0.0
            rows = g.sum(axis=2)
            cols = np.einsum("na,nab->nb", ratio, g)
            total = (ratio * rows).sum(axis=1, keepdims=True)
            out[lo:lo + PL_CHUNK, :, 2] = pc * (total - ratio * rows - cols)
    return out


# ---------------------------------------------------------------------- policies
class WorldPolicy:
    """A built-in logging policy over a world's sessions.

    Subclasses implement :meth:`decide` (slates with exact propensities) and
    :meth:`action_dist` (exact per-slot distribution).
    """

    name: str = "world_policy"

    def decide(self, world: World, state: SessionState, rng: np.random.Generator) -> Decision:
        """Slates (n, k) for ``state`` with exact ``pscore`` and ``pscore_item``."""
        raise NotImplementedError

    def action_dist(self, world: World, state: SessionState) -> FloatArray:
        """Shape (n, n_items, k): probability of each item at each slot."""
        raise NotImplementedError

    def describe(self) -> str:
        """Name and parameters, for log metadata."""
        return self.name


class UniformPolicy(WorldPolicy):
    """Uniform over ordered slates of distinct eligible items.

    Holding a required
    cross-sell when the world's rules ask for one).
    """

    name = "uniform"

    def decide(self, world: World, state: SessionState, rng: np.random.Generator) -> Decision:
        """See :meth:`WorldPolicy.decide`."""
        elig, req = world.eligible(state), world.required(state)
        slate = uniform_sample(rng, elig, req, world.k)
        pscore, item = uniform_propensities(slate, elig, req)
        return Decision(slate, pscore, item)

    def action_dist(self, world: World, state: SessionState) -> FloatArray:
        """See :meth:`WorldPolicy.action_dist`."""
        return uniform_dist(world.eligible(state), world.required(state), world.k)


class EpsilonGreedyPolicy(WorldPolicy):
    """The top-``k`` slate by a score with probability ``1 - epsilon``, else a uniform slate.

    Args:
        epsilon: exploration probability in [0, 1].
        score: a name in :data:`SCORES`.
    """

    name = "epsilon_greedy"

    def __init__(self, epsilon: float = 0.1, score: str = "value") -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise WorldError(f"`epsilon` must lie in [0, 1], found {epsilon}.")
        if score not in SCORES:
            raise WorldError(f"`score` must be one of {sorted(SCORES)}, found {score!r}.")
        self.epsilon, self.score = float(epsilon), score

    def describe(self) -> str:
        """See :meth:`WorldPolicy.describe`."""
        return f"epsilon_greedy(epsilon={self.epsilon}, score={self.score})"

    def decide(self, world: World, state: SessionState, rng: np.random.Generator) -> Decision:
        """See :meth:`WorldPolicy.decide`."""
        elig, req = world.eligible(state), world.required(state)
        greedy, _ = world.best_slate_for(state, _score(world, state, self.score))
        explore = rng.random(state.n) < self.epsilon
        slate = greedy.copy()
        if explore.any():
            slate[explore] = uniform_sample(rng, elig[explore], None if req is None else req[explore],
                                            world.k)
        u_ps, u_item = uniform_propensities(slate, elig, req)
        same = (slate == greedy).all(axis=1)
        pscore = (1.0 - self.epsilon) * same + self.epsilon * u_ps
        item = (1.0 - self.epsilon) * (slate == greedy) + self.epsilon * u_item
        return Decision(slate, pscore, item)

    def action_dist(self, world: World, state: SessionState) -> FloatArray:
        """See :meth:`WorldPolicy.action_dist`."""
        greedy, _ = world.best_slate_for(state, _score(world, state, self.score))
        dist = self.epsilon * uniform_dist(world.eligible(state), world.required(state), world.k)
        n = state.n
        rows = np.repeat(np.arange(n), world.k)
        slots = np.tile(np.arange(world.k), n)
        dist[rows, greedy.ravel(), slots] += 1.0 - self.epsilon
        return dist


class SoftmaxPolicy(WorldPolicy):
    """Plackett-Luce softmax over scores.

    Fills slots 0, 1, ... in turn, each with probability
    proportional to ``exp(score / temperature)`` over the eligible items left.

    Exact per-slot marginals need ``k <= 3`` and a world without the
    required-cross-sell rule.

    Args:
        temperature: softmax temperature (> 0), in the score's units.
        score: a name in :data:`SCORES`.
        scale: ``True`` divides scores by each row's largest eligible score first,
            so the temperature is relative (useful for revenue scores).
    """

    name = "softmax"

    def __init__(self, temperature: float = 0.1, score: str = "value", scale: bool = True) -> None:
        if not temperature > 0.0:
            raise WorldError(f"`temperature` must be > 0, found {temperature}.")
        if score not in SCORES:
            raise WorldError(f"`score` must be one of {sorted(SCORES)}, found {score!r}.")
        self.temperature, self.score, self.scale = float(temperature), score, scale

    def describe(self) -> str:
        """See :meth:`WorldPolicy.describe`."""
        return f"softmax(temperature={self.temperature}, score={self.score}, scale={self.scale})"

    def _probs(self, world: World, state: SessionState) -> FloatArray:
        if world.k > 3:
            raise WorldError(f"the softmax logging policy gives exact propensities for k <= 3, the "
                             f"world has k = {world.k}; use uniform or epsilon_greedy.")
        if world.required(state) is not None:
            raise WorldError("the softmax logging policy does not support require_cross_sell; use "
                             "uniform or epsilon_greedy, or turn the rule off.")
        elig = world.eligible(state)
        sc = _score(world, state, self.score)
        if self.scale:
            top = np.where(elig, np.abs(sc), 0.0).max(axis=1, keepdims=True)
            sc = sc / np.maximum(top, 1e-12)
        return _pl_weights(sc, elig, self.temperature)

    def decide(self, world: World, state: SessionState, rng: np.random.Generator) -> Decision:
        """See :meth:`WorldPolicy.decide`."""
        p = self._probs(world, state)
        k = world.k
        gumbel = -np.log(-np.log(rng.random(p.shape) + 1e-300) + 1e-300)
        key = np.where(p > 0, np.log(np.maximum(p, 1e-300)) + gumbel, -np.inf)
        part = np.argpartition(-key, k - 1, axis=1)[:, :k]
        slate = np.take_along_axis(
            part, np.argsort(-np.take_along_axis(key, part, axis=1), axis=1), axis=1)
        ps = np.take_along_axis(p, slate, axis=1)
        before = np.cumsum(ps, axis=1) - ps
        pscore = np.prod(ps / np.maximum(1.0 - before, 1e-300), axis=1)
        marg = pl_marginals(p, k)
        item = np.take_along_axis(marg, slate[:, None, :], axis=1)[:, 0, :]
        return Decision(slate, pscore, item)

    def action_dist(self, world: World, state: SessionState) -> FloatArray:
        """See :meth:`WorldPolicy.action_dist`."""
        return pl_marginals(self._probs(world, state), world.k)


LOGGING_POLICIES: dict[str, Callable[..., WorldPolicy]] = {
    "uniform": UniformPolicy,
    "epsilon_greedy": EpsilonGreedyPolicy,
    "greedy": lambda score="value": EpsilonGreedyPolicy(0.0, score),
    "patient": lambda: EpsilonGreedyPolicy(0.0, "patient"),
    "softmax": SoftmaxPolicy,
}
"""Built-in logging policies by name: ``uniform``, ``epsilon_greedy`` (``epsilon``,
``score``), ``greedy`` (the myopic best slate), ``patient`` (top-k by the
``patient`` score), ``softmax`` (``temperature``, ``score``, ``scale``)."""


def make_logging_policy(name: str, **params: Any) -> WorldPolicy:
    """The built-in logging policy ``name`` with ``params``."""
    if name not in LOGGING_POLICIES:
        raise WorldError(f"unknown logging policy {name!r}; choose one of {sorted(LOGGING_POLICIES)}.")
    try:
        return LOGGING_POLICIES[name](**params)
    except TypeError as err:
        raise WorldError(f"logging policy {name!r}: bad parameters {sorted(params)}: {err}") from None
