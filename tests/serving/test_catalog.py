from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import serving.catalog as catalog_module
from serving import create_app
from serving.blueprints.slates import prefix_pscore
from serving.catalog import resolve_shape
from serving.config import ServingConfig
from simulator.errors import ConfigError
from simulator.logs import Catalog


class FakeWorld:
    """Stands in for simulator.world.World: a catalog with non-contiguous item ids."""

    def __init__(self) -> None:
        self.catalog = Catalog(item_id=np.arange(100, 112), category=np.array(["a", "b"] * 6),
                               price=np.linspace(1, 12, 12), features=np.zeros((12, 0)))
        self.n_items = 12
        self.k = 2
        self.dim_context = 3
        self.context_names = ("x", "y", "z")


def test_the_default_world_supplies_catalog_k_and_d(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(catalog_module, "_default_world", lambda seed: FakeWorld())
    cfg = ServingConfig(db_path=str(tmp_path / "w.db"), model_dir=str(tmp_path / "m"), learner=False)
    shape = resolve_shape(cfg)
    assert (shape.source, shape.n_items, shape.k, shape.dim_context) == ("world", 12, 2, 3)
    assert shape.context_names == ("x", "y", "z") and shape.index_of[100] == 0
    client = create_app(cfg).test_client()
    body = client.post("/v1/slates", json={"user_id": "u", "context": {"x": 1, "y": 0, "z": 2},
                                           "exclude": [100]}).get_json()
    assert len(body["slate"]) == 2 and set(body["slate"]) <= set(range(101, 112))
    assert client.get("/readyz").get_json()["catalog"] == "world"


def test_without_a_world_the_fallback_is_80_items(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(catalog_module, "_default_world", lambda seed: None)
    shape = resolve_shape(ServingConfig(db_path=str(tmp_path / "f.db")))
    assert (shape.source, shape.n_items, shape.k, shape.dim_context) == ("fallback", 80, 3, 8)


@pytest.mark.parametrize(("changes", "message"), [
    pytest.param({"n_items": 5, "k": 6, "dim_context": 2}, r"k.*\[1, n_items=5\]", id="k-too-big"),
    pytest.param({"n_items": 5, "k": 2, "dim_context": 2, "context_names": ("a",)}, "2 names",
                 id="names-length"),
])
def test_bad_shapes(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_shape(ServingConfig(db_path=str(tmp_path / "b.db"), **changes))


def test_prefix_propensity() -> None:
    item = np.array([0.5, 0.25, 0.1])
    assert prefix_pscore(0.01, item, 3, 3) == 0.01  # the whole slate
    assert prefix_pscore(1.0, item, 2, 3) == 1.0  # deterministic
    assert prefix_pscore(0.01, item, 1, 3) == 0.5  # first slot's marginal
    assert prefix_pscore(0.01, item, 2, 3) == 0.01  # lower bound
