"""Association rules: hand-computed metrics, agreement with mlxtend's FP-growth, explanations."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from bandits import Feedback, PolicyError
from bandits.policies.rules import AssociationRules, Rule, pair_rules


def _baskets() -> Feedback:
    # anchors 0, 0, 1, -1: baskets {0,1}, {0,1,3}, {1,3}, {1,2}
    ctx = np.array([[0.0], [0.0], [1.0], [-1.0]])
    slate = np.array([[1, 2], [1, 3], [2, 3], [1, 2]])
    reward = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    return Feedback(ctx, slate, reward)


def test_rules_by_hand_and_explained() -> None:
    policy = AssociationRules(4, 2, 1, refresh_every=4)
    policy.update(_baskets())
    # anchor 0 (2 baskets): 0 -> 1 conf 1, lift 1 / (4/4) = 1; 0 -> 3 conf 1/2, lift 0.5 / (2/4) = 1
    d = policy.select(np.array([[0.0]]))
    assert d.slate.tolist() == [[1, 3]]
    (why,) = policy.explain(np.array([[0.0]]), d.slate)
    assert why == (Rule(0, 1, 0.5, 1.0, 1.0), Rule(0, 3, 0.25, 0.5, 1.0))
    # anchor 3 (2 baskets): 3 -> 1 conf 1 lift 1, 3 -> 0 conf 1/2 lift 0.5 / (2/4) = 1
    lift_first = AssociationRules(4, 2, 1, refresh_every=4, rank_by="lift")
    lift_first.update(_baskets())
    t = lift_first.rules
    at = t.antecedent == 2  # 2 -> 1: conf 1, lift 1 (the only rule from 2)
    assert t.consequent[at].tolist() == [1] and t.lift[at].tolist() == [1.0]
    # min_support 0.5 keeps only pairs in two of the four baskets
    strict = AssociationRules(4, 2, 1, refresh_every=4, min_support=0.5)
    strict.update(_baskets())
    pairs = set(zip(strict.rules.antecedent.tolist(), strict.rules.consequent.tolist(), strict=True))
    assert pairs == {(0, 1), (1, 0), (1, 3), (3, 1)}
    (fill,) = strict.explain(np.array([[2.0]]), np.array([[1, 0]]))
    assert fill == (None, None)  # nothing from anchor 2 reaches support 0.5


def test_pair_rules_agree_with_mlxtend_fpgrowth() -> None:
    from mlxtend.frequent_patterns import association_rules, fpgrowth

    rng = np.random.default_rng(0)
    x = rng.random((300, 9)) < rng.uniform(0.05, 0.4, size=9)
    table = pair_rules(sp.csr_matrix(x.astype(float)), min_support=0.03, min_confidence=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        freq = fpgrowth(pd.DataFrame(x), min_support=0.03, max_len=2)
        ref = association_rules(freq, num_itemsets=300, metric="confidence", min_threshold=0.2)
    ref = ref[(ref["antecedents"].map(len) == 1) & (ref["consequents"].map(len) == 1)]
    expected = {(next(iter(a)), next(iter(c))): (s, cf, lf) for a, c, s, cf, lf in
                zip(ref["antecedents"], ref["consequents"], ref["support"], ref["confidence"], ref["lift"],
                    strict=True)}
    got = {(int(a), int(c)): (s, cf, lf) for a, c, s, cf, lf in
           zip(table.antecedent, table.consequent, table.support, table.confidence, table.lift, strict=True)}
    assert got.keys() == expected.keys() and len(got) > 10
    for key, value in expected.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-9)
    # each antecedent's rules are ranked by confidence, best first
    for a in np.unique(table.antecedent):
        conf = table.confidence[table.antecedent == a]
        assert (np.diff(conf) <= 1e-12).all()


@pytest.mark.parametrize(("params", "message"), [
    pytest.param({"min_support": 1.5}, "`min_support` must be in \\[0, 1\\]", id="support"),
    pytest.param({"min_confidence": -0.1}, "`min_confidence` must be in", id="confidence"),
    pytest.param({"rank_by": "support"}, "`rank_by` must be one of", id="rank"),
])
def test_bad_arguments(params: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        AssociationRules(4, 2, 1, **params)


def test_explain_checks_its_shapes() -> None:
    with pytest.raises(PolicyError, match="explain"):
        AssociationRules(4, 2, 1).explain(np.zeros((2, 1)), np.zeros((3, 2), dtype=int))
