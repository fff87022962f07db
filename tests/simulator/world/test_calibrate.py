from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from simulator.logs import LogMetadata, SlateLog, import_obd
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
from simulator.world.calibrate import Calibration, wilson


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
