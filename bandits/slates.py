"""Slate construction with propensities: top-k, epsilon-greedy, uniform, Plackett-Luce, Monte Carlo.

Every function here is vectorised over rows: ``scores`` or ``logits`` have shape
``(n, n_items)``, masks have shape ``(n, n_items)`` (or None for "all items"),
slates come back as ``(n, k)`` item indices in *slot* order.

Conventions shared by every policy:

* **Examination model.** ``examination`` is a length-``k`` vector of positive
  weights, the probability a shopper examines each slot (position-based click
  model). Slates are built in *stages* — stage 0 picks the best item, stage 1
  the next — and stage ``s`` goes to slot ``slot_order(examination)[s]``, the
  ``s``-th most examined slot. With ``examination=None`` stage ``s`` is slot ``s``.
* **Eligible items.** Items outside ``eligible`` are never shown.
* **The required rule.** When a row's ``required & eligible`` is not empty, the
  slate holds at least one of those items. How each mechanism enforces it:

  - top-k (:func:`topk_slates`): when the k best items hold no required item,
    the last stage's item is replaced by the best-scoring required item;
  - uniform (:func:`uniform_slates`): uniform over every valid slate (exactly);
  - Plackett-Luce (:func:`plackett_luce_slates`): stage 0 draws from the
    required items only, later stages from every remaining eligible item.

Propensities are exact except where a function says it uses Monte Carlo draws.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bandits._slate_kernels import pl_third_stage

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Plackett-Luce logits further than this below a row's best are raised to it, so every
#: eligible item keeps a positive probability and the exact marginals stay finite.
PL_LOGIT_RANGE = 500.0
#: Rows per chunk in Monte Carlo estimates are chosen so that one chunk holds at most
#: this many ``(row, draw, item)`` scores.
MC_CHUNK_ELEMENTS = 2_000_000


def slot_order(examination: FloatArray | None, k: int) -> IntArray:
    """Slot of each stage: stage ``s`` (the ``s``-th best item) goes to slot ``order[s]``.

    Args:
        examination: shape (k,), examination probability of each slot, or None.
        k: slate length.

    Returns:
        shape (k,), slots sorted from most to least examined (ties keep slot order).
    """
    if examination is None:
        return np.arange(k, dtype=np.int64)
    return np.argsort(-np.asarray(examination, dtype=np.float64), kind="stable").astype(np.int64)


def stages_to_slots(stage_items: Any, order: IntArray) -> Any:
    """Place stage-ordered values (n, k) (items or probabilities) into their slots (n, k)."""
    slate = np.empty_like(stage_items)
    slate[:, order] = stage_items
    return slate


def required_rows(eligible: BoolArray | None, required: BoolArray | None,
                  n: int, n_items: int) -> tuple[BoolArray | None, BoolArray]:
    """The effective required mask ``required & eligible`` and which rows have one.

    Returns:
        ``(mask, has_required)``: mask shape (n, n_items) or None when no row
        has a required item; has_required shape (n,).
    """
    if required is None:
        return None, np.zeros(n, dtype=np.bool_)
    req: BoolArray = required if eligible is None else required & eligible
    has: BoolArray = np.asarray(req.any(axis=1), dtype=np.bool_)
    if not has.any():
        return None, has
    return req, has


# ---------------------------------------------------------------------------- top-k
def topk_slates(scores: FloatArray, k: int, eligible: BoolArray | None = None,
                required: BoolArray | None = None, order: IntArray | None = None) -> IntArray:
    """Deterministic top-k slates by score, ties broken by the lower item index.

    Args:
        scores: shape (n, n_items), higher is better (``-inf`` allowed).
        k: slate length.
        eligible: shape (n, n_items) bool or None.
        required: shape (n, n_items) bool or None (see the module's required rule).
        order: shape (k,), stage-to-slot order from :func:`slot_order`; None for identity.

    Returns:
        shape (n, k), item indices in slot order.
    """
    n, n_items = scores.shape
    if eligible is None and required is None and k == 1:
        best: IntArray = np.argmax(scores, axis=1, keepdims=True).astype(np.int64, copy=False)
        return best
    key = _ranking_key(scores, eligible)
    stages = _top_stages(key, k)
    req, has = required_rows(eligible, required, n, n_items)
    if req is not None:
        hit = np.take_along_axis(req, stages, axis=1).any(axis=1)
        fix = has & ~hit
        if fix.any():
            rows = np.flatnonzero(fix)
            # The best required item: highest key, lowest index among equals (argmax takes the first).
            stages[rows, k - 1] = np.argmax(np.where(req[rows], key[rows], -np.inf), axis=1)
    if order is None:
        return stages
    slate: IntArray = stages_to_slots(stages, order)
    return slate


def _ranking_key(scores: FloatArray, eligible: BoolArray | None) -> FloatArray:
    """Scores as a ranking key: ineligible items -inf, eligible ``-inf`` scores just above them."""
    key = np.maximum(np.asarray(scores, dtype=np.float64), -np.finfo(np.float64).max)
    if eligible is not None:
        key = np.where(eligible, key, -np.inf)
    return key


def _top_stages(key: FloatArray, k: int) -> IntArray:
    """The k largest keys per row (n, k), best first, ties to the lower index (exact, no full sort)."""
    n, m = key.shape
    if k <= 8:
        # k rounds of argmax (the first maximum, so ties go to the lower index); a chosen
        # item drops to -inf, below every eligible item still in the running.
        rest = key.copy()
        rows = np.arange(n)
        out = np.empty((n, k), dtype=np.int64)
        for stage in range(k):
            best = np.argmax(rest, axis=1)
            out[:, stage] = best
            rest[rows, best] = -np.inf
        return out
    if k >= m or m <= 16:
        stages: IntArray = np.argsort(-key, axis=1, kind="stable")[:, :k].astype(np.int64)
        return stages
    kth = np.partition(key, m - k, axis=1)[:, m - k]
    above = key > kth[:, None]
    tied = key == kth[:, None]
    need = k - above.sum(axis=1)
    chosen = above | (tied & (np.cumsum(tied, axis=1) <= need[:, None]))
    picked = np.nonzero(chosen)[1].reshape(n, k)  # ascending item index within each row
    order = np.argsort(-np.take_along_axis(key, picked, axis=1), axis=1, kind="stable")
    return np.take_along_axis(picked, order, axis=1).astype(np.int64)


def onehot_dist(slate: IntArray, n_items: int) -> FloatArray:
    """Action distribution (n, n_items, k) putting all mass on ``slate``."""
    n, k = slate.shape
    dist = np.zeros((n, n_items, k))
    rows = np.repeat(np.arange(n), k)
    slots = np.tile(np.arange(k), n)
    dist[rows, slate.ravel(), slots] = 1.0
    return dist


# ---------------------------------------------------------------------------- uniform
def _falling(a: IntArray, b: int) -> FloatArray:
    """Falling factorial ``a (a-1) ... (a-b+1)`` elementwise (0 when ``b > a >= 0``)."""
    out = np.ones(a.shape, dtype=np.float64)
    for t in range(b):
        out *= np.maximum(a - t, 0)
    return out


def _uniform_counts(n: int, n_items: int, k: int, eligible: BoolArray | None,
                    req: BoolArray | None) -> tuple[IntArray, IntArray]:
    e = (np.full(n, n_items, dtype=np.int64) if eligible is None
         else eligible.sum(axis=1).astype(np.int64))
    r = np.zeros(n, dtype=np.int64) if req is None else req.sum(axis=1).astype(np.int64)
    return e, r


def uniform_marginals(n_items: int, k: int, eligible: BoolArray | None = None,
                      required: BoolArray | None = None) -> tuple[FloatArray, FloatArray]:
    """Exact per-slot marginals and slate probability of the uniform valid-slate distribution.

    The distribution is uniform over ordered k-tuples of distinct eligible items
    that satisfy the required rule; it is invariant under permuting slots, so
    every slot has the same marginal.

    Args:
        n_items: catalog size.
        k: slate length.
        eligible: shape (n, n_items) bool or None.
        required: shape (n, n_items) bool or None.

    Returns:
        ``(marginal, pscore)``: marginal shape (n, n_items), the probability of each
        item at any one slot; pscore shape (n,), the probability of any one valid slate.
        With no masks, ``n`` is 1.
    """
    n = 1
    if eligible is not None:
        n = eligible.shape[0]
    elif required is not None:
        n = required.shape[0]
    req, has = required_rows(eligible, required, n, n_items)
    e, r = _uniform_counts(n, n_items, k, eligible, req)
    count = _falling(e, k) - np.where(has, _falling(e - r, k), 0.0)
    with_req = _falling(e - 1, k - 1)
    without_req = with_req - np.where(has, _falling(np.maximum(e - r - 1, 0), k - 1), 0.0)
    if k == 1:
        without_req = np.where(has, 0.0, 1.0)
    elig = np.ones((n, n_items), dtype=np.bool_) if eligible is None else eligible
    is_req = np.zeros((n, n_items), dtype=np.bool_) if req is None else req
    marginal = np.where(is_req, with_req[:, None], np.where(elig, without_req[:, None], 0.0))
    return marginal / count[:, None], 1.0 / count


def uniform_slates(rng: np.random.Generator, n: int, n_items: int, k: int,
                   eligible: BoolArray | None = None,
                   required: BoolArray | None = None) -> tuple[IntArray, FloatArray, FloatArray]:
    """Draw slates uniformly from every valid slate, with exact propensities.

    Rows with a required item pick the slot of the *first* required item with
    probability proportional to the number of valid slates having it there,
    then fill the slots before it with non-required items, that slot with a
    required item, and the rest with any remaining eligible items, all uniformly.

    Returns:
        ``(slate, pscore, pscore_item)`` of shapes (n, k), (n,), (n, k).
    """
    req, has = required_rows(eligible, required, n, n_items)
    elig = np.ones((n, n_items), dtype=np.bool_) if eligible is None else eligible
    first = np.full(n, -1, dtype=np.int64)
    used = np.zeros((n, n_items), dtype=np.bool_)
    nonreq_order = np.zeros((n, n_items), dtype=np.int64)
    req_item = np.zeros(n, dtype=np.int64)
    if req is not None:
        e, r = _uniform_counts(n, n_items, k, eligible, req)
        weights = np.stack([_falling(e - r, j) * r * _falling(e - 1 - j, k - 1 - j)
                            for j in range(k)], axis=1)
        cum = np.cumsum(weights, axis=1)
        u = rng.random(n) * cum[:, -1]
        first = np.where(has, (u[:, None] >= cum).sum(axis=1), -1).astype(np.int64)
        first = np.minimum(first, k - 1)
        keys = rng.random((n, n_items))
        nonreq_order = np.argsort(np.where(elig & ~req, keys, np.inf), axis=1)
        req_item = np.argmin(np.where(req, keys, np.inf), axis=1)
        for t in range(k - 1):
            before = t < first
            used[before, nonreq_order[before, t]] = True
        used[has, req_item[has]] = True
    keys = rng.random((n, n_items))
    rest_order = np.argsort(np.where(elig & ~used, keys, np.inf), axis=1)
    slate = np.empty((n, k), dtype=np.int64)
    for t in range(k):
        rest_idx = np.clip(t - first - 1, 0, n_items - 1)
        rest = np.take_along_axis(rest_order, rest_idx[:, None], axis=1)[:, 0]
        slate[:, t] = np.where(t < first, nonreq_order[:, min(t, n_items - 1)],
                               np.where(t == first, req_item, rest))
    marginal, pscore = uniform_marginals(n_items, k, eligible, required)
    marginal = np.broadcast_to(marginal, (n, n_items))
    pscore_item = np.take_along_axis(marginal, slate, axis=1)
    return slate, np.broadcast_to(pscore, (n,)).copy(), pscore_item


def uniform_dist(n: int, n_items: int, k: int, eligible: BoolArray | None = None,
                 required: BoolArray | None = None) -> FloatArray:
    """Exact action distribution (n, n_items, k) of :func:`uniform_slates`."""
    marginal, _ = uniform_marginals(n_items, k, eligible, required)
    return np.repeat(np.broadcast_to(marginal, (n, n_items))[:, :, None], k, axis=2)


# ---------------------------------------------------------------------------- epsilon-greedy
def epsilon_greedy_slates(rng: np.random.Generator, greedy: IntArray, epsilon: float, n_items: int,
                          eligible: BoolArray | None = None, required: BoolArray | None = None,
                          ) -> tuple[IntArray, FloatArray, FloatArray]:
    """Show ``greedy`` with probability ``1 - epsilon``, else a uniform valid slate.

    ``greedy`` must itself be valid. Propensities are exact:
    ``pscore = (1 - eps) [slate == greedy] + eps / #valid slates``.

    Returns:
        ``(slate, pscore, pscore_item)`` of shapes (n, k), (n,), (n, k).
    """
    n, k = greedy.shape
    explore: BoolArray = np.asarray(rng.random(n) < epsilon)
    uni, _, _ = uniform_slates(rng, n, n_items, k, eligible, required)
    slate = np.where(explore[:, None], uni, greedy)
    marginal, upscore = uniform_marginals(n_items, k, eligible, required)
    marginal = np.broadcast_to(marginal, (n, n_items))
    same_slot = slate == greedy
    pscore = (1.0 - epsilon) * same_slot.all(axis=1) + epsilon * np.broadcast_to(upscore, (n,))
    pscore_item = (1.0 - epsilon) * same_slot + epsilon * np.take_along_axis(marginal, slate, axis=1)
    return slate, pscore, pscore_item


def epsilon_greedy_dist(greedy: IntArray, epsilon: float, n_items: int,
                        eligible: BoolArray | None = None,
                        required: BoolArray | None = None) -> FloatArray:
    """Exact action distribution (n, n_items, k) of :func:`epsilon_greedy_slates`."""
    n, k = greedy.shape
    dist = (1.0 - epsilon) * onehot_dist(greedy, n_items)
    if epsilon > 0:
        dist += epsilon * uniform_dist(n, n_items, k, eligible, required)
    return dist


# ---------------------------------------------------------------------------- Plackett-Luce
def _pl_weights(logits: FloatArray, eligible: BoolArray | None) -> FloatArray:
    """Unnormalised PL weights (n, n_items): 0 for ineligible items, max 1 per row."""
    masked = logits if eligible is None else np.where(eligible, logits, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    clipped = np.maximum(masked, top - PL_LOGIT_RANGE)
    w = np.exp(clipped - top)
    if eligible is not None:
        w = np.where(eligible, w, 0.0)
    return np.asarray(w, dtype=np.float64)


def _first_stage(w: FloatArray, req: BoolArray | None, has: BoolArray) -> FloatArray:
    """Stage-0 probabilities (n, n_items): PL over required items where a row has any."""
    p0 = w / w.sum(axis=1, keepdims=True)
    if req is not None:
        wr = np.where(req, w, 0.0)
        pr = wr / np.maximum(wr.sum(axis=1, keepdims=True), np.finfo(np.float64).tiny)
        p0 = np.where(has[:, None], pr, p0)
    return np.asarray(p0, dtype=np.float64)


def _sum_excluding_each(v: FloatArray) -> FloatArray:
    """``out[..., i] = sum_{j != i} v[..., j]`` for v >= 0, without cancellation.

    ``total - v_i`` loses precision only when ``v_i`` dominates the total, which
    only the largest entry can; that entry's sum is computed directly.
    """
    total = v.sum(axis=-1, keepdims=True)
    out = total - v
    top = np.argmax(v, axis=-1)[..., None]
    rest = v.copy()
    np.put_along_axis(rest, top, 0.0, axis=-1)
    without_top = rest.sum(axis=-1, keepdims=True)
    np.put_along_axis(out, top, without_top, axis=-1)
    return np.asarray(np.maximum(out, 0.0), dtype=np.float64)


def _pl_stage_marginals(w: FloatArray, p0: FloatArray, n_stages: int) -> FloatArray:
    """Exact marginals (n, n_items, n_stages) of a PL draw, for up to 3 stages.

    Stage 0 draws from ``p0``; each later stage draws from the remaining items
    in proportion to ``w``. Remaining masses are computed so that no difference
    of nearly equal numbers is ever taken. The third stage, ``O(n_items ** 2)``
    per row, is the compiled :func:`~bandits._slate_kernels.pl_third_stage`.
    """
    n, m = w.shape
    out = np.zeros((n, m, n_stages))
    out[:, :, 0] = p0
    if n_stages == 1:
        return out
    # R1[a] = mass left after removing a.
    r1 = _sum_excluding_each(w)
    v = p0 / r1
    out[:, :, 1] = w * _sum_excluding_each(v)
    if n_stages == 2:
        return out
    third = np.empty((n, m))
    pl_third_stage(np.ascontiguousarray(w), np.ascontiguousarray(p0), np.ascontiguousarray(r1), third)
    out[:, :, 2] = third
    return out


def plackett_luce_slates(rng: np.random.Generator, logits: FloatArray, k: int,
                         eligible: BoolArray | None = None, required: BoolArray | None = None,
                         order: IntArray | None = None, n_draws: int = 10_000,
                         ) -> tuple[IntArray, FloatArray, FloatArray, int | None]:
    """Sample slates by Plackett-Luce (softmax without replacement) with propensities.

    Stage 0 draws from ``softmax(logits)`` over the required items when the row
    has one (over all eligible items otherwise); each later stage draws from the
    remaining eligible items in proportion to ``exp(logit)``. Logits more than
    :data:`PL_LOGIT_RANGE` below the row's best are raised to that floor.

    The slate ``pscore`` is always exact (a product of stage probabilities).
    ``pscore_item`` is exact for the first three stages; stages beyond the third
    (only when ``k > 3``) use ``n_draws`` Monte Carlo draws.

    Returns:
        ``(slate, pscore, pscore_item, n_draws_used)``; ``n_draws_used`` is None
        when every propensity is exact.
    """
    n, m = logits.shape
    order = np.arange(k, dtype=np.int64) if order is None else order
    w = _pl_weights(logits, eligible)
    req, has = required_rows(eligible, required, n, m)
    p0 = _first_stage(w, req, has)
    stages = _pl_draw(rng, w, p0, k)
    chosen_w = np.take_along_axis(w, stages, axis=1)
    remaining = w.copy()
    pscore = np.take_along_axis(p0, stages[:, :1], axis=1)[:, 0].copy()
    np.put_along_axis(remaining, stages[:, :1], 0.0, axis=1)
    for s in range(1, k):
        pscore *= chosen_w[:, s] / remaining.sum(axis=1)
        np.put_along_axis(remaining, stages[:, s:s + 1], 0.0, axis=1)
    marg, used = plackett_luce_stage_dist(rng, logits, k, eligible, required, n_draws)
    stage_p = np.take_along_axis(marg, stages[:, None, :], axis=1)[:, 0, :]
    slate = stages_to_slots(stages, order)
    return slate, pscore, stages_to_slots(stage_p, order), used


def _pl_draw(rng: np.random.Generator, w: FloatArray, p0: FloatArray, k: int) -> IntArray:
    """Stage-ordered PL draws (n, k): stage 0 from ``p0``, then Gumbel-top-(k-1) over ``w``."""
    n, m = w.shape
    with np.errstate(divide="ignore"):
        g0 = np.where(p0 > 0, np.log(p0), -np.inf) + rng.gumbel(size=(n, m))
        first = np.argmax(g0, axis=1)
        lw = np.where(w > 0, np.log(w), -np.inf)
    stages = np.empty((n, k), dtype=np.int64)
    stages[:, 0] = first
    if k > 1:
        g = lw + rng.gumbel(size=(n, m))
        g[np.arange(n), first] = -np.inf
        stages[:, 1:] = np.argsort(-g, axis=1, kind="stable")[:, :k - 1]
    return stages


def plackett_luce_stage_dist(rng: np.random.Generator, logits: FloatArray, k: int,
                             eligible: BoolArray | None = None, required: BoolArray | None = None,
                             n_draws: int = 10_000) -> tuple[FloatArray, int | None]:
    """Per-stage marginals (n, n_items, k) of :func:`plackett_luce_slates`.

    Exact for stages 0-2; stages 3+ are Monte Carlo with ``n_draws`` draws.

    Returns:
        ``(marginals, n_draws_used)``; ``n_draws_used`` is None when all are exact.
    """
    n, m = logits.shape
    w = _pl_weights(logits, eligible)
    req, has = required_rows(eligible, required, n, m)
    p0 = _first_stage(w, req, has)
    exact = _pl_stage_marginals(w, p0, min(k, 3))
    if k <= 3:
        return exact, None
    out = np.zeros((n, m, k))
    out[:, :, :3] = exact
    rows_per_chunk = max(1, MC_CHUNK_ELEMENTS // max(1, n_draws * m))
    for start in range(0, n, rows_per_chunk):
        sl = slice(start, min(n, start + rows_per_chunk))
        nr = sl.stop - sl.start
        wr = np.repeat(w[sl], n_draws, axis=0)
        pr = np.repeat(p0[sl], n_draws, axis=0)
        draws = _pl_draw(rng, wr, pr, k).reshape(nr, n_draws, k)
        out[sl, :, 3:] = count_slots(draws[:, :, 3:], m) / n_draws
    return out, n_draws


def plackett_luce_dist(rng: np.random.Generator, logits: FloatArray, k: int,
                       eligible: BoolArray | None = None, required: BoolArray | None = None,
                       order: IntArray | None = None,
                       n_draws: int = 10_000) -> tuple[FloatArray, int | None]:
    """Per-slot action distribution (n, n_items, k) of :func:`plackett_luce_slates`."""
    marg, used = plackett_luce_stage_dist(rng, logits, k, eligible, required, n_draws)
    if order is None:
        return marg, used
    dist = np.empty_like(marg)
    dist[:, :, order] = marg
    return dist, used


# ---------------------------------------------------------------------------- Monte Carlo
def count_slots(draws: IntArray, n_items: int) -> FloatArray:
    """Counts (n, n_items, k) of each item at each slot over draws of shape (n, D, k)."""
    n, _d, k = draws.shape
    flat = (np.arange(n)[:, None, None] * n_items + draws) * k + np.arange(k)[None, None, :]
    counts = np.bincount(flat.ravel(), minlength=n * n_items * k)
    return counts.reshape(n, n_items, k).astype(np.float64)


def monte_carlo_slates(draw_scores: Any, n: int, n_items: int, k: int, n_draws: int,
                       eligible: BoolArray | None = None, required: BoolArray | None = None,
                       order: IntArray | None = None,
                       chosen: IntArray | None = None) -> tuple[FloatArray, FloatArray | None]:
    """Monte Carlo action distribution of "top-k of randomly drawn scores".

    Args:
        draw_scores: callable ``(rows: slice, n_draws: int) -> (n_rows, n_draws, n_items)``
            drawing independent score samples for the given rows.
        n: number of rows.
        n_items: catalog size.
        k: slate length.
        n_draws: draws per row.
        eligible: shape (n, n_items) bool or None.
        required: shape (n, n_items) bool or None.
        order: stage-to-slot order.
        chosen: shape (n, k) or None; when given, also count how often each row's
            draws reproduce this exact slate.

    Returns:
        ``(dist, slate_freq)``: dist shape (n, n_items, k), the fraction of draws
        putting each item at each slot; slate_freq shape (n,) (or None), the
        fraction of draws equal to ``chosen``.
    """
    dist = np.zeros((n, n_items, k))
    freq = None if chosen is None else np.zeros(n)
    rows_per_chunk = max(1, MC_CHUNK_ELEMENTS // max(1, n_draws * n_items))
    for start in range(0, n, rows_per_chunk):
        sl = slice(start, min(n, start + rows_per_chunk))
        nr = sl.stop - sl.start
        scores = draw_scores(sl, n_draws).reshape(nr * n_draws, n_items)
        elig = None if eligible is None else np.repeat(eligible[sl], n_draws, axis=0)
        req = None if required is None else np.repeat(required[sl], n_draws, axis=0)
        slates = topk_slates(scores, k, elig, req, order).reshape(nr, n_draws, k)
        dist[sl] = count_slots(slates, n_items) / n_draws
        if chosen is not None and freq is not None:
            freq[sl] = (slates == chosen[sl, None, :]).all(axis=2).mean(axis=1)
    return dist, freq
