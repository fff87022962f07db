"""The world's session dynamics as compiled (numba) kernels: the one implementation of the model.

Every formula of the response model is written once, in the ``@njit`` helpers
at the top (:func:`_bonus`, :func:`_sigmoid`, :func:`_buy`, :func:`_abandon`,
:func:`_eligible_row`); the kernels below are loops over sessions that call
them. :class:`simulator.world.core.World` calls the kernels; nothing else does.

Shapes: ``n`` sessions, ``N`` items, ``F`` shopper features, ``k`` slots,
``C`` categories. The world's constants arrive as named records built by
:mod:`simulator.world.tables`:

* ``items`` (N,) of :data:`~simulator.world.tables.ITEM`: bias, price, log
  price, log price minus the catalog median, standardised log price, category;
* ``rules`` (1,) of :data:`~simulator.world.tables.RULES`: the response and
  session settings (bonuses, buy base, abandonment weights, reward code, step
  limit, candidate rules);
* plain named arrays: ``weight`` (F, N) / ``weight_t`` (N, F) the attraction
  weights, ``complement`` (C, C), ``exam`` (k,) the examination probabilities.

Outputs of a step go to records too: ``slots`` (n, k) of
:data:`~simulator.world.tables.SLOT` and ``ends`` (n,) of
:data:`~simulator.world.tables.END`. Session arrays are those of
:class:`~simulator.world.core.SessionState`, changed in place where a kernel
says so. Compiled on first use and cached on disk (``cache=True``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit


# ---------------------------------------------------------------------------- the model, once
@njit(cache=True, inline="always")
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=True, inline="always")
def _relation(complement: np.ndarray, anchor_category: int, anchor_price: float, category: int,
              price: float) -> tuple[bool, bool]:
    """(cross-sell, up-sell) of an item of ``category`` and ``price`` for a session looking at an anchor.

    A cross-sell is an item of a category complementary to the anchor's; an
    up-sell an item of the anchor's own category that costs more. An item can
    be both when a category complements itself; its bonus is then the cross-sell's.
    Scalars in, so the loops over the catalog that call it stay vectorisable.
    """
    return complement[anchor_category, category], category == anchor_category and price > anchor_price


@njit(cache=True, inline="always")
def _bonus(rule: Any, cross: bool, up: bool) -> float:
    """Attraction bonus of a cross-sell, an up-sell or neither."""
    if cross:
        return float(rule.cross_bonus)
    if up:
        return float(rule.up_bonus)
    return float(rule.other_bonus)


@njit(cache=True, inline="always")
def _buy(rule: Any, price_sens: float, rel_log_price: float) -> float:
    """Probability that a click becomes a purchase."""
    return _sigmoid(rule.buy_base - price_sens * rel_log_price)


@njit(cache=True, inline="always")
def _click_value(rule: Any, buy: float, price: float) -> float:
    """Expected reward of a click for the reward type (click, purchase or revenue)."""
    if rule.reward_code == 0:
        return 1.0
    if rule.reward_code == 1:
        return buy
    return buy * price


@njit(cache=True, inline="always")
def _abandon(rule: Any, step: int, relevance: float, overprice: float, patience: float) -> float:
    """Probability of leaving after a step without a purchase."""
    return _sigmoid(rule.abandon_base + rule.fatigue * step - rule.relevance_weight * relevance
                    + rule.overprice_weight * overprice - patience)


@njit(cache=True, inline="always")
def _slot(items: np.ndarray, category: np.ndarray, price: np.ndarray, weight_t: np.ndarray,
          complement: np.ndarray, rule: Any, shopper: np.ndarray, row: int, price_sens: float,
          anchor: int, item: int) -> tuple[float, float, float, bool, bool]:
    """(attraction, purchase probability, log price jump, cross, up) of ``item`` for shopper ``row``."""
    cross, up = _relation(complement, category[anchor], price[anchor], category[item], price[item])
    dot = 0.0
    for f in range(shopper.shape[1]):
        dot += shopper[row, f] * weight_t[item, f]
    it = items[item]
    attraction = _sigmoid(it.bias + dot + _bonus(rule, cross, up))
    buy = _buy(rule, price_sens, it.rel_log_price)
    jump = max(it.log_price - items[anchor].log_price, 0.0)
    return attraction, buy, jump, cross, up


@njit(cache=True)
def _eligible_row(category: np.ndarray, price: np.ndarray, complement: np.ndarray, candidates_only: bool,
                  k: int, anchor: int, cart: np.ndarray, in_cart: int, out: np.ndarray) -> None:
    """The items a slate may show to one session, into ``out`` (N,) bool.

    Not in the cart, not the anchor; a cart too full to leave ``k`` items lets
    its items back; with ``candidates_only`` only cross-sells and up-sells, when
    at least ``k`` of them are left. ``in_cart`` is the number of items in ``cart``.
    """
    n_items = cart.shape[0]
    full = n_items - 1 - (in_cart - cart[anchor]) < k
    for i in range(n_items):
        out[i] = (full or not cart[i]) and i != anchor
    if candidates_only:
        ca, pa = category[anchor], price[anchor]
        n_cand = 0
        for i in range(n_items):
            cross, up = _relation(complement, ca, pa, category[i], price[i])
            if out[i] and (cross or up):
                n_cand += 1
        if n_cand >= k:
            for i in range(n_items):
                cross, up = _relation(complement, ca, pa, category[i], price[i])
                out[i] = out[i] and (cross or up)


# ---------------------------------------------------------------------------- sessions
@njit(cache=True)
def reset_rows(rows: np.ndarray, u: np.ndarray, profile_cdf: np.ndarray, anchor_cdf: np.ndarray,
               profile_features: np.ndarray, profile_price_sens: np.ndarray,
               profile_patience: np.ndarray, profile_segment: np.ndarray, taste: int,
               profile: np.ndarray, segment: np.ndarray, shopper: np.ndarray, price_sens: np.ndarray,
               patience: np.ndarray, anchor: np.ndarray, cart: np.ndarray, cart_value: np.ndarray,
               step: np.ndarray, alive: np.ndarray) -> None:
    """Fresh sessions at ``rows`` (m,), in place, from ``u`` (m (taste + 2),).

    ``u`` holds m uniforms for the profiles (inverted in ``profile_cdf``), m x
    taste for the taste features (-1 + 2u), m for the first anchors (inverted
    in ``anchor_cdf``, the per-profile CDFs shifted by the profile, capped below 1).
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


