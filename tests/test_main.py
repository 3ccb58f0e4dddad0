"""`python -m bot` as an operator starts it: configuration errors are one line and exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run_bot(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)}
    # Run from an empty directory so a developer's .env cannot leak into the test.
    return subprocess.run(
        [sys.executable, "-m", "bot"],
        env={**base, **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_missing_token_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = _run_bot({"HYPEREAL_SANDBOX": "1"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "DISCORD_TOKEN" in lines[0]
    assert ".env" in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_value_prints_one_line_and_exits_2(tmp_path: Path) -> None:
    result = _run_bot({"DISCORD_TOKEN": "tok-SECRET", "HYPEREAL_SANDBOX": "1", "WEB_PORT": "abc"}, tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("WEB_PORT is invalid"), result.stderr
    assert "tok-SECRET" not in result.stderr


def test_env_file_in_working_directory_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DISCORD_TOKEN=tok\nHYPEREAL_SANDBOX=1\nWEB_PORT=not-a-port\n", encoding="utf-8")
    result = _run_bot({}, tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("WEB_PORT is invalid")
