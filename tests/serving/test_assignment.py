from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from serving.assignment import N_BUCKETS, assign, bucket_counts, bucket_of, initial_table, rebalance

weights = st.lists(st.integers(0, 100), min_size=2, max_size=5).filter(lambda w: sum(w) > 0).map(
    lambda w: [x / sum(w) for x in w])


@settings(max_examples=30, deadline=None)
@given(weights)
def test_counts_match_the_weights(w: list[float]) -> None:
    counts = bucket_counts(w)
    assert counts.sum() == N_BUCKETS
    assert np.all(np.abs(counts - np.asarray(w) * N_BUCKETS) < 1.0)


@settings(max_examples=30, deadline=None)
@given(weights, st.data())
def test_rebalance_moves_exactly_the_total_variation(w_old: list[float], data: st.DataObject) -> None:
    w_new = data.draw(st.lists(st.integers(0, 100), min_size=len(w_old), max_size=len(w_old))
                      .filter(lambda w: sum(w) > 0).map(lambda w: [x / sum(w) for x in w]))
    old = initial_table(w_old, "salt")
    new = rebalance(old, w_new, "salt")
    before, after = bucket_counts(w_old), bucket_counts(w_new)
    assert np.array_equal(np.bincount(new, minlength=len(w_new)), after)
    moved = int((old != new).sum())
    assert moved == int(np.maximum(before - after, 0).sum())  # the least any reassignment can move
    # buckets only leave arms that shrank and only join arms that grew
    changed = old != new
    assert np.all(before[old[changed]] > after[old[changed]])
    assert np.all(after[new[changed]] > before[new[changed]])


def test_assignment_is_deterministic_and_salted() -> None:
    table = initial_table([0.5, 0.5], "s1")
    users = [f"user-{i}" for i in range(2000)]
    arms = [assign(u, "s1", table) for u in users]
    assert arms == [assign(u, "s1", table) for u in users]
    assert 0.45 < np.mean(arms) < 0.55
    other = initial_table([0.5, 0.5], "s2")
    agree = np.mean([assign(u, "s2", other) == a for u, a in zip(users, arms, strict=True)])
    assert 0.4 < agree < 0.6  # a new salt reshuffles independently
    assert 0 <= bucket_of("x", "s1") < N_BUCKETS


def test_ramp_keeps_every_treated_user_treated() -> None:
    table = initial_table([0.99, 0.01], "ramp")
    users = [f"u{i}" for i in range(20_000)]
    treated = {u for u in users if assign(u, "ramp", table) == 1}
    for stage in (0.05, 0.25, 0.5):
        table = rebalance(table, [1 - stage, stage], "ramp")
        now = {u for u in users if assign(u, "ramp", table) == 1}
        assert treated <= now
        assert abs(len(now) / len(users) - stage) < 0.02
        treated = now


@pytest.mark.parametrize(("w", "message"), [
    pytest.param([-0.5, 1.5], "non-negative", id="negative"),
    pytest.param([0.0, 0.0], "positive sum", id="zero"),
    pytest.param([float("nan"), 1.0], "non-negative", id="nan"),
])
def test_bad_weights(w: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bucket_counts(w)
