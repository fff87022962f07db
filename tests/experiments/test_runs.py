"""A whole run: report files, and summary.json's numbers against independent computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from experiments.config import parse_experiment_config
from experiments.runs import run
from simulator.logs import import_obd, save_parquet
from simulator.world import UniformPolicy, World, policy_value

SMALL = {
    "name": "small",
    "seeds": [0, 1],
    "data": {"source": "world", "reward": "revenue"},
    "simulate": {"sessions": 60, "batch_sessions": 30},
    "compare": {"log_sessions": 150, "train_sessions": 60, "estimators": ["ips", "snips", "dr"]},
    "policies": [{"name": "uniform"}, {"name": "linucb", "label": "LinUCB", "params": {"alpha": 0.5}}],
}


def test_world_run_writes_the_report_and_true_numbers(tmp_path: Path) -> None:
    summary = run(parse_experiment_config(SMALL), tmp_path, workers=1, progress=False)
    for name in ("report.html", "report.md", "summary.json", "metrics.parquet"):
        assert (tmp_path / name).is_file()
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img") >= 5 and html.count("src='data:image/png;base64,") == html.count("<img")
    on_disk = json.loads((tmp_path / "summary.json").read_text())
    assert on_disk["simulate"]["policies"].keys() == {"uniform", "LinUCB"}

    # the uniform policy does not learn: its held-out value is the world's true value per session
    ours = summary["simulate"]["policies"]["uniform"]
    truth = policy_value(World.default(seed=0), UniformPolicy(), n_sessions=4000, seed=5).per_session
    assert abs(ours["value"] - truth.value) < 4 * np.hypot(ours["stderr"], truth.stderr)
    assert ours["low"] < ours["value"] < ours["high"]

    cmp_ = on_disk["compare"]["policies"]
    for label in ("uniform", "LinUCB"):
        assert set(cmp_[label]["estimates"]) == {"ips", "snips", "dr"}
        assert np.isfinite(cmp_[label]["truth"])
        for e in cmp_[label]["estimates"].values():
            if e["estimate"] is None:  # e.g. SNIPS when no logged slate has weight: NaN, written as null
                assert e["low"] is None and not e["covered"]
                continue
            assert e["low"] <= e["estimate"] <= e["high"]
            assert e["covered"] == (e["low"] <= cmp_[label]["truth"] <= e["high"])


def test_log_source_compare_scores_the_second_half(tmp_path: Path, obd_dir: Path) -> None:
    log_path = tmp_path / "men.parquet"
    save_parquet(import_obd(obd_dir, policy="random", campaign="men"), log_path)
    cfg = parse_experiment_config({"name": "obd", "seeds": [0], "data": {"source": "log", "path": str(log_path)},
                        "compare": {"estimators": ["ips", "snips"]}, "policies": [{"name": "uniform"}]})
    summary = run(cfg, tmp_path / "out", simulate=False, progress=False)
    est = summary["compare"]["policies"]["uniform"]
    assert est["truth"] is None
    # uniform logging and a uniform policy: every weight is 1, IPS is the second half's mean click
    clicks = pd.read_csv(obd_dir / "random" / "men" / "men.csv", index_col=0)["click"].to_numpy()
    assert est["estimates"]["ips"]["estimate"] == pytest.approx(clicks[5000:].mean(), rel=1e-9)
    assert (tmp_path / "out" / "report.html").is_file()