@njit(cache=True)
def first_bad_slate(slate: np.ndarray, n_items: int, alive: np.ndarray) -> tuple[int, int]:
    """The first bad row of ``slate`` (n, k) and what is wrong with it.

    ``(row, 0)`` for the first row with an item outside ``[0, n_items)``,
    ``(row, 1)`` for the first live row that repeats an item, ``(-1, -1)`` when
    every row is a slate.
    """
    n, k = slate.shape
    for r in range(n):
        for j in range(k):
            if slate[r, j] < 0 or slate[r, j] >= n_items:
                return r, 0
    for r in range(n):
        if alive[r]:
            for j in range(k):
                for prev in range(j):
                    if slate[r, prev] == slate[r, j]:
                        return r, 1
    return -1, -1


# ---------------------------------------------------------------------------- what the shopper sees
@njit(cache=True)
def observe(shopper: np.ndarray, anchor: np.ndarray, cart: np.ndarray, cart_value: np.ndarray,
            step: np.ndarray, items: np.ndarray, category: np.ndarray, price: np.ndarray,
            complement: np.ndarray, rules: np.ndarray, k: int, low: np.ndarray, high: np.ndarray,
            out_context: np.ndarray, out_eligible: np.ndarray, out_required: np.ndarray) -> None:
    """Contexts (n, d) clipped to ``[low, high]``, eligible items (n, N), required items (n, N).

    Context columns: shopper features, anchor category one-hot, standardised
    anchor log price, cart size / (k max_steps), log(1 + cart value), step /
    max_steps. Required: the eligible cross-sells, written only when the rules
    require a cross-sell.
    """
    rule = rules[0]
    max_steps, candidates_only = rule.max_steps, rule.candidates_only
    require_cross_sell = rule.require_cross_sell
    n, n_items = cart.shape
    n_feat = shopper.shape[1]
    n_cat = complement.shape[0]
    for r in range(n):
        a = anchor[r]
        ctx = out_context[r]
        ctx[:] = 0.0
        for f in range(n_feat):
            ctx[f] = shopper[r, f]
        ctx[n_feat + category[a]] = 1.0
        ctx[n_feat + n_cat] = items[a].price_z
        in_cart = 0
        for i in range(n_items):
            in_cart += cart[r, i]
        ctx[n_feat + n_cat + 1] = in_cart / (k * max_steps)
        ctx[n_feat + n_cat + 2] = math.log1p(cart_value[r])
        ctx[n_feat + n_cat + 3] = step[r] / max_steps
        for c in range(ctx.shape[0]):
            ctx[c] = min(max(ctx[c], low[c]), high[c])
        elig = out_eligible[r]
        _eligible_row(category, price, complement, candidates_only, k, a, cart[r], in_cart, elig)
        if require_cross_sell:
            ca = category[a]
            for i in range(n_items):
                out_required[r, i] = elig[i] and complement[ca, category[i]]


