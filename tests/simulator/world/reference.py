"""The world's response model written in plain numpy: the tests' reference for the compiled world.

:class:`ReferenceWorld` computes what :class:`simulator.world.World` computes,
batch-wise with numpy, from the same ``(config, params)``: for the same
generator it draws the same sessions and outcomes, and its probabilities and
expected rewards agree to floating-point rounding. It is slow and is not
used by the package; the tests compare the compiled world against it. It
also offers what the session environments ask of a world (``observe``,
``replace_sessions``, ``best_slate(rows=, seen=)``, the step's truth), so an
environment can be driven by either and the episodes compared.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import WorldError
from simulator.world import SessionState, World, WorldConfig, WorldParams
from simulator.world.core import Observation

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return out


@dataclass(frozen=True, slots=True)
class ReferenceOutcome:
    """What one step of ``n`` sessions produced (the fields of ``simulator.world.StepOutcome``)."""

    click: FloatArray
    purchase: FloatArray
    revenue: FloatArray
    reward: FloatArray
    expected_reward: FloatArray
    cross_sell: BoolArray
    up_sell: BoolArray
    checkout: BoolArray
    abandon: BoolArray
    truncated: BoolArray
    done: BoolArray
    anchor_changed: BoolArray
    state: SessionState


class ReferenceWorld:
    """The numpy model of a world ``(config, params)``; ``ReferenceWorld.of(world)`` mirrors a World.

    Args:
        config: the shop's configuration (sizes, response and session settings).
        params: the world's arrays.
    """

    def __init__(self, config: WorldConfig, params: WorldParams) -> None:
        self.config = config
        if params.position_bias.shape[0] != config.k:
            raise WorldError(f"`config.k` = {config.k} but the world has "
                             f"{params.position_bias.shape[0]} slots of position bias.")
        if config.k + 1 > params.n_items:
            raise WorldError(f"`config.k` must be at most n_items - 1 = {params.n_items - 1}, "
                             f"found {config.k}.")
        self.params = params
        p = params
        self._log_price: FloatArray = np.log(p.price)
        self._median_log_price = float(np.median(self._log_price))
        self._exam: FloatArray = np.asarray(p.position_bias, dtype=np.float64)
        self._slot_order: IntArray = np.argsort(-self._exam, kind="stable").astype(np.int64)
        self._n_cat = len(p.category_names)
        probs = self.anchor_probs()
        # row r of the per-profile CDFs, shifted by r, so one searchsorted serves every profile
        cdf = np.cumsum(probs, axis=1)
        cdf = cdf / cdf[:, -1:]
        self._anchor_cdf: FloatArray = (cdf + np.arange(probs.shape[0])[:, None]).ravel()

    # ------------------------------------------------------------------ building
    @classmethod
    def of(cls, world: World) -> ReferenceWorld:
        """The reference model of ``world``."""
        return cls(world.config, world.params)

    def anchor_probs(self) -> FloatArray:
        """Shape (P, n_items): probability of each first anchor for each shopper profile.

        A softmax of the item's attraction logit for the profile (taste features at 0).
        """
        p = self.params
        logits = p.item_bias[None, :] + p.profile_features @ p.item_weight
        logits = logits - logits.max(axis=1, keepdims=True)
        probs: FloatArray = np.exp(logits)
        out: FloatArray = probs / probs.sum(axis=1, keepdims=True)
        return out

    # ------------------------------------------------------------------ sizes
    @property
    def n_items(self) -> int:
        """Catalog size."""
        return self.params.n_items

    @property
    def k(self) -> int:
        """Slate length."""
        return self.config.k

    @property
    def max_steps(self) -> int:
        """Step limit of a session."""
        return self.config.max_steps

    @property
    def reward_type(self) -> str:
        """``click``, ``purchase`` or ``revenue``."""
        return self.config.reward_type

    @property
    def n_features(self) -> int:
        """Shopper features ``f``."""
        return int(self.params.item_weight.shape[0])

    @property
    def dim_context(self) -> int:
        """Context dimension: shopper features, anchor category one-hot, 4 session numbers."""
        return self.n_features + self._n_cat + 4

    @property
    def context_names(self) -> tuple[str, ...]:
        """Names of the ``dim_context`` context columns."""
        return (*self.params.feature_names,
                *(f"anchor_{c}" for c in self.params.category_names),
                "anchor_log_price", "cart_size", "cart_log_value", "step_fraction")

    @property
    def position_bias(self) -> FloatArray:
        """Shape (k,), examination probability of each slot."""
        return self._exam.copy()

    # ------------------------------------------------------------------ sessions
    def new_sessions(self, n: int, rng: np.random.Generator) -> SessionState:
        """``n`` fresh sessions: shoppers drawn from the profiles, anchors from :meth:`anchor_probs`.

        Args:
            n: number of sessions (>= 0).
            rng: draws the shoppers and anchors.
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise WorldError(f"`n` must be an integer >= 0, found {n!r}.")
        if not isinstance(rng, np.random.Generator):
            raise WorldError(f"`rng` must be a numpy.random.Generator, found {type(rng).__name__}; "
                             "use np.random.default_rng(seed).")
        p = self.params
        n = int(n)
        profile = rng.choice(p.profile_weight.shape[0], size=n, p=p.profile_weight).astype(np.int64)
        shopper = p.profile_features[profile].copy()
        t = p.taste_features
        if t:
            shopper[:, -t:] = rng.uniform(-1.0, 1.0, size=(n, t))
        anchor = self.draw_anchors(profile, np.minimum(rng.random(n), np.nextafter(1.0, 0.0)))
        return SessionState(
            profile=profile,
            segment=p.profile_segment[profile],
            shopper=shopper,
            price_sens=p.profile_price_sens[profile],
            patience=p.profile_patience[profile],
            anchor=anchor,
            cart=np.zeros((n, self.n_items), dtype=bool),
            cart_value=np.zeros(n),
            step=np.zeros(n, dtype=np.int64),
            alive=np.ones(n, dtype=bool),
        )

    def draw_anchors(self, profile: IntArray, u: FloatArray) -> IntArray:
        """First anchors (n,) of ``profile`` (n,) shoppers: :meth:`anchor_probs` inverted at ``u``."""
        flat = np.searchsorted(self._anchor_cdf, profile + u, side="right")
        out: IntArray = np.minimum(flat - profile * self.n_items, self.n_items - 1).astype(np.int64)
        return out

    @property
    def anchor_cdf(self) -> FloatArray:
        """Shape (P * n_items,): row ``p`` of the first-anchor CDFs plus ``p``, flattened (read-only)."""
        view = self._anchor_cdf.view()
        view.flags.writeable = False
        return view

    def replace_sessions(self, state: SessionState, rows: Any, rng: np.random.Generator) -> SessionState:
        """``state`` with the sessions at ``rows`` replaced by ``new_sessions(len(rows), rng)`` (a new state)."""
        fresh = self.new_sessions(len(rows), rng)
        changes = {}
        for name in SessionState.__dataclass_fields__:
            merged = getattr(state, name).copy()
            merged[rows] = getattr(fresh, name)
            changes[name] = merged
        return replace(state, **changes)

    def observe(self, state: SessionState, bounds: tuple[FloatArray, FloatArray] | None = None) -> Observation:
        """Context (clipped to ``bounds``), eligible and required items."""
        ctx = self.context(state)
        if bounds is not None:
            ctx = np.clip(ctx, bounds[0], bounds[1])
        return Observation(ctx, self.eligible(state), self.required(state))

    def context(self, state: SessionState) -> FloatArray:
        """Shape (n, dim_context): the shoppers and their sessions as numbers.

        Columns: shopper features, anchor category one-hot, anchor log
        price (standardised over the catalog), cart size / (k * max_steps), log(1 + cart
        value), step / max_steps.
        """
        n = state.n
        f, c = self.n_features, self._n_cat
        out = np.zeros((n, self.dim_context))
        out[:, :f] = state.shopper
        out[np.arange(n), f + self.params.item_category[state.anchor]] = 1.0
        scale = max(float(self._log_price.std()), 1e-9)
        out[:, f + c] = (self._log_price[state.anchor] - self._log_price.mean()) / scale
        out[:, f + c + 1] = state.cart.sum(axis=1) / (self.k * self.max_steps)
        out[:, f + c + 2] = np.log1p(state.cart_value)
        out[:, f + c + 3] = state.step / self.max_steps
        return out

    def context_bounds(self) -> tuple[FloatArray, FloatArray]:
        """Per-column bounds (each shape (dim_context,)) that hold every context."""
        p = self.params
        f, c = self.n_features, self._n_cat
        low, high = np.zeros(self.dim_context), np.ones(self.dim_context)
        if f:
            low[:f] = p.profile_features.min(axis=0)
            high[:f] = p.profile_features.max(axis=0)
            if p.taste_features:
                low[f - p.taste_features:f], high[f - p.taste_features:f] = -1.0, 1.0
        scale = max(float(self._log_price.std()), 1e-9)
        z = (self._log_price - self._log_price.mean()) / scale
        low[f + c], high[f + c] = float(z.min()), float(z.max())
        high[f + c + 2] = float(np.log1p(self.params.price.sum()))
        flat = high <= low
        high[flat] = low[flat] + 1.0
        return low, high

    # ------------------------------------------------------------------ candidates
    def _check_state(self, state: Any) -> SessionState:
        if not isinstance(state, SessionState):
            raise WorldError(f"`state` must be a SessionState from world.new_sessions(), found "
                             f"{type(state).__name__}.")
        if state.cart.ndim != 2 or state.cart.shape[1] != self.n_items:
            raise WorldError(f"`state.cart` must have shape (n, {self.n_items}), found "
                             f"{state.cart.shape}; the state belongs to another world.")
        return state

    def cross_sell(self, state: SessionState) -> BoolArray:
        """Shape (n, n_items) bool: items of a category complementary to the anchor's."""
        self._check_state(state)
        cat = self.params.item_category
        out: BoolArray = self.params.complement[cat[state.anchor]][:, cat]
        return out

    def up_sell(self, state: SessionState) -> BoolArray:
        """Shape (n, n_items) bool: items of the anchor's category that cost more than it."""
        self._check_state(state)
        cat, price = self.params.item_category, self.params.price
        out: BoolArray = (cat[None, :] == cat[state.anchor][:, None]) & (
            price[None, :] > price[state.anchor][:, None])
        return out

    def eligible(self, state: SessionState) -> BoolArray:
        """Shape (n, n_items) bool: the items a slate may show.

        Not in the cart, not the anchor, and (when
        ``candidates_only``) a cross-sell or up-sell. Rows with fewer than ``k``
        candidates fall back to every item outside the cart and the anchor, and
        a cart so full that fewer than ``k`` items are left lets its items back
        (only in small worlds with long sessions).
        """
        self._check_state(state)
        base = ~state.cart
        rows = np.arange(state.n)
        base[rows, state.anchor] = False
        full = base.sum(axis=1) < self.k
        if full.any():  # a cart too full to leave k items: cart items come back
            base[full] = True
            base[rows[full], state.anchor[full]] = False
        if not self.config.candidates_only:
            return base
        cand = base & (self.cross_sell(state) | self.up_sell(state))
        short = cand.sum(axis=1) < self.k
        out: BoolArray = np.where(short[:, None], base, cand)
        return out

    def required(self, state: SessionState) -> BoolArray | None:
        """Shape (n, n_items) bool of items of which a slate must hold one, or None.

        The eligible
        cross-sells when ``require_cross_sell``, else None.
        """
        if not self.config.require_cross_sell:
            return None
        out: BoolArray = self.cross_sell(state) & self.eligible(state)
        return out

    # ------------------------------------------------------------------ responses
    def _bonus(self, state: SessionState, items: IntArray) -> FloatArray:
        """Attraction bonus of ``items`` (n, m) relative to each session's anchor."""
        cfg, p = self.config, self.params
        cat_a = p.item_category[state.anchor][:, None]
        cat_i = p.item_category[items]
        cross = p.complement[cat_a, cat_i]
        up = (cat_i == cat_a) & (p.price[items] > p.price[state.anchor][:, None])
        out: FloatArray = np.where(cross, cfg.cross_bonus,
                                   np.where(up, cfg.up_bonus, cfg.other_bonus))
        return out

    def _attraction_of(self, state: SessionState, items: IntArray) -> FloatArray:
        """Click probability of examined ``items`` (n, m), shape (n, m)."""
        p = self.params
        logit = p.item_bias[items] + np.einsum("nf,fnm->nm", state.shopper, p.item_weight[:, items]) \
            if p.item_weight.shape[0] else p.item_bias[items] + 0.0
        return _sigmoid(logit + self._bonus(state, items))

    def _buy_of(self, state: SessionState, items: IntArray) -> FloatArray:
        """Purchase probability given a click of ``items`` (n, m), shape (n, m)."""
        rel = (self._log_price - self._median_log_price)[items]
        return _sigmoid(self.config.buy_base - state.price_sens[:, None] * rel)

    def _all_items(self, n: int) -> IntArray:
        return np.broadcast_to(np.arange(self.n_items, dtype=np.int64), (n, self.n_items))

    def attraction(self, state: SessionState) -> FloatArray:
        """Shape (n, n_items): click probability of each item if examined."""
        self._check_state(state)
        p, cfg = self.params, self.config
        logit = p.item_bias[None, :] + state.shopper @ p.item_weight
        cat = p.item_category
        cat_a = cat[state.anchor]
        cross = p.complement[cat_a][:, cat]
        up = (cat[None, :] == cat_a[:, None]) & (p.price[None, :] > p.price[state.anchor][:, None])
        bonus = np.where(cross, cfg.cross_bonus, np.where(up, cfg.up_bonus, cfg.other_bonus))
        return _sigmoid(logit + bonus)

    def purchase_prob(self, state: SessionState) -> FloatArray:
        """Shape (n, n_items): probability that a click on the item becomes a purchase."""
        self._check_state(state)
        return self._buy_of(state, self._all_items(state.n))

    def _value_of(self, state: SessionState, items: IntArray) -> FloatArray:
        """Expected reward of a click on ``items`` (n, m) for the reward type."""
        rt = self.config.reward_type
        if rt == "click":
            return np.ones(items.shape)
        buy = self._buy_of(state, items)
        return buy if rt == "purchase" else buy * self.params.price[items]

    def item_value(self, state: SessionState) -> FloatArray:
        """Shape (n, n_items): expected reward of an item on a slot examined for sure.

        That is (attraction times the reward of a click).
        """
        self._check_state(state)
        items = self._all_items(state.n)
        return self.attraction(state) * self._value_of(state, items)

    def _check_slate(self, state: SessionState, slate: Any) -> IntArray:
        arr = np.asarray(slate)
        if arr.dtype.kind not in "iu":
            raise WorldError(f"`slate` must hold integer item indices, found dtype {arr.dtype}.")
        if arr.shape != (state.n, self.k):
            raise WorldError(f"`slate` must have shape ({state.n}, {self.k}) (n sessions, k slots), "
                             f"found {arr.shape}.")
        arr = arr.astype(np.int64, copy=False)
        if arr.size and (arr.min() < 0 or arr.max() >= self.n_items):
            raise WorldError(f"`slate` holds items outside [0, {self.n_items - 1}]; map item ids to "
                             "catalog indices first.")
        if self.k > 1:
            ordered = np.sort(arr, axis=1)
            dup = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1) & state.alive
            if dup.any():
                row = int(np.flatnonzero(dup)[0])
                raise WorldError(f"`slate` row {row} repeats an item: {arr[row].tolist()}; a slate "
                                 "shows k distinct items.")
        return arr

    def expected_reward(self, state: SessionState, slate: Any) -> FloatArray:
        """Exact expected reward of each slate, shape (n,).

        Args:
            state: ``n`` sessions.
            slate: shape (n, k) item indices in slot order.
        """
        self._check_state(state)
        s = self._check_slate(state, slate)
        w = self._attraction_of(state, s) * self._value_of(state, s)
        out: FloatArray = w @ self._exam
        return out

    def expected_reward_dist(self, state: SessionState, action_dist: Any) -> FloatArray:
        """Exact expected reward of a stochastic policy, shape (n,).

        Args:
            state: ``n`` sessions.
            action_dist: shape (n, n_items, k), probability of each item at each slot.
        """
        self._check_state(state)
        dist = np.asarray(action_dist, dtype=np.float64)
        if dist.shape != (state.n, self.n_items, self.k):
            raise WorldError(f"`action_dist` must have shape ({state.n}, {self.n_items}, {self.k}), "
                             f"found {dist.shape}.")
        out: FloatArray = np.einsum("nik,ni,k->n", dist, self.item_value(state), self._exam)
        return out

    def best_slate(self, state: SessionState, *, rows: Any = None,
                   seen: Any = None) -> tuple[IntArray, FloatArray]:
        """The slate of largest expected reward, and its expected reward.

        Among eligible items, holding a required cross-sell when the rules ask for one.

        Returns:
            ``(slate, value)``: shapes (n, k) and (n,).
        """
        self._check_state(state)
        if rows is not None:
            state = state.take(np.asarray(rows, dtype=np.int64))
        return self.best_slate_for(state, self.item_value(state))

    def best_slate_for(self, state: SessionState, scores: Any) -> tuple[IntArray, FloatArray]:
        """Top-``k`` eligible items by ``scores`` (n, n_items), and the slate's exact value (n,).

        Items go on the slots by examination (best score on the most examined
        slot), honouring the rules.
        """
        sc = np.asarray(scores, dtype=np.float64)
        n, k = state.n, self.k
        if sc.shape != (n, self.n_items):
            raise WorldError(f"`scores` must have shape ({n}, {self.n_items}), found {sc.shape}.")
        elig = self.eligible(state)
        key = np.where(elig, sc, -np.inf)
        top = np.argpartition(-key, k - 1, axis=1)[:, :k]
        req = self.required(state)
        if req is not None:
            hit = np.take_along_axis(req, top, axis=1).any(axis=1)
            need = ~hit & req.any(axis=1)
            if need.any():
                best_req = np.argmax(np.where(req, sc, -np.inf), axis=1)
                top_vals = np.take_along_axis(key, top, axis=1)
                worst = np.argmin(top_vals, axis=1)
                rows = np.flatnonzero(need)
                top[rows, worst[rows]] = best_req[rows]
        vals = np.take_along_axis(key, top, axis=1)
        ranked = np.take_along_axis(top, np.argsort(-vals, axis=1, kind="stable"), axis=1)
        slate = np.empty((n, k), dtype=np.int64)
        slate[:, self._slot_order] = ranked
        return slate, self.expected_reward(state, slate)

    def _abandon_of(self, state: SessionState, slate: IntArray, attr: FloatArray) -> FloatArray:
        cfg = self.config
        exam_sum = float(self._exam.sum())
        relevance = (attr @ self._exam) / exam_sum
        jump = np.maximum(self._log_price[slate] - self._log_price[state.anchor][:, None], 0.0)
        overprice = (jump @ self._exam) / exam_sum
        logit = (cfg.abandon_base + cfg.fatigue * state.step - cfg.relevance_weight * relevance
                 + cfg.overprice_weight * overprice - state.patience)
        return _sigmoid(logit)

    def slate_probs(self, state: SessionState, slate: Any) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Outcome probabilities of showing ``slate`` (n, k).

        Returns:
            ``(click (n, k), purchase (n, k), abandon (n,))``: the probability that
            each slot is clicked, that it is bought (slots are independent), and
            that the shopper abandons if nothing is bought.
        """
        self._check_state(state)
        s = self._check_slate(state, slate)
        attr = self._attraction_of(state, s)
        click = self._exam * attr
        return click, click * self._buy_of(state, s), self._abandon_of(state, s, attr)

    # ------------------------------------------------------------------ dynamics
    def step(self, state: SessionState, slate: Any, rng: np.random.Generator, *,
             in_place: bool = False) -> ReferenceOutcome:
        """Show one slate to every live session and draw what the shoppers do.

        Clicks are Bernoulli(position_bias * attraction); a click becomes a purchase
        with the purchase probability; bought items enter the cart and the first one
        becomes the new anchor. Without a purchase the shopper abandons with
        ``sigmoid(abandon_base + fatigue * step - relevance_weight * relevance +
        overprice_weight * overprice - patience)``; with a non-empty cart a shopper
        who stays checks out with ``checkout_prob``. Ended sessions (``alive`` False)
        produce zeros and stay as they are.

        Args:
            state: ``n`` sessions.
            slate: shape (n, k) distinct item indices (rows of ended sessions are ignored).
            rng: draws every outcome.
            in_place: not used (the reference returns a new state).
        """
        self._check_state(state)
        s = self._check_slate(state, slate)
        expected = self.expected_reward(state, s)
        rows_n = np.arange(state.n)[:, None]
        cross_sell, up_sell = self.cross_sell(state)[rows_n, s], self.up_sell(state)[rows_n, s]
        cfg, p = self.config, self.params
        n, k = state.n, self.k
        alive = state.alive
        attr = self._attraction_of(state, s)
        buy = self._buy_of(state, s)
        u = rng.random((n, 2 * k + 2))
        click = (u[:, :k] < self._exam * attr) & alive[:, None]
        purchase = click & (u[:, k:2 * k] < buy)
        price = p.price[s]
        revenue = np.where(purchase, price, 0.0)
        if cfg.reward_type == "click":
            reward = click.sum(axis=1).astype(np.float64)
        elif cfg.reward_type == "purchase":
            reward = purchase.sum(axis=1).astype(np.float64)
        else:
            reward = revenue.sum(axis=1)
        bought = purchase.any(axis=1)
        abandon = alive & ~bought & (u[:, 2 * k] < self._abandon_of(state, s, attr))
        cart = state.cart.copy()
        rows, cols = np.nonzero(purchase)
        cart[rows, s[rows, cols]] = True
        has_cart = cart.any(axis=1)
        checkout = alive & ~abandon & has_cart & (u[:, 2 * k + 1] < cfg.checkout_prob)
        first = np.argmax(purchase, axis=1)
        anchor = np.where(bought, s[np.arange(n), first], state.anchor)
        step = state.step + alive.astype(np.int64)
        truncated = alive & ~abandon & ~checkout & (step >= cfg.max_steps)
        done = alive & (abandon | checkout | truncated)
        nxt = replace(state, anchor=anchor, cart=cart, cart_value=state.cart_value + revenue.sum(axis=1),
                      step=step, alive=alive & ~done)
        return ReferenceOutcome(
            click=click.astype(np.float64), purchase=purchase.astype(np.float64), revenue=revenue,
            reward=reward, expected_reward=expected, cross_sell=cross_sell, up_sell=up_sell,
            checkout=checkout, abandon=abandon, truncated=truncated, done=done, anchor_changed=bought & alive,
            state=nxt,
        )
