"""A shop's catalog and learned policies behind the service, and the whole loop over HTTP.

The loop: a world plays the shop's shoppers; its uniform logger's impressions are
exported as a shop would (renamed columns, text ids, slots from 1, no propensities)
-> `catalog import` and `logs import --estimate-pscore` -> `learn` -> served as the
treatment beside the logger as control on 127.0.0.1 -> the world answers through
POST /v1/rewards -> the rollout ramps -> `logs export-serving` -> `learn` again; the
learned policies' true values beat the logger's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bandits import SlatePolicy
from bandits.offline import OfflinePLPolicy
from experiments.cli import main
from experiments.cli.world import policy_truth
from serving import create_app
from serving.config import ABExperimentConfig, ArmConfig, ServingConfig, load_serving_config
from simulator.errors import ConfigError
from simulator.logs import Catalog, save_catalog
from simulator.world import World, WorldConfig, generate_log, make_logging_policy
from tests.serving.live import free_port, request, start_server, stop_server

WORLD = World(WorldConfig(n_categories=4, items_per_category=10, k=3, max_steps=1, n_taste=0,
                          reward_type="click"), 0)
SKU = np.array([f"SKU-{i:04d}" for i in range(WORLD.n_items)])
CTX = [f"c_{j}" for j in range(WORLD.dim_context)]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def write_shop(folder: Path, sessions: int, seed: int) -> tuple[Path, Path]:
    """The world's items and its uniform logger's impressions as a shop exports them."""
    cat = WORLD.catalog
    items = folder / "items.csv"
    pd.DataFrame({"sku": SKU, "dept": np.asarray(cat.category), "cost": np.round(np.asarray(cat.price), 2)}
                 ).to_csv(items, index=False)
    log = generate_log(WORLD, make_logging_policy("uniform"), sessions, seed=seed)
    n, k = log.slate.shape
    rows = np.repeat(np.arange(n), k)
    frame = pd.DataFrame({"imp": 9000 + rows, "visitor": [f"V{s}" for s in np.asarray(log.session_id)[rows]],
                          "slot": np.tile(np.arange(1, k + 1), n), "sku": SKU[np.asarray(log.slate).ravel()],
                          "clk": np.asarray(log.reward).ravel().astype(int)})
    for j, name in enumerate(CTX):
        frame[name] = np.round(np.asarray(log.context)[rows, j], 6)
    impressions = folder / "impressions.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(impressions, index=False)  # warehouse order
    return items, impressions


def serving_toml(folder: Path, treatment: Path, control_weight: float = 0.9) -> Path:
    path = folder / "serving.toml"
    path.write_text(f"""
[serving]
user_id_secret = "a-secret-for-the-own-shop-loop"
catalog = "catalog.parquet"
k = {WORLD.k}
dim_context = {WORLD.dim_context}
admin_token = "t0ken"
learn_interval_s = 0.3
reload_interval_s = 0.2

[[experiments]]
name = "shop"
control = "logger"
ramp = [0.1, 0.5]
min_decisions_per_stage = 60
non_inferiority_margin = 0.05
auto = true

[[experiments.arms]]
name = "logger"
policy = "uniform"
weight = {control_weight}
learn = false

