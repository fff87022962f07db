"""`slatewise catalog import|describe` and `slatewise logs import` on a small copy of the example shop."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from experiments.cli import main
from experiments.examples.shop.make_shop import BROKEN, HERE, make_shop, write_shop
from simulator.logs import load_catalog, load_parquet

SHOP_TOML = HERE / "shop.toml"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 60-session example shop (same world, same export, same broken rows) in a temporary folder."""
    folder = tmp_path_factory.mktemp("shop")
    write_shop(make_shop(seed=11, sessions=60), folder)
    return folder


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def catalog_file(shop: Path, tmp_path: Path) -> Path:
    out = tmp_path / "catalog.parquet"
    code, text = run("catalog", "import", str(shop / "items.csv"), "--config", str(SHOP_TOML), "-o", str(out))
    assert code == 0, text
    return out


def test_catalog_import_with_options_and_json(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "catalog.parquet"
    code, text = run("catalog", "import", str(shop / "items.csv"), "--id", "sku", "--category", "department",
                     "--price", "unit_price", "--features", "rating,style_x,style_y", "-o", str(out), "--json")
    assert code == 0, text
    doc = json.loads(text)  # exactly one JSON document
    assert doc["items"] == 300 and doc["id_kind"] == "str" and doc["categories"] == 12
    assert doc["features"] == ["rating", "style_x", "style_y"]
    items = pd.read_csv(shop / "items.csv")
    catalog = load_catalog(out)
    assert catalog.item_id.tolist() == items["sku"].tolist()
    assert doc["price"]["max"] == pytest.approx(items["unit_price"].max())
    # the same mapping from the shop's config file gives the same catalog
    code, text = run("catalog", "import", str(shop / "items.csv"), "--config", str(SHOP_TOML),
                     "-o", str(tmp_path / "again.parquet"))
    assert code == 0 and "wrote" in text
    assert load_catalog(tmp_path / "again.parquet").equals(catalog)
    code, text = run("catalog", "describe", str(out))
    assert code == 0 and "300 (str ids: SKU-" in text and "features        3: rating" in text


def test_catalog_import_errors_name_the_column(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("sku,price\nA,1\nB,x\nA,3\n")
    code, text = run("catalog", "import", str(tmp_path / "items.csv"), "--id", "sku", "--price", "price",
                     "-o", str(tmp_path / "c.parquet"))
    assert code == 1
    assert "duplicate_id: 1 row; first at row 2 (file line 4), column `sku`" in text
    assert "bad_price: 1 row; first at row 1 (file line 3), column `price`" in text
    assert not (tmp_path / "c.parquet").exists()
    code, text = run("catalog", "import", str(tmp_path / "items.csv"), "-o", str(tmp_path / "c.parquet"))
    assert code == 2 and "--id COLUMN" in text
    (tmp_path / "shop.toml").write_text('[logs]\nitem = "sku"\n')
    code, text = run("catalog", "import", str(tmp_path / "items.csv"), "--config", str(tmp_path / "shop.toml"),
                     "-o", str(tmp_path / "c.parquet"))
    assert code == 1 and "has no [catalog] table" in text


def test_logs_import_raises_on_the_broken_rows(shop: Path, tmp_path: Path) -> None:
    catalog = catalog_file(shop, tmp_path)
    out = tmp_path / "log.parquet"
    code, text = run("logs", "import", str(shop / "impressions.csv.gz"), "--catalog", str(catalog),
                     "--mapping", str(SHOP_TOML), "--estimate-pscore", "-o", str(out))
    assert code == 1 and not out.exists()
    for kind in BROKEN:  # each broken impression of the export is a counted, named error
        assert f"{kind}: " in text
    assert "--on-error skip" in text


def test_logs_import_skip_with_estimated_propensities(shop: Path, tmp_path: Path) -> None:
    catalog = catalog_file(shop, tmp_path)
    out = tmp_path / "log.parquet"
    code, text = run("logs", "import", str(shop / "impressions.csv.gz"), "--catalog", str(catalog),
                     "--mapping", str(SHOP_TOML), "--estimate-pscore", "--on-error", "skip", "-o", str(out),
                     "--json")
    assert code == 0, text
    doc = json.loads(text)
    world = make_shop(seed=11, sessions=60)
    assert doc["slates"] == world.log.n_rounds  # every impression the world logged, none of the broken
    assert doc["rows_read"] == len(world.impressions) == doc["rows_kept"] + doc["rows_rejected"]
    assert doc["rows_rejected"] == 9 and {e["kind"] for e in doc["errors"]} == set(BROKEN)
    assert doc["pscore_source"] == "estimated" and "Plackett-Luce" in doc["pscore_model"]
    log = load_parquet(out)
    assert log.metadata.pscore_source == "estimated" and log.metadata.reward_type == "revenue"
    assert np.array_equal(log.event_id, world.event)
    assert log.catalog.item_id[log.slate].tolist() == world.sku[world.log.slate].tolist()
    assert np.array_equal(log.revenue, world.log.revenue)  # type: ignore[arg-type]
    rejected = pd.read_csv(doc["rejected_file"])
    assert len(rejected) == 9 and {"row", "line", "errors"} <= set(rejected.columns)
    assert (rejected["line"] == rejected["row"] + 2).all()
    code, text = run("logs", "describe", str(out))
    assert "(estimated)" in text
    # every later estimate says the propensities were estimated
    code, text = run("ope", str(out), "--policy", "uniform", "--estimators", "ips", "--n-bootstrap", "0")
    assert code == 0 and "propensities: estimated from the log itself" in text
    code, text = run("ope", str(out), "--policy", "uniform", "--estimators", "ips", "--n-bootstrap", "0",
                     "--json")
    assert json.loads(text)["pscore_source"] == "estimated"


def test_logs_import_with_a_map_string_and_logged_propensities(tmp_path: Path) -> None:
    (tmp_path / "items.csv").write_text("sku\nA\nB\nC\n")
    (tmp_path / "log.csv").write_text("imp,sku,clk,p\n1,A,1,0.5\n2,C,0,0.25\n3,B,0,0.25\n")
    code, text = run("catalog", "import", str(tmp_path / "items.csv"), "--id", "sku",
                     "-o", str(tmp_path / "c.parquet"))
    assert code == 0, text
    assert "prices          none" in text
    code, text = run("logs", "import", str(tmp_path / "log.csv"), "--catalog", str(tmp_path / "c.parquet"),
                     "--map", "event=imp,item=sku,click=clk,pscore=p", "-o", str(tmp_path / "l.parquet"))
    assert code == 0, text
    assert "propensities: logged" in text and "kept 3 slates" in text
    log = load_parquet(tmp_path / "l.parquet")
    assert log.slate[:, 0].tolist() == [0, 2, 1] and log.pscore.tolist() == [0.5, 0.25, 0.25]


def test_logs_import_usage_errors(tmp_path: Path) -> None:
    code, text = run("logs", "import", str(tmp_path / "x.csv"), "--catalog", str(tmp_path / "c.parquet"),
                     "-o", str(tmp_path / "l.parquet"))
    assert code == 2 and "--map role=column" in text
    code, text = run("logs", "import", str(tmp_path / "x.csv"), "--catalog", str(tmp_path / "c.parquet"),
                     "--map", "itme=sku", "-o", str(tmp_path / "l.parquet"))
    assert code == 1 and "did you mean `item`" in text
    code, text = run("logs", "import", str(tmp_path / "x.csv"), "--catalog", str(tmp_path / "c.parquet"),
                     "--map", "event=e,item=sku,click=c,pscore=p", "-o", str(tmp_path / "l.parquet"))
    assert code == 1 and "no catalog file at" in text


def test_the_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    from experiments.cli.logs import _ProgressBar

    bar = _ProgressBar(enabled=True)
    for stage, done, total in (("read", 0, 1), ("read", 1, 1), ("pscore", 5, 15), ("pscore", 15, 15)):
        bar(stage, done, total)
    bar.close()
    out = capsys.readouterr()
    assert out.out == "" and "pscore" in out.err
    silent = _ProgressBar(enabled=False)
    silent("read", 1, 1)
    assert capsys.readouterr().err == ""