@njit(cache=True)
def relations(anchor: np.ndarray, category: np.ndarray, price: np.ndarray, complement: np.ndarray,
              out_cross: np.ndarray, out_up: np.ndarray) -> None:
    """Cross-sells (n, N) and up-sells (n, N) of every session's anchor."""
    n, n_items = out_cross.shape
    for r in range(n):
        a = anchor[r]
        ca, price_a = category[a], price[a]
        for i in range(n_items):
            out_cross[r, i], out_up[r, i] = _relation(complement, ca, price_a, category[i], price[i])


# ---------------------------------------------------------------------------- truth
@njit(cache=True, fastmath={"reassoc", "contract"})
def item_logits(rows: np.ndarray, shopper: np.ndarray, anchor: np.ndarray, weight: np.ndarray,
                category: np.ndarray, price: np.ndarray, bias: np.ndarray, base_bonus: np.ndarray,
                members: np.ndarray,
                starts: np.ndarray, complement: np.ndarray, rules: np.ndarray, out: np.ndarray) -> None:
    """``out[j, i]`` = minus the attraction logit of item ``i`` for session ``rows[j]``.

    The logit of :func:`_slot` for every item at once, arranged so the item
    loops vectorise: ``bias`` (N,) the item biases, ``base_bonus`` (C, N) the
    bonus of each item for an anchor of each category ignoring up-sells (cross
    or other), ``members[starts[c]:starts[c + 1]]`` the items of category ``c``
    (where up-sells are). Sums are re-associated.
    """
    rule = rules[0]
    n_feat, n_items = weight.shape
    up_extra = rule.up_bonus - rule.other_bonus
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
def item_values(rows: np.ndarray, profile: np.ndarray, price_sens: np.ndarray, profile_price_sens: np.ndarray,
                profile_click_value: np.ndarray, items: np.ndarray, price: np.ndarray, rules: np.ndarray,
                exp_neg_logit: np.ndarray, out_attraction: np.ndarray, out_value: np.ndarray) -> None:
    """Attraction and value (attraction x expected reward of a click) of every item, (m, N) each.

    ``exp_neg_logit`` (m, N) is ``exp(item_logits)``. A session with its
    profile's price sensitivity reads the click values from
    ``profile_click_value`` (P, N); any other computes them.
    """
    rule = rules[0]
    for j in range(rows.shape[0]):
        r = rows[j]
        p = profile[r]
        own = price_sens[r] == profile_price_sens[p]
        for i in range(out_value.shape[1]):
            at = 1.0 / (1.0 + exp_neg_logit[j, i])
            out_attraction[j, i] = at
            if own:
                out_value[j, i] = profile_click_value[p, i] * at
            else:
                buy = _buy(rule, price_sens[r], items[i].rel_log_price)
                out_value[j, i] = _click_value(rule, buy, price[i]) * at


