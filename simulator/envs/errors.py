"""Errors the environments raise on purpose."""

from __future__ import annotations

from gymnasium.error import ResetNeeded

from simulator.logs.errors import SlatewiseError


class EnvError(SlatewiseError, ValueError):
    """An environment was built or called with input that breaks its contract."""


class InvalidSlateError(EnvError):
    """An action is not a valid slate: wrong shape, out of range, duplicate or ineligible item."""


class ResetNeededError(SlatewiseError, ResetNeeded):
    """``step`` was called before ``reset`` or after the episode ended."""
