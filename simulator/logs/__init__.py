"""The log format: schema, validation, Parquet I/O, the Open Bandit Dataset importer."""

from simulator.errors import LogFormatError, LogValidationError, Problem, SlatewiseError
from simulator.logs.describe import LogSummary, describe
from simulator.logs.io import load_parquet, save_parquet
from simulator.logs.obd import import_obd
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
    "LogFormatError",
    "LogMetadata",
    "LogSummary",
    "LogValidationError",
    "Problem",
    "SlateLog",
    "SlatewiseError",
    "describe",
    "import_obd",
    "load_parquet",
    "save_parquet",
    "train_test_split",
]
