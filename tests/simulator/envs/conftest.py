"""Fixtures for the environment tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.logs import SlateLog, import_obd


@pytest.fixture(scope="session")
def obd_random_men(obd_dir: Path) -> SlateLog:
    """The OBD `men` sample logged by the uniform-random policy (k = 1, 3 positions)."""
    return import_obd(obd_dir, policy="random", campaign="men")


@pytest.fixture(scope="session")
def obd_bts_men(obd_dir: Path) -> SlateLog:
    """The OBD `men` sample logged by Bernoulli Thompson sampling."""
    return import_obd(obd_dir, policy="bts", campaign="men")
