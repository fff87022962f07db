from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from experiments.cli import main
from simulator.logs import LogMetadata, SlateLog, import_obd, save_parquet
from simulator.world import (
    World,
    WorldConfig,
    WorldError,
    calibrate,
    generate_log,
    load_world,
    make_logging_policy,
    save_world,
)
from simulator.world.calibrate import Calibration, cross_check, wilson


@pytest.fixture(scope="module")
def men_log(obd_dir: Path) -> SlateLog:
    return import_obd(obd_dir, policy="random", campaign="men")


@pytest.fixture(scope="module")
def men_fit(men_log: SlateLog) -> Calibration:
    return calibrate(men_log, n_simulated=300_000, seed=0)


def test_every_position_inside_the_logged_interval(men_fit: Calibration, men_log: SlateLog) -> None:
    positions = [r for r in men_fit.rows if r.kind == "position"]
    assert [r.key for r in positions] == [0, 1, 2]
    for r in positions:
        assert r.logged_low <= r.simulated_rate <= r.logged_high, r
        clicks = men_log.reward[np.asarray(men_log.position) == r.key].sum()
        assert r.logged_rate == pytest.approx(clicks / r.shown)
    items = [r for r in men_fit.rows if r.kind == "item"]
    assert len(items) == 10 and all(r.inside for r in items)
    assert men_fit.world.k == 3 and men_fit.world.n_items == men_log.n_items
    assert men_fit.world.position_bias.max() == pytest.approx(1.0, abs=0.05)
    assert "position" in men_fit.to_text()


@pytest.mark.slow
def test_fit_recovers_a_known_world() -> None:
    """Calibrating to a log of a known world gets its position bias back."""
    truth = World(WorldConfig(n_categories=4, items_per_category=5, n_taste=0, n_complements=1,
                              max_steps=1, reward_type="click"), seed=2)
    log = generate_log(truth, make_logging_policy("uniform"), 15_000, seed=1)
    log = replace(log, metadata=replace(log.metadata, reward_type="click"))
    fit = calibrate(log, n_simulated=3_000, seed=0)
    ratio = fit.world.position_bias / fit.world.position_bias[0]
    np.testing.assert_allclose(ratio, truth.position_bias / truth.position_bias[0], rtol=0.15)


def test_save_load_round_trip(men_fit: Calibration, tmp_path: Path) -> None:
    for world in (men_fit.world, World.default(seed=4)):
        path = save_world(world, tmp_path / "w.json")
        back = load_world(path)
        assert back.config == world.config
        assert back.catalog.equals(world.catalog)
        for name in ("item_bias", "item_weight", "position_bias", "profile_features", "price"):
            np.testing.assert_array_equal(getattr(back.params, name), getattr(world.params, name))
        a = generate_log(world, make_logging_policy("uniform"), 200, seed=3)
        b = generate_log(back, make_logging_policy("uniform"), 200, seed=3)
        assert np.array_equal(a.slate, b.slate) and np.array_equal(a.reward, b.reward)
    assert b"pickle" not in path.read_bytes()


def test_bad_inputs(men_log: SlateLog, tmp_path: Path) -> None:
    revenue = replace(men_log, metadata=LogMetadata(reward_type="revenue", n_positions=3))
    with pytest.raises(WorldError, match="calibrate needs a click log, found reward_type 'revenue'"):
        calibrate(revenue)
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(WorldError, match="is not a saved slatewise world"):
        load_world(tmp_path / "x.json")
    with pytest.raises(WorldError, match="does not exist"):
        load_world(tmp_path / "missing.json")


def test_wilson_interval() -> None:
    low, high = wilson(5, 100)
    # hand-computed Wilson bounds for 5/100 at 95%
    assert low == pytest.approx(0.02154, abs=1e-4) and high == pytest.approx(0.11175, abs=1e-4)


# --------------------------------------------------------------- held-out and cross-policy checks
def _click_world(item_bias: np.ndarray, position_bias: list[float]) -> World:
    """A one-step click world whose click probability is ``position_bias[p] * sigmoid(item_bias[i])``."""
    base = World(WorldConfig(n_categories=4, items_per_category=5, n_taste=0, n_complements=1,
                             max_steps=1, reward_type="click", cross_bonus=0.0, up_bonus=0.0,
                             other_bonus=0.0, checkout_prob=0.0, buy_base=0.0, price_sens_mean=0.0,
                             price_sens_spread=0.0, patience_spread=0.0), seed=2)
    p = base.params
    return World(base.config, 2, params=replace(
        p, item_bias=np.asarray(item_bias, dtype=np.float64), item_weight=np.zeros_like(p.item_weight),
        position_bias=np.asarray(position_bias, dtype=np.float64),
        profile_price_sens=np.zeros_like(p.profile_price_sens)))


def _log(world: World, policy: str, sessions: int, seed: int, **params: float) -> SlateLog:
    log = generate_log(world, make_logging_policy(policy, **params), sessions, seed=seed)
    return replace(log, metadata=replace(log.metadata, reward_type="click"))


@pytest.fixture(scope="module")
def strong_world() -> World:
    return _click_world(np.linspace(-4.0, 1.5, 20), [1.0, 0.5, 0.2])


