"""Gymnasium environments over logs (replay) and over the simulated shop (sessions).

Importing this package registers ``slatewise/Replay-v0`` and
``slatewise/Session-v0``, so ``import simulator.envs`` comes before
``gymnasium.make("slatewise/Session-v0")``. The stable-baselines3 adapter
lives in :mod:`simulator.envs.sb3` (imported on demand: it loads torch).
"""

from simulator.envs.errors import ResetNeededError
from simulator.envs.estimate import ReplayEstimate
from simulator.envs.protocol import ObservationLike, StepOutcomeLike, WorldLike, merge_sessions
from simulator.envs.registration import REPLAY_ID, SESSION_ID, register_envs
from simulator.envs.replay import ReplayEnv
from simulator.envs.session import SessionEnv
from simulator.envs.slates import SlateSpace, check_slate, check_slates, top_k
from simulator.envs.toy import ToyWorld
from simulator.envs.vector import BatchSessionEnv
from simulator.envs.vector_wrappers import BatchSlateRepair, BatchTopKSlate, repair_slates
from simulator.envs.wrappers import NormalizeContext, SlateMask, TopKSlate
from simulator.errors import EnvError, InvalidSlateError

register_envs()

__all__ = [
    "REPLAY_ID",
    "SESSION_ID",
    "BatchSessionEnv",
    "BatchSlateRepair",
    "BatchTopKSlate",
    "EnvError",
    "InvalidSlateError",
    "NormalizeContext",
    "ObservationLike",
    "ReplayEnv",
    "ReplayEstimate",
    "ResetNeededError",
    "SessionEnv",
    "SlateMask",
    "SlateSpace",
    "StepOutcomeLike",
    "TopKSlate",
    "ToyWorld",
    "WorldLike",
    "check_slate",
    "check_slates",
    "merge_sessions",
    "register_envs",
    "repair_slates",
    "top_k",
]
