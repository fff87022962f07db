"""Item- and user-based collaborative filtering on hand-computed cases and against a dense reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from bandits import Feedback, PolicyError
from bandits.policies.cf import ItemCF, UserCF, shrunk_cosine, top_n_per_row


def _baskets() -> Feedback:
    # anchors 0, 0, 1, -1: baskets {0,1}, {0,1,3}, {1,3}, {1,2}
    ctx = np.array([[0.0], [0.0], [1.0], [-1.0]])
    slate = np.array([[1, 2], [1, 3], [2, 3], [1, 2]])
    reward = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 1.0]])
    return Feedback(ctx, slate, reward)


def test_item_cf_shrunk_cosine_by_hand() -> None:
    policy = ItemCF(4, 2, 1, shrinkage=1.0, refresh_every=4)
    policy.update(_baskets())
    sim = policy.item_similarity().toarray()
    # columns: item 0 in baskets {0,1}, item 1 in all 4, item 2 in {3}, item 3 in {1,2}
    assert sim[0, 1] == pytest.approx(2 / np.sqrt(2 * 4) * 2 / 3)
    assert sim[0, 3] == pytest.approx(1 / np.sqrt(2 * 2) * 1 / 2)
    assert sim[0, 2] == 0.0 and sim[0, 0] == 0.0
    assert policy.select(np.array([[0.0]])).slate.tolist() == [[1, 3]]


def test_item_cf_keeps_top_n_neighbours_and_refreshes_on_cadence() -> None:
    policy = ItemCF(4, 2, 1, shrinkage=0.0, n_neighbours=1, refresh_every=5)
    policy.update(_baskets())
    assert policy._neighbours.nnz == 0  # 4 events: no refresh yet, popularity only
    policy.update(Feedback(np.array([[-1.0]]), np.array([[0, 2]]), np.zeros((1, 2))))
    nb = policy._neighbours.toarray()
    # item 1: cos 0.707 with both 0 and 3 (tie to the lower index), 0.5 with 2
    assert np.flatnonzero(nb[1]).tolist() == [0]
    assert nb[1, 0] == pytest.approx(2 / np.sqrt(8))
    # anchor 1: neighbour 0 first, then by popularity (3 in two baskets, 2 in one)
    assert policy.select(np.array([[1.0]])).slate.tolist() == [[0, 3]]


def test_adjusted_cosine_matches_a_dense_reference() -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(0.6, size=(30, 8)).astype(float)
    mat = sp.csr_matrix(counts)
    centred = np.where(counts > 0, counts - (counts.sum(1) / np.maximum((counts > 0).sum(1), 1))[:, None], 0.0)
    binary = (counts > 0).astype(float)
    lam = 3.0
    dot = centred.T @ centred
    norm = np.sqrt((centred**2).sum(0))
    co = binary.T @ binary
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.where(np.outer(norm, norm) > 0, dot / np.outer(norm, norm), 0.0) * co / (co + lam)
    policy = ItemCF(8, 2, 1, similarity="adjusted_cosine", shrinkage=lam)
    policy._matrix = mat
    got = policy.item_similarity().toarray()
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    c = sp.csr_matrix(centred).T.tocsr()
    b = sp.csr_matrix(binary).T.tocsr()
    np.testing.assert_allclose(shrunk_cosine(c, c, b, b, lam).toarray()[0, 1], expected[0, 1], atol=1e-12)


def test_top_n_per_row_ties_go_to_the_lower_column() -> None:
    mat = sp.csr_matrix(np.array([[0.5, 0.9, 0.9, 0.1], [0.0, 0.0, 0.2, 0.3]]))
    assert top_n_per_row(mat, 2).toarray().tolist() == [[0, 0.9, 0.9, 0], [0, 0, 0.2, 0.3]]
    assert top_n_per_row(mat, 1).toarray().tolist() == [[0, 0.9, 0, 0], [0, 0, 0, 0.3]]


def _shopper_log() -> Feedback:
    # context [anchor, shopper]: shopper 0 {0,1}, shopper 1 {0,1,2}, shopper 2 {3}
    ctx = np.array([[0.0, 0.0], [0.0, 1.0], [-1.0, 2.0]])
    slate = np.array([[1, 2], [1, 2], [3, 1]])
    reward = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    return Feedback(ctx, slate, reward)


def test_user_cf_neighbours_by_hand() -> None:
    policy = UserCF(4, 2, 2, shopper_column=1, n_shoppers=3, shrinkage=0.0, n_neighbours=1, refresh_every=3)
    policy.update(_shopper_log())
    # shopper 0 with anchor 0: current {0, 1}; shopper 1 (cos 2/sqrt(6)) votes for 0, 1, 2; anchor last,
    # item 1 (two interactions) before item 2 (one)
    scores = policy._score_rows(np.array([0]), np.array([0]))
    np.testing.assert_allclose(scores[0], [2 / np.sqrt(6)] * 3 + [0.0])
    assert policy.select(np.array([[0.0, 0.0]])).slate.tolist() == [[1, 2]]
    # anonymous shopper looking at item 3: only shopper 2 holds it, and votes for 3 alone (the anchor)
    assert policy._score_rows(np.array([3]), np.array([-1]))[0].tolist() == [0.0, 0.0, 0.0, 1.0]
    # the shopper's own row never votes for them
    assert policy._score_rows(np.array([-1]), np.array([2]))[0].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_user_cf_without_shopper_ids_is_session_knn() -> None:
    policy = UserCF(4, 2, 1, shrinkage=0.0, n_neighbours=10, refresh_every=4)
    policy.update(_baskets())
    # anchor 3 is in baskets {0,1,3} (cos 1/sqrt(3)) and {1,3} (cos 1/sqrt(2))
    scores = policy._score_rows(np.array([3]), np.array([-1]))[0]
    np.testing.assert_allclose(scores, [1 / np.sqrt(3), 1 / np.sqrt(3) + 1 / np.sqrt(2), 0.0,
                                        1 / np.sqrt(3) + 1 / np.sqrt(2)])


@pytest.mark.parametrize(("params", "message"), [
    pytest.param({"similarity": "pearson"}, "`similarity` must be one of", id="similarity"),
    pytest.param({"shopper_column": 1}, "needs `n_shoppers` >= 1", id="no-shoppers"),
    pytest.param({"shopper_column": 0, "n_shoppers": 3}, "must be different context columns", id="same-column"),
    pytest.param({"refresh_every": 0}, "`refresh_every` must be an integer >= 1", id="refresh"),
    pytest.param({"shrinkage": -1.0}, "`shrinkage` must be in", id="shrinkage"),
])
def test_bad_arguments(params: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        ItemCF(4, 2, 2, **params)


def test_shopper_index_out_of_range_is_a_clear_error() -> None:
    policy = UserCF(4, 2, 2, shopper_column=1, n_shoppers=3)
    with pytest.raises(PolicyError, match=r"shopper indices in \[-1, 2\]"):
        policy.select(np.array([[0.0, 5.0]]))
