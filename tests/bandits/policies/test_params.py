"""Bad constructor arguments give PolicyErrors that name the field, the expectation and the value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from bandits import Feedback, PolicyError, make_policy

BASE = {"n_items": 5, "k": 2, "dim_context": 3}

BAD_PARAMS = [
    pytest.param("uniform", {"k": 6}, "`k` must be an integer in \\[1, n_items=5\\], found 6", id="k-too-big"),
    pytest.param("uniform", {"n_items": 0}, "`n_items` must be a positive integer", id="no-items"),
    pytest.param("epsilon_greedy", {"epsilon": 1.5}, "`epsilon` must be in \\[0, 1\\], found 1.5",
                 id="epsilon-range"),
    pytest.param("epsilon_greedy", {"epsilon": "high"}, "`epsilon` must be a number, found 'high'",
                 id="epsilon-text"),
    pytest.param("ucb1", {"c": 0}, "`c` must be in \\(0, inf\\), found 0", id="ucb-width"),
    pytest.param("softmax", {"temperature": -1.0}, "`temperature` must be in \\(0, inf\\)", id="temperature"),
    pytest.param("softmax", {"n_draws": 0}, "`n_draws` must be an integer >= 1, found 0", id="draws"),
    pytest.param("popularity", {"examination": [1.0]}, "`examination` must be 2 slot examination",
                 id="examination-length"),
    pytest.param("popularity", {"examination": [1.0, 0.0]}, "in \\(0, 1\\]", id="examination-zero"),
    pytest.param("bernoulli_ts", {"alpha": [1.0, 2.0]}, "`alpha` must be a number or shape \\(5,\\)",
                 id="prior-shape"),
    pytest.param("bernoulli_ts", {"beta": -1.0}, "`beta` must hold positive finite numbers", id="prior-sign"),
    pytest.param("linucb", {"dim_context": 0}, "needs `dim_context` >= 1", id="linucb-no-context"),
    pytest.param("linucb", {"alpha": -0.1}, "`alpha` must be in \\[0, inf\\), found -0.1", id="alpha"),
    pytest.param("linucb", {"reg": 0.0}, "`reg` must be in \\(0, inf\\)", id="reg"),
    pytest.param("linear_ts", {"v": float("nan")}, "`v` must be in \\(0, inf\\), found nan", id="v-nan"),
    pytest.param("logistic_ts", {"newton_steps": 0}, "`newton_steps` must be an integer >= 1", id="newton"),
    pytest.param("hybrid_linucb", {"item_features": np.ones((4, 2))},
                 "`item_features` must have shape \\(5, p\\)", id="features-rows"),
    pytest.param("item_similarity", {"content_weight": 0.5}, "`content_weight` > 0 needs `item_features`",
                 id="content-without-features"),
    pytest.param("bought_together", {"anchor_column": 3}, "`anchor_column` must be a context column in "
                 "\\[0, 2\\], found 3", id="anchor-column"),
    pytest.param("upsell", {"price": [1.0, 2.0], "category": ["a"] * 5}, "`price` must be 5 finite prices",
                 id="price-shape"),
    pytest.param("upsell", {"price": [1.0] * 5, "category": ["a"] * 4}, "`category` must have shape \\(5,\\)",
                 id="category-shape"),
    pytest.param("no_such_policy", {}, "unknown policy 'no_such_policy'; choose one of", id="unknown"),
]


@pytest.mark.parametrize(("name", "change", "message"), BAD_PARAMS)
def test_bad_params_are_named(name: str, change: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        make_policy(name, **{**BASE, **change})


@pytest.mark.parametrize("name", ["bernoulli_ts", "logistic_ts"])
def test_bernoulli_models_reject_rewards_outside_zero_one(name: str) -> None:
    policy = make_policy(name, **BASE)
    fb = Feedback(np.zeros((1, 3)), np.array([[0, 1]]), np.array([[2.0, 0.0]]))
    with pytest.raises(PolicyError, match="must be in \\[0, 1\\], found values in \\[0, 2\\]"):
        policy.update(fb)


def test_feedback_slate_must_be_integers() -> None:
    policy = make_policy("uniform", **BASE)
    with pytest.raises(PolicyError, match="integer item indices, found dtype float64"):
        policy.update(Feedback(np.zeros((1, 3)), np.array([[0.0, 1.0]]), np.zeros((1, 2))))


def test_load_rejects_files_that_are_not_policies(tmp_path: Any) -> None:
    from bandits import SlatePolicy

    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.ones(3))
    with pytest.raises(PolicyError, match="no metadata"):
        SlatePolicy.load(bad)
    (tmp_path / "y.npz").write_text("not a zip")
    with pytest.raises(PolicyError, match="is not a saved slatewise policy"):
        SlatePolicy.load(tmp_path / "y.npz")
