"""Strict JSON from what the experiments hold (numpy scalars and arrays, NaN)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def plain_json(value: Any) -> Any:
    """Make ``value`` strict JSON: numpy to Python, NaN and infinity to null."""
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain_json(value.tolist())
    if isinstance(value, np.generic):
        return plain_json(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
