"""Estimates from mergeable per-partition sums equal the in-memory ones; Ray gives the same numbers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bandits.ope import OPEError, estimate_all
from bandits.ope.partitioned import estimate_partitioned, list_partitions, ray_data_map, split_log
from experiments.cli import main
from simulator.logs import save_parquet
from tests.bandits.ope.synthetic import Bandit

BANDIT = Bandit(seed=2)


class EvalDist:
    """The synthetic evaluation policy as a picklable ``policy_fn``."""

    def __call__(self, log: Any) -> np.ndarray:
        return BANDIT.evaluation(np.asarray(log.context))[:, :, None]


def test_partitioned_equals_in_memory() -> None:
    log, dist = BANDIT.log(5000, seed=4)
    whole = {e.estimator: e for e in estimate_all(log, dist, estimators=["ips", "snips", "dr"])}
    parts = estimate_partitioned(split_log(log, 5), EvalDist(), n_bootstrap=300, seed=1)
    for p in parts:
        if p.estimator in ("ips", "snips"):  # no model: the same sums, added in another order
            assert p.value == pytest.approx(whole[p.estimator].value, rel=1e-12)
        else:  # DR: cross-fitted with partitions as folds instead of random folds
            assert p.value == pytest.approx(whole["dr"].value, abs=2 * whole["dr"].stderr)
        assert p.low < p.value < p.high
        assert p.high - p.low == pytest.approx(whole[p.estimator].high - whole[p.estimator].low, rel=0.25)
    # the partition layout changes nothing but the order of additions (and the bootstrap's seeds)
    again = estimate_partitioned(split_log(log, 5), EvalDist(), n_bootstrap=300, seed=1)
    assert [a.to_dict() for a in again] == [p.to_dict() for p in parts]
    other = estimate_partitioned(split_log(log, 3), EvalDist(), n_bootstrap=300, seed=1)
    assert other[0].value == pytest.approx(parts[0].value, rel=1e-12)


def test_needs_two_partitions_and_a_folder(tmp_path: Path) -> None:
    log, _ = BANDIT.log(200, seed=1)
    with pytest.raises(OPEError, match="at least 2 partitions"):
        estimate_partitioned([log], EvalDist())
    with pytest.raises(OPEError, match=r"no \*\.parquet partitions"):
        list_partitions(tmp_path)


def test_cli_scores_a_folder_of_partitions(tmp_path: Path) -> None:
    log, _ = BANDIT.log(3000, seed=5)
    for i, part in enumerate(split_log(log, 3)):
        save_parquet(part, tmp_path / f"part-{i:03d}.parquet")
    result = CliRunner().invoke(main, ["ope", str(tmp_path), "--policy", "uniform", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["partitions"] == 3 and doc["n_rounds"] == 3000
    uniform = np.full((3000, BANDIT.n_items, 1), 1 / BANDIT.n_items)
    (ips,) = estimate_all(log, uniform, estimators=["ips"], n_bootstrap=10)
    got = {e["estimator"]: e for e in doc["policies"][0]["estimates"]}
    assert got["ips"]["value"] == pytest.approx(ips.value, rel=1e-12)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_ray_data_equals_local(local_ray: None, tmp_path: Path) -> None:
    log, _ = BANDIT.log(4000, seed=6)
    files = []
    for i, part in enumerate(split_log(log, 4)):
        files.append(tmp_path / f"part-{i}.parquet")
        save_parquet(part, files[-1])
    local = estimate_partitioned(files, EvalDist(), n_bootstrap=200, seed=3)
    on_ray = estimate_partitioned(files, EvalDist(), n_bootstrap=200, seed=3, engine=ray_data_map)
    for a, b in zip(local, on_ray, strict=True):
        assert a.value == pytest.approx(b.value, rel=1e-12, abs=1e-15)
        assert a.low == pytest.approx(b.low, rel=1e-9)
        assert a.high == pytest.approx(b.high, rel=1e-9)
