"""Compiled (numba) kernels of the world's session dynamics, for the environments' hot path.

Each kernel computes, row by row, what :class:`simulator.world.core.World`
computes with numpy over a batch, in the same order of operations, so the
draws (``u < probability``) come out the same for the same uniforms. One
environment step costs a handful of these calls instead of ~60 numpy calls.

Shapes: ``n`` sessions, ``N`` items, ``F`` shopper features, ``k`` slots,
``C`` categories. The world's constants come packed, to keep the call overhead
(about 0.2 us per array argument) low:

* ``item`` (N, F + 5) float: ``item_weight`` transposed, then item bias, price,
  log price, log price minus the catalog median, standardised log price;
* ``category`` (N,) int; ``complement`` (C, C) bool;
* ``scalars`` float: buy_base, checkout_prob, abandon_base, fatigue,
  relevance_weight, overprice_weight, cross_bonus, up_bonus, other_bonus, then
  the ``k`` examination probabilities;
* ``ints`` int: reward code (0 click, 1 purchase, 2 revenue), max_steps,
  candidates_only, require_cross_sell.

Session arrays are those of :class:`~simulator.world.core.SessionState`.
Compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_BIAS, _PRICE, _LOG_PRICE, _REL_LOG_PRICE, _PRICE_Z = 0, 1, 2, 3, 4  # offsets after the F weights
_BONUS = 6  # scalars[6:9]: cross, up, other bonus
_EXAM = 9  # scalars[9:9 + k]


@njit(cache=True)
def reset_rows(rows: np.ndarray, u: np.ndarray, profile_cdf: np.ndarray, anchor_cdf: np.ndarray,
               profile_features: np.ndarray, profile_price_sens: np.ndarray,
               profile_patience: np.ndarray, profile_segment: np.ndarray, taste: int,
               profile: np.ndarray, segment: np.ndarray, shopper: np.ndarray, price_sens: np.ndarray,
               patience: np.ndarray, anchor: np.ndarray, cart: np.ndarray, cart_value: np.ndarray,
               step: np.ndarray, alive: np.ndarray) -> None:
    """Fresh sessions at ``rows`` (m,), in place, from ``u`` (m (taste + 2),).

    ``u`` is laid out as ``World.new_sessions`` draws it: m uniforms for the
    profiles (inverted in ``profile_cdf``), m x taste for the taste features
    (-1 + 2u), m for the first anchors (inverted in the per-profile shifted
    ``anchor_cdf``, capped below 1).
    """
    m = rows.shape[0]
    n_items = cart.shape[1]
    n_feat = shopper.shape[1]
    below_one = np.nextafter(1.0, 0.0)
    for j in range(m):
        r = rows[j]
        p = np.searchsorted(profile_cdf, u[j], side="right")
        profile[r] = p
        segment[r] = profile_segment[p]
        for f in range(n_feat):
            shopper[r, f] = profile_features[p, f]
        for f in range(taste):
            shopper[r, n_feat - taste + f] = -1.0 + 2.0 * u[m + j * taste + f]
        price_sens[r] = profile_price_sens[p]
        patience[r] = profile_patience[p]
        flat = np.searchsorted(anchor_cdf, p + min(u[m * (taste + 1) + j], below_one), side="right")
        anchor[r] = min(flat - p * n_items, n_items - 1)
        cart[r, :] = False
        cart_value[r] = 0.0
        step[r] = 0
        alive[r] = True


@njit(cache=True, fastmath={"reassoc", "contract"})
def item_logits(rows: np.ndarray, shopper: np.ndarray, anchor: np.ndarray, weight: np.ndarray,
                bias: np.ndarray, price: np.ndarray, category: np.ndarray, complement: np.ndarray,
                base_bonus: np.ndarray, members: np.ndarray, starts: np.ndarray, scalars: np.ndarray,
                out: np.ndarray) -> None:
    """``out[j, i]`` = minus the attraction logit of item ``i`` for session ``rows[j]``.

    ``weight`` is ``item_weight`` (F, N), ``bias`` (N,) the item biases and
    ``price`` (N,) the prices; ``base_bonus`` (C, N) the bonus of each item for
    an anchor of each category ignoring up-sells (cross or other);
    ``members[starts[c]:starts[c + 1]]`` the items of category ``c``, where
    up-sells are. Sums are re-associated (and built in a local buffer) so the
    item loops vectorise.
    """
    n_feat, n_items = weight.shape
    up_extra = scalars[_BONUS + 1] - scalars[_BONUS + 2]
    logit = np.empty(n_items)
    for j in range(rows.shape[0]):
        r = rows[j]
        a = anchor[r]
        ca = category[a]
        bonus = base_bonus[ca]
        for i in range(n_items):
            logit[i] = bias[i] + bonus[i]
        for f in range(n_feat):
            x = shopper[r, f]
            w = weight[f]
            for i in range(n_items):
                logit[i] += x * w[i]
        if not complement[ca, ca]:  # same-category items dearer than the anchor are up-sells
            price_a = price[a]
            for m in range(starts[ca], starts[ca + 1]):
                i = members[m]
                if price[i] > price_a:
                    logit[i] += up_extra
        o = out[j]
        for i in range(n_items):
            o[i] = -logit[i]


@njit(cache=True)
def finish_values(rows: np.ndarray, profile: np.ndarray, click_value: np.ndarray, exp_neg_logit: np.ndarray,
                  out: np.ndarray) -> None:
    """``out[rows[j], i]`` = ``click_value[profile, i] / (1 + exp_neg_logit[j, i])`` (value x attraction).

    ``click_value`` (P, N) is the expected reward of a click per profile and item.
    """
    for j in range(rows.shape[0]):
        r = rows[j]
        p = profile[r]
        for i in range(out.shape[1]):
            out[r, i] = click_value[p, i] / (1.0 + exp_neg_logit[j, i])


@njit(cache=True)
def observe(shopper: np.ndarray, anchor: np.ndarray, cart: np.ndarray, cart_value: np.ndarray,
            step: np.ndarray, item_arr: np.ndarray, category: np.ndarray, complement: np.ndarray,
            ints: np.ndarray, k: int, low: np.ndarray, high: np.ndarray, out_context: np.ndarray,
            out_eligible: np.ndarray, out_required: np.ndarray) -> None:
    """Context (n, d) clipped to ``[low, high]``, eligible items (n, N), required items (n, N).

    The rules of ``World.context`` / ``World.eligible`` / ``World.required``.
    ``out_required`` is written only when the world requires a cross-sell.
    """
    n, n_items = cart.shape
    n_feat = shopper.shape[1]
    n_cat = complement.shape[0]
    max_steps = ints[1]
    candidates_only, require_cross_sell = ints[2] != 0, ints[3] != 0
    for r in range(n):
        a = anchor[r]
        ca = category[a]
        ctx = out_context[r]
        ctx[:] = 0.0
        for f in range(n_feat):
            ctx[f] = shopper[r, f]
        ctx[n_feat + ca] = 1.0
        ctx[n_feat + n_cat] = item_arr[a, n_feat + _PRICE_Z]
        in_cart = 0
        for i in range(n_items):
            in_cart += cart[r, i]
        ctx[n_feat + n_cat + 1] = in_cart / (k * max_steps)
        ctx[n_feat + n_cat + 2] = math.log1p(cart_value[r])
        ctx[n_feat + n_cat + 3] = step[r] / max_steps
        for c in range(ctx.shape[0]):
            ctx[c] = min(max(ctx[c], low[c]), high[c])
        elig = out_eligible[r]
        # not in the cart and not the anchor; a cart too full to leave k items lets its items back
        full = n_items - 1 - (in_cart - cart[r, a]) < k
        for i in range(n_items):
            elig[i] = (full or not cart[r, i]) and i != a
        if candidates_only:
            price_a = item_arr[a, n_feat + _PRICE]
            n_cand = 0
            for i in range(n_items):
                ci = category[i]
                if elig[i] and (complement[ca, ci] or (ci == ca and item_arr[i, n_feat + _PRICE] > price_a)):
                    n_cand += 1
            if n_cand >= k:
                for i in range(n_items):
                    ci = category[i]
                    elig[i] = elig[i] and (complement[ca, ci]
                                           or (ci == ca and item_arr[i, n_feat + _PRICE] > price_a))
        if require_cross_sell:
            for i in range(n_items):
                out_required[r, i] = elig[i] and complement[ca, category[i]]


@njit(cache=True)
def best_slates(rows: np.ndarray, value: np.ndarray, eligible: np.ndarray, required: np.ndarray,
                use_required: bool, slot_order: np.ndarray, scalars: np.ndarray, out_slate: np.ndarray,
                out_value: np.ndarray) -> None:
    """Top-``k`` eligible items by ``value`` on the slots by examination, and the slate's value, at ``rows``.

    The rules of ``World.best_slate_for``: when no top item is required but some
    item is, the best required item replaces the weakest of the top ``k``.
    """
    n_items = value.shape[1]
    k = out_slate.shape[1]
    top_v = np.empty(k)
    top_i = np.empty(k, dtype=np.int64)
    for r in rows:
        top_v[:] = -np.inf  # sorted in decreasing order; the world leaves at least k items eligible
        threshold = -np.inf
        val, elig = value[r], eligible[r]
        for i in range(n_items):
            v = val[i]
            if v > threshold and elig[i]:
                j = k - 1
                while j > 0 and top_v[j - 1] < v:
                    top_v[j] = top_v[j - 1]
                    top_i[j] = top_i[j - 1]
                    j -= 1
                top_v[j] = v
                top_i[j] = i
                threshold = top_v[k - 1]
        best_req, best_req_v = -1, -np.inf
        if use_required:
            req = required[r]
            for i in range(n_items):
                if req[i] and val[i] > best_req_v:
                    best_req, best_req_v = i, val[i]
        if use_required and best_req >= 0:
            hit = False
            for j in range(k):
                hit = hit or required[r, top_i[j]]
            if not hit:  # the weakest is last; the required item is weaker than every top item
                top_i[k - 1] = best_req
                top_v[k - 1] = best_req_v
        total = 0.0
        for j in range(k):
            out_slate[r, slot_order[j]] = top_i[j]
        for j in range(k):
            total += scalars[_EXAM + j] * value[r, out_slate[r, j]]
        out_value[r] = total


@njit(cache=True)
def step_sessions(slate: np.ndarray, u: np.ndarray, shopper: np.ndarray, price_sens: np.ndarray,
                  patience: np.ndarray, anchor: np.ndarray, cart: np.ndarray, cart_value: np.ndarray,
                  step: np.ndarray, alive: np.ndarray, item_arr: np.ndarray, category: np.ndarray,
                  complement: np.ndarray, scalars: np.ndarray, ints: np.ndarray, out_f: np.ndarray,
                  out_b: np.ndarray) -> None:
    """One step of every session, in place on ``anchor``, ``cart``, ``cart_value``, ``step``, ``alive``.

    ``u`` (n, 2k + 2) are the uniforms ``World.step`` draws. Outputs:
    ``out_f`` (n, 3k + 2) float: click (k), purchase (k), revenue (k), reward,
    the slate's exact expected reward; ``out_b`` (n, 2k + 5) bool: checkout,
    abandon, truncated, done, anchor changed, cross-sell (k), up-sell (k).
    """
    n, k = slate.shape
    n_feat = item_arr.shape[1] - 5
    buy_base, checkout_prob, abandon_base = scalars[0], scalars[1], scalars[2]
    fatigue, relevance_weight, overprice_weight = scalars[3], scalars[4], scalars[5]
    reward_code, max_steps = ints[0], ints[1]
    exam_sum = 0.0
    for j in range(k):
        exam_sum += scalars[_EXAM + j]
    for r in range(n):
        a = anchor[r]
        ca = category[a]
        live = alive[r]
        relevance = 0.0
        overprice = 0.0
        expected = 0.0
        first = -1
        revenue_sum = 0.0
        reward = 0.0
        for j in range(k):
            item = slate[r, j]
            exam = scalars[_EXAM + j]
            ci = category[item]
            price = item_arr[item, n_feat + _PRICE]
            cross = complement[ca, ci]
            up = ci == ca and price > item_arr[a, n_feat + _PRICE]
            out_b[r, 5 + j] = cross
            out_b[r, 5 + k + j] = up
            b = scalars[_BONUS] if cross else (scalars[_BONUS + 1] if up else scalars[_BONUS + 2])
            dot = 0.0
            for f in range(n_feat):
                dot += shopper[r, f] * item_arr[item, f]
            at = 1.0 / (1.0 + math.exp(-(item_arr[item, n_feat + _BIAS] + dot + b)))
            rel = item_arr[item, n_feat + _REL_LOG_PRICE]
            buy = 1.0 / (1.0 + math.exp(-(buy_base - price_sens[r] * rel)))
            value = 1.0 if reward_code == 0 else (buy if reward_code == 1 else buy * price)
            expected += at * value * exam
            relevance += at * exam
            jump = item_arr[item, n_feat + _LOG_PRICE] - item_arr[a, n_feat + _LOG_PRICE]
            overprice += max(jump, 0.0) * exam
            click = live and u[r, j] < exam * at
            purchase = click and u[r, k + j] < buy
            out_f[r, j] = 1.0 if click else 0.0
            out_f[r, k + j] = 1.0 if purchase else 0.0
            rev = price if purchase else 0.0
            out_f[r, 2 * k + j] = rev
            revenue_sum += rev
            if reward_code == 0:
                reward += 1.0 if click else 0.0
            elif reward_code == 1:
                reward += 1.0 if purchase else 0.0
            if purchase:
                cart[r, item] = True
                if first < 0:
                    first = j
        bought = first >= 0
        out_f[r, 3 * k] = revenue_sum if reward_code == 2 else reward
        out_f[r, 3 * k + 1] = expected
        relevance /= exam_sum
        overprice /= exam_sum
        logit = (abandon_base + fatigue * step[r] - relevance_weight * relevance
                 + overprice_weight * overprice - patience[r])
        abandon = live and not bought and u[r, 2 * k] < 1.0 / (1.0 + math.exp(-logit))
        # every price is positive, so a cart holds items exactly when its value is positive
        has_cart = bought or cart_value[r] > 0.0
        checkout = live and not abandon and has_cart and u[r, 2 * k + 1] < checkout_prob
        if bought:
            anchor[r] = slate[r, first]
        if live:
            step[r] += 1
        truncated = live and not abandon and not checkout and step[r] >= max_steps
        done = live and (abandon or checkout or truncated)
        cart_value[r] += revenue_sum
        alive[r] = live and not done
        out_b[r, 0] = checkout
        out_b[r, 1] = abandon
        out_b[r, 2] = truncated
        out_b[r, 3] = done
        out_b[r, 4] = bought
