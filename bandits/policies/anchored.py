"""Policies that recommend around an anchor item: bought-together rules, item similarity, up-sell ladder.

**Anchor convention.** The anchor (the product being viewed, or the last one
put in the cart) is read from the context: column ``anchor_column`` (default 0)
holds its catalog index as a whole number, or ``-1`` when there is none. The
anchor itself ranks below every other item, so it is shown only when the
eligible items leave no other choice; pass it as ineligible to rule it out.
Rows without an anchor fall back to popularity (or to price for the ladder).
Each of these classes declares ``anchor_context = True``, so a runner that places
a policy in a world knows to append the session's anchor to the context and set
``anchor_column`` to that column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from bandits.policies.base import ScorePolicy, check_int, check_number, expect_state, feature_matrix
from bandits.policy import Feedback, FloatArray, IntArray, register_policy
from simulator.errors import PolicyError
from simulator.logs import Catalog

#: Score given to the anchor itself: below every real score, above ineligible items.
ANCHOR_SCORE = -1e300


def read_anchors(context: FloatArray, column: int, n_items: int) -> IntArray:
    """Anchor item index of each row (n,), -1 for none, from ``context[:, column]``."""
    if context.shape[1] <= column:
        raise PolicyError(f"`context` must hold the anchor item in column {column} (`anchor_column`), "
                          f"found only {context.shape[1]} columns.")
    values = context[:, column]
    bad = (values != np.round(values)) | (values < -1) | (values >= n_items)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PolicyError(f"`context[:, {column}]` must hold anchor item indices in [-1, {n_items - 1}] "
                          f"(-1 for no anchor), found {float(values[row])!r} at row {row}.")
    return values.astype(np.int64)


def anchored_context(rng: np.random.Generator, n: int, dim_context: int, n_items: int) -> FloatArray:
    """Random contexts (n, max(dim_context, 1)) with an anchor item (or -1) in column 0."""
    ctx = rng.standard_normal((n, max(dim_context, 1)))
    ctx[:, 0] = rng.integers(-1, n_items, size=n)
    return ctx


class _AnchoredPolicy(ScorePolicy):
    """Shared anchor handling and co-occurrence statistics."""

    #: The policy reads the anchor item from context column ``anchor_column``.
    anchor_context: ClassVar[bool] = True

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 epsilon: float = 0.0, examination: Sequence[float] | None = None,
                 seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)
        self.anchor_column = check_int("anchor_column", anchor_column, low=0)
        if self.dim_context and self.anchor_column >= self.dim_context:
            raise PolicyError(f"`anchor_column` must be a context column in [0, {self.dim_context - 1}], "
                              f"found {anchor_column}.")
        self._cooc = np.zeros((self.n_items, self.n_items))
        self._n_baskets = np.zeros(1)

    def _anchors(self, context: FloatArray) -> IntArray:
        return read_anchors(context, self.anchor_column, self.n_items)

    @classmethod
    def example_context(cls, rng: np.random.Generator, n: int, dim_context: int,
                        n_items: int) -> FloatArray:
        """Contexts whose column 0 is a random anchor item (or -1)."""
        return anchored_context(rng, n, dim_context, n_items)

    def _update(self, feedback: Feedback) -> None:
        """Count co-occurrences in baskets: the anchor plus the items that earned a reward."""
        anchors = self._anchors(feedback.context)
        n, m = anchors.shape[0], self.n_items
        basket = np.zeros((n, m))
        rows = np.repeat(np.arange(n), feedback.slate.shape[1])
        hit = feedback.reward.ravel() > 0
        basket[rows[hit], feedback.slate.ravel()[hit]] = 1.0
        has = anchors >= 0
        basket[np.flatnonzero(has), anchors[has]] = 1.0
        self._cooc += basket.T @ basket
        self._n_baskets += float((basket.sum(axis=1) > 0).sum())

    def _popularity(self) -> FloatArray:
        return np.diag(self._cooc).copy()

    def _finish(self, scores: FloatArray, anchors: IntArray) -> FloatArray:
        """Break ties by popularity and push the anchor itself to the bottom."""
        pop = self._popularity()
        scores = scores + 1e-9 * pop / (1.0 + pop.max())
        has = anchors >= 0
        scores[np.flatnonzero(has), anchors[has]] = ANCHOR_SCORE
        return scores

    def _get_state(self) -> dict[str, np.ndarray[Any, Any]]:
        return {"cooc": self._cooc.copy(), "n_baskets": self._n_baskets.copy()}

    def _set_state(self, state: dict[str, np.ndarray[Any, Any]]) -> None:
        m = self.n_items
        expect_state(state, {"cooc": (m, m), "n_baskets": (1,)}, type(self).__name__)
        self._cooc = np.array(state["cooc"], dtype=np.float64)
        self._n_baskets = np.array(state["n_baskets"], dtype=np.float64)


@register_policy("bought_together")
class BoughtTogether(_AnchoredPolicy):
    """Association rules: items ranked by lift of co-occurrence with the anchor.

    A basket is the anchor plus every shown item that earned a reward (a click
    or purchase). With ``c[a, b]`` baskets holding both items and ``N`` baskets,
    ``lift(a -> b) = c[a, b] N / ((c[a, a] + s)(c[b, b] + s))`` with smoothing
    ``s``; pairs seen together fewer than ``min_support`` times have lift 0.
    Ties (and rows without an anchor) go to the most popular items.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        anchor_column: context column holding the anchor item index (-1: none).
        min_support: minimum co-occurrence count of a rule (>= 1).
        smoothing: pseudo-count ``s`` (>= 0) shrinking the lift of rare items.
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 min_support: int = 1, smoothing: float = 1.0, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, anchor_column=anchor_column, epsilon=epsilon,
                         examination=examination, seed=seed)
        self.min_support = check_int("min_support", min_support, low=1)
        self.smoothing = check_number("smoothing", smoothing, low=0.0)

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *,
                seed: int | None = None) -> BoughtTogether:
        """Rules with a little exploration."""
        return cls(n_items, k, dim_context, epsilon=0.1, seed=seed)

    def lift(self) -> FloatArray:
        """Smoothed lift of every rule ``a -> b``, shape (n_items, n_items)."""
        c = self._cooc
        pop = np.diag(c)
        denom = (pop[:, None] + self.smoothing) * (pop[None, :] + self.smoothing)
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = np.where(denom > 0, c * self._n_baskets[0] / np.where(denom > 0, denom, 1.0), 0.0)
        return np.where(c >= self.min_support, lift, 0.0)

    def _scores(self, context: FloatArray) -> FloatArray:
        anchors = self._anchors(context)
        pop = self._popularity()
        lift = self.lift()
        scores = np.where((anchors >= 0)[:, None], lift[np.maximum(anchors, 0)], pop[None, :])
        return self._finish(scores, anchors)


