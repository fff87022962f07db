"""Off-policy evaluation: estimate a policy's value on logs it never ran on, with honest intervals.

Start with :func:`estimate_all`; see ``docs/ope.md``.
"""

from bandits.ope._data import OPEData, OPEError, check_action_dist, prepare
from bandits.ope.api import Estimate, default_estimators, estimate_all, estimate_from_arrays
from bandits.ope.estimators import ESTIMATORS, pi_weights, uniform_gamma_pinv
from bandits.ope.intervals import bootstrap_sums, empirical_bernstein_lower
from bandits.ope.reward_model import LogisticRewardModel, RidgeRewardModel, SklearnRewardModel

__all__ = [
    "ESTIMATORS",
    "Estimate",
    "LogisticRewardModel",
    "OPEData",
    "OPEError",
    "RidgeRewardModel",
    "SklearnRewardModel",
    "bootstrap_sums",
    "check_action_dist",
    "default_estimators",
    "empirical_bernstein_lower",
    "estimate_all",
    "estimate_from_arrays",
    "pi_weights",
    "prepare",
    "uniform_gamma_pinv",
]