@njit(cache=True)
def purchase_probs(price_sens: np.ndarray, items: np.ndarray, rules: np.ndarray, out: np.ndarray) -> None:
    """Probability (n, N) that a click on each item becomes a purchase."""
    rule = rules[0]
    for r in range(out.shape[0]):
        for i in range(out.shape[1]):
            out[r, i] = _buy(rule, price_sens[r], items[i].rel_log_price)


@njit(cache=True)
def best_slates(rows: np.ndarray, value: np.ndarray, score: np.ndarray, eligible: np.ndarray,
                required: np.ndarray, use_required: bool, exam: np.ndarray, slot_order: np.ndarray,
                out_slate: np.ndarray, out_value: np.ndarray) -> None:
    """Top-``k`` eligible items by ``score`` on the slots by examination, and the slate's value.

    Row ``j`` of ``value`` / ``score`` (m, N), ``out_slate`` (m, k) and
    ``out_value`` (m,) is session ``rows[j]`` of ``eligible`` / ``required``
    (n, N). When no top item is required but some item is, the best required
    item replaces the weakest of the top ``k``. The value is
    ``sum_j exam[j] * value[slate[j]]``.
    """
    n_items = score.shape[1]
    k = out_slate.shape[1]
    top_v = np.empty(k)
    top_i = np.empty(k, dtype=np.int64)
    for j0 in range(rows.shape[0]):
        r = rows[j0]
        top_v[:] = -np.inf  # sorted in decreasing order; the world leaves at least k items eligible
        threshold = -np.inf
        sc, elig = score[j0], eligible[r]
        for i in range(n_items):
            v = sc[i]
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
                if req[i] and sc[i] > best_req_v:
                    best_req, best_req_v = i, sc[i]
        if use_required and best_req >= 0:
            hit = False
            for j in range(k):
                hit = hit or required[r, top_i[j]]
            if not hit:  # the weakest is last; the required item is weaker than every top item
                top_i[k - 1] = best_req
                top_v[k - 1] = best_req_v
        for j in range(k):
            out_slate[j0, slot_order[j]] = top_i[j]
        total = 0.0
        for j in range(k):
            total += exam[j] * value[j0, out_slate[j0, j]]
        out_value[j0] = total


@njit(cache=True)
def slate_terms(slate: np.ndarray, shopper: np.ndarray, price_sens: np.ndarray, patience: np.ndarray,
                anchor: np.ndarray, step: np.ndarray, items: np.ndarray, category: np.ndarray,
                price: np.ndarray, weight_t: np.ndarray, complement: np.ndarray, rules: np.ndarray,
                exam: np.ndarray, out_click: np.ndarray,
                out_purchase: np.ndarray, out_abandon: np.ndarray, out_expected: np.ndarray) -> None:
    """Outcome probabilities of showing ``slate`` (n, k).

    Click and purchase (n, k) per slot, the abandonment probability without a
    purchase (n,) and the slate's exact expected reward (n,).
    """
    rule = rules[0]
    n, k = slate.shape
    exam_sum = 0.0
    for j in range(k):
        exam_sum += exam[j]
    for r in range(n):
        a = anchor[r]
        relevance, overprice, expected = 0.0, 0.0, 0.0
        for j in range(k):
            item = slate[r, j]
            at, buy, jump, _, _ = _slot(items, category, price, weight_t, complement, rule, shopper, r,
                                        price_sens[r], a, item)
            click = exam[j] * at
            out_click[r, j] = click
            out_purchase[r, j] = click * buy
            expected += at * _click_value(rule, buy, price[item]) * exam[j]
            relevance += at * exam[j]
            overprice += jump * exam[j]
        out_abandon[r] = _abandon(rule, step[r], relevance / exam_sum, overprice / exam_sum, patience[r])
        out_expected[r] = expected


