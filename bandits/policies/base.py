"""Shared machinery of the concrete policies: argument checks and two policy shapes.

* :class:`ScorePolicy` — a deterministic score per item; the slate is the top-k
  (best item to the most examined slot), optionally with epsilon-greedy
  exploration over slates. Propensities are exact.
* :class:`SampledScorePolicy` — a random score per item (Thompson sampling); the
  slate is the top-k of one draw. Propensities are Monte Carlo estimates from
  ``n_draws`` further draws.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bandits.policies import _kernels
from bandits.policy import BoolArray, Feedback, FloatArray, IntArray, SlateDecision, SlatePolicy
from bandits.slates import (
    count_slots,
    epsilon_greedy_dist,
    epsilon_greedy_slates,
    monte_carlo_slates,
    required_rows,
    slot_order,
    topk_slates,
)
from simulator.errors import PolicyError

DEFAULT_N_DRAWS = 1_000


# ---------------------------------------------------------------------------- argument checks
def check_number(name: str, value: Any, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float inside ``[low, high]`` (open ends if asked), or a PolicyError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise PolicyError(f"`{name}` must be a number, found {value!r}.")
    v = float(value)
    lo_bad = low is not None and (v <= low if low_open else v < low)
    hi_bad = high is not None and (v >= high if high_open else v > high)
    if not np.isfinite(v) or lo_bad or hi_bad:
        lo = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
        hi = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
        raise PolicyError(f"`{name}` must be in {lo}, {hi}, found {value!r}.")
    return v


def check_int(name: str, value: Any, *, low: int) -> int:
    """``value`` as an int >= ``low``, or a PolicyError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise PolicyError(f"`{name}` must be an integer >= {low}, found {value!r}.")
    return int(value)


def check_examination(examination: Sequence[float] | None, k: int) -> tuple[float, ...] | None:
    """Slot examination probabilities: None, or ``k`` numbers in (0, 1]."""
    if examination is None:
        return None
    arr = np.asarray(examination, dtype=np.float64) if _numeric(examination) else None
    if arr is None or arr.shape != (k,) or not np.all((arr > 0) & (arr <= 1)):
        raise PolicyError(f"`examination` must be {k} slot examination probabilities in (0, 1] "
                          f"(one per slot, k = {k}), found {examination!r}.")
    return tuple(float(v) for v in arr)


def _numeric(value: Any) -> bool:
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        return False
    return arr.dtype.kind in "fiu"


def item_array(name: str, value: Any, n_items: int, *, positive: bool = False) -> FloatArray:
    """A per-item float array (n_items,) from a scalar or array, or a PolicyError."""
    if not _numeric(value):
        raise PolicyError(f"`{name}` must be a number or {n_items} numbers, found {value!r}.")
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n_items, float(arr))
    if arr.shape != (n_items,):
        raise PolicyError(f"`{name}` must be a number or shape ({n_items},) (one per item), "
                          f"found shape {arr.shape}.")
    bad = ~np.isfinite(arr) | ((arr <= 0) if positive else False)
    if bad.any():
        what = "positive finite numbers" if positive else "finite numbers"
        i = int(np.flatnonzero(bad)[0])
        raise PolicyError(f"`{name}` must hold {what}, found {float(arr[i])!r} at item {i}.")
    return arr


def feature_matrix(name: str, value: Any, n_items: int) -> FloatArray:
    """Item features (n_items, p) as floats, or a PolicyError."""
    if not _numeric(value):
        raise PolicyError(f"`{name}` must be a numeric array of shape ({n_items}, p), found {value!r}.")
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n_items or arr.shape[1] < 1:
        raise PolicyError(f"`{name}` must have shape ({n_items}, p) with p >= 1 (one row per item), "
                          f"found {arr.shape}.")
    if not np.isfinite(arr).all():
        raise PolicyError(f"`{name}` holds NaN or infinite values.")
    return arr


def slot_weights(feedback: Feedback, examination: tuple[float, ...] | None, k: int) -> FloatArray:
    """Examination weight (n, k_fb) of each feedback slot (1 without an examination model).

    Position logs (``k_fb = 1``) do not say the slot, so their weight is 1.
    """
    n, k_fb = feedback.slate.shape
    if examination is None or k_fb != k:
        return np.ones((n, k_fb))
    return np.broadcast_to(np.asarray(examination), (n, k_fb)).copy()


