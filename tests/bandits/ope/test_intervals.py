"""The Poisson bootstrap and the analytic intervals against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import bootstrap_sums, empirical_bernstein_lower
from bandits.ope.intervals import (
    Part,
    Terms,
    clustered_stderr,
    normal_interval,
    poisson_counts,
    replicate_values,
)


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
    hits = sum(empirical_bernstein_lower(rng.beta(0.5, 3.0, 300), 0.95, low=0.0, high=1.0) <= 0.5 / 3.5 for _ in range(400))
    assert hits / 400 >= 0.95


def test_empirical_bernstein_uses_the_known_range_not_the_observed_one() -> None:
    # Z ~ Bernoulli(0.995) on n = 200: in 37% of samples every Z is 1, so the observed range and
    # variance are 0 and a bound from them equals the sample mean 1 > E[Z]. With the known range
    # [0, 1] the bound holds at its level.
    rng = np.random.default_rng(6)
    truth = 0.995
    samples = (rng.random((400, 200)) < truth).astype(float)
    hits = sum(empirical_bernstein_lower(z, 0.95, low=0.0, high=1.0) <= truth for z in samples)
    assert hits / 400 >= 0.95
    with pytest.raises(ValueError, match="outside the stated range"):
        empirical_bernstein_lower(np.array([0.0, 2.0]), 0.95, low=0.0, high=1.0)


def _clustered(rng: np.random.Generator, n_groups: int = 300, size: int = 10) -> tuple[np.ndarray, np.ndarray]:
    groups = np.repeat(np.arange(n_groups), size)
    t = rng.normal(0, 1, n_groups)[groups] + rng.normal(0, 0.3, groups.size)
    return t, groups


def test_clustered_bootstrap_and_stderr_match_the_spread_over_sessions() -> None:
    # 300 sessions of 10 rows sharing a session effect (sd 1) plus noise (sd 0.3): the mean's
    # true standard error is sqrt(1/300 + 0.09/3000) = 0.0580; rows-as-independent gives 0.019.
    rng = np.random.default_rng(7)
    t, groups = _clustered(rng)
    true_se = float(np.sqrt(1 / 300 + 0.09 / 3000))
    terms = Terms((Part(t[:, None]),))
    reps = replicate_values([terms], 2000, seed=1, groups=groups)[0]
    iid = replicate_values([terms], 2000, seed=1)[0]
    assert reps.std() == pytest.approx(true_se, rel=0.15)
    assert iid.std() < 0.5 * true_se
    assert clustered_stderr(t, groups) == pytest.approx(true_se, rel=0.15)
    # one row per group is the iid case
    assert clustered_stderr(t, np.arange(t.size)) == pytest.approx(t.std(ddof=1) / np.sqrt(t.size))


def test_clustered_intervals_cover_at_their_level_over_repeated_logs() -> None:
    rng = np.random.default_rng(8)
    hits_cluster = hits_iid = 0
    for _ in range(200):
        t, groups = _clustered(rng, 100, 10)
        terms = Terms((Part(t[:, None]),))
        low, high, _ = normal_interval(terms, terms.value(), 0.95, groups)
        hits_cluster += low <= 0.0 <= high
        low, high, _ = normal_interval(terms, terms.value(), 0.95)
        hits_iid += low <= 0.0 <= high
    assert 0.90 <= hits_cluster / 200 <= 0.99
    assert hits_iid / 200 < 0.7


def test_estimate_all_resamples_sessions() -> None:
    from bandits.ope import estimate_all
    from simulator.logs import Catalog, SlateLog

    rng = np.random.default_rng(9)
    n_s, size, m = 200, 10, 4
    session = np.repeat(np.arange(n_s), size)
    rate = rng.uniform(0.0, 0.6, n_s)[session]  # shoppers differ: rows of a session are alike
    item = rng.integers(0, m, session.size)
    kw = dict(context=np.zeros((session.size, 1)), slate=item[:, None],
              reward=(rng.random(session.size) < rate).astype(float)[:, None],
              pscore=np.full(session.size, 1 / m), catalog=Catalog.anonymous(m))
    dist = np.full((session.size, m, 1), 1 / m)
    (clustered,) = estimate_all(SlateLog.from_arrays(**kw, session_id=session), dist, estimators=["ips"])
    (iid,) = estimate_all(SlateLog.from_arrays(**kw), dist, estimators=["ips"])
    assert clustered.n_clusters == n_s and iid.n_clusters == n_s * size
    assert clustered.value == iid.value
    assert clustered.stderr > 1.3 * iid.stderr
    assert np.isnan(clustered.lower_bound) and any("independent rows" in w for w in clustered.warnings)
    assert 0.0 <= iid.lower_bound <= iid.value
