"""Engines: local processes and Ray give identical results for the same seeds."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from experiments.config import parse_experiment_config
from experiments.engine import LocalEngine, make_engine
from experiments.simulate import metrics_frame, run_all
from simulator.errors import EngineError

CONFIG: dict[str, Any] = {
    "name": "tiny",
    "seeds": [0, 1],
    "data": {"source": "world", "reward": "revenue"},
    "simulate": {"sessions": 40, "batch_sessions": 20},
    "compare": {"log_sessions": 60, "train_sessions": 40, "estimators": ["ips", "snips", "dr"]},
    "policies": [{"name": "uniform"}, {"name": "linucb", "label": "LinUCB", "params": {"alpha": 0.5}},
                 {"name": "linear_ts", "params": {"n_draws": 8}}],
}


def _square(x: int) -> int:
    return x * x


def test_local_engine_keeps_task_order() -> None:
    assert LocalEngine(2).map(_square, list(range(7)), progress=False) == [x * x for x in range(7)]
    assert LocalEngine(1).map(_square, [], progress=False) == []


def test_unknown_engine_and_stray_address_are_clear() -> None:
    with pytest.raises(EngineError, match="unknown engine 'spark'"):
        make_engine("spark")
    with pytest.raises(EngineError, match="--address only applies"):
        make_engine("local", address="ray://x:10001")


def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(EngineError, match=r"pip install 'slatewise\[ray\]'"):
        make_engine("ray")


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    engine = make_engine("ray", workers=2)
    yield engine
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.slow  # starting Ray takes tens of seconds on a shared machine
@pytest.mark.xdist_group("ray")
def test_ray_simulate_equals_local(ray_engine: Any) -> None:
    cfg = parse_experiment_config(CONFIG)
    local = metrics_frame(run_all(cfg, workers=1, progress=False))
    on_ray = metrics_frame(run_all(cfg, engine=ray_engine, progress=False))
    pd.testing.assert_frame_equal(local, on_ray)


@pytest.mark.ray
@pytest.mark.slow  # starting Ray takes tens of seconds on a shared machine
@pytest.mark.xdist_group("ray")
def test_ray_compare_equals_local(ray_engine: Any) -> None:
    from experiments.compare import compare

    cfg = parse_experiment_config(CONFIG)
    local = compare(cfg, n_bootstrap=50, engine=LocalEngine(1))
    on_ray = compare(cfg, n_bootstrap=50, engine=ray_engine)
    pd.testing.assert_frame_equal(local, on_ray)
    assert set(local["estimator"]) == {"ips", "snips", "dr"}
