"""``slatewise compare`` per decision and per session: the estimand in every output, numbers against truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from bandits.ope import SESSION_ESTIMATORS
from experiments.cli import main
from experiments.config import ConfigError, parse_experiment_config
from experiments.runs import run
from simulator.world import UniformPolicy, World, WorldConfig, policy_value

SMALL_WORLD = Path(__file__).resolve().parents[2] / "experiments" / "configs" / "world_small.toml"
SESSION_TOML = f"""name = "sessions"
seeds = [0]

[data]
source = "world"
world_config = "{SMALL_WORLD}"
reward = "click"

[simulate]
batch_sessions = 30

[compare]
logging_policy = "uniform"
log_sessions = 1000
train_sessions = 30
estimand = "session"
truth_sessions = 4000

[[policies]]
name = "uniform"
"""


def _raw(**compare: Any) -> dict[str, Any]:
    return {"name": "t", "seeds": [0], "data": {"source": "world"}, "compare": compare,
            "policies": [{"name": "uniform"}]}


@pytest.fixture(scope="module")
def session_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("sessions")
    config = folder / "sessions.toml"
    config.write_text(SESSION_TOML)
    result = CliRunner().invoke(main, ["compare", str(config), "--out", str(folder / "out"), "--no-progress",
                                       "--workers", "1"])
    assert result.exit_code == 0, result.output
    return folder / "out", result.output


def test_session_compare_names_the_estimand_and_covers_the_loggers_own_value(
        session_run: tuple[Path, str]) -> None:
    out, printed = session_run
    summary = json.loads((out / "summary.json").read_text())["compare"]
    assert summary["estimand"] == "session" and summary["unit"] == "click per session"
    assert summary["truth_sessions"] == 4000
    (entry,) = summary["policies"].values()
    assert set(entry["estimates"]) == set(SESSION_ESTIMATORS)
    # uniform logging evaluating the uniform policy: every weight is 1, so PDIS is the mean logged
    # session total, and every estimate lies within a few standard errors of the truth
    for name, e in entry["estimates"].items():
        assert e["supported"] and e["n_sessions"] == 1000
        assert e["mean_weight"] == pytest.approx(1.0, abs=1e-9)
        assert abs(e["estimate"] - entry["truth"]) < 4 * np.hypot(e["stderr"], entry["truth_stderr"]), name
        assert e["covered"] == (e["low"] <= entry["truth"] <= e["high"])
        assert "recommended" not in e
    assert "recommendation" not in entry
    md, html = (out / "report.md").read_text(), (out / "report.html").read_text()
    assert "Off-policy evaluation against the truth (estimand: per session, click per session)" in md
    assert "estimand: per session" in html
    assert "estimand: per session (click per session)" in printed


def test_session_truth_is_policy_values_session_value(session_run: tuple[Path, str]) -> None:
    out, _ = session_run
    entry = json.loads((out / "summary.json").read_text())["compare"]["policies"]["uniform"]
    world = World(WorldConfig.from_toml(SMALL_WORLD), seed=0)
    assert world.reward_type == "click"
    truth = policy_value(world, UniformPolicy(), n_sessions=4000, seed=123).per_session
    assert not truth.exact
    assert abs(entry["truth"] - truth.value) < 4 * np.hypot(entry["truth_stderr"], truth.stderr)
    assert entry["truth_stderr"] == pytest.approx(truth.stderr, rel=0.2)


def test_config_refuses_a_bad_estimand_and_decision_estimators_for_sessions() -> None:
    with pytest.raises(ConfigError, match=r"`compare.estimand`: unknown value 'sessions'.*'decision', 'session'"):
        parse_experiment_config(_raw(estimand="sessions"))
    with pytest.raises(ConfigError) as err:
        parse_experiment_config(_raw(estimand="session", estimators=["pdis", "ips", "snips"]))
    text = str(err.value)
    assert "`compare.estimators[1]`: 'ips' is not an estimator of compare.estimand = 'session'" in text
    assert "`compare.estimators[2]`: 'snips'" in text and str(list(SESSION_ESTIMATORS)) in text
    with pytest.raises(ConfigError, match=r"`compare.estimand`: 'session' needs a world"):
        parse_experiment_config(_raw(estimand="session") | {"data": {"source": "log", "path": __file__}})
    spec = parse_experiment_config(_raw(estimand="session")).compare
    assert spec.estimand == "session" and spec.estimators == SESSION_ESTIMATORS
    spec = parse_experiment_config(_raw()).compare
    assert spec.estimand == "decision" and spec.estimators == ("ips", "snips", "dr")


#: The decision-estimand numbers of this config before the estimand existed (commit 287e4c0).
DECISION = {"name": "g", "seeds": [0], "data": {"source": "world", "reward": "revenue"},
            "simulate": {"batch_sessions": 30},
            "compare": {"log_sessions": 120, "train_sessions": 60, "estimators": ["ips", "snips", "dr"]},
            "policies": [{"name": "uniform"}, {"name": "linucb", "label": "LinUCB", "params": {"alpha": 0.5}}]}
BEFORE = {
    "uniform": (17.305420415106443, {"ips": (21.726029869648475, 11.898230686245215, 32.789473733418255),
                                     "snips": (19.938005927037118, 11.78201913723554, 33.23963882400342),
                                     "dr": (23.162368363171435, 0.0, 61.09940456130341)}),
    "LinUCB": (19.43494970896635, {"ips": (0.0, 0.0, 3337.62), "snips": (None, None, None),
                                   "dr": (59.57198145319657, 0.0, 116.06292735162336)}),
}


def test_decision_compare_numbers_are_unchanged_and_named(tmp_path: Path) -> None:
    run(parse_experiment_config(DECISION), tmp_path, simulate=False, progress=False, workers=1)
    summary = json.loads((tmp_path / "summary.json").read_text())["compare"]
    assert summary["estimand"] == "decision" and summary["unit"] == "revenue per decision"
    for label, (truth, estimates) in BEFORE.items():
        entry = summary["policies"][label]
        assert entry["truth"] == pytest.approx(truth, rel=1e-9)
        for name, numbers in estimates.items():
            got = tuple(entry["estimates"][name][k] for k in ("estimate", "low", "high"))
            assert got == pytest.approx(numbers, rel=1e-9) if numbers[0] is not None else got == numbers
    assert "estimand: per decision" in (tmp_path / "report.md").read_text()
