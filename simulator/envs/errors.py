"""The one environment error that must also be Gymnasium's (the rest are in :mod:`simulator.errors`)."""

from __future__ import annotations

from gymnasium.error import ResetNeeded

from simulator.errors import SlatewiseError


class ResetNeededError(SlatewiseError, ResetNeeded):
    """``step`` was called before ``reset`` or after the episode ended."""
