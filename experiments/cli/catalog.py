"""``slatewise catalog``: import a shop's item file, describe a catalog file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from experiments.cli.output import emit_json, json_option
from simulator.errors import ConfigError, DataImportError, LogFormatError, LogValidationError
from simulator.logs import Catalog
from simulator.logs.catalog import CatalogMapping, import_catalog, load_catalog, save_catalog
from simulator.logs.mapping import config_table


@click.group("catalog")
def catalog_group() -> None:
    """A shop's items: import them from the shop's own file, describe a catalog file."""


def catalog_summary(catalog: Catalog) -> dict[str, Any]:
    """What a person checks in a catalog: size, id kind, categories, prices, features."""
    categories, counts = np.unique(catalog.category, return_counts=True)
    price = None if catalog.price is None else {
        "min": float(catalog.price.min()), "median": float(np.median(catalog.price)),
        "max": float(catalog.price.max())}
    return {"items": catalog.n_items, "id_kind": catalog.id_kind,
            "example_ids": catalog.item_id[:3].tolist(), "categories": int(categories.size),
            "items_per_category": {"min": int(counts.min()), "max": int(counts.max())},
            "price": price, "features": list(catalog.feature_names)}


def _summary_text(summary: dict[str, Any]) -> str:
    ids = ", ".join(str(i) for i in summary["example_ids"])
    per = summary["items_per_category"]
    lines = [f"items           {summary['items']:,} ({summary['id_kind']} ids: {ids}, ...)",
             f"categories      {summary['categories']} ({per['min']}-{per['max']} items each)"]
    price = summary["price"]
    lines.append("prices          none: up-sell (a pricier item of the anchor's category) and revenue "
                 "rewards need them" if price is None else
                 f"prices          {price['min']:,.2f} .. {price['max']:,.2f} "
                 f"(median {price['median']:,.2f})")
    feats = summary["features"]
    lines.append(f"features        {len(feats)}" + (f": {', '.join(feats)}" if feats else ""))
    return "\n".join(lines)


def _mapping(config: Path | None, id_col: str | None, category: str | None, price: str | None,
             features: str | None) -> CatalogMapping:
    table = {} if config is None else config_table(config, "catalog", required=True)
    flags = {"id": id_col, "category": category, "price": price,
             "features": None if features is None else [f.strip() for f in features.split(",") if f.strip()]}
    table |= {key: value for key, value in flags.items() if value is not None}
    if "id" not in table:
        raise click.UsageError("name the item id column: --id COLUMN (or id = ... under [catalog] in "
                               "--config).")
    return CatalogMapping.from_table(table, str(config) if config else "options", extra=())


@catalog_group.command("import")
@click.argument("items", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--id", "id_col", default=None, help="Column of the item ids (kept as the shop writes them).")
@click.option("--category", default=None, help="Column of the item categories.")
@click.option("--price", default=None,
              help="Column of the prices (numbers >= 0); up-sell and revenue rewards need them.")
@click.option("--features", default=None, help="Numeric item feature columns, comma-separated.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="TOML file whose [catalog] table maps the columns (id, category, price, features); "
                   "options given here win.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Catalog file to write (Parquet).")
@json_option
def import_cmd(items: Path, id_col: str | None, category: str | None, price: str | None,
               features: str | None, config: Path | None, output: Path, as_json: bool) -> None:
    """Import a shop's item file (CSV or Parquet, one row per item) into a catalog file."""
    try:
        catalog = import_catalog(items, _mapping(config, id_col, category, price, features))
    except (ConfigError, DataImportError, LogFormatError, LogValidationError) as err:
        raise click.ClickException(str(err)) from None
    save_catalog(catalog, output)
    summary = catalog_summary(catalog)
    if as_json:
        emit_json({"input": str(items), "output": str(output)} | summary)
    else:
        click.echo(_summary_text(summary))
        click.echo(f"wrote {output}")


@catalog_group.command("describe")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@json_option
def describe_cmd(file: Path, as_json: bool) -> None:
    """Summarise a catalog file (or the catalog inside a log file)."""
    try:
        catalog = load_catalog(file)
    except (FileNotFoundError, LogFormatError, LogValidationError) as err:
        raise click.ClickException(str(err)) from None
    summary = catalog_summary(catalog)
    if as_json:
        emit_json({"file": str(file)} | summary)
    else:
        click.echo(_summary_text(summary))
