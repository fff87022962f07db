"""Each estimator against a tiny case worked by hand, and against a known truth over many logs."""

from __future__ import annotations

import numpy as np
import pytest

from bandits.ope import ESTIMATORS, OPEError, estimate_all
from simulator.logs import Catalog, LogValidationError, SlateLog
from tests.bandits.ope.synthetic import Bandit


class Constant:
    """A scikit-learn-style reward model that always predicts ``value``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def fit(self, X: np.ndarray, y: np.ndarray) -> Constant:
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(X.shape[0], self.value)


def _bandit_case() -> tuple[SlateLog, np.ndarray]:
    # 4 rows, 2 items, 1 slot. pi(item 0) per row = 0.6, 0.4, 0.2, 0.5.
    # logged items 0, 1, 0, 1 with pscore 0.5, 0.25, 0.8, 0.5 and rewards 1, 0, 0, 1
    # w = 0.6/0.5, 0.6/0.25, 0.2/0.8, 0.5/0.5 = 1.2, 2.4, 0.25, 1.0
    log = SlateLog.from_arrays(context=np.zeros((4, 1)), slate=np.array([[0], [1], [0], [1]]),
                               reward=np.array([[1.0], [0.0], [0.0], [1.0]]),
                               pscore=np.array([0.5, 0.25, 0.8, 0.5]),
                               pscore_item=np.array([[0.5], [0.25], [0.8], [0.5]]),
                               catalog=Catalog.anonymous(2))
    p0 = np.array([0.6, 0.4, 0.2, 0.5])
    return log, np.stack([p0, 1 - p0], axis=1)[:, :, None]


def _values(log: SlateLog, dist: np.ndarray, names: list[str], **kw: object) -> dict[str, float]:
    res = estimate_all(log, dist, estimators=names, reward_model=Constant(0.5), n_folds=0,
                       n_bootstrap=20, **kw)  # type: ignore[arg-type]
    return {e.estimator: e.value for e in res}


def test_bandit_estimators_match_the_hand_computation() -> None:
    log, dist = _bandit_case()
    v = _values(log, dist, ["ips", "snips", "dm", "dr", "sndr", "switch-dr", "dros", "clipped-ips"],
                params={"switch-dr": {"tau": 2.0}, "dros": {"lambda": 1.0}, "clipped-ips": {"clip": 1.0}})
    assert v["ips"] == pytest.approx((1.2 + 1.0) / 4)                  # 0.55
    assert v["snips"] == pytest.approx(2.2 / 4.85)                     # sum w = 4.85
    assert v["dm"] == pytest.approx(0.5)
    # DR = 0.5 + mean(w (r - 0.5)) = 0.5 + (0.6 - 1.2 - 0.125 + 0.5) / 4
    assert v["dr"] == pytest.approx(0.44375)
    # SNDR with a constant model is SNIPS: 0.5 + (-0.225) / 4.85
    assert v["sndr"] == pytest.approx(0.5 - 0.225 / 4.85)
    # switch at tau = 2 drops row 1 (w = 2.4): 0.5 + (0.6 - 0.125 + 0.5) / 4
    assert v["switch-dr"] == pytest.approx(0.74375)
    # DRos, lambda = 1: w / (w^2 + 1) = 0.49180, 0.35503, 0.23529, 0.5
    shrunk = np.array([1.2 / 2.44, 2.4 / 6.76, 0.25 / 1.0625, 0.5])
    assert v["dros"] == pytest.approx(0.5 + float((shrunk * np.array([0.5, -0.5, -0.5, 0.5])).mean()))
    assert v["clipped-ips"] == pytest.approx(0.5)                      # min(w, 1) r = 1, 0, 0, 1


def test_snips_with_no_positive_weight_gives_no_number_and_says_why() -> None:
    # the policy always shows the item the log never showed: every weight is 0, so
    # SNIPS is 0 / 0 while IPS is a well-defined 0
    log, _ = _bandit_case()
    log = SlateLog.from_arrays(context=np.zeros((4, 1)), slate=np.array([[0], [0], [0], [0]]),
                               reward=np.array([[1.0], [0.0], [0.0], [1.0]]), pscore=np.full(4, 0.5),
                               pscore_item=np.full((4, 1), 0.5), catalog=Catalog.anonymous(2))
    dist = np.stack([np.zeros(4), np.ones(4)], axis=1)[:, :, None]
    ips, snips = estimate_all(log, dist, estimators=["ips", "snips"], n_bootstrap=0, interval="normal")
    assert ips.value == 0.0
    assert np.isnan(snips.value) and np.isnan(snips.low) and np.isnan(snips.high)
    assert any(w.startswith("no estimate:") for w in snips.warnings)


def test_replay_keeps_the_rows_a_deterministic_policy_agrees_with() -> None:
    log, _ = _bandit_case()
    always_item0 = np.zeros((4, 2, 1))
    always_item0[:, 0] = 1.0
    # rows 0 and 2 logged item 0, with rewards 1 and 0
    assert _values(log, always_item0, ["replay"])["replay"] == pytest.approx(0.5)


def _slate_case() -> dict[str, object]:
    # 2 rows, 3 items, k = 2. Slates (0, 1) and (2, 0); rewards (1, 1) and (0, 1).
    dist = np.zeros((2, 3, 2))
    dist[0, :, 0] = [0.6, 0.2, 0.2]
    dist[0, :, 1] = [0.25, 0.5, 0.25]
    dist[1, :, 0] = [0.4, 0.4, 0.2]
    dist[1, :, 1] = [0.3, 0.35, 0.35]
    log = SlateLog.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0, 1], [2, 0]]),
                               reward=np.array([[1.0, 1.0], [0.0, 1.0]]), pscore=np.array([0.2, 0.1]),
                               pscore_item=np.array([[0.5, 0.4], [0.3, 0.6]]), catalog=Catalog.anonymous(3))
    return {"log": log, "dist": dist, "eval_pscore": np.array([0.3, 0.05]),
            "eval_pscore_cascade": np.array([[0.6, 0.3], [0.2, 0.05]]),
            "pscore_cascade": np.array([[0.5, 0.2], [0.3, 0.1]])}


def test_slate_estimators_match_the_hand_computation() -> None:
    case = _slate_case()
    log, dist = case.pop("log"), case.pop("dist")
    v = _values(log, dist, ["sips", "iips", "rips", "cascade-dr"], **case)  # type: ignore[arg-type]
    # SIPS: w = 0.3/0.2, 0.05/0.1 = 1.5, 0.5 times total reward 2, 1
    assert v["sips"] == pytest.approx((3.0 + 0.5) / 2)
    # IIPS: slot weights (0.6/0.5, 0.5/0.4) and (0.2/0.3, 0.3/0.6): (1.2 + 1.25 + 0.5) / 2
    assert v["iips"] == pytest.approx(1.475)
    # RIPS: prefix weights (1.2, 1.5) and (2/3, 0.5): (1.2 + 1.5 + 0.5) / 2
    assert v["rips"] == pytest.approx(1.6)
    # cascade-DR with q = 0.5 everywhere (prefix weights w1, w2; previous 1, w1):
    # row 0: 1.2 (1 - 0.5 - 0.5) + 1 (0.5 + 0.5) + 1.5 (1 - 0.5) + 1.2 (0.5) = 2.35
    # row 1: (2/3) (0 - 1) + 1 (1) + 0.5 (1 - 0.5) + (2/3) (0.5) = 0.91667
    assert v["cascade-dr"] == pytest.approx((2.35 + 0.9166666667) / 2)


def test_every_registered_estimator_has_a_hand_case() -> None:
    covered = {"ips", "snips", "dm", "dr", "sndr", "switch-dr", "dros", "clipped-ips", "replay", "sips",
               "iips", "rips", "cascade-dr", "pi"}  # pi: exact expectation in test_slate_exact.py
    assert set(ESTIMATORS) == covered


def test_repeated_logs_unbiased_and_intervals_cover() -> None:
    bandit = Bandit()
    truth = bandit.truth()
    names = ["ips", "snips", "dr", "dm"]
    est = {k: [] for k in names}
    covered = {k: 0 for k in names}
    n_logs = 200
    for s in range(n_logs):
        log, dist = bandit.log(1500, seed=s)
        for e in estimate_all(log, dist, estimators=names, n_bootstrap=200, seed=s):
            est[e.estimator].append(e.value)
            covered[e.estimator] += e.low <= truth <= e.high
    for k in names:
        values = np.asarray(est[k])
        se = values.std(ddof=1) / np.sqrt(n_logs)
        assert abs(values.mean() - truth) < 3 * se, (k, values.mean(), truth, se)
        assert 0.90 <= covered[k] / n_logs <= 0.99, (k, covered[k] / n_logs)


def test_normal_interval_and_bernstein_bound() -> None:
    bandit = Bandit(seed=1)
    truth = bandit.truth()
    below = covered = 0
    for s in range(120):
        log, dist = bandit.log(1500, seed=1000 + s)
        (e,) = estimate_all(log, dist, estimators=["ips"], interval="normal", seed=s)
        covered += e.low <= truth <= e.high
        below += e.lower_bound <= truth
        assert e.lower_bound < e.value and e.interval_method == "normal"
    assert covered / 120 >= 0.88
    assert below / 120 >= 0.95  # a valid 95% lower bound (conservative in practice)


def test_wrong_propensities_are_flagged() -> None:
    log, dist = Bandit().log(4000, seed=3, pscore_scale=0.7)
    (e,) = estimate_all(log, dist, estimators=["ips"], n_bootstrap=50)
    assert e.mean_weight == pytest.approx(1 / 0.7, rel=0.1)
    assert any("propensities" in w for w in e.warnings)

    log, dist = Bandit().log(4000, seed=3)
    (e,) = estimate_all(log, dist, estimators=["ips"], n_bootstrap=50)
    assert not any("propensities" in w for w in e.warnings)


def test_custom_reward_model_interval_is_flagged() -> None:
    log, dist = Bandit().log(500, seed=1)
    (e,) = estimate_all(log, dist, estimators=["dm"], reward_model=Constant(0.3), n_bootstrap=20)
    assert e.value == pytest.approx(0.3)
    assert any("custom reward model" in w for w in e.warnings)


def test_bad_inputs_give_clear_errors() -> None:
    log, dist = _bandit_case()
    with pytest.raises(OPEError, match=r"`action_dist` has shape \(4, 3, 1\)"):
        estimate_all(log, np.full((4, 3, 1), 1 / 3))
    bad = dist.copy()
    bad[2, 0, 0] = 0.9
    with pytest.raises(OPEError, match=r"row 2, slot 0 sums to 1\.7"):
        estimate_all(log, bad)
    neg = dist.copy()
    neg[1] = [[1.5], [-0.5]]
    with pytest.raises(OPEError, match="negative"):
        estimate_all(log, neg)
    with pytest.raises(OPEError, match="unknown estimator"):
        estimate_all(log, dist, estimators=["ips", "magic"])
    with pytest.raises(OPEError, match="needs `eval_pscore`"):
        estimate_all(log, dist, estimators=["sips"])
    with pytest.raises(OPEError, match="eval_pscore` must have shape"):
        estimate_all(log, dist, estimators=["sips"], eval_pscore=np.ones(3))
    with pytest.raises(OPEError, match="level"):
        estimate_all(log, dist, level=95)
    with pytest.raises(LogValidationError, match="pscore"):
        SlateLog.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0], [1]]), reward=np.zeros((2, 1)),
                             pscore=np.array([0.5, 0.0]), pscore_item=np.array([[0.5], [0.0]]),
                             catalog=Catalog.anonymous(2))


class LeastSquares:
    """A duck-typed ridge: the same fit as the built-in one, but slatewise cannot see its uncertainty."""

    def fit(self, X: np.ndarray, y: np.ndarray) -> LeastSquares:
        self.beta = np.linalg.solve(X.T @ X + np.eye(X.shape[1]), X.T @ y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X @ self.beta


def test_dm_interval_that_holds_the_model_fixed_is_over_confident() -> None:
    # The same model, with and without its own uncertainty in the interval.
    bandit = Bandit()
    truth = bandit.truth()
    fixed = honest = 0
    for s in range(80):
        log, dist = bandit.log(1500, seed=500 + s)
        (a,) = estimate_all(log, dist, estimators=["dm"], reward_model=LeastSquares(), seed=s, n_bootstrap=100)
        (b,) = estimate_all(log, dist, estimators=["dm"], seed=s, n_bootstrap=100)
        assert a.value == pytest.approx(b.value, rel=1e-2)  # same fit but for the intercept penalty
        fixed += a.low <= truth <= a.high
        honest += b.low <= truth <= b.high
    assert fixed / 80 < 0.5 < 0.85 <= honest / 80


def test_estimate_from_arrays_matches_the_hand_case() -> None:
    from bandits.ope import estimate_from_arrays

    reward = np.array([[1.0], [0.0], [0.0], [1.0]])
    p = np.array([[0.5], [0.25], [0.8], [0.5]])
    pi = np.array([[0.6], [0.6], [0.2], [0.5]])
    e = estimate_from_arrays(reward, p, pi)
    assert e.value == pytest.approx(0.55)
    # IPS terms 1.2, 0, 0, 1.0: sd 0.6608, normal half-width 1.96 * sd / 2
    assert e.high - e.value == pytest.approx(1.959964 * np.std([1.2, 0, 0, 1.0], ddof=1) / 2, rel=1e-5)
    assert estimate_from_arrays(reward, p, pi, estimator="snips").value == pytest.approx(2.2 / 4.85)
    with pytest.raises(OPEError, match="pi_item"):
        estimate_from_arrays(reward, p, pi[:3])
