"""The example shop that ships in experiments/examples/shop: reproducible, and imported as docs/own-shop.md says."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from experiments.examples.shop.make_shop import BROKEN, HERE, Shop, check, make_shop, write_shop
from simulator.logs import LogMapping, import_catalog, import_logs, save_parquet
from simulator.logs.catalog import CatalogMapping

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop() -> Shop:
    return make_shop()


def test_the_committed_files_are_what_the_script_makes(shop: Shop, tmp_path: Path) -> None:
    sizes = write_shop(shop, tmp_path)
    for name in ("items.csv", "impressions.csv.gz"):
        assert (tmp_path / name).read_bytes() == (HERE / name).read_bytes(), name
    assert sum(entry["bytes"] for entry in sizes.values()) < 500_000  # small enough to commit
    assert sizes["items.csv"]["rows"] == 300


def test_the_example_imports_and_its_estimates_beat_guessing(shop: Shop, tmp_path: Path) -> None:
    """The shop's logger is the world's softmax, which also sees the anchor item the export leaves out;
    so the estimate cannot be exact, but it must beat guessing 1/n_items for every row."""
    toml = HERE / "shop.toml"
    catalog = import_catalog(HERE / "items.csv", CatalogMapping.from_table(
        tomllib.loads(toml.read_text())["catalog"]))
    # C = 0.003 is what `slatewise logs import` picks from its grid here (docs/own-shop.md); fixing it
    # skips the other candidates' fits
    res = import_logs(HERE / "impressions.csv.gz", catalog, LogMapping.from_toml(toml), on_error="skip",
                      estimate_pscore=True, pscore_options={"c": 0.003})
    assert res.log.n_rounds == shop.log.n_rounds and res.n_rows_rejected == 9
    assert {e.kind for e in res.errors} == set(BROKEN)
    save_parquet(res.log, tmp_path / "log.parquet")
    report = check(tmp_path / "log.parquet", shop=shop)
    assert report["slate_matches_truth"] and report["pscore_source"] == "estimated"
    guess = report["uniform_guess"]
    assert report["pscore_item_log_ratio"]["median_abs"] < guess["pscore_item_log_ratio"]["median_abs"]
    assert report["pscore_log_ratio"]["median_abs"] < guess["pscore_log_ratio"]["median_abs"]