@register_policy("item_similarity")
class ItemSimilarity(_AnchoredPolicy):
    """Item-to-item similarity: co-click cosine blended with item-feature cosine.

    ``score(a, b) = (1 - content_weight) cf(a, b) + content_weight content(a, b)``
    where ``cf(a, b) = c[a, b] / sqrt(c[a, a] c[b, b])`` over baskets (the anchor
    plus rewarded items, as for :class:`BoughtTogether`) and ``content`` is the
    cosine of the items' feature vectors. Ties (and rows without an anchor) go
    to the most popular items.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        anchor_column: context column holding the anchor item index (-1: none).
        item_features: shape (n_items, p) numeric item features, or None (then
            ``content_weight`` must be 0).
        content_weight: weight in [0, 1] of content similarity.
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, anchor_column: int = 0,
                 item_features: Any = None, content_weight: float = 0.0, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, anchor_column=anchor_column, epsilon=epsilon,
                         examination=examination, seed=seed)
        self.item_features = (None if item_features is None
                              else feature_matrix("item_features", item_features, self.n_items))
        self.content_weight = check_number("content_weight", content_weight, low=0.0, high=1.0)
        if self.content_weight > 0 and self.item_features is None:
            raise PolicyError("`content_weight` > 0 needs `item_features` of shape "
                              f"({self.n_items}, p); pass them or set content_weight=0.")
        self._content = np.zeros((self.n_items, self.n_items))
        if self.item_features is not None:
            f = self.item_features
            norm = np.linalg.norm(f, axis=1)
            unit = f / np.where(norm > 0, norm, 1.0)[:, None]
            self._content = unit @ unit.T

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *,
                seed: int | None = None) -> ItemSimilarity:
        """A blend of co-click and content similarity on random item features."""
        rng = np.random.default_rng(seed)
        return cls(n_items, k, dim_context, item_features=rng.standard_normal((n_items, 3)),
                   content_weight=0.3, epsilon=0.1, seed=seed)

    def similarity(self) -> FloatArray:
        """Blended similarity of every item pair, shape (n_items, n_items)."""
        c = self._cooc
        pop = np.sqrt(np.diag(c))
        denom = pop[:, None] * pop[None, :]
        cf = np.where(denom > 0, c / np.where(denom > 0, denom, 1.0), 0.0)
        return (1.0 - self.content_weight) * cf + self.content_weight * self._content

    def _scores(self, context: FloatArray) -> FloatArray:
        anchors = self._anchors(context)
        sim = self.similarity()
        scores = np.where((anchors >= 0)[:, None], sim[np.maximum(anchors, 0)],
                          self._popularity()[None, :])
        return self._finish(scores, anchors)


@register_policy("upsell")
class UpsellLadder(ScorePolicy):
    """Up-sell ladder: the next higher-priced items of the anchor's category.

    Items are ranked in tiers: (1) same category, dearer than the anchor, cheapest
    first — the ladder; (2) same category, not dearer, dearest first; (3) other
    categories, dearer than the anchor, cheapest first; (4) the rest, dearest
    first. Equal prices go to the lower item index. Rows without an anchor get
    the cheapest items first. The ladder is fixed by the catalog: ``update``
    checks feedback and learns nothing.

    Args:
        n_items: catalog size.
        k: slate length.
        dim_context: context dimension (0: any width holding the anchor column).
        price: shape (n_items,), item prices (>= 0).
        category: shape (n_items,), item category names.
        anchor_column: context column holding the anchor item index (-1: none).
        epsilon: exploration probability in [0, 1].
        examination: shape (k,), examination probability of each slot, or None.
        seed: seed of the policy's random generator.
    """

    #: The policy reads the anchor item from context column ``anchor_column``.
    anchor_context: ClassVar[bool] = True

    def __init__(self, n_items: int, k: int, dim_context: int = 0, *, price: Any, category: Any,
                 anchor_column: int = 0, epsilon: float = 0.0,
                 examination: Sequence[float] | None = None, seed: int | None = None) -> None:
        super().__init__(n_items, k, dim_context, epsilon=epsilon, examination=examination, seed=seed)
        self.anchor_column = check_int("anchor_column", anchor_column, low=0)
        try:
            prices = np.asarray(price, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise PolicyError(f"`price` must be {self.n_items} numbers, found {price!r}.") from err
        if prices.shape != (self.n_items,) or not np.isfinite(prices).all() or (prices < 0).any():
            raise PolicyError(f"`price` must be {self.n_items} finite prices >= 0 (one per item), "
                              f"found shape {prices.shape}.")
        categories = np.asarray(category).astype(str)
        if categories.shape != (self.n_items,):
            raise PolicyError(f"`category` must have shape ({self.n_items},) (one per item), "
                              f"found {categories.shape}.")
        self.price = prices
        self.category = categories
        m = self.n_items
        self._price_rank = np.empty(m, dtype=np.int64)
        self._price_rank[np.argsort(prices, kind="stable")] = np.arange(m)

    @classmethod
    def example(cls, n_items: int, k: int, dim_context: int, *, seed: int | None = None) -> UpsellLadder:
        """A ladder over random prices in three categories."""
        rng = np.random.default_rng(seed)
        return cls(n_items, k, dim_context, price=np.round(rng.uniform(5, 100, n_items), 2),
                   category=np.array(["shoes", "bags", "hats"])[np.arange(n_items) % 3], seed=seed)

    @classmethod
    def example_context(cls, rng: np.random.Generator, n: int, dim_context: int,
                        n_items: int) -> FloatArray:
        """Contexts whose column 0 is a random anchor item (or -1)."""
        return anchored_context(rng, n, dim_context, n_items)

    @classmethod
    def from_catalog(cls, catalog: Catalog, k: int, dim_context: int = 0, **params: Any) -> UpsellLadder:
        """An up-sell ladder over a catalog's prices and categories."""
        if catalog.price is None:
            raise PolicyError("the up-sell ladder needs item prices; the catalog has none "
                              "(`catalog.price` is None).")
        return cls(catalog.n_items, k, dim_context, price=catalog.price, category=catalog.category,
                   **params)

    def _scores(self, context: FloatArray) -> FloatArray:
        anchors = read_anchors(context, self.anchor_column, self.n_items)
        m = self.n_items
        ascending = (m - self._price_rank) / (m + 1.0)  # cheaper -> larger, in (0, 1)
        descending = (self._price_rank + 1.0) / (m + 1.0)
        a = np.maximum(anchors, 0)
        dearer = self.price[None, :] > self.price[a][:, None]
        same = self.category[None, :] == self.category[a][:, None]
        scores = np.where(same & dearer, 3.0 + ascending,
                          np.where(same, 2.0 + descending,
                                   np.where(dearer, 1.0 + ascending, descending)))
        scores = np.where((anchors >= 0)[:, None], scores, ascending[None, :])
        has = anchors >= 0
        scores[np.flatnonzero(has), anchors[has]] = ANCHOR_SCORE
        return scores

    def _update(self, feedback: Feedback) -> None:
        """The ladder is fixed by the catalog; feedback is checked and ignored."""
        read_anchors(feedback.context, self.anchor_column, self.n_items)
