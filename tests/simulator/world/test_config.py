from __future__ import annotations

from pathlib import Path

import pytest

from simulator.world import World, WorldConfig, WorldError

CONFIGS = Path(__file__).parents[3] / "experiments" / "configs"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"k": 0}, WorldError, r"WorldConfig.k must lie in \[1, inf\], found 0", id="k-zero"),
        pytest.param({"k": 2.5}, WorldError, r"WorldConfig.k must be an integer, found 2.5", id="k-float"),
        pytest.param({"reward_type": "profit"}, WorldError, r"reward_type must be one of .*'profit'",
                     id="reward"),
        pytest.param({"checkout_prob": 1.5}, WorldError, r"checkout_prob must lie in \[0.0, 1.0\]",
                     id="checkout"),
        pytest.param({"price_low": 50.0, "price_high": 10.0}, WorldError, r"price_low <= price_high",
                     id="prices"),
        pytest.param({"n_complements": 12}, WorldError, r"n_complements must be below n_categories = 12",
                     id="complements"),
        pytest.param({"n_categories": 2, "items_per_category": 1, "n_complements": 1, "k": 2}, WorldError,
                     r"k must leave room for the anchor", id="k-too-big"),
        pytest.param({"base_logit": float("nan")}, WorldError, r"base_logit must be finite", id="nan"),
        pytest.param({"candidates_only": 1}, WorldError, r"candidates_only must be true or false",
                     id="bool"),
    ],
)
def test_bad_config(kwargs: dict[str, object], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        WorldConfig(**kwargs)  # type: ignore[arg-type]


def test_default_toml_is_the_default() -> None:
    assert WorldConfig.from_toml(CONFIGS / "world_default.toml") == WorldConfig()
    small = WorldConfig.from_toml(CONFIGS / "world_small.toml")
    assert small.n_items == 60 and small.reward_type == "click"


def test_toml_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[world]\nn_itemz = 3\n")
    with pytest.raises(WorldError, match=r"unknown world settings \['n_itemz'\]"):
        WorldConfig.from_toml(bad)
    with pytest.raises(WorldError, match="does not exist"):
        WorldConfig.from_toml(tmp_path / "missing.toml")
    top = tmp_path / "top.toml"
    top.write_text("k = 2\nreward_type = \"click\"\n")
    assert WorldConfig.from_toml(top).k == 2


def test_world_rejects_non_config() -> None:
    with pytest.raises(WorldError, match="`config` must be a WorldConfig, found dict"):
        World({"k": 3}, 0)  # type: ignore[arg-type]
