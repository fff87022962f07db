"""Session estimators against a two-step shop whose session value is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import OPEError
from bandits.ope.session import estimate_sessions, session_grid, session_terms
from simulator.logs import Catalog, SlateLog

M = 3
P0 = np.array([0.7, 0.4, 0.2])  # click rate at step 0
STAY = np.array([0.1, 0.9, 0.5])  # chance the session goes on after the step-0 item
P1 = np.array([0.2, 0.3, 0.8])  # click rate at step 1


UNIFORM = np.full(M, 1 / M)


def _log(seed: int, n_sessions: int, logger: np.ndarray = UNIFORM) -> SlateLog:
    rng = np.random.default_rng(seed)
    a0 = rng.choice(M, n_sessions, p=logger)
    r0 = rng.random(n_sessions) < P0[a0]
    stay = rng.random(n_sessions) < STAY[a0]
    n1 = int(stay.sum())
    a1 = rng.choice(M, n1, p=logger)
    r1 = rng.random(n1) < P1[a1]
    session = np.r_[np.arange(n_sessions), np.flatnonzero(stay)]
    step = np.r_[np.zeros(n_sessions, int), np.ones(n1, int)]
    item = np.r_[a0, a1]
    return SlateLog.from_arrays(context=step[:, None].astype(float), slate=item[:, None],
                                reward=np.r_[r0, r1].astype(float)[:, None], pscore=logger[item],
                                catalog=Catalog.anonymous(M), session_id=session, step=step)


def _target(log: SlateLog, first: int, second: int) -> np.ndarray:
    dist = np.zeros((log.n_rounds, M, 1))
    dist[np.asarray(log.step) == 0, first, 0] = 1.0
    dist[np.asarray(log.step) == 1, second, 0] = 1.0
    return dist


def _truth(first: int, second: int) -> float:
    return float(P0[first] + STAY[first] * P1[second])


def test_session_grid_orders_steps_within_sessions() -> None:
    code, pos, T = session_grid(np.array([5, 3, 5, 3, 5]), np.array([2, 1, 0, 0, 1]))
    assert T == 3
    assert code.tolist() == [1, 0, 1, 0, 1] and pos.tolist() == [2, 1, 0, 0, 1]


def test_pdis_hand_case() -> None:
    # two sessions: (w=2, r=1), (w=0.5, r=2) and (w=4, r=0)
    terms, rho = session_terms("pdis", np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([1.0, 2.0, 0.0]),
                               np.array([2.0, 0.5, 4.0]))
    assert rho.tolist() == [[2.0, 1.0], [4.0, 4.0]]
    assert terms.value() == pytest.approx((2 * 1 + 1 * 2 + 0) / 2)
    wpdis, _ = session_terms("wpdis", np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([1.0, 2.0, 0.0]),
                             np.array([2.0, 0.5, 4.0]))
    assert wpdis.value() == pytest.approx(2 / 6 + 2 / 5)


@pytest.mark.slow
def test_session_value_ranks_where_decision_value_misleads_and_intervals_cover() -> None:
    # item 0 clicks most now but ends sessions; the patient target (1 then 2) is worth more per session
    myopic, patient = (0, 2), (1, 2)
    assert P0[myopic[0]] > P0[patient[0]] and _truth(*patient) > _truth(*myopic)
    names = ["pdis", "wpdis", "dr", "wdr"]
    cover = dict.fromkeys(names, 0)
    ranked = dict.fromkeys(names, 0)
    values: dict[str, list[float]] = {k: [] for k in names}
    n_logs = 150
    for s in range(n_logs):
        log = _log(s, 1500)
        est_p = estimate_sessions(log, _target(log, *patient), n_bootstrap=200, seed=s)
        est_m = estimate_sessions(log, _target(log, *myopic), n_bootstrap=200, seed=s)
        for ep, em in zip(est_p, est_m, strict=True):
            assert ep.estimand == "session" and ep.supported
            cover[ep.estimator] += ep.low <= _truth(*patient) <= ep.high
            ranked[ep.estimator] += ep.value > em.value
            values[ep.estimator].append(ep.value)
    for k in names:
        assert 0.88 <= cover[k] / n_logs <= 0.995, (k, cover[k] / n_logs)
        assert ranked[k] / n_logs >= 0.9, (k, ranked[k])
        v = np.asarray(values[k])
        assert abs(v.mean() - _truth(*patient)) < 3 * v.std(ddof=1) / np.sqrt(n_logs) + 0.01, k


def test_thin_support_gives_no_number() -> None:
    logger = np.array([0.995, 0.004, 0.001])
    log = _log(0, 2000, logger)
    for e in estimate_sessions(log, _target(log, 2, 2), n_bootstrap=50):
        assert not e.supported and np.isnan(e.value) and np.isnan(e.low)
        assert any(w.startswith("support too thin") for w in e.warnings)


def test_position_logs_are_refused() -> None:
    log = SlateLog.from_arrays(context=np.zeros((4, 1)), slate=np.zeros((4, 1), int), reward=np.zeros((4, 1)),
                               pscore=np.ones(4), catalog=Catalog.anonymous(2), position=np.zeros(4, int))
    with pytest.raises(OPEError, match="one row per position"):
        estimate_sessions(log, np.broadcast_to(np.array([1.0, 0.0])[None, :, None], (4, 2, 1)))
