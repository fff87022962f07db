"""Register the slatewise environments with Gymnasium (``import simulator.envs`` does this)."""

from __future__ import annotations

import gymnasium as gym

REPLAY_ID = "slatewise/Replay-v0"
SESSION_ID = "slatewise/Session-v0"


def register_envs() -> None:
    """Register ``slatewise/Replay-v0`` and ``slatewise/Session-v0``; calling it again is harmless."""
    if REPLAY_ID not in gym.registry:
        gym.register(id=REPLAY_ID, entry_point="simulator.envs.replay:ReplayEnv")
    if SESSION_ID not in gym.registry:
        gym.register(id=SESSION_ID, entry_point="simulator.envs.session:SessionEnv",
                     vector_entry_point="simulator.envs.vector:BatchSessionEnv")
