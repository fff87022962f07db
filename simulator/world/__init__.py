"""A ground-truth shop: catalog, shoppers, multi-step sessions, exact truth, logs and calibration.

Core API (batch-first over ``n`` sessions)::

    world = World.default(seed=0)
    state = world.new_sessions(n, rng)          # SessionState
    world.context(state)                        # (n, d)
    world.eligible(state)                       # (n, n_items) bool
    world.expected_reward(state, slate)         # (n,) for slate (n, k)
    world.best_slate(state)                     # ((n, k), (n,))
    outcome = world.step(state, slate, rng)     # StepOutcome
    world.observe(state)                        # Observation: context, eligible, required at once
    world.replace_sessions(state, rows, rng)    # new shoppers at rows, in place

The model is written once, as compiled kernels (simulator.world._kernels)
over named records (simulator.world.tables).

See docs/world.md.
"""

from simulator.errors import WorldError
from simulator.rollout import Decision, DecisionLike, DistPolicyLike, PolicyLike
from simulator.world.calibrate import (
    Calibration,
    CalibrationRow,
    CrossCheck,
    LogLossCheck,
    calibrate,
    cross_check,
)
from simulator.world.config import WorldConfig
from simulator.world.core import Observation, SessionState, StepOutcome, World
from simulator.world.generate import LogRecorder, generate_log, slot_reward
from simulator.world.io import load_world, save_world, world_from_json, world_to_json
from simulator.world.params import WorldParams
from simulator.world.policies import (
    LOGGING_POLICIES,
    SCORES,
    EpsilonGreedyPolicy,
    SoftmaxPolicy,
    UniformPolicy,
    WorldPolicy,
    make_logging_policy,
)
from simulator.world.truth import (
    PolicyValue,
    ValueEstimate,
    decision_value,
    exact_session_value,
    first_decision_value,
    policy_value,
)

__all__ = [
    "LOGGING_POLICIES",
    "SCORES",
    "Calibration",
    "CalibrationRow",
    "CrossCheck",
    "Decision",
    "DecisionLike",
    "DistPolicyLike",
    "EpsilonGreedyPolicy",
    "LogLossCheck",
    "LogRecorder",
    "Observation",
    "PolicyLike",
    "PolicyValue",
    "SessionState",
    "SoftmaxPolicy",
    "StepOutcome",
    "UniformPolicy",
    "ValueEstimate",
    "World",
    "WorldConfig",
    "WorldError",
    "WorldParams",
    "WorldPolicy",
    "calibrate",
    "cross_check",
    "decision_value",
    "exact_session_value",
    "first_decision_value",
    "generate_log",
    "load_world",
    "make_logging_policy",
    "policy_value",
    "save_world",
    "slot_reward",
    "world_from_json",
    "world_to_json",
]
