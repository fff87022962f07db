"""The fairness sweep on a tiny world: its report's structure, and stronger bounds give a lower Gini."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from experiments.config import load_experiment_config, parse_experiment_config
from experiments.engine import LocalEngine
from experiments.runs import run

CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


def _strength(s: float, groups: int) -> dict[str, Any]:
    """fair_exposure bounds of strength s on every group, as fairness.toml writes them."""
    return {"min_share": {"*": s / groups}, "max_share": {"*": 1 / groups + (1 - s) * (1 - 1 / groups)}}


def test_tiny_sweep_lowers_the_gini_as_bounds_tighten(tmp_path: Path) -> None:
    raw = tomllib.loads((CONFIGS / "fairness.toml").read_text())
    raw["seeds"] = [0]
    # a small shop whose single shopper segment strongly prefers some categories, so that
    # unconstrained slates share exposure unevenly
    world = tmp_path / "uneven.toml"
    world.write_text((CONFIGS / "world_small.toml").read_text() + "n_segments = 1\nsegment_pref_scale = 2.5\n")
    raw["data"] |= {"world_config": str(world), "reward": "click"}
    raw["simulate"] = {"sessions": 200, "batch_sessions": 10}
    fair = [p for p in raw["policies"] if p["name"] == "fair_exposure"]
    assert len(fair) >= 3  # the shipped sweep has at least three strengths
    base = {"base": "linucb", "temperature": 0.05, "window": 200, "step": 20.0}
    raw["policies"] = [{"name": "fair_exposure", "label": f"s = {s}", "params": base | (_strength(s, 6) if s else {})}
                       for s in (0.0, 0.95)]
    config = parse_experiment_config(raw)
    summary = run(config, tmp_path / "out", compare=False, engine=LocalEngine(1), progress=False)
    exposure = summary["simulate"]["exposure"]
    rows = exposure["tradeoff"]
    assert [r["policy"] for r in rows] == ["s = 0.0", "s = 0.95"]
    for r in rows:
        assert r["gini_low"] <= r["gini"] <= r["gini_high"] and r["low"] <= r["value"] <= r["high"]
    assert set(exposure["during_run"]) == set(exposure["held_out"]) == {r["policy"] for r in rows}
    assert (tmp_path / "out" / "figures" / "fairness_tradeoff.png").stat().st_size > 0
    gini = [r["gini"] for r in rows]
    assert gini[0] > gini[1] + 0.03, gini  # bounds toward equal shares lower the category Gini
    least = [min(g["share"] for g in exposure["during_run"][r["policy"]]["groups"].values()) for r in rows]
    assert least[1] > least[0], least  # by raising the least exposed category


def test_the_shipped_sweep_config_loads() -> None:
    config = load_experiment_config(CONFIGS / "fairness.toml")
    assert [p.name for p in config.policies].count("fair_exposure") >= 3
