"""A shop's catalog: text ids kept as written, the catalog file, bad item files named by column and row."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator.errors import ConfigError, DataImportError, LogFormatError, LogValidationError
from simulator.logs import Catalog, LogMetadata, SlateLog, load_parquet, save_parquet
from simulator.logs.catalog import (
    CATALOG_KEY,
    CatalogMapping,
    catalog_to_table,
    import_catalog,
    load_catalog,
    save_catalog,
)
from simulator.logs.io import META_KEY, log_to_table

MAPPING = CatalogMapping(id="sku", category="dept", price="cost", features=("stars", "weight"))


def items_frame() -> pd.DataFrame:
    return pd.DataFrame({"sku": ["00123", "A-7", "B-9", "C 1"], "dept": ["toys", "toys", "pets", "pets"],
                         "cost": [9.5, 12.0, 3.25, 100.0], "stars": [4.5, 3.0, 5.0, 1.0],
                         "weight": [0.2, 1.0, 0.5, 7.0], "unused": ["x", "y", "z", "w"]})


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False)
    return path


def test_csv_ids_are_kept_exactly_as_written(tmp_path: Path) -> None:
    catalog = import_catalog(write_csv(items_frame(), tmp_path / "items.csv"), MAPPING)
    assert catalog.id_kind == "str"
    assert catalog.item_id.tolist() == ["00123", "A-7", "B-9", "C 1"]  # leading zeros, spaces kept
    assert catalog.category.tolist() == ["toys", "toys", "pets", "pets"]
    assert catalog.price is not None and catalog.price.tolist() == [9.5, 12.0, 3.25, 100.0]
    assert catalog.features.tolist() == [[4.5, 0.2], [3.0, 1.0], [5.0, 0.5], [1.0, 7.0]]
    assert catalog.feature_names == ("stars", "weight")


def test_parquet_items_keep_integer_ids(tmp_path: Path) -> None:
    frame = items_frame().assign(sku=[10, 20, 30, 40])
    frame.to_parquet(tmp_path / "items.parquet")
    catalog = import_catalog(tmp_path / "items.parquet", MAPPING)
    assert catalog.id_kind == "int" and catalog.item_id.dtype == np.int64
    assert catalog.item_id.tolist() == [10, 20, 30, 40]


def test_only_the_id_is_required(tmp_path: Path) -> None:
    catalog = import_catalog(write_csv(items_frame(), tmp_path / "items.csv"), CatalogMapping(id="sku"))
    assert catalog.price is None and catalog.features.shape == (4, 0)
    assert set(catalog.category.tolist()) == {"unknown"}


@pytest.mark.parametrize("id_kind", ["str", "int"])
def test_catalog_file_round_trips(tmp_path: Path, id_kind: str) -> None:
    frame = items_frame() if id_kind == "str" else items_frame().assign(sku=[10, 20, 30, 40])
    frame.to_parquet(tmp_path / "items.parquet")
    catalog = import_catalog(tmp_path / "items.parquet", MAPPING)
    save_catalog(catalog, tmp_path / "catalog.parquet")
    back = load_catalog(tmp_path / "catalog.parquet")
    assert back.equals(catalog) and back.id_kind == id_kind
    table = pq.read_table(tmp_path / "catalog.parquet")
    assert table.column_names == ["item_id", "category", "price", "features"]
    assert table.schema.field("item_id").type == (pa.string() if id_kind == "str" else pa.int64())


def test_a_catalog_without_price_or_features_round_trips(tmp_path: Path) -> None:
    catalog = Catalog(item_id=np.array(["a", "b"]), category=np.array(["x", "y"]), price=None,
                      features=np.zeros((2, 0)))
    save_catalog(catalog, tmp_path / "c.parquet")
    assert load_catalog(tmp_path / "c.parquet").equals(catalog)


def test_a_log_file_gives_its_catalog(tmp_path: Path) -> None:
    catalog = Catalog(item_id=np.array(["SKU-1", "SKU-2", "SKU-3"]), category=np.array(["a", "a", "b"]),
                      price=np.array([1.0, 2.0, 3.0]), features=np.zeros((3, 0)))
    log = SlateLog.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0, 2], [1, 0]]),
                               reward=np.zeros((2, 2)), pscore=np.full(2, 1 / 6),
                               pscore_item=np.full((2, 2), 1 / 3), catalog=catalog)
    save_parquet(log, tmp_path / "log.parquet")
    assert load_catalog(tmp_path / "log.parquet").equals(catalog)
    assert load_parquet(tmp_path / "log.parquet").catalog.item_id.tolist() == ["SKU-1", "SKU-2", "SKU-3"]


def _rewrite_meta(path: Path, **changes: Any) -> None:
    table = pq.read_table(path)
    meta = json.loads(table.schema.metadata[CATALOG_KEY]) | changes
    pq.write_table(table.replace_schema_metadata({CATALOG_KEY: json.dumps(meta).encode()}), path)


@pytest.mark.parametrize(("change", "message"), [
    pytest.param({"format_version": 9}, r"catalog format version 9", id="version"),
    pytest.param({"n_items": 5}, r"the metadata says 5 items, the file has 4 rows", id="n-items"),
    pytest.param({"id_kind": "int"}, r"`item_id` is string, the metadata says 'int' ids", id="id-kind"),
    pytest.param({"feature_names": ["a"]}, r"1 feature names for 2 features", id="names"),
])
def test_a_damaged_catalog_file_is_refused(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = tmp_path / "catalog.parquet"
    save_catalog(import_catalog(write_csv(items_frame(), tmp_path / "items.csv"), MAPPING), path)
    _rewrite_meta(path, **change)
    with pytest.raises(LogFormatError, match=message):
        load_catalog(path)


def test_duplicate_ids_in_a_catalog_file_are_refused(tmp_path: Path) -> None:
    catalog = import_catalog(write_csv(items_frame(), tmp_path / "items.csv"), MAPPING)
    table = catalog_to_table(catalog)
    table = table.set_column(0, "item_id", pa.array(["a", "b", "a", "c"]))
    pq.write_table(table, tmp_path / "dup.parquet")
    with pytest.raises(LogValidationError, match=r"(?s)dup.parquet is invalid.*unique item ids, found item id 'a'"):
        load_catalog(tmp_path / "dup.parquet")


def test_other_files_are_not_catalogs(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1]}), tmp_path / "plain.parquet")
    with pytest.raises(LogFormatError, match=r"not a slatewise catalog.*slatewise catalog import"):
        load_catalog(tmp_path / "plain.parquet")
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(LogFormatError, match="not a readable Parquet file"):
        load_catalog(tmp_path / "junk.parquet")
    with pytest.raises(FileNotFoundError, match="no catalog file"):
        load_catalog(tmp_path / "missing.parquet")


BAD_ITEMS = [
    pytest.param({"sku": ["A", "B", "A", "B"]}, "duplicate_id",
                 r"duplicate_id: 2 rows; first at row 2 \(file line 4\), column `sku`: expected each item id "
                 r"once, found 'A' again \(first at row 0, line 2\)", id="duplicate-id"),
    pytest.param({"sku": ["A", None, "C", "D"]}, "missing_id",
                 r"missing_id: 1 row; first at row 1 \(file line 3\), column `sku`: expected an item id, "
                 r"found an empty cell", id="missing-id"),
    pytest.param({"cost": [1.0, None, 2.0, None]}, "missing_price",
                 r"missing_price: 2 rows; first at row 1 \(file line 3\), column `cost`.*Up-sell compares",
                 id="missing-price"),
    pytest.param({"cost": [1.0, -2.0, 2.0, 3.0]}, "bad_price",
                 r"bad_price: 1 row; first at row 1 \(file line 3\), column `cost`: expected a number >= 0, "
                 r"found -2.0", id="negative-price"),
    pytest.param({"cost": ["1", "2", "free", "3"]}, "bad_price",
                 r"bad_price: 1 row; first at row 2 \(file line 4\), column `cost`: expected a number >= 0, "
                 r"found 'free'", id="text-price"),
    pytest.param({"stars": ["4", "five", "3", "1"]}, "non_numeric_feature",
                 r"non_numeric_feature: 1 row; first at row 1 \(file line 3\), column `stars`: expected a "
                 r"finite number, found 'five'", id="text-feature"),
    pytest.param({"weight": [1.0, 2.0, np.inf, 1.0]}, "non_numeric_feature",
                 r"non_numeric_feature: 1 row; first at row 2 .*column `weight`", id="infinite-feature"),
    pytest.param({"weight": [1.0, 2.0, None, 1.0]}, "missing_feature",
                 r"missing_feature: 1 row; first at row 2 \(file line 4\), column `weight`", id="missing-feature"),
    pytest.param({"dept": ["a", None, "b", "c"]}, "missing_category",
                 r"missing_category: 1 row; first at row 1 \(file line 3\), column `dept`", id="missing-category"),
]


@pytest.mark.parametrize(("changes", "kind", "message"), BAD_ITEMS)
def test_bad_item_rows_are_named(tmp_path: Path, changes: dict[str, Any], kind: str, message: str) -> None:
    frame = items_frame().assign(**changes)
    with pytest.raises(DataImportError, match=message) as info:
        import_catalog(write_csv(frame, tmp_path / "items.csv"), MAPPING)
    assert [e.kind for e in info.value.errors] == [kind]


def test_every_bad_column_is_reported_at_once(tmp_path: Path) -> None:
    frame = items_frame().assign(sku=["A", "A", "B", "C"], cost=[1.0, None, 2.0, 3.0],
                                 stars=["1", "2", "x", "4"])
    with pytest.raises(DataImportError) as info:
        import_catalog(write_csv(frame, tmp_path / "items.csv"), MAPPING)
    assert [e.kind for e in info.value.errors] == ["duplicate_id", "missing_price", "non_numeric_feature"]
    assert "nothing was written" in str(info.value)


def test_unknown_columns_are_named_with_the_closest_one(tmp_path: Path) -> None:
    path = write_csv(items_frame(), tmp_path / "items.csv")
    with pytest.raises(LogFormatError, match=r"no column `costs` \(mapped to price\) \(did you mean `cost`\?\)"):
        import_catalog(path, CatalogMapping(id="sku", price="costs"))


def test_unreadable_and_empty_item_files(tmp_path: Path) -> None:
    (tmp_path / "items.xlsx").write_text("x")
    with pytest.raises(LogFormatError, match=r"cannot tell the format.*\*.csv"):
        import_catalog(tmp_path / "items.xlsx", MAPPING)
    (tmp_path / "empty.csv").write_text("sku,dept,cost,stars,weight\n")
    with pytest.raises(LogFormatError, match="has a header but no items"):
        import_catalog(tmp_path / "empty.csv", MAPPING)
    with pytest.raises(LogFormatError, match="no file at"):
        import_catalog(tmp_path / "nowhere.csv", MAPPING)


def test_a_config_table_names_every_mistake() -> None:
    assert CatalogMapping.from_table({"id": "sku", "features": "a,b"}) == CatalogMapping(id="sku", features=("a", "b"))
    with pytest.raises(ConfigError) as info:
        CatalogMapping.from_table({"category": 3, "prize": "p", "features": [1]}, "shop.toml")
    text = str(info.value)
    assert "shop.toml has 4 problems" in text
    for key in ("catalog.prize", "catalog.id", "catalog.category", "catalog.features"):
        assert key in text


# ---------------------------------------------------------------------- ids in the schema
def text_catalog() -> Catalog:
    return Catalog(item_id=np.array(["SKU-3", "SKU-1", "SKU-2"]), category=np.array(["a", "b", "a"]),
                   price=np.array([3.0, 1.0, 2.0]), features=np.zeros((3, 0)))


def test_index_of_maps_ids_to_indices() -> None:
    cat = text_catalog()
    assert cat.index_of(["SKU-2", "SKU-3", "nope", "SKU-1"]).tolist() == [2, 0, -1, 1]
    assert cat.index_of(pa.array(["SKU-1", None])).tolist() == [1, -1]
    ints = Catalog(item_id=np.array([7, 3, 11]), category=np.array(["a", "a", "a"]), price=None,
                   features=np.zeros((3, 0)))
    assert ints.index_of(np.array([11, 7, 5])).tolist() == [2, 0, -1]
    assert ints.index_of(["3", "11", "x", "3.0"]).tolist() == [1, 2, -1, -1]  # decimal text of the id


def test_ids_are_one_kind_and_never_empty() -> None:
    with pytest.raises(LogValidationError, match="integer or text item ids"):
        Catalog(item_id=np.array([1, "a"], dtype=object), category=np.array(["a", "a"]), price=None,
                features=np.zeros((2, 0)))
    with pytest.raises(LogValidationError, match="a non-empty id"):
        Catalog(item_id=np.array(["a", ""]), category=np.array(["a", "a"]), price=None,
                features=np.zeros((2, 0)))
    with pytest.raises(LogValidationError, match="unique item ids, found item id 'a' more than once"):
        Catalog(item_id=np.array(["a", "a"]), category=np.array(["a", "a"]), price=None,
                features=np.zeros((2, 0)))


def test_text_and_integer_ids_are_different_catalogs() -> None:
    a = Catalog(item_id=np.array(["1", "2"]), category=np.array(["a", "a"]), price=None, features=np.zeros((2, 0)))
    b = Catalog(item_id=np.array([1, 2]), category=np.array(["a", "a"]), price=None, features=np.zeros((2, 0)))
    assert not a.equals(b) and a.equals(a) and a.id_kind == "str" and b.id_kind == "int"


def test_a_log_with_text_ids_round_trips(tmp_path: Path) -> None:
    log = SlateLog.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0, 2], [1, 0]]),
                               reward=np.zeros((2, 2)), pscore=np.full(2, 1 / 6),
                               pscore_item=np.full((2, 2), 1 / 3), catalog=text_catalog(),
                               metadata=LogMetadata(pscore_source="estimated"))
    save_parquet(log, tmp_path / "log.parquet")
    back = load_parquet(tmp_path / "log.parquet")
    assert back.equals(log) and back.metadata.pscore_source == "estimated"


def test_a_version_1_file_reads_as_logged(tmp_path: Path) -> None:
    log = SlateLog.from_arrays(context=np.zeros((2, 1)), slate=np.array([[0], [1]]), reward=np.zeros((2, 1)),
                               pscore=np.full(2, 0.5), catalog=Catalog.anonymous(2))
    table = log_to_table(log)
    meta = json.loads(table.schema.metadata[META_KEY])
    meta["schema_version"] = 1
    del meta["pscore_source"]  # version 1 had no such key
    pq.write_table(table.replace_schema_metadata({META_KEY: json.dumps(meta).encode()}), tmp_path / "v1.parquet")
    back = load_parquet(tmp_path / "v1.parquet")
    assert back.metadata.pscore_source == "logged" and back.metadata.schema_version == 2
    assert back.catalog.id_kind == "int"


def test_pscore_source_is_checked() -> None:
    with pytest.raises(LogValidationError, match=r"`metadata.pscore_source`: expected one of \['logged', 'estimated'\]"):
        SlateLog.from_arrays(context=np.zeros((1, 1)), slate=np.array([[0]]), reward=np.zeros((1, 1)),
                             pscore=np.ones(1), catalog=Catalog.anonymous(1),
                             metadata=LogMetadata(pscore_source="guessed"))


def test_a_log_without_context_round_trips(tmp_path: Path) -> None:
    log = SlateLog.from_arrays(context=np.zeros((3, 0)), slate=np.array([[0], [1], [2]]), reward=np.zeros((3, 1)),
                               pscore=np.full(3, 1 / 3), catalog=text_catalog())
    save_parquet(log, tmp_path / "log.parquet")
    back = load_parquet(tmp_path / "log.parquet")
    assert back.equals(log) and back.dim_context == 0