[[experiments.arms]]
name = "learned"
policy = "offline_pl"
weight = {round(1 - control_weight, 6)}
learn = false
policy_file = "{treatment}"
""")
    return path


def play(port: int, n: int, seed: int) -> dict[str, int]:
    """``n`` shoppers of the world ask for slates and answer with their clicks."""
    rng = np.random.default_rng(seed)
    arms: dict[str, int] = {}
    for i in range(n):
        state = WORLD.new_sessions(1, rng)
        exclude = SKU[~WORLD.eligible(state)[0]].tolist()
        status, answer = request(port, "POST", "/v1/slates", {
            "user_id": f"u{seed}-{i}", "experiment": "shop",
            "context": WORLD.context(state)[0].tolist(), "exclude": exclude})
        assert status == 200, answer
        slate = np.searchsorted(SKU, answer["slate"])
        assert (SKU[slate] == answer["slate"]).all()
        outcome = WORLD.step(state, slate[None, :], rng)
        clicks = np.asarray(outcome.click)[0].astype(int).tolist()
        status, body = request(port, "POST", "/v1/rewards", {"event_id": answer["event_id"], "clicks": clicks})
        assert status in (200, 202), body
        arms[answer["arm"]] = arms.get(answer["arm"], 0) + 1
    return arms


@pytest.mark.slow
def test_the_whole_loop_over_http(tmp_path: Path) -> None:
    items, impressions = write_shop(tmp_path, 2_500, seed=1)
    catalog = tmp_path / "catalog.parquet"
    code, text = run("catalog", "import", str(items), "--id", "sku", "--category", "dept", "--price", "cost",
                     "-o", str(catalog))
    assert code == 0, text
    log = tmp_path / "log.parquet"
    mapping = "event=imp,user=visitor,position=slot,item=sku,click=clk,context=" + ",".join(CTX)
    code, text = run("logs", "import", str(impressions), "--catalog", str(catalog), "--map", mapping,
                     "--position-base", "1", "--estimate-pscore", "-o", str(log), "--json")
    assert code == 0, text
    v1 = tmp_path / "v1.npz"
    code, text = run("learn", str(log), "--policy", "offline_pl", "--out", str(v1), "--n-bootstrap", "0",
                     "--json")
    assert code == 0, text
    assert json.loads(text)["pscore_source"] == "estimated"

    port = free_port()
    proc = start_server(tmp_path, port, {"SLATEWISE_CONFIG": str(serving_toml(tmp_path, v1))}, workers=1)
    try:
        arms = play(port, 900, seed=2)
        assert set(arms) == {"logger", "learned"}
        report: dict[str, Any] = {}
        for _ in range(50):  # the learner applies the rollout decision on its next pass
            status, report = request(port, "GET", "/v1/experiments/shop")
            assert status == 200
            if report["weights"]["learned"] > 0.1 + 1e-9:
                break
            time.sleep(0.2)
        assert report["weights"]["learned"] >= 0.5, report  # ramped (or shipped) by itself
        assert any(h["actor"] == "rollout" for h in report["history"]), report
        more = play(port, 1_600, seed=3)  # at the new split: the served log is as long as the shop's
        assert more["learned"] > 0.3 * 1_600
    finally:
        stop_server(proc)

    exported = tmp_path / "served.parquet"
    code, text = run("logs", "export-serving", str(tmp_path / "serving.db"), "-o", str(exported),
                     "--include-pending")
    assert code == 0, text
    v2 = tmp_path / "v2.npz"
    code, text = run("learn", str(exported), "--policy", "offline_pl", "--out", str(v2), "--n-bootstrap", "0",
                     "--json")
    assert code == 0, text
    logger = policy_truth(WORLD, make_logging_policy("uniform"), n_sessions=100).first_decision
    for path in (v1, v2):
        truth = policy_truth(WORLD, SlatePolicy.load(path), n_sessions=100).first_decision
        assert truth.exact and logger.exact
        assert truth.value > 1.3 * logger.value, (path.name, truth.value, logger.value)


# ---------------------------------------------------------------------------- start-up checks
def shop_config(tmp_path: Path, policy_file: str, **changes: Any) -> ServingConfig:
    arms = (ArmConfig("logger", "uniform", 0.9, learn=False),
            ArmConfig("learned", "offline_pl", 0.1, learn=False, policy_file=policy_file))
    base: dict[str, Any] = {"db_path": str(tmp_path / "s.db"), "model_dir": str(tmp_path / "m"),
                            "learner": False, "catalog": str(tmp_path / "catalog.parquet"),
                            "k": WORLD.k, "dim_context": WORLD.dim_context,
                            "experiments": (ABExperimentConfig("shop", "shop-v1", arms, "logger"),)}
    return ServingConfig(**(base | changes))


@pytest.fixture
def shop_catalog(tmp_path: Path) -> Catalog:
    cat = WORLD.catalog
    catalog = Catalog(item_id=SKU, category=np.asarray(cat.category), price=np.asarray(cat.price),
                      features=np.zeros((WORLD.n_items, 0)))
    save_catalog(catalog, tmp_path / "catalog.parquet")
    return catalog


def learned_file(tmp_path: Path, catalog: Catalog, name: str = "p.npz") -> Path:
    """A policy file with the learn report `learn` writes beside it."""
    from bandits.offline.stamp import CatalogStamp

    path = OfflinePLPolicy(WORLD.n_items, WORLD.k, WORLD.dim_context).save(tmp_path / name)
    stamp = CatalogStamp.of(catalog, WORLD.k, WORLD.dim_context, ())
    path.with_suffix(".json").write_text(json.dumps({"stamp": stamp.to_json()}))
    return path


def test_answers_carry_the_shops_ids(tmp_path: Path, shop_catalog: Catalog) -> None:
    path = learned_file(tmp_path, shop_catalog)
    client = create_app(shop_config(tmp_path, str(path))).test_client()
    res = client.post("/v1/slates", json={"user_id": "u1", "experiment": "shop",
                                          "context": [0.0] * WORLD.dim_context, "exclude": ["SKU-0001"]})
    assert res.status_code == 200, res.json
    slate = res.get_json()["slate"]
    assert all(s in set(SKU) for s in slate) and "SKU-0001" not in slate
    res = client.post("/v1/slates", json={"user_id": "u1", "experiment": "shop",
                                          "context": [0.0] * WORLD.dim_context, "exclude": [3]})
    assert res.status_code == 422 and "text item id" in res.get_data(as_text=True)


def test_a_policy_learned_on_another_catalog_is_refused(tmp_path: Path, shop_catalog: Catalog) -> None:
    other = Catalog(item_id=SKU[::-1].copy(), category=np.asarray(shop_catalog.category),
                    price=shop_catalog.price, features=np.zeros((WORLD.n_items, 0)))
    path = learned_file(tmp_path, other)
    with pytest.raises(ConfigError, match=r"arms\['learned'\].policy_file.*item ids .*differ"):
        create_app(shop_config(tmp_path, str(path)))


def test_a_policy_of_another_context_width_is_refused(tmp_path: Path, shop_catalog: Catalog) -> None:
    path = OfflinePLPolicy(WORLD.n_items, WORLD.k, WORLD.dim_context + 2).save(tmp_path / "wide.npz")
    with pytest.raises(ConfigError, match=r"d=\d+"):
        create_app(shop_config(tmp_path, str(path)))
    with pytest.raises(ConfigError, match="no policy file"):
        create_app(shop_config(tmp_path, str(tmp_path / "none.npz")))


def test_catalog_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set `serving\.k` and `serving\.dim_context`"):
        ServingConfig(db_path=str(tmp_path / "s.db"), catalog="catalog.parquet")
    cfg = ServingConfig(db_path=str(tmp_path / "s.db"), catalog=str(tmp_path / "missing.parquet"), k=3,
                        dim_context=4)
    with pytest.raises(ConfigError, match="no catalog file"):
        create_app(cfg)
    (tmp_path / "serving.toml").write_text('[serving]\nuser_id_secret = "a-secret-for-the-own-shop-loop"\ncatalog = "catalog.parquet"\nk = 3\ndim_context = 4\n')
    (tmp_path / "catalog.parquet").write_bytes(b"")
    loaded = load_serving_config(tmp_path / "serving.toml", env={})
    assert loaded.catalog == str(tmp_path / "catalog.parquet")  # relative to the config file