def check_binary_reward(feedback: Feedback, policy: str) -> None:
    """Reject rewards outside [0, 1] for policies whose model is Bernoulli."""
    r = feedback.reward
    if r.size and (r.min() < 0 or r.max() > 1):
        raise PolicyError(f"{policy} models Bernoulli rewards: `feedback.reward` must be in [0, 1], "
                          f"found values in [{r.min():g}, {r.max():g}]; rescale the reward or "
                          "use a linear policy.")


class ItemCounts:
    """Per-item weighted pull counts and reward sums, shape (n_items,) each."""

    def __init__(self, n_items: int) -> None:
        self.pulls = np.zeros(n_items)
        self.rewards = np.zeros(n_items)

    def add(self, feedback: Feedback, weights: FloatArray) -> None:
        """Count every shown slot (weighted by examination) and add its reward."""
        items = feedback.slate.ravel()
        m = self.pulls.shape[0]
        self.pulls += np.bincount(items, weights=weights.ravel(), minlength=m)
        self.rewards += np.bincount(items, weights=feedback.reward.ravel(), minlength=m)

    def state(self) -> dict[str, np.ndarray[Any, Any]]:
        """Arrays to save."""
        return {"pulls": self.pulls.copy(), "rewards": self.rewards.copy()}

    def set_state(self, state: dict[str, np.ndarray[Any, Any]], policy: str) -> None:
        """Restore arrays saved by :meth:`state`."""
        expect_state(state, {"pulls": self.pulls.shape, "rewards": self.rewards.shape}, policy)
        self.pulls = np.array(state["pulls"], dtype=np.float64)
        self.rewards = np.array(state["rewards"], dtype=np.float64)


def expect_state(state: dict[str, np.ndarray[Any, Any]], shapes: dict[str, tuple[int, ...]],
                 policy: str) -> None:
    """Check that saved state has exactly the expected arrays and shapes."""
    if set(state) != set(shapes):
        raise PolicyError(f"saved state of {policy} must hold arrays {sorted(shapes)}, "
                          f"found {sorted(state)}.")
    for key, shape in shapes.items():
        if state[key].shape != shape:
            raise PolicyError(f"saved state `{key}` of {policy} must have shape {shape}, "
                              f"found {state[key].shape}; was it saved with other parameters?")


