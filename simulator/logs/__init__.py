"""The log format: schema, validation, Parquet I/O, importers (a shop's own files, Open Bandit Dataset)."""

from simulator.errors import DataImportError, LogFormatError, LogValidationError, Problem, SlatewiseError
from simulator.logs.catalog import CatalogMapping, import_catalog, load_catalog, save_catalog
from simulator.logs.describe import LogSummary, describe
from simulator.logs.generic import LogImport, import_logs
from simulator.logs.io import load_parquet, save_parquet
from simulator.logs.mapping import LogMapping
from simulator.logs.obd import import_obd, obd_vocabulary
from simulator.logs.schema import (
    SCHEMA_VERSION,
    Catalog,
    LogMetadata,
    SlateLog,
)
from simulator.logs.split import train_test_split

__all__ = [
    "SCHEMA_VERSION",
    "Catalog",
    "CatalogMapping",
    "DataImportError",
    "LogFormatError",
    "LogImport",
    "LogMapping",
    "LogMetadata",
    "LogSummary",
    "LogValidationError",
    "Problem",
    "SlateLog",
    "SlatewiseError",
    "describe",
    "import_catalog",
    "import_logs",
    "import_obd",
    "load_catalog",
    "load_parquet",
    "obd_vocabulary",
    "save_catalog",
    "save_parquet",
    "train_test_split",
]
