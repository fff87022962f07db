"""Estimated propensities against the world's exact ones, and the cross-fit's promise."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simulator.errors import LogValidationError
from simulator.logs import SlateLog, import_obd
from simulator.logs.pscore import estimate_pscore, with_estimated_pscore
from simulator.rollout import Decision
from simulator.world import World, WorldConfig, generate_log, make_logging_policy


class LinearPlackettLuce:
    """A logger whose slates depend on the context alone: Plackett-Luce over ``context @ w + b``.

    It ignores the world's eligibility on purpose, so the logged context holds
    everything the logger used: the case in which the estimate must converge.
    """

    def __init__(self, w: np.ndarray[Any, Any], b: np.ndarray[Any, Any], k: int, seed: int) -> None:
        self.w, self.b, self.k = w, b, k
        self.rng = np.random.default_rng(seed)

    def select(self, context: Any, *, eligible: Any = None, required: Any = None) -> Decision:
        from bandits.slates import plackett_luce_slates  # exact pscore and pscore_item for k <= 3

        slate, pscore, item, _ = plackett_luce_slates(self.rng, np.asarray(context) @ self.w + self.b, self.k)
        return Decision(slate, pscore, item)


def log_ratio(estimate: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Median |log(estimate / truth)| and mean log(estimate / truth)."""
    r = np.log(estimate / truth)
    return float(np.median(np.abs(r))), float(r.mean())


@pytest.mark.slow
def test_a_context_linear_plackett_luce_logger_is_recovered() -> None:
    """Tolerance and why: 20 items x 15 context columns is 300 coefficients per slot, fitted on about
    4,200 training rows per fold; the sampling error of fitted log-probabilities is then roughly
    sqrt(300 / 4,200) ~ 0.27 in spread, and the measured medians are 0.14 (items) and 0.28 (slates:
    three factors). The bounds leave room for other seeds and stay far below what guessing uniformly
    gives (a median of 0.75 here)."""
    world = World(WorldConfig(n_categories=4, items_per_category=5), seed=0)
    rng = np.random.default_rng(5)
    logger = LinearPlackettLuce(rng.normal(size=(world.dim_context, world.n_items)) * 0.5,
                                rng.normal(size=world.n_items) * 0.5, world.k, seed=1)
    log = generate_log(world, logger, 1500, seed=1)
    start = time.perf_counter()
    est = estimate_pscore(log.context, log.slate, log.n_items, groups=log.session_id, seed=0)
    elapsed = time.perf_counter() - start
    item_med, item_mean = log_ratio(est.pscore_item, log.pscore_item)
    slate_med, slate_mean = log_ratio(est.pscore, log.pscore)
    guess_med, _ = log_ratio(np.full_like(log.pscore_item, 1.0 / world.n_items), log.pscore_item)
    assert item_med < 0.2 and abs(item_mean) < 0.08, (item_med, item_mean)
    assert slate_med < 0.35 and abs(slate_mean) < 0.15, (slate_med, slate_mean)
    assert item_med < guess_med / 3
    assert est.log_loss[0] < est.uniform_log_loss - 0.3  # the model knows more than the catalog size
    assert all(0.5 < t < 2.0 for t in est.temperature)  # a well-specified model needs little calibration
    assert elapsed < 120


def test_a_uniform_world_logger() -> None:
    """The world's uniform logger skips the anchor and the cart, which the context does not name, so
    the truth is 1 / (eligible items), 1/39 to about 1/36 here; the estimate cannot see eligibility and
    lands near 1/40: within 0.1 in log-probability (about 10%) for the median row."""
    world = World(WorldConfig(n_categories=4, items_per_category=10), seed=0)
    log = generate_log(world, make_logging_policy("uniform"), 800, seed=3)
    est = estimate_pscore(log.context, log.slate, log.n_items, groups=log.session_id, seed=0, c=0.03)
    item_med, item_mean = log_ratio(est.pscore_item, log.pscore_item)
    slate_med, _ = log_ratio(est.pscore, log.pscore)
    assert item_med < 0.1 and abs(item_mean) < 0.1, (item_med, item_mean)
    assert slate_med < 0.2, slate_med


def test_cross_fitting_never_scores_a_row_with_its_own_session() -> None:
    """Each session shows only its own two items, so a model that never saw the session gives its
    items only the calibration's uniform share: every propensity is exactly share / n_items."""
    n_sessions, rows = 10, 40
    session = np.repeat(np.arange(n_sessions), rows)
    slate = (2 * session + np.tile(np.arange(rows) % 2, n_sessions))[:, None]
    context = np.random.default_rng(0).normal(size=(session.size, 3))
    est = estimate_pscore(context, slate, 2 * n_sessions, groups=session, n_folds=5, seed=0)
    assert np.allclose(est.pscore_item[:, 0], est.uniform_share[0] / (2 * n_sessions))
    assert np.allclose(est.pscore, est.pscore_item[:, 0])  # k = 1: the slate is its one item


def test_the_open_bandit_random_logs(obd_dir: Path) -> None:
    """ZOZO's uniform-random logger (CC BY 4.0 sample): one row per position (k = 1), so the position
    joins the context; the logged propensity is the same for every row, and the estimate matches it
    within 0.1 in log-probability for the median row."""
    log = import_obd(obd_dir, policy="random", campaign="men")
    est_log, est = with_estimated_pscore(log, seed=0, c=0.03)
    assert est.converged and est.c == 0.03
    med, mean = log_ratio(est_log.pscore_item, log.pscore_item)
    assert med < 0.1 and abs(mean) < 0.1, (med, mean)
    assert est_log.metadata.pscore_source == "estimated" and "estimated" in est_log.metadata.source
    assert np.array_equal(est_log.slate, log.slate) and np.array_equal(est_log.reward, log.reward)


def test_too_few_sessions_or_folds() -> None:
    context, slate = np.zeros((6, 1)), np.array([[0], [1], [0], [1], [0], [1]])
    with pytest.raises(LogValidationError, match=r"at least n_folds = 5 sessions to cross-fit, found 3 sessions"):
        estimate_pscore(context, slate, 2, groups=np.array([0, 0, 1, 1, 2, 2]))
    with pytest.raises(LogValidationError, match="at least 2 folds"):
        estimate_pscore(context, slate, 2, n_folds=1)


def test_the_estimate_is_seeded() -> None:
    world = World(WorldConfig(n_categories=3, items_per_category=3), seed=0)
    log: SlateLog = generate_log(world, make_logging_policy("uniform"), 60, seed=0)
    a = estimate_pscore(log.context, log.slate, log.n_items, groups=log.session_id, seed=4, c=0.1)
    b = estimate_pscore(log.context, log.slate, log.n_items, groups=log.session_id, seed=4, c=0.1)
    assert np.array_equal(a.pscore, b.pscore) and a.c == 0.1 and len(a.c_log_loss) == 1
