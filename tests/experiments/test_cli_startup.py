"""`slatewise --help` and `--version` start without the heavy libraries; the registry's help is the commands'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.cli import COMMANDS, load_command

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "stable_baselines3", "ray", "matplotlib", "pandas", "numba", "scipy")

_PROBE = """
import json, sys
heavy = sys.argv.pop(1).split(",")
from experiments.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}), file=sys.stderr)
"""


def _probe(*args: str) -> tuple[dict[str, object], str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _PROBE, ",".join(HEAVY), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120, check=False)
    return json.loads(done.stderr.strip().splitlines()[-1]), done.stdout


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()], ids=["help", "version", "bare"])
def test_help_and_version_import_no_heavy_library(args: tuple[str, ...]) -> None:
    result, stdout = _probe(*args)
    assert result["code"] in (0, None, 2)
    assert result["loaded"] == []
    if args == ("--help",):
        for name in COMMANDS:
            assert name in stdout


def test_version_names_the_package_version() -> None:
    from importlib.metadata import version

    _result, stdout = _probe("--version")
    assert version("slatewise") in stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_registry_help_is_the_commands_own(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert command.get_short_help_str(limit=1000) == COMMANDS[name][1]


def test_an_unknown_command_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from experiments.cli import main

    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output
