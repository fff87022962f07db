"""Errors of the ground-truth world."""

from __future__ import annotations


class WorldError(ValueError):
    """A world was configured or called with input that breaks its contract."""
