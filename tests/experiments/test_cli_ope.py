"""`slatewise ope ...` from the command line, checked against independent computations on the OBD sample."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from experiments.cli import main
from simulator.logs import import_obd, save_parquet


@pytest.fixture(scope="module")
def men_log(obd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ope") / "men.parquet"
    save_parquet(import_obd(obd_dir, policy="random", campaign="men"), path)
    return path


def _bts_dist_by_hand(obd_dir: Path, n_draws: int, seed: int) -> np.ndarray:
    """bts's (n_items, 3) slot probabilities: top-3 of Beta draws, counted (independent of the policy code)."""
    prior = json.loads((obd_dir / "bts_prior.json").read_text())["men"]
    alpha, beta = np.asarray(prior["alpha"]), np.asarray(prior["beta"])
    theta = np.random.default_rng(seed).beta(alpha, beta, size=(n_draws, alpha.size))
    top = np.argsort(-theta, axis=1)[:, :3]
    dist = np.zeros((alpha.size, 3))
    for slot in range(3):
        dist[:, slot] = np.bincount(top[:, slot], minlength=alpha.size) / n_draws
    return dist


def test_uniform_policy_on_uniform_log_is_the_mean_click(men_log: Path, obd_dir: Path) -> None:
    # Random logging puts each of the 34 items at each position with probability 1/34, as does the
    # uniform policy: every importance weight is exactly 1, so IPS and SNIPS are the mean click.
    raw = pd.read_csv(obd_dir / "random" / "men" / "men.csv", index_col=0)
    result = CliRunner().invoke(main, ["ope", str(men_log), "--policy", "uniform", "--estimators",
                                       "ips,snips", "--json", "--n-bootstrap", "50"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    by_name = {e["estimator"]: e for e in doc["estimates"]}
    assert by_name["ips"]["value"] == pytest.approx(raw["click"].mean(), rel=1e-9)
    assert by_name["snips"]["value"] == pytest.approx(raw["click"].mean(), rel=1e-9)
    assert by_name["ips"]["max_weight"] == pytest.approx(1.0)
    assert by_name["ips"]["low"] <= by_name["ips"]["value"] <= by_name["ips"]["high"]


def test_obd_benchmark_matches_a_hand_computation(obd_dir: Path) -> None:
    result = CliRunner().invoke(main, ["ope", "obd-benchmark", str(obd_dir), "--campaign", "men",
                                       "--n-bootstrap", "50", "--n-draws", "20000", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    (campaign,) = doc["campaigns"]
    bts = pd.read_csv(obd_dir / "bts" / "men" / "men.csv", index_col=0)
    assert campaign["truth"] == pytest.approx(bts["click"].mean(), rel=1e-12)

    raw = pd.read_csv(obd_dir / "random" / "men" / "men.csv", index_col=0)
    dist = _bts_dist_by_hand(obd_dir, 200_000, seed=123)
    weight = dist[raw["item_id"].to_numpy(), raw["position"].to_numpy() - 1] / raw["propensity_score"]
    ips_by_hand = float((weight * raw["click"]).mean())
    by_name = {e["estimator"]: e for e in campaign["estimators"]}
    assert {"dm", "ips", "snips", "dr"} <= set(by_name)
    # Two Monte Carlo action distributions (20k and 200k draws) agree to about 1%.
    assert by_name["ips"]["value"] == pytest.approx(ips_by_hand, rel=0.03)
    for row in by_name.values():
        assert row["relative_error"] == pytest.approx(abs(row["value"] - campaign["truth"]) / campaign["truth"])
        assert row["low"] <= row["high"]


def test_bad_policy_and_estimator_names_are_clear(men_log: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["ope", str(men_log), "--policy", "no_such_policy"])
    assert result.exit_code != 0
    assert "unknown policy 'no_such_policy'" in result.output and "--policy" in result.output

    result = runner.invoke(main, ["ope", str(men_log), "--policy", "epsilon_greedy:epsilon"])
    assert result.exit_code != 0 and "key=value" in result.output

    result = runner.invoke(main, ["ope", str(men_log), "--policy", "uniform", "--estimators", "ips,magic"])
    assert result.exit_code != 0 and "magic" in result.output and "--estimators" in result.output


def test_missing_log_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ope", str(tmp_path / "nope.parquet"), "--policy", "uniform"])
    assert result.exit_code != 0
    assert "nope.parquet" in result.output and "Traceback" not in result.output


def test_estimand_session_on_a_uniform_session_log(tmp_path: Path) -> None:
    # uniform logging over 3 items and the uniform policy: every weight is 1, so PDIS is the mean
    # session total and the JSON names the estimand
    from simulator.logs import Catalog, SlateLog

    rng = np.random.default_rng(0)
    session = np.repeat(np.arange(300), 3)
    step = np.tile(np.arange(3), 300)
    reward = (rng.random((900, 1)) < 0.3).astype(float)
    log = SlateLog.from_arrays(context=np.zeros((900, 1)), slate=rng.integers(0, 3, (900, 1)), reward=reward,
                               pscore=np.full(900, 1 / 3), catalog=Catalog.anonymous(3), session_id=session,
                               step=step)
    path = tmp_path / "sessions.parquet"
    save_parquet(log, path)
    result = CliRunner().invoke(main, ["ope", str(path), "--policy", "uniform", "--estimand", "session",
                                       "--n-bootstrap", "50", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["estimand"] == "session" and doc["n_sessions"] == 300
    by_name = {e["estimator"]: e for e in doc["estimates"]}
    assert set(by_name) == {"pdis", "wpdis", "dr", "wdr"}
    assert all(e["estimand"] == "session" for e in doc["estimates"])
    assert by_name["pdis"]["value"] == pytest.approx(reward.sum() / 300, rel=1e-12)
    text = CliRunner().invoke(main, ["ope", str(path), "--policy", "uniform", "--estimand", "session",
                                     "--n-bootstrap", "20"])
    assert text.exit_code == 0 and "value per session" in text.output


def test_estimand_session_refuses_a_position_log(men_log: Path) -> None:
    result = CliRunner().invoke(main, ["ope", str(men_log), "--policy", "uniform", "--estimand", "session"])
    assert result.exit_code != 0
    assert "one row per position" in result.output