# ---------------------------------------------------------------------------- policy shapes
class ScorePolicy(SlatePolicy):
    """Top-k slates by a deterministic item score, with optional epsilon exploration.

    With probability ``1 - epsilon`` the slate is the top-k by score (the best
    item in the most examined slot); with probability ``epsilon`` it is a
    uniformly random valid slate. Propensities are exact.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any, the context is ignored).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        self.epsilon = check_number("epsilon", epsilon, low=0.0, high=1.0)
        self.examination = check_examination(examination, self.k)
        self._order = slot_order(None if self.examination is None else np.asarray(self.examination),
                                 self.k)

    @abstractmethod
    def _scores(self, context: FloatArray) -> FloatArray:
        """Item scores (n, n_items) for validated contexts (n, d)."""

    def greedy(self, context: FloatArray, eligible: BoolArray | None,
               required: BoolArray | None) -> IntArray:
        """The top-k slates (n, k) by score."""
        return topk_slates(self._scores(context), self.k, eligible, required, self._order)

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        if context.shape[0] == 1 and eligible is None and required is None:
            return self._select_unmasked_row(context)
        greedy = self.greedy(context, eligible, required)
        n = greedy.shape[0]
        if self.epsilon == 0.0:
            return SlateDecision(greedy, np.ones(n), np.ones((n, self.k)))
        slate, pscore, pscore_item = epsilon_greedy_slates(self._rng, greedy, self.epsilon,
                                                           self.n_items, eligible, required)
        return SlateDecision(slate, pscore, pscore_item)

    def _select_unmasked_row(self, context: FloatArray) -> SlateDecision:
        """One context (1, d) without masks: the same distribution as the batch path, fewer calls.

        The top-k is one compiled call; exploration draws an ordered k-subset uniformly
        (``Generator.choice`` without replacement), whose slate probability is
        ``1 / (n_items)_k`` and per-slot marginal ``1 / n_items``.
        """
        scores = np.ascontiguousarray(self._scores(context)[0], dtype=np.float64)
        greedy = np.empty((1, self.k), dtype=np.int64)
        _kernels.top_k_one(scores, self.k, self._order, greedy[0])
        eps = self.epsilon
        if eps == 0.0:
            return SlateDecision(greedy, np.ones(1), np.ones((1, self.k)))
        slate = greedy
        if self._rng.random() < eps:
            slate = self._rng.choice(self.n_items, size=self.k, replace=False).astype(np.int64)[None, :]
        m = self.n_items
        n_slates = float(np.prod(np.arange(m - self.k + 1, m + 1, dtype=np.float64)))
        same = slate == greedy
        pscore = np.array([(1.0 - eps) * float(same.all()) + eps / n_slates])
        return SlateDecision(slate, pscore, (1.0 - eps) * same + eps / m)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        return epsilon_greedy_dist(self.greedy(context, eligible, required), self.epsilon,
                                   self.n_items, eligible, required)


class SampledScorePolicy(SlatePolicy):
    """Top-k slates by a random item score (Thompson sampling).

    ``select`` draws one score vector per row and shows its top-k. The
    propensities of that slate are Monte Carlo estimates from ``n_draws``
    further draws plus the realised one, ``(count + 1) / (n_draws + 1)``, so
    they are never zero; ``SlateDecision.n_draws`` is ``n_draws + 1``.
    ``action_dist`` uses ``n_draws`` draws (or the number it is given).

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any, the context is ignored).
        n_draws: Monte Carlo draws per row for propensities.
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    #: True when the score distribution does not depend on the context, so rows
    #: with the same masks share one Monte Carlo estimate.
    context_free: bool = False

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *,
                 n_draws: int = DEFAULT_N_DRAWS, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, seed=seed)
        self.n_draws = check_int("n_draws", n_draws, low=1)
        self.examination = check_examination(examination, self.k)
        self._order = slot_order(None if self.examination is None else np.asarray(self.examination),
                                 self.k)

    @abstractmethod
    def _sampler(self, context: FloatArray) -> Callable[[slice, int], FloatArray]:
        """A function ``(rows, n_draws) -> (n_rows, n_draws, n_items)`` of score draws."""

    def _max_probabilities(self, context: FloatArray, allowed: BoolArray) -> FloatArray | None:
        """P(each item's draw is the largest of the ``allowed`` (n, n_items) items), shape (n, n_items).

        By quadrature (:mod:`bandits.policies.quadrature`) where the policy's draws allow
        it; None means Monte Carlo.
        """
        return None

    def _top_one(self, context: FloatArray, eligible: BoolArray | None,
                 required: BoolArray | None) -> FloatArray | None:
        """For ``k = 1``: the exact distribution (n, n_items) of the shown item, or None.

        The shown item is the best draw among the row's required eligible items when it
        has any (the required rule of top-k for one slot), else among its eligible items.
        """
        if self.k != 1:
            return None
        n, m = context.shape[0], self.n_items
        allowed = np.ones((n, m), dtype=np.bool_) if eligible is None else np.array(eligible)
        req, has = required_rows(eligible, required, n, m)
        if req is not None:
            allowed[has] = req[has]
        return self._max_probabilities(context, allowed)

    def _select(self, context: FloatArray, eligible: BoolArray | None,
                required: BoolArray | None) -> SlateDecision:
        n = context.shape[0]
        draw = self._sampler(context)
        slate = topk_slates(draw(slice(0, n), 1)[:, 0, :], self.k, eligible, required, self._order)
        top = self._top_one(context, eligible, required)
        if top is not None:  # the shown item's exact (quadrature) probability
            p = np.take_along_axis(top, slate, axis=1)
            return SlateDecision(slate, p[:, 0].copy(), p)
        dist, freq = self._monte_carlo(draw, n, self.n_draws, eligible, required, slate)
        assert freq is not None
        d = self.n_draws
        at_slot = np.take_along_axis(dist, slate[:, None, :], axis=1)[:, 0, :]
        pscore = (freq * d + 1.0) / (d + 1.0)
        pscore_item = (at_slot * d + 1.0) / (d + 1.0)
        return SlateDecision(slate, pscore, pscore_item, n_draws=d + 1)

    def _action_dist(self, context: FloatArray, eligible: BoolArray | None,
                     required: BoolArray | None, n_draws: int | None) -> FloatArray:
        d = self.n_draws if n_draws is None else check_int("n_draws", n_draws, low=1)
        top = self._top_one(context, eligible, required)
        if top is not None:
            return top[:, :, None]
        dist, _ = self._monte_carlo(self._sampler(context), context.shape[0], d, eligible, required)
        return dist

    def _monte_carlo(self, draw: Callable[[slice, int], FloatArray], n: int, n_draws: int,
                     eligible: BoolArray | None, required: BoolArray | None,
                     chosen: IntArray | None = None) -> tuple[FloatArray, FloatArray | None]:
        if not self.context_free:
            return monte_carlo_slates(draw, n, self.n_items, self.k, n_draws, eligible, required,
                                      self._order, chosen)
        # Rows with identical masks share one estimate.
        m = self.n_items
        keys = np.zeros((n, 0), dtype=np.uint8)
        if eligible is not None:
            keys = np.concatenate([keys, np.packbits(eligible, axis=1)], axis=1)
        if required is not None:
            keys = np.concatenate([keys, np.packbits(required, axis=1)], axis=1)
        if keys.shape[1] == 0:
            groups, inverse = np.zeros(1, dtype=np.int64), np.zeros(n, dtype=np.int64)
        else:
            _, groups, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.ravel()
        dist = np.zeros((n, m, self.k))
        freq = None if chosen is None else np.zeros(n)
        for g, row in enumerate(groups):
            members = np.flatnonzero(inverse == g)
            elig = None if eligible is None else eligible[row:row + 1]
            req = None if required is None else required[row:row + 1]
            ch = None if chosen is None else chosen[members]
            gdist, gfreq = _shared_monte_carlo(draw, n_draws, m, self.k, elig, req, self._order, ch)
            dist[members] = gdist
            if freq is not None and gfreq is not None:
                freq[members] = gfreq
        return dist, freq


