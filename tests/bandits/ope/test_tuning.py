"""Tuned estimators (clipped IPS, switch-DR, DRos) choose their parameter again in every replicate."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import estimate_all
from bandits.ope import position as pos
from bandits.ope.intervals import Terms, Tuned, _tuned_replicates, poisson_counts, replicate_values
from simulator.logs import Catalog, SlateLog


def _heavy(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    w = rng.lognormal(0.0, 1.5, (n, 1))
    r = (rng.random((n, 1)) < 0.3).astype(float)
    return w, r


def test_each_replicate_tunes_on_its_own_resample() -> None:
    # against a direct computation: expand rows by their Poisson counts and tune on the expanded data
    rng = np.random.default_rng(0)
    w, r = _heavy(rng, 400)
    grid = pos.tuning_grid("clip", w)
    terms, bias = pos.candidates("clip", grid, w, r)
    tuned = Tuned(terms, bias, None, grid)
    counts = poisson_counts(np.random.default_rng(1), (50, 400)).astype(np.float64)
    cols = np.hstack([terms, terms**2, bias, np.ones((400, 1))])
    reps = _tuned_replicates(tuned, counts @ cols, 0, counts.sum(axis=1))
    picks = set()
    for b in range(50):
        rows = np.repeat(np.arange(400), counts[b].astype(int))
        t, bb = pos.candidates("clip", grid, w[rows], r[rows])
        g = int(np.argmin(pos.mse_scores(t, bb)))
        picks.add(g)
        assert reps[b] == pytest.approx(t[:, g].mean(), rel=1e-9)
    assert len(picks) > 1  # the choice does move between replicates: holding it fixed would hide that


def test_tuned_replicates_through_replicate_values_match_the_full_data_choice_on_average() -> None:
    rng = np.random.default_rng(2)
    w, r = _heavy(rng, 3000)
    grid = pos.tuning_grid("clip", w)
    terms, bias = pos.candidates("clip", grid, w, r)
    tuned = Tuned(terms, bias, None, grid)
    t = Terms.from_tuned(tuned)
    # the point estimate is clipped IPS at the M tune_clip picks on the full data
    assert grid[tuned.choice()] == pos.tune_clip(w, r)
    assert t.value() == pytest.approx(float((np.minimum(w, pos.tune_clip(w, r)) * r).mean()))
    reps = replicate_values([t], 500, seed=0)[0]
    assert abs(np.median(reps) - t.value()) < 3 * reps.std()


def test_estimate_all_names_the_tuning_and_the_estimand() -> None:
    rng = np.random.default_rng(3)
    n, m = 2000, 5
    p = np.array([0.6, 0.1, 0.1, 0.1, 0.1])
    item = rng.choice(m, n, p=p)
    log = SlateLog.from_arrays(context=np.zeros((n, 1)), slate=item[:, None],
                               reward=(rng.random(n) < 0.1 + 0.1 * item).astype(float)[:, None],
                               pscore=p[item], catalog=Catalog.anonymous(m))
    target = np.zeros((n, m, 1))
    target[:, 4] = 1.0
    for name in ("clipped-ips", "switch-dr", "dros"):
        (e,) = estimate_all(log, target, estimators=[name], n_bootstrap=100)
        assert any("chosen again inside every bootstrap replicate" in w for w in e.warnings), name
        assert any(w.startswith("estimand: the shrunk value") for w in e.warnings), name
    (fixed,) = estimate_all(log, target, estimators=["clipped-ips"], params={"clipped-ips": {"clip": 20.0}},
                            n_bootstrap=100)
    assert any("(given)" in w for w in fixed.warnings)
