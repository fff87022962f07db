"""Cross-sell rules, item similarity and the up-sell ladder on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import BoughtTogether, Feedback, ItemSimilarity, PolicyError, UpsellLadder
from simulator.logs import Catalog


def _baskets() -> Feedback:
    # anchors 0, 0, 1, -1 (none); clicks mark the basket items
    ctx = np.array([[0.0], [0.0], [1.0], [-1.0]])
    slate = np.array([[1, 2], [1, 3], [2, 3], [1, 2]])
    reward = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    return Feedback(ctx, slate, reward)


def test_bought_together_lift_by_hand() -> None:
    policy = BoughtTogether(4, 2, 1, smoothing=0.0)
    policy.update(_baskets())
    # baskets: {0,1}, {0,1,3}, {1,3}, {1,2}; N = 4
    c = np.array([[2, 2, 0, 1], [2, 4, 1, 2], [0, 1, 1, 0], [1, 2, 0, 2]], dtype=float)
    np.testing.assert_array_equal(policy._cooc, c)
    lift = policy.lift()
    assert lift[0, 1] == pytest.approx(2 * 4 / (2 * 4))
    assert lift[0, 3] == pytest.approx(1 * 4 / (2 * 2))
    assert lift[0, 2] == 0.0
    # anchor 0: item 3 (lift 1.0) ties item 1 (lift 1.0); popularity breaks it (item 1: 4 baskets)
    assert policy.select(np.array([[0.0]])).slate.tolist() == [[1, 3]]
    # no anchor: most popular items (1 in 4 baskets; 0 and 3 in 2, the lower index first)
    assert policy.select(np.array([[-1.0]])).slate.tolist() == [[1, 0]]
    # min_support removes rules seen once
    strict = BoughtTogether(4, 2, 1, smoothing=0.0, min_support=2)
    strict.update(_baskets())
    assert strict.lift()[0, 3] == 0.0 and strict.lift()[0, 1] > 0


def test_anchor_is_shown_only_when_nothing_else_is_eligible() -> None:
    policy = BoughtTogether(4, 2, 1)
    policy.update(_baskets())
    eligible = np.array([[True, False, True, False]])
    assert sorted(policy.select(np.array([[0.0]]), eligible=eligible).slate[0].tolist()) == [0, 2]


def test_item_similarity_cosines_by_hand() -> None:
    features = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    policy = ItemSimilarity(4, 2, 1, item_features=features, content_weight=0.25)
    policy.update(_baskets())
    c = policy._cooc
    cf = c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])
    content = 1 / np.sqrt(2)
    assert policy.similarity()[0, 1] == pytest.approx(0.75 * cf + 0.25 * content)
    assert policy.similarity()[0, 3] == pytest.approx(0.75 * c[0, 3] / np.sqrt(c[0, 0] * c[3, 3]) - 0.25)
    assert policy.select(np.array([[0.0]])).slate[0, 0] == 1


def test_upsell_ladder_by_hand() -> None:
    catalog = Catalog(item_id=np.arange(6), category=np.array(["a", "a", "a", "b", "b", "a"]),
                      price=np.array([10.0, 30.0, 20.0, 50.0, 15.0, 5.0]), features=np.zeros((6, 0)))
    ladder = UpsellLadder.from_catalog(catalog, k=4)
    # anchor 0 (category a, price 10): dearer in a -> 2 (20), 1 (30); then cheaper in a -> 5 (5);
    # then dearer elsewhere -> 4 (15)
    assert ladder.select(np.array([[0.0]])).slate.tolist() == [[2, 1, 5, 4]]
    # anchor 1 (a, 30): nothing dearer in a -> dearest first among the rest of a: 2, 0, 5
    assert ladder.select(np.array([[1.0]])).slate.tolist() == [[2, 0, 5, 3]]
    # no anchor: cheapest first
    assert ladder.select(np.array([[-1.0]])).slate.tolist() == [[5, 0, 4, 2]]


def test_upsell_needs_prices() -> None:
    with pytest.raises(PolicyError, match="needs item prices"):
        UpsellLadder.from_catalog(Catalog.anonymous(5), k=2)


@pytest.mark.parametrize(("context", "message"), [
    pytest.param([[0.5]], "anchor item indices in \\[-1, 3\\]", id="fractional"),
    pytest.param([[4.0]], "found 4.0 at row 0", id="too-large"),
    pytest.param([[-2.0]], "-1 for no anchor", id="below-minus-one"),
    pytest.param(np.zeros((1, 0)), "anchor item in column 0", id="missing-column"),
])
def test_bad_anchors_are_named(context: list[list[float]], message: str) -> None:
    policy = BoughtTogether(4, 2)
    with pytest.raises(PolicyError, match=message):
        policy.select(np.asarray(context, dtype=float))
