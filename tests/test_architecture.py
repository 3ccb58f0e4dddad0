"""Architecture rules that a lint cannot see on its own."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bot.bot import INITIAL_EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
DISCORD_ALLOWED = {ROOT / "bot" / "bot.py", ROOT / "bot" / "__main__.py"}
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b", re.I | re.S)
DRIVERS = {"aiosqlite", "sqlite3", "asyncpg", "psycopg", "aiohttp", "requests", "httpx", "urllib"}


def _imports(path: Path) -> set[str]:
    """Every module a file imports — at the top, inside functions, and under TYPE_CHECKING alike.

    ``from package import name`` yields ``package.name`` (the caller keeps it if that is a module,
    else falls back to ``package``).
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Import edges between our own modules (bot.*, cogs.*)."""
    files = [*(ROOT / "bot").rglob("*.py"), *(ROOT / "cogs").rglob("*.py")]
    modules = {_module(path): path for path in files}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # "from bot.credits import X" may name a submodule or an attribute: keep what is a module.
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_bot_package_does_not_import_discord() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "bot").rglob("*.py")
        if path not in DISCORD_ALLOWED
        and any(name == "discord" or name.startswith("discord.") for name in _imports(path))
    ]
    assert offenders == []


def test_cogs_hold_no_sql_and_no_http() -> None:
    offenders = []
    for path in (ROOT / "cogs").rglob("*.py"):
        if DRIVERS & {name.split(".")[0] for name in _imports(path)}:
            offenders.append(f"{path.name}: imports a database or HTTP library")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value):
                offenders.append(f"{path.name}:{node.lineno}: SQL in a string")
    assert offenders == []


def test_no_cog_looks_another_up_by_name() -> None:
    offenders = [
        f"{path.name}:{number}"
        for path in (ROOT / "cogs").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "get_cog(" in line
    ]
    assert offenders == []


def test_no_import_cycles_between_our_modules() -> None:
    assert _cycles(_graph()) == []


def test_the_bot_class_does_not_import_cogs() -> None:
    """The gateway client is wired by the composition root; it must not reach into cogs itself."""
    assert not any(name.startswith("cogs") for name in _imports(ROOT / "bot" / "bot.py"))


def test_every_cog_module_is_listed_as_an_extension() -> None:
    modules = {f"cogs.{path.stem}" for path in (ROOT / "cogs").glob("*.py") if not path.stem.startswith("_")}
    assert modules == set(INITIAL_EXTENSIONS)


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
