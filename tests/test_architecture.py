"""Architecture rules that a lint cannot see on its own."""

from __future__ import annotations

import ast
from pathlib import Path

from bot.bot import INITIAL_EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
DISCORD_ALLOWED = {ROOT / "bot" / "bot.py", ROOT / "bot" / "__main__.py"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_bot_package_does_not_import_discord() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "bot").rglob("*.py")
        if path not in DISCORD_ALLOWED
        and any(name == "discord" or name.startswith("discord.") for name in _imported_modules(path))
    ]
    assert offenders == []


def test_cogs_hold_no_sql_and_no_http() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "cogs").rglob("*.py")
        if {"aiosqlite", "sqlite3", "aiohttp"} & {name.split(".")[0] for name in _imported_modules(path)}
    ]
    assert offenders == []


def test_every_cog_module_is_listed_as_an_extension() -> None:
    modules = {f"cogs.{path.stem}" for path in (ROOT / "cogs").glob("*.py") if not path.stem.startswith("_")}
    assert modules == set(INITIAL_EXTENSIONS)
