"""Long commands draw a progress bar on a terminal, and none with --json or when piped."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from experiments.cli.output import Stages, progress_iter, show_progress

ROOT = Path(__file__).resolve().parents[2]


def _run_on_terminal(args: list[str]) -> tuple[int, str, str]:
    """Run ``slatewise ARGS`` with stdout and stderr on pseudo-terminals; return code, stdout, stderr."""
    out_master, out_slave = pty.openpty()
    err_master, err_slave = pty.openpty()
    for fd in (out_slave, err_slave):  # a new pty is 0 x 0; tqdm draws nothing on a 0-column terminal
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "120"}
    proc = subprocess.Popen([sys.executable, "-m", "experiments", *args], stdout=out_slave, stderr=err_slave,
                            stdin=subprocess.DEVNULL, env=env, cwd=ROOT)
    os.close(out_slave)
    os.close(err_slave)
    chunks: dict[int, list[bytes]] = {out_master: [], err_master: []}
    open_fds = {out_master, err_master}
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 60)
        if not ready:
            proc.kill()
            raise TimeoutError(f"slatewise {args} printed nothing for 60 s")
        for fd in ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the other side closed (Linux raises EIO)
                data = b""
            if data:
                chunks[fd].append(data)
            else:
                open_fds.discard(fd)
                os.close(fd)
    code = proc.wait(timeout=60)
    return code, b"".join(chunks[out_master]).decode(), b"".join(chunks[err_master]).decode()


def _import_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["logs", "import-obd", str(ROOT / "tests" / "data" / "obd"), "--campaign", "men", "-o",
            str(tmp_path / "men.parquet"), *extra]


def test_import_obd_draws_progress_on_a_terminal(tmp_path: Path) -> None:
    code, stdout, stderr = _run_on_terminal(_import_args(tmp_path))
    assert code == 0, stderr
    assert "import-obd" in stderr  # the bar's label
    assert "wrote 10,000 decisions" in stdout


def test_import_obd_with_json_on_a_terminal_draws_none(tmp_path: Path) -> None:
    code, stdout, stderr = _run_on_terminal(_import_args(tmp_path, "--json"))
    assert code == 0, stderr
    assert stderr == ""
    assert stdout.lstrip().startswith("{")


def test_import_obd_piped_draws_none(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "experiments", *_import_args(tmp_path)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120, check=True)
    assert done.stderr == ""
    assert "wrote 10,000 decisions" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("extra", "drawn"), [((), True), (("--json",), False)], ids=["table", "json"])
def test_world_generate_draws_progress_only_without_json(tmp_path: Path, extra: tuple[str, ...],
                                                          drawn: bool) -> None:
    code, stdout, stderr = _run_on_terminal(["world", "generate", "--sessions", "30", "--truth-sessions", "20",
                                             "-o", str(tmp_path / "log.parquet"), *extra])
    assert code == 0, stderr
    assert ("world generate" in stderr) is drawn
    assert stdout.lstrip().startswith("wrote" if drawn else "{")


@pytest.mark.parametrize(("as_json", "wanted", "stdout_tty", "stderr_tty", "expected"), [
    pytest.param(False, True, True, True, True, id="terminal"),
    pytest.param(True, True, True, True, False, id="json"),
    pytest.param(False, False, True, True, False, id="no-progress"),
    pytest.param(False, True, False, True, False, id="stdout-piped"),
    pytest.param(False, True, True, False, False, id="stderr-piped"),
])
def test_show_progress_needs_two_terminals_and_no_json(monkeypatch: pytest.MonkeyPatch, as_json: bool,
                                                       wanted: bool, stdout_tty: bool, stderr_tty: bool,
                                                       expected: bool) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: stdout_tty)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: stderr_tty)
    assert show_progress(as_json, wanted) is expected


def test_disabled_progress_yields_everything_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress_iter(range(5), False, desc="x")) == [0, 1, 2, 3, 4]
    with Stages(["a", "b"], False) as stage:
        stage.next()
        stage.next()
    assert capsys.readouterr() == ("", "")


def test_enabled_progress_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(progress_iter(range(3), True, desc="counting")) == [0, 1, 2]
    with Stages(["first", "second"], True, desc="staged") as stage:
        stage.next()
        stage.next()
    out, err = capsys.readouterr()
    assert out == ""
    assert "counting" in err
    assert "staged" in err
