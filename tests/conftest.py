"""Fixtures shared by the whole suite."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def obd_dir() -> Path:
    """The Open Bandit Dataset `men` sample copied under tests/data/obd (ZOZO, Inc., CC BY 4.0)."""
    return DATA / "obd"
