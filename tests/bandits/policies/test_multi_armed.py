"""Context-free bandits on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from bandits import UCB1, EpsilonGreedy, Feedback, Popularity, Softmax


def _feedback(k: int = 2) -> Feedback:
    """Three slates of two; with ``k = 1`` the same events as one row per position."""
    slate = np.array([[0, 1], [0, 2], [0, 1]])
    reward = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    if k == 1:
        return Feedback(np.zeros((6, 1)), slate.reshape(6, 1), reward.reshape(6, 1))
    return Feedback(np.zeros((3, 1)), slate, reward)


def test_ucb1_bounds_by_hand() -> None:
    policy = UCB1(4, 2, c=0.5)
    policy.update(_feedback())
    t = 6.0
    pulls = np.array([3.0, 2.0, 1.0])
    means = np.array([2 / 3, 1 / 2, 1.0])
    expected = means + 0.5 * np.sqrt(2 * np.log(t) / pulls)
    scores = policy._scores(np.zeros((1, 1)))[0]
    np.testing.assert_allclose(scores[:3], expected)
    assert scores[3] == np.inf  # never shown: first
    assert policy.select(np.zeros((1, 1))).slate.tolist() == [[3, int(np.argmax(expected))]]


def test_epsilon_greedy_means_and_exploration() -> None:
    policy = EpsilonGreedy(4, 1, epsilon=0.4, initial_value=0.25)
    policy.update(_feedback(k=1))
    np.testing.assert_allclose(policy._scores(np.zeros((1, 1)))[0], [2 / 3, 0.5, 1.0, 0.25])
    dist = policy.action_dist(np.zeros((1, 1)))[0, :, 0]
    np.testing.assert_allclose(dist, [0.1, 0.1, 0.7, 0.1])


def test_popularity_counts_rewards() -> None:
    policy = Popularity(4, 2)
    policy.update(_feedback())
    assert policy.select(np.zeros((1, 1))).slate.tolist() == [[0, 1]]  # 2 clicks each; index breaks tie


def test_softmax_first_slot_is_the_softmax_of_means() -> None:
    policy = Softmax(3, 1, temperature=0.5)
    policy.update(_feedback(k=1))
    means = np.array([2 / 3, 1 / 2, 1.0])
    expected = np.exp(means / 0.5) / np.exp(means / 0.5).sum()
    np.testing.assert_allclose(policy.action_dist(np.zeros((1, 1)))[0, :, 0], expected, rtol=1e-12)
    d = policy.select(np.zeros((5, 1)))
    np.testing.assert_allclose(d.pscore, expected[d.slate[:, 0]], rtol=1e-12)
    assert d.n_draws is None


@pytest.mark.parametrize("k", [4, 5])
def test_softmax_states_its_monte_carlo_beyond_three_slots(k: int) -> None:
    policy = Softmax(6, k, n_draws=123)
    assert policy.select(np.zeros((1, 1))).n_draws == 123