def _shared_monte_carlo(draw: Callable[[slice, int], FloatArray], n_draws: int, n_items: int, k: int,
                        eligible: BoolArray | None, required: BoolArray | None, order: IntArray,
                        chosen: IntArray | None) -> tuple[FloatArray, FloatArray | None]:
    """One Monte Carlo estimate shared by rows whose score distribution and masks agree."""
    scores = draw(slice(0, 1), n_draws)[0]
    elig = None if eligible is None else np.repeat(eligible, n_draws, axis=0)
    req = None if required is None else np.repeat(required, n_draws, axis=0)
    slates = topk_slates(scores, k, elig, req, order)
    dist = count_slots(slates[None], n_items)[0] / n_draws
    if chosen is None:
        return dist, None
    return dist, slate_frequency(slates, chosen, n_items)


def slate_frequency(draws: IntArray, chosen: IntArray, n_items: int) -> FloatArray:
    """Fraction (r,) of the slates ``draws`` (D, k) equal to each row of ``chosen`` (r, k)."""
    k = draws.shape[1]
    if k * np.log2(max(n_items, 2)) < 62:
        base = n_items ** np.arange(k, dtype=np.int64)
        codes = (draws * base).sum(axis=1)
        want = (chosen * base).sum(axis=1)
        uniq, counts = np.unique(codes, return_counts=True)
        pos = np.clip(np.searchsorted(uniq, want), 0, uniq.size - 1)
        return np.asarray(np.where(uniq[pos] == want, counts[pos], 0) / draws.shape[0],
                          dtype=np.float64)
    rows_per_chunk = max(1, 1_000_000 // max(1, draws.size))
    out = np.empty(chosen.shape[0])
    for start in range(0, chosen.shape[0], rows_per_chunk):
        part = chosen[start:start + rows_per_chunk]
        out[start:start + part.shape[0]] = (draws[None] == part[:, None, :]).all(axis=2).mean(axis=1)
    return out
