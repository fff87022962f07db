"""The pseudoinverse estimator's linear algebra and its guards at real catalog sizes."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import OPEError, estimate_all
from bandits.ope import slate as SLATE
from simulator.logs import Catalog, SlateLog
from simulator.world import World, generate_log, make_logging_policy


def _uniform_slates(rng: np.random.Generator, n: int, m: int, k: int) -> np.ndarray:
    return np.argsort(rng.random((n, m)), axis=1)[:, :k]


@pytest.mark.parametrize("m", [60, 300])
def test_uniform_target_has_weight_one_at_real_catalog_sizes(m: int) -> None:
    # 1_s^T Gamma^+ q_uniform = 1 exactly in theory, for every slate
    rng = np.random.default_rng(0)
    k = 3
    slates = _uniform_slates(rng, 200, m, k)
    w = SLATE.pi_weights(slates, np.full((200, m, k), 1 / m), m)
    assert np.abs(w - 1).max() < 1e-6


def test_cutoff_ignores_round_off_in_the_null_space() -> None:
    # Gamma's null space comes out of an eigendecomposition as noise near 1e-17; the pseudoinverse
    # must not invert it. Noise 1e-13 of the largest eigenvalue there leaves the result unchanged.
    m, k = 60, 3
    gamma = SLATE.uniform_gamma(m, k)
    vals, vecs = np.linalg.eigh(gamma)
    null = vecs[:, vals < 1e-10 * vals.max()]
    assert null.shape[1] == k - 1
    noisy = gamma + 1e-13 * vals.max() * null @ null.T
    assert np.allclose(SLATE.psd_pinv(noisy), SLATE.psd_pinv(gamma), atol=1e-9)
    # and it is the Moore-Penrose inverse: G G+ G = G, G+ G G+ = G+
    g = SLATE.psd_pinv(gamma)
    assert np.allclose(gamma @ g @ gamma, gamma, atol=1e-12)
    assert np.allclose(g @ gamma @ g, g, atol=1e-6 * np.abs(g).max())


@pytest.mark.parametrize(("m", "k"), [(5, 2), (60, 3), (300, 3), (1000, 4)])
def test_n_eligible_is_read_back_from_uniform_pscores(m: int, k: int) -> None:
    e = np.arange(k, m + 1)
    assert np.array_equal(SLATE.uniform_n_eligible(1 / SLATE.falling(e, k), k, m), e)
    # 0.5% off a uniform pscore is no uniform pscore, even at propensities near 4e-8
    assert SLATE.uniform_n_eligible(np.array([1.005 / SLATE.falling(m, k)]), k, m)[0] == -1


def _uniform_log(m: int, k: int, pscore: float, n: int = 400) -> SlateLog:
    rng = np.random.default_rng(1)
    slates = _uniform_slates(rng, n, m, k)
    return SlateLog.from_arrays(context=np.zeros((n, 1)), slate=slates,
                                reward=(rng.random((n, k)) < 0.1).astype(float), pscore=np.full(n, pscore),
                                pscore_item=np.full((n, k), 1 / m), catalog=Catalog.anonymous(m))


def test_pi_refuses_a_log_drawn_from_fewer_items_than_the_catalog() -> None:
    # pscore of uniform draws from m - 1 items (the anchor never eligible): 1% off, at ~4e-8
    m, k = 300, 3
    log = _uniform_log(m, k, 1 / SLATE.falling(m - 1, k))
    with pytest.raises(OPEError, match=r"fewer \(row 0: 299 eligible items"):
        estimate_all(log, np.full((log.n_rounds, m, k), 1 / m), estimators=["pi"], n_bootstrap=10)


def test_pi_refuses_pscores_that_are_not_uniform() -> None:
    m, k = 300, 3
    log = _uniform_log(m, k, 1.005 / SLATE.falling(m, k))
    with pytest.raises(OPEError, match="no uniform draw"):
        estimate_all(log, np.full((log.n_rounds, m, k), 1 / m), estimators=["pi"], n_bootstrap=10)


def test_pi_on_a_uniform_log_over_the_whole_catalog_weights_a_uniform_target_by_one() -> None:
    m, k = 300, 3
    log = _uniform_log(m, k, 1 / SLATE.falling(m, k))
    (e,) = estimate_all(log, np.full((log.n_rounds, m, k), 1 / m), estimators=["pi"], n_bootstrap=10)
    assert e.mean_weight == pytest.approx(1.0, abs=1e-6)
    assert e.max_weight == pytest.approx(1.0, abs=1e-6)


def test_pi_refuses_a_world_log() -> None:
    world = World.default(seed=0)
    log = generate_log(world, make_logging_policy("uniform"), 30, seed=0)
    dist = np.full((log.n_rounds, log.n_items, log.n_positions), 1 / log.n_items)
    with pytest.raises(OPEError, match="estimator 'pi'"):
        estimate_all(log, dist, estimators=["pi"], n_bootstrap=10)