# ---------------------------------------------------------------------------- dynamics
@njit(cache=True)
def step_sessions(slate: np.ndarray, u: np.ndarray, shopper: np.ndarray, price_sens: np.ndarray,
                  patience: np.ndarray, anchor: np.ndarray, cart: np.ndarray, cart_value: np.ndarray,
                  step: np.ndarray, alive: np.ndarray, items: np.ndarray, category: np.ndarray,
                  price: np.ndarray, weight_t: np.ndarray, complement: np.ndarray, rules: np.ndarray,
                  exam: np.ndarray, slots: np.ndarray, ends: np.ndarray) -> None:
    """One step of every session, in place on ``anchor``, ``cart``, ``cart_value``, ``step``, ``alive``.

    ``u`` (n, 2k + 2): per slot the click uniforms, then the purchase
    uniforms, then one for abandonment and one for checkout. A click is
    ``u < exam x attraction``, a purchase ``u < purchase probability``; bought
    items enter the cart and the first becomes the anchor; without a purchase
    the shopper abandons with :func:`_abandon`; a shopper with a cart who stays
    checks out with ``checkout_prob``. Ended sessions produce zeros.
    """
    rule = rules[0]
    n, k = slate.shape
    exam_sum = 0.0
    for j in range(k):
        exam_sum += exam[j]
    for r in range(n):
        a = anchor[r]
        live = alive[r]
        relevance, overprice, expected = 0.0, 0.0, 0.0
        first = -1
        revenue_sum, reward = 0.0, 0.0
        for j in range(k):
            item = slate[r, j]
            at, buy, jump, cross, up = _slot(items, category, price, weight_t, complement, rule, shopper, r,
                                             price_sens[r], a, item)
            item_price = price[item]
            expected += at * _click_value(rule, buy, item_price) * exam[j]
            relevance += at * exam[j]
            overprice += jump * exam[j]
            click = live and u[r, j] < exam[j] * at
            purchase = click and u[r, k + j] < buy
            s = slots[r, j]
            s.cross_sell = cross
            s.up_sell = up
            s.click = 1.0 if click else 0.0
            s.purchase = 1.0 if purchase else 0.0
            rev = item_price if purchase else 0.0
            s.revenue = rev
            revenue_sum += rev
            if rule.reward_code == 0:
                reward += 1.0 if click else 0.0
            elif rule.reward_code == 1:
                reward += 1.0 if purchase else 0.0
            if purchase:
                cart[r, item] = True
                if first < 0:
                    first = j
        bought = first >= 0
        e = ends[r]
        e.reward = revenue_sum if rule.reward_code == 2 else reward
        e.expected_reward = expected
        abandon = live and not bought and u[r, 2 * k] < _abandon(rule, step[r], relevance / exam_sum,
                                                                 overprice / exam_sum, patience[r])
        # every price is positive, so a cart holds items exactly when its value is positive
        has_cart = bought or cart_value[r] > 0.0
        checkout = live and not abandon and has_cart and u[r, 2 * k + 1] < rule.checkout_prob
        if bought:
            anchor[r] = slate[r, first]
        if live:
            step[r] += 1
        truncated = live and not abandon and not checkout and step[r] >= rule.max_steps
        done = live and (abandon or checkout or truncated)
        cart_value[r] += revenue_sum
        alive[r] = live and not done
        e.checkout = checkout
        e.abandon = abandon
        e.truncated = truncated
        e.done = done
        e.anchor_changed = bought
