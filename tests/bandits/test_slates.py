"""Slate machinery against brute-force enumeration, hand-computed cases and properties."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bandits import slates as S


def brute_force_pl(logits: np.ndarray, k: int, eligible: np.ndarray,
                   required: np.ndarray) -> tuple[np.ndarray, dict[tuple[int, ...], float]]:
    """Per-stage marginals and slate probabilities of the PL rule by enumerating every slate."""
    m = logits.size
    w = np.where(eligible, np.exp(logits - logits[eligible].max()), 0.0)
    req = required & eligible
    dist = np.zeros((m, k))
    probs: dict[tuple[int, ...], float] = {}
    for slate in itertools.permutations(range(m), k):
        p, rest = 1.0, w.copy()
        for stage, item in enumerate(slate):
            pool = np.where(req, w, 0.0) if stage == 0 and req.any() else rest
            p *= pool[item] / pool.sum()
            rest[item] = 0.0
        if p > 0:
            probs[slate] = p
            for stage, item in enumerate(slate):
                dist[item, stage] += p
    return dist, probs


def valid_slates(m: int, k: int, eligible: np.ndarray, required: np.ndarray) -> list[tuple[int, ...]]:
    req = required & eligible
    return [s for s in itertools.permutations(range(m), k)
            if eligible[list(s)].all() and (not req.any() or req[list(s)].any())]


# ---------------------------------------------------------------------------- top-k
def test_topk_hand_case_with_ties_examination_and_required() -> None:
    scores = np.array([[0.5, 0.9, 0.9, 0.1, 0.7]])
    # ties go to the lower index
    assert S.topk_slates(scores, 3).tolist() == [[1, 2, 4]]
    # best item to the most examined slot (slot 2 here)
    order = S.slot_order(np.array([0.5, 0.3, 1.0]), 3)
    assert order.tolist() == [2, 0, 1]
    assert S.topk_slates(scores, 3, order=order).tolist() == [[2, 4, 1]]
    # required item 3 replaces the last stage (item 4)
    required = np.array([[False, False, False, True, False]])
    assert S.topk_slates(scores, 3, required=required).tolist() == [[1, 2, 3]]
    # ineligible items are skipped; -inf scores still beat ineligible items
    eligible = np.array([[True, False, True, True, True]])
    assert S.topk_slates(np.array([[-np.inf, 5, 1, -np.inf, 2]]), 3, eligible).tolist() == [[4, 2, 0]]
    # the best *required* item is the one ranked first among required ones
    req2 = np.array([[True, False, False, True, False]])
    assert S.topk_slates(scores, 3, required=req2).tolist() == [[1, 2, 0]]


def test_topk_required_ignored_when_no_required_item_is_eligible() -> None:
    scores = np.array([[3.0, 2.0, 1.0, 0.0]])
    eligible = np.array([[True, True, True, False]])
    required = np.array([[False, False, False, True]])
    assert S.topk_slates(scores, 2, eligible, required).tolist() == [[0, 1]]


# ---------------------------------------------------------------------------- uniform
@pytest.mark.parametrize(("k", "elig", "req"), [
    (1, [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]),
    (3, [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]),
    (2, [1, 0, 1, 1, 1], [1, 1, 0, 0, 0]),
    (3, [1, 1, 1, 0, 1], [1, 1, 1, 0, 1]),
    (1, [1, 1, 1, 1, 1], [0, 0, 1, 1, 0]),
])
def test_uniform_marginals_match_enumeration(k: int, elig: list[int], req: list[int]) -> None:
    eligible, required = np.array([elig], dtype=bool), np.array([req], dtype=bool)
    valid = valid_slates(5, k, eligible[0], required[0])
    counts = np.zeros(5)
    for s in valid:
        counts[s[0]] += 1
    marginal, pscore = S.uniform_marginals(5, k, eligible, required)
    np.testing.assert_allclose(marginal[0], counts / len(valid), rtol=1e-12)
    np.testing.assert_allclose(pscore, 1 / len(valid), rtol=1e-12)


def test_uniform_sampler_is_uniform_over_valid_slates() -> None:
    rng = np.random.default_rng(0)
    eligible = np.array([[True, True, True, False, True, True]])
    required = np.array([[False, False, True, True, False, True]])
    n = 60_000
    slate, pscore, _ = S.uniform_slates(rng, n, 6, 3, np.repeat(eligible, n, 0), np.repeat(required, n, 0))
    valid = valid_slates(6, 3, eligible[0], required[0])
    codes = {s: i for i, s in enumerate(valid)}
    idx = np.array([codes[tuple(s)] for s in slate.tolist()])  # KeyError if a slate were invalid
    observed = np.bincount(idx, minlength=len(valid))
    from scipy import stats
    assert stats.chisquare(observed).pvalue > 1e-4
    np.testing.assert_allclose(pscore, 1 / len(valid))


# ---------------------------------------------------------------------------- epsilon-greedy
def test_epsilon_greedy_pscores_are_exact() -> None:
    rng = np.random.default_rng(1)
    greedy = np.array([[0, 1]])
    slate, pscore, pscore_item = S.epsilon_greedy_slates(rng, np.repeat(greedy, 4000, 0), 0.2, 4)
    # 12 ordered slates of 2 from 4 items; the greedy one gets 0.8 + 0.2 / 12.
    is_greedy = (slate == greedy).all(axis=1)
    np.testing.assert_allclose(pscore[is_greedy], 0.8 + 0.2 / 12)
    np.testing.assert_allclose(pscore[~is_greedy], 0.2 / 12)
    assert abs(is_greedy.mean() - (0.8 + 0.2 / 12)) < 0.03
    # item 0 at slot 0: 0.8 + 0.2 * 1/4
    at0 = slate[:, 0] == 0
    np.testing.assert_allclose(pscore_item[at0, 0], 0.8 + 0.05)
    dist = S.epsilon_greedy_dist(greedy, 0.2, 4)
    np.testing.assert_allclose(dist[0, :, 0], [0.85, 0.05, 0.05, 0.05])
    np.testing.assert_allclose(dist[0, :, 1], [0.05, 0.85, 0.05, 0.05])


# ---------------------------------------------------------------------------- Plackett-Luce
@settings(max_examples=40, deadline=None)
@given(m=st.integers(3, 6), k=st.integers(1, 3), seed=st.integers(0, 2**32 - 1),
       scale=st.sampled_from([0.1, 1.0, 5.0, 40.0]), with_required=st.booleans())
def test_pl_marginals_and_pscores_are_exact(m: int, k: int, seed: int, scale: float,
                                            with_required: bool) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((1, m)) * scale
    eligible = rng.random((1, m)) < 0.8
    eligible[0, rng.choice(m, size=k, replace=False)] = True
    required = (rng.random((1, m)) < 0.3) & with_required
    dist, probs = brute_force_pl(logits[0], k, eligible[0], required[0])
    ours, used = S.plackett_luce_stage_dist(rng, logits, k, eligible, required)
    assert used is None
    np.testing.assert_allclose(ours[0], dist, atol=1e-12, rtol=1e-9)
    slate, pscore, pscore_item, _ = S.plackett_luce_slates(rng, np.repeat(logits, 50, 0), k,
                                                          np.repeat(eligible, 50, 0),
                                                          np.repeat(required, 50, 0))
    for s, p, pi in zip(slate.tolist(), pscore, pscore_item, strict=True):
        assert p == pytest.approx(probs[tuple(s)], rel=1e-9, abs=1e-300)
        np.testing.assert_allclose(pi, [dist[i, j] for j, i in enumerate(s)], rtol=1e-9, atol=1e-300)


def test_pl_marginals_stay_exact_with_one_dominant_item() -> None:
    """Remaining masses near zero are summed directly, not found by subtraction."""
    logits = np.array([[60.0, 0.0, -1.0, -2.0, 59.0]])
    eligible = np.ones((1, 5), dtype=bool)
    required = np.zeros((1, 5), dtype=bool)
    dist, _ = brute_force_pl(logits[0], 3, eligible[0], required[0])
    ours, _ = S.plackett_luce_stage_dist(np.random.default_rng(0), logits, 3)
    np.testing.assert_allclose(ours[0], dist, rtol=1e-9, atol=1e-300)
    assert ours[0, 2, 2] > 0  # a tiny but positive third-stage probability survives


@pytest.mark.parametrize("logits", [
    pytest.param([3.0, 3.0, 3.0, -1.0, 0.5, 3.0, -40.0, 2.0, 2.0, 0.0, 1.0, 3.0], id="ties-at-the-top"),
    pytest.param([80.0, 79.0, 78.5, 0.0, -3.0, 1.0, -2.0, 0.5, 2.0, -1.0, 0.0, 0.0], id="three-dominant"),
    pytest.param([0.0, 90.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -5.0], id="one-dominant-middle"),
])
def test_pl_third_stage_kernel_matches_enumeration_at_twelve_items(logits: list[float]) -> None:
    """The compiled third stage keeps relative precision where the heaviest items hold the mass."""
    row = np.array([logits])
    eligible = np.ones((1, 12), dtype=bool)
    eligible[0, 9] = False  # an ineligible item has probability 0 at every stage
    dist, _ = brute_force_pl(row[0], 3, eligible[0], np.zeros(12, dtype=bool))
    ours, _ = S.plackett_luce_stage_dist(np.random.default_rng(0), row, 3, eligible)
    np.testing.assert_allclose(ours[0], dist, rtol=1e-9, atol=1e-300)
    assert (ours[0, 9] == 0).all()


def test_pl_beyond_three_slots_uses_stated_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    logits = rng.standard_normal((1, 6))
    eligible, required = np.ones((1, 6), dtype=bool), np.zeros((1, 6), dtype=bool)
    exact, _ = brute_force_pl(logits[0], 4, eligible[0], required[0])
    ours, used = S.plackett_luce_stage_dist(rng, logits, 4, n_draws=50_000)
    assert used == 50_000
    np.testing.assert_allclose(ours[0, :, :3], exact[:, :3], rtol=1e-9)
    assert np.abs(ours[0, :, 3] - exact[:, 3]).max() < 0.01


def test_pl_draws_follow_the_slate_probabilities() -> None:
    rng = np.random.default_rng(4)
    logits = np.array([[1.0, 0.2, -0.5, 0.0]])
    n = 40_000
    slate, _, _, _ = S.plackett_luce_slates(rng, np.repeat(logits, n, 0), 2)
    _, probs = brute_force_pl(logits[0], 2, np.ones(4, dtype=bool), np.zeros(4, dtype=bool))
    keys = sorted(probs)
    index = {s: i for i, s in enumerate(keys)}
    observed = np.bincount([index[tuple(s)] for s in slate.tolist()], minlength=len(keys))
    from scipy import stats
    assert stats.chisquare(observed, np.array([probs[s] for s in keys]) * n).pvalue > 1e-4


# ---------------------------------------------------------------------------- Monte Carlo
def test_monte_carlo_of_deterministic_scores_is_the_top_k() -> None:
    scores = np.array([[0.1, 0.5, 0.3, 0.9]])

    def draw(rows: slice, n_draws: int) -> np.ndarray:
        return np.repeat(scores[rows][:, None, :], n_draws, axis=1)

    dist, freq = S.monte_carlo_slates(draw, 1, 4, 2, 10, chosen=np.array([[3, 1]]))
    np.testing.assert_array_equal(dist[0], S.onehot_dist(np.array([[3, 1]]), 4)[0])
    assert freq is not None and freq[0] == 1.0


@settings(max_examples=30, deadline=None)
@given(m=st.integers(2, 9), k=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_every_mechanism_gives_valid_slates(m: int, k: int, seed: int) -> None:
    k = min(k, m)
    rng = np.random.default_rng(seed)
    n = 20
    eligible = rng.random((n, m)) < 0.7
    for row in range(n):
        eligible[row, rng.choice(m, size=k, replace=False)] = True
    required = rng.random((n, m)) < 0.2
    scores = rng.standard_normal((n, m))
    allowed = required & eligible
    out = [S.topk_slates(scores, k, eligible, required),
           S.uniform_slates(rng, n, m, k, eligible, required)[0],
           S.epsilon_greedy_slates(rng, S.topk_slates(scores, k, eligible, required), 0.5, m,
                                   eligible, required)[0],
           S.plackett_luce_slates(rng, scores, k, eligible, required, n_draws=50)[0]]
    for slate in out:
        assert slate.shape == (n, k)
        assert all(len(set(row)) == k for row in slate.tolist())
        assert np.take_along_axis(eligible, slate, axis=1).all()
        hit = np.take_along_axis(allowed, slate, axis=1).any(axis=1)
        assert hit[allowed.any(axis=1)].all()


@settings(max_examples=60, deadline=None)
@given(m=st.integers(1, 40), k=st.integers(1, 14), seed=st.integers(0, 2**32 - 1), masked=st.booleans())
def test_topk_equals_a_stable_full_sort(m: int, k: int, seed: int, masked: bool) -> None:
    """Every top-k path (argmax rounds, partition) ranks like a stable sort, ties to the lower index."""
    k = min(k, m)
    rng = np.random.default_rng(seed)
    n = 30
    scores = rng.integers(-2, 3, size=(n, m)).astype(float)  # many ties
    scores[rng.random((n, m)) < 0.05] = np.inf
    scores[rng.random((n, m)) < 0.05] = -np.inf
    eligible = None
    if masked:
        eligible = rng.random((n, m)) < 0.7
        for row in range(n):
            eligible[row, rng.choice(m, size=k, replace=False)] = True
    key = np.maximum(scores, -np.finfo(float).max)
    if eligible is not None:
        key = np.where(eligible, key, -np.inf)
    expected = np.argsort(-key, axis=1, kind="stable")[:, :k]
    np.testing.assert_array_equal(S.topk_slates(scores, k, eligible), expected)
