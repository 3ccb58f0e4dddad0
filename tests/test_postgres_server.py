"""The test session's PostgreSQL (tests/postgres_server.py): where it comes from, what the summary says, cleanup.

Each case runs a small pytest session of its own in a subprocess (the plugin acts at session level: start,
skip-or-fail, summary line, teardown), with the environment that case is about.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tests.postgres_server import NO_POSTGRES, LocalPostgres, PostgresServer, redact_url

ROOT = Path(__file__).resolve().parent.parent

INNER_TESTS = """
import os
from pathlib import Path

import asyncpg
import pytest

from tests.postgres_server import REPORT_KEY


def test_plain(request):
    # Nothing asked for PostgreSQL yet: no server was started for this test.
    assert request.config.stash[REPORT_KEY].server is None


async def test_database(fresh_postgres_url):
    conn = await asyncpg.connect(fresh_postgres_url)
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert tables == 0
        await conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        out = Path(os.environ["INNER_OUT"])
        if os.environ.get("INNER_SHOW_SERVER"):
            data = await conn.fetchval("SHOW data_directory")
            port = await conn.fetchval("SHOW port")
            out.write_text(f"{data}\\n{port}\\n{fresh_postgres_url}\\n")
        if os.environ.get("INNER_SLEEP"):
            import asyncio

            await asyncio.sleep(float(os.environ["INNER_SLEEP"]))
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend_url(request, tmp_path):
    # The way a backend-parametrised suite asks: by parameter, fetching PostgreSQL only for its half.
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bot.sqlite3"
    return request.getfixturevalue("fresh_postgres_url")


def test_backend(backend_url):
    assert backend_url.startswith(("sqlite:", "postgresql:"))
"""


def _inner_env(tmp_path: Path, *, programs: bool, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in ("TEST_DATABASE_URL", "REQUIRE_POSTGRES")}
    env["PYTHONPATH"] = str(ROOT)
    env["INNER_OUT"] = str(tmp_path / "out.txt")
    if not programs:
        # Only the directory of this Python: no initdb, no pg_ctl.
        env["PATH"] = str(Path(sys.executable).parent)
    env.update(extra)
    return env


def _inner_command(tmp_path: Path, *selection: str) -> list[str]:
    (tmp_path / "test_inner.py").write_text(INNER_TESTS)
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "tests.postgres_server",
        "-o",
        "asyncio_mode=auto",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        str(tmp_path / "test_inner.py"),
        *selection,
    ]


def _run_inner(tmp_path: Path, env: dict[str, str], *selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _inner_command(tmp_path, *selection),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _need_programs() -> None:
    if LocalPostgres.from_path() is None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail("REQUIRE_POSTGRES=1 but initdb/pg_ctl are not on PATH", pytrace=False)
        pytest.skip("no initdb/pg_ctl on PATH")


def test_redact_url_hides_only_the_password() -> None:
    assert redact_url("postgresql://bot:s3cret@db:5432/bot") == "postgresql://bot:***@db:5432/bot"
    assert redact_url("postgresql://postgres@127.0.0.1:5/postgres") == "postgresql://postgres@127.0.0.1:5/postgres"


def test_without_any_postgres_the_tests_skip_and_the_summary_says_so_once(tmp_path: Path) -> None:
    done = _run_inner(tmp_path, _inner_env(tmp_path, programs=False))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 2 skipped" in done.stdout
    assert [line for line in done.stdout.splitlines() if "PostgreSQL" in line] == [f"{NO_POSTGRES} (2 tests)"]


def test_require_postgres_fails_instead_of_skipping(tmp_path: Path) -> None:
    done = _run_inner(tmp_path, _inner_env(tmp_path, programs=False, REQUIRE_POSTGRES="1"))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "REQUIRE_POSTGRES=1 but no TEST_DATABASE_URL and no initdb/pg_ctl on PATH" in done.stdout
    assert "2 passed, 2 errors" in done.stdout


@pytest.mark.postgres
def test_own_server_starts_on_demand_and_is_gone_after_the_session(tmp_path: Path) -> None:
    _need_programs()
    # Unrelated tests alone: the plain test asserts no server was started, and the summary says nothing.
    plain = _run_inner(tmp_path, _inner_env(tmp_path, programs=True), "-m", "not postgres")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert "2 passed, 2 deselected" in plain.stdout  # test_database and test_backend[postgres] carry the marker
    assert "PostgreSQL" not in plain.stdout

    done = _run_inner(tmp_path, _inner_env(tmp_path, programs=True, INNER_SHOW_SERVER="1"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PostgreSQL tests: 2 passed (own server 15." in done.stdout
    data_directory, port, url = (tmp_path / "out.txt").read_text().split()
    assert url.startswith(f"postgresql://postgres@127.0.0.1:{port}/t_")
    assert not Path(data_directory).exists()
    assert not _accepts(int(port))


@pytest.mark.postgres
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_an_interrupted_or_killed_session_stops_the_server_and_deletes_it(tmp_path: Path, how: signal.Signals) -> None:
    _need_programs()
    out = tmp_path / "out.txt"
    env = _inner_env(tmp_path, programs=True, INNER_SHOW_SERVER="1", INNER_SLEEP="60")
    process = subprocess.Popen(
        _inner_command(tmp_path, "-k", "database"),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_text().count("\n") == 3):
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the inner test never reached its sleep"
            time.sleep(0.1)
        data_directory, port, _url = out.read_text().split()
        assert Path(data_directory).exists()
        assert _accepts(int(port))
        process.send_signal(how)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if how == signal.SIGINT:
        assert "KeyboardInterrupt" in output  # pytest's own teardown stopped it
    else:
        # No teardown ran: the watchdog does it, in its own time.
        deadline = time.monotonic() + 30
        while Path(data_directory).exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    assert not Path(data_directory).exists()
    assert not _accepts(int(port))


async def test_test_database_url_is_used_and_each_database_dropped(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    # This session's server stands in for an operator's TEST_DATABASE_URL; the inner session has no programs.
    env = _inner_env(tmp_path, programs=False, TEST_DATABASE_URL=postgres_server.url, INNER_SHOW_SERVER="1")
    done = _run_inner(tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PostgreSQL tests: 2 passed (TEST_DATABASE_URL, server 15." in done.stdout
    database = (tmp_path / "out.txt").read_text().split()[2].rsplit("/", 1)[1]
    conn = await asyncpg.connect(postgres_server.url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_database WHERE datname = $1", database) == 0
    finally:
        await conn.close()


def test_an_unreachable_test_database_url_fails_without_printing_its_password(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        env = _inner_env(tmp_path, programs=False, TEST_DATABASE_URL=f"postgresql://bot:s3cret@127.0.0.1:{port}/x")
        done = _run_inner(tmp_path, env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"cannot connect to PostgreSQL at postgresql://bot:***@127.0.0.1:{port}/x" in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


async def test_fresh_databases_are_empty_and_distinct(fresh_postgres_url: str, postgres_server: PostgresServer) -> None:
    other = await postgres_server.create_database()
    try:
        assert other != fresh_postgres_url
        conn = await asyncpg.connect(fresh_postgres_url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
            await conn.execute("CREATE TABLE only_here (id BIGINT)")
        finally:
            await conn.close()
        conn = await asyncpg.connect(other)
        try:
            assert await conn.fetchval("SELECT to_regclass('only_here')") is None
        finally:
            await conn.close()
    finally:
        await postgres_server.drop_database(other)
