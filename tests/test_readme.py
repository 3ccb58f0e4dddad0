"""What README.md promises an operator in the first five minutes is what the Makefile does."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _quick_start_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_two_commands_means_two_commands() -> None:
    assert "Two commands:" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert _quick_start_commands() == ["make run", "make test"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_the_first_make_run_creates_env_from_the_example_and_never_overwrites_it(tmp_path: Path) -> None:
    for name in ("Makefile", ".env.example"):
        shutil.copy(ROOT / name, tmp_path / name)

    def make_env() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["make", "-s", ".env"], cwd=tmp_path, capture_output=True, text=True, check=False)

    first = make_env()
    assert first.returncode == 0, first.stderr
    assert "set DISCORD_TOKEN" in first.stdout
    assert (tmp_path / ".env").read_text(encoding="utf-8") == (ROOT / ".env.example").read_text(encoding="utf-8")
    (tmp_path / ".env").write_text("DISCORD_TOKEN=mine\n", encoding="utf-8")
    (tmp_path / ".env.example").touch()  # newer than .env: must still not be copied over it
    assert make_env().returncode == 0
    assert (tmp_path / ".env").read_text(encoding="utf-8") == "DISCORD_TOKEN=mine\n"


def test_run_and_check_depend_on_env_only_to_create_it() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^run: \$\(STAMP_RUN\) \| \.env$", makefile, re.M)
    assert re.search(r"^check: \$\(STAMP_RUN\) \| \.env\n\t\$\(BIN\)/python -m bot check$", makefile, re.M)
    assert re.search(r"^\.env:\n\tcp \.env\.example \.env$", makefile, re.M)
