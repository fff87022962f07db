"""Off-policy evaluation: estimate a policy's value on logs it never ran on, with honest intervals.

Start with :func:`estimate_all`; the per-position estimators are also plain functions
of arrays (:func:`ips`, :func:`snips`, :func:`dr`, ...). See ``docs/ope.md``.
"""

from bandits.ope._data import OPEData, check_action_dist, prepare
from bandits.ope.api import Estimate, default_estimators, estimate_all, estimate_from_arrays
from bandits.ope.estimators import ESTIMATORS
from bandits.ope.intervals import bootstrap_sums, empirical_bernstein_lower
from bandits.ope.position import clipped_ips, dm, dr, dros, ips, replay, sndr, snips, switch_dr
from bandits.ope.recommend import Diagnostics, Recommendation, recommend
from bandits.ope.reward_model import LogisticRewardModel, RidgeRewardModel, SklearnRewardModel
from bandits.ope.session import (
    ESTIMANDS,
    SESSION_ESTIMATORS,
    SessionEstimate,
    SessionRewardModel,
    estimate_sessions,
)
from simulator.errors import OPEError

__all__ = [
    "ESTIMANDS",
    "ESTIMATORS",
    "SESSION_ESTIMATORS",
    "Diagnostics",
    "Estimate",
    "LogisticRewardModel",
    "OPEData",
    "OPEError",
    "Recommendation",
    "RidgeRewardModel",
    "SessionEstimate",
    "SessionRewardModel",
    "SklearnRewardModel",
    "bootstrap_sums",
    "check_action_dist",
    "clipped_ips",
    "default_estimators",
    "dm",
    "dr",
    "dros",
    "empirical_bernstein_lower",
    "estimate_all",
    "estimate_from_arrays",
    "estimate_sessions",
    "ips",
    "prepare",
    "recommend",
    "replay",
    "sndr",
    "snips",
    "switch_dr",
]
