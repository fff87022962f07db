"""`slatewise logs ...` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from click.testing import CliRunner

from experiments.cli import main
from simulator.logs import Catalog, SlateLog, save_parquet
from simulator.logs.io import log_to_table


def test_import_describe_validate(obd_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "men.parquet"
    result = runner.invoke(main, ["logs", "import-obd", str(obd_dir), "--policy", "random",
                                  "--campaign", "men", "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rows"] == 10_000

    result = runner.invoke(main, ["logs", "describe", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["n_rounds"] == 10_000 and len(doc["reward_rate_by_position"]) == 3

    result = runner.invoke(main, ["logs", "describe", str(out)])
    assert "position 2" in result.output

    result = runner.invoke(main, ["logs", "validate", str(out)])
    assert result.exit_code == 0 and "valid" in result.output


def test_validate_lists_problems_and_exits_1(tmp_path: Path) -> None:
    log = SlateLog.from_arrays(context=np.zeros((3, 1)), slate=np.array([[0, 1], [1, 0], [0, 1]]),
                               reward=np.zeros((3, 2)), pscore=np.full(3, 0.5),
                               pscore_item=np.full((3, 2), 0.5), catalog=Catalog.anonymous(2))
    table = log_to_table(log)
    # corrupt a valid file behind the library's back: a duplicate item and a zero pscore
    bad = table.set_column(table.column_names.index("pscore"), "pscore",
                           [np.array([0.5, 0.0, 0.5])])
    pq.write_table(bad, tmp_path / "bad.parquet")
    result = CliRunner().invoke(main, ["logs", "validate", str(tmp_path / "bad.parquet"), "--json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["valid"] is False
    assert any("`pscore` at row 1" in p for p in doc["problems"])

    save_parquet(log, tmp_path / "good.parquet")
    result = CliRunner().invoke(main, ["logs", "validate", str(tmp_path / "good.parquet"), "--json"])
    assert result.exit_code == 0 and json.loads(result.output)["valid"] is True


def test_describe_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["logs", "describe", str(tmp_path / "nope.parquet")])
    assert result.exit_code == 1
    assert "no log file" in result.output
