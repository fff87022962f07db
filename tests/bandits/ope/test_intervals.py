"""The Poisson bootstrap and the analytic intervals against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import bootstrap_sums, empirical_bernstein_lower
from bandits.ope.intervals import Part, Terms, poisson_counts, replicate_values


def test_poisson_counts_have_mean_and_variance_one() -> None:
    c = poisson_counts(np.random.default_rng(0), (20, 50_000))
    assert c.mean() == pytest.approx(1.0, abs=0.003)
    assert c.var() == pytest.approx(1.0, abs=0.006)
    assert c.min() == 0 and float(c.max()).is_integer()


@pytest.mark.parametrize("zero_share", [0.0, 0.95])
def test_bootstrap_of_a_mean_has_the_textbook_spread(zero_share: float) -> None:
    # sparse (95% zero rows, the fast path) and dense columns: the replicates' spread is s / sqrt(n)
    rng = np.random.default_rng(1)
    n = 40_000
    t = rng.exponential(2.0, n) * (rng.random(n) >= zero_share)
    reps = replicate_values([Terms((Part(t[:, None]),))], 2000, seed=3)[0]
    assert reps.mean() == pytest.approx(t.mean(), rel=0.01)
    assert reps.std() == pytest.approx(t.std() / np.sqrt(n), rel=0.08)


def test_bootstrap_sums_total_count_column() -> None:
    cols = np.random.default_rng(2).random((1000, 2))
    sums = bootstrap_sums(cols, 300, seed=0)
    assert sums.shape == (300, 3)
    assert sums[:, -1].mean() == pytest.approx(1000, rel=0.01)
    assert np.allclose(sums[:, -1], np.round(sums[:, -1]))  # counts are whole numbers
    # same seed, same replicates
    assert np.array_equal(sums, bootstrap_sums(cols, 300, seed=0))


def test_ratio_influence_function_is_the_delta_method() -> None:
    rng = np.random.default_rng(4)
    num, den = rng.random((500, 1)), rng.random((500, 1)) + 0.5
    terms = Terms((Part(num, den),))
    ratio = num.sum() / den.sum()
    expected = (num[:, 0] - ratio * den[:, 0]) / den.mean()
    assert np.allclose(terms.influence_function(), expected)


def test_empirical_bernstein_holds_at_its_level() -> None:
    rng = np.random.default_rng(5)
    hits = sum(empirical_bernstein_lower(rng.beta(0.5, 3.0, 300), 0.95) <= 0.5 / 3.5 for _ in range(400))
    assert hits / 400 >= 0.95