def test_baseline_log_losses_by_hand(strong_world: World) -> None:
    log = _log(strong_world, "uniform", 4, seed=0)
    # clicks by position: 0 -> 2 of 4, 1 -> 1 of 4, 2 -> 0 of 4; 3 of 12 overall
    reward = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    log = replace(log, reward=reward)
    cal = calibrate(log, n_simulated=1000, seed=0, holdout=0.0)
    assert cal.held_out is None and "held-out" not in cal.to_text() and "held_out" not in cal.to_json()
    assert cal.baselines.constant == pytest.approx(0.25)
    assert cal.baselines.by_position == pytest.approx((0.5, 0.25, 0.0))
    loss = cross_check(cal, log).log_loss
    constant = -(3 * np.log(0.25) + 9 * np.log(0.75)) / 12
    position = (4 * np.log(2) + np.log(4) + 3 * np.log(4 / 3)) / 12
    assert loss.constant == pytest.approx(constant) and loss.position == pytest.approx(position, abs=1e-9)
    assert loss.n == 12 and loss.n_sessions == 4 and loss.best_baseline == "position"
    assert loss.gain == pytest.approx(loss.position - loss.world)


def test_constant_world_supports_only_a_baseline() -> None:
    flat = _click_world(np.full(20, -1.0), [1.0, 1.0, 1.0])
    cal = calibrate(_log(flat, "uniform", 2000, seed=1), n_simulated=3000, seed=0)
    held = cal.held_out
    assert held is not None and held.n == 3 * 400 and held.n_sessions == 400
    assert not held.supported and held.gain <= 2 * held.gain_se
    assert held.verdict in cal.to_text() and "cannot support more than one" in held.verdict
    assert "cannot support more than one" in cal.to_json()["held_out"]["verdict"]


def test_strong_world_beats_both_baselines(strong_world: World) -> None:
    cal = calibrate(_log(strong_world, "uniform", 2000, seed=1), n_simulated=3000, seed=0)
    held = cal.held_out
    assert held is not None and held.supported
    assert held.constant - held.world > 2 * held.gain_se and held.position - held.world > 2 * held.gain_se
    assert "the data support it" in cal.to_text()
    again = calibrate(_log(strong_world, "uniform", 2000, seed=1), n_simulated=3000, seed=0)
    assert again.held_out == held  # the split is seeded


def test_cross_policy_check(strong_world: World) -> None:
    cal = calibrate(_log(strong_world, "uniform", 2000, seed=1), n_simulated=3000, seed=0)
    other = _log(strong_world, "epsilon_greedy", 2000, seed=5, epsilon=0.2)
    check = cross_check(cal, other, name="eps")
    overall = check.rows[0]
    clicks = float(np.asarray(other.reward).sum())
    assert overall.kind == "overall" and overall.shown == other.reward.size
    assert (overall.logged_low, overall.logged_high) == pytest.approx(wilson(clicks, other.reward.size))
    assert overall.logged_low <= overall.predicted_rate <= overall.logged_high
    assert [r.key for r in check.rows[1:]] == [0, 1, 2]
    assert check.log_loss.supported and "cross-policy check on eps" in check.to_text()
    assert check.to_json()["rows"][0]["inside"]
    wrong = _log(World(WorldConfig(n_categories=3, items_per_category=3, n_taste=0, n_complements=1,
                                   max_steps=1, reward_type="click"), seed=1), "uniform", 50, seed=0)
    with pytest.raises(WorldError, match="does not match the calibrated log: it has 9 items"):
        cross_check(cal, wrong)


def test_cli_held_out_and_check(strong_world: World, tmp_path: Path) -> None:
    data, other, wrong = tmp_path / "u.parquet", tmp_path / "e.parquet", tmp_path / "w.parquet"
    save_parquet(_log(strong_world, "uniform", 1000, seed=1), data)
    save_parquet(_log(strong_world, "epsilon_greedy", 500, seed=5, epsilon=0.2), other)
    save_parquet(_log(World(WorldConfig(n_categories=3, items_per_category=3, n_taste=0, n_complements=1,
                                        max_steps=1, reward_type="click"), seed=1), "uniform", 50, seed=0),
                 wrong)
    runner = CliRunner()
    base = ["world", "calibrate", str(data), "-o", str(tmp_path / "w.json"), "--simulated", "3000"]
    res = runner.invoke(main, [*base, "--check", str(other), "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc["held_out"]["n_sessions"] == 200 and doc["held_out"]["supported"] is True
    assert doc["checks"][0]["name"] == str(other) and doc["checks"][0]["log_loss"]["n"] == 1500
    res = runner.invoke(main, [*base, "--holdout", "1.5"])
    assert res.exit_code == 2 and "--holdout" in res.output and "[0, 1)" in res.output
    for bad in (wrong, tmp_path / "missing.parquet"):
        res = runner.invoke(main, [*base, "--check", str(bad)])
        assert res.exit_code == 1 and f"--check {bad}" in res.output and "Traceback" not in res.output
    flat = _click_world(np.full(20, -1.0), [1.0, 1.0, 1.0])
    save_parquet(_log(flat, "uniform", 1000, seed=1), data)
    res = runner.invoke(main, base)
    assert res.exit_code == 0 and "warning: held-out: " in res.stderr
    assert "cannot support more than" in res.stderr
