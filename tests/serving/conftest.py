from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from serving import create_app
from serving.config import ABExperimentConfig, ArmConfig, ServingConfig

TOKEN = "s3cret-token"


class Clock:
    """A settable UNIX clock."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_config(tmp_path: Path, **changes: Any) -> ServingConfig:
    ab = ABExperimentConfig(
        name="ab", salt="ab-v1", control="control",
        arms=(ArmConfig("control", "linucb", 0.5, {"alpha": 0.5}),
              ArmConfig("treatment", "uniform", 0.5, learn=False)),
        min_decisions_per_stage=50)
    base: dict[str, Any] = {
        "db_path": str(tmp_path / "serving.db"), "model_dir": str(tmp_path / "models"),
        "admin_token": TOKEN, "learner": False, "n_items": 20, "k": 3, "dim_context": 4,
        "reward_window_s": 3600.0,
        "experiments": (ABExperimentConfig(name="default", salt="default-v1", control="control",
                                         arms=(ArmConfig("control", "linucb", 1.0, {"alpha": 1.0}),)),
                        ab),
    }
    base.update(changes)
    return ServingConfig(**base)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app_factory(tmp_path: Path, clock: Clock) -> Callable[..., Flask]:
    def build(**changes: Any) -> Flask:
        return create_app(make_config(tmp_path, **changes), clock=clock)
    return build


@pytest.fixture
def app(app_factory: Callable[..., Flask]) -> Flask:
    return app_factory()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def slate_body(user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "context": [0.5, -1.0, 0.25, 2.0], **extra}


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}
