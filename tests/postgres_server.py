"""PostgreSQL for the test session: ``TEST_DATABASE_URL``, or a throwaway server started on first use.

A pytest plugin (listed in ``tests/conftest.py``'s ``pytest_plugins``). It gives:

- ``postgres_server`` (session): a :class:`PostgresServer`; its ``url`` is the base URL
  (``postgresql://postgres@127.0.0.1:PORT/postgres`` for our own server).
- ``fresh_postgres_url`` (function, async): a new empty database per test, its URL (dropped after the test).
  ``PostgresServer.create_database()`` (or ``create_database_blocking()`` from sync code) makes more.

Where PostgreSQL comes from, in order:

1. ``TEST_DATABASE_URL`` — an existing server (its user needs CREATEDB); tests make their own databases on it.
2. ``initdb`` and ``pg_ctl`` on PATH — a server in a temp dir (in ``/dev/shm`` when there is room), started
   the first time a test asks for one (a run of unrelated tests pays nothing), tuned for throwaway data (fsync,
   synchronous_commit and full_page_writes off), listening on 127.0.0.1 at a free port with its unix socket in
   the temp dir. Run as root, the programs run as the ``postgres`` OS user (PostgreSQL refuses root). Stopped
   (``pg_ctl stop -m immediate``) and deleted at session end, also after Ctrl-C (pytest tears session fixtures
   down then; ``atexit`` is the backstop).
3. Neither: PostgreSQL tests are skipped and the terminal summary says so in one line — unless
   ``REQUIRE_POSTGRES=1`` (CI), where they fail instead.

Tests that use these fixtures (directly, through another fixture, or with a parameter id containing
``postgres``) get the ``postgres`` marker, so ``-m postgres`` selects them and the summary counts them.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

POSTGRES_FIXTURES = frozenset({"postgres_server", "fresh_postgres_url"})
NO_POSTGRES_REASON = "no TEST_DATABASE_URL and no initdb/pg_ctl on PATH"
NO_POSTGRES = f"PostgreSQL tests skipped: {NO_POSTGRES_REASON}"
STARTUP_TIMEOUT_SECONDS = 30.0
MEMORY_DIR_MIN_FREE = 2 * 1024**3

T = TypeVar("T")

# Run by a watchdog process: argv = [data dir, *the pg_ctl stop command].
WATCHDOG = """
import shutil, subprocess, sys
sys.stdin.buffer.read()  # returns at EOF: the test session closed the pipe, or died (even by SIGKILL)
subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL can be had here; the message says why and what to do."""


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def url_with_database(url: str, database: str) -> str:
    """``url`` pointing at another database on the same server (user, password, host, port and query kept)."""
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


def _run_blocking(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running loop.

    A fixture may be set up from within an async test's loop (``request.getfixturevalue``), where
    ``asyncio.run`` refuses to start: a thread of its own with its own loop works in both cases.
    """

    async def main() -> T:
        return await make()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _memory_dir() -> str | None:
    """``/dev/shm`` when it is a roomy writable tmpfs, else None (the default temp dir).

    On disk, CREATE DATABASE costs ~0.3 s here (it writes ~1,000 catalog files); in memory ~0.02 s, and initdb
    0.4 s instead of 0.7 s. Databases are dropped after each test, so the server stays small.
    """
    shm = "/dev/shm"
    try:
        roomy = shutil.disk_usage(shm).free >= MEMORY_DIR_MIN_FREE
    except OSError:
        return None
    return shm if roomy and os.access(shm, os.W_OK | os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A PostgreSQL server the tests may create databases on.

    ``url`` is the base URL (the maintenance database). ``owned`` is True for the server this session started.
    """

    url: str
    owned: bool
    version: str = ""
    startup_seconds: float = 0.0
    _names: Iterator[int] = field(default_factory=itertools.count)

    async def create_database(self) -> str:
        """Create a new empty database (from ``template0``: nothing copied but the bare catalog) and return its URL.

        Names carry the pid so two sessions sharing one ``TEST_DATABASE_URL`` never collide.
        """
        name = f"t_{os.getpid()}_{next(self._names)}"
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        finally:
            await conn.close()
        return url_with_database(self.url, name)

    def create_database_blocking(self) -> str:
        """:meth:`create_database` for sync code (a sync fixture choosing the backend, a subprocess test)."""
        return _run_blocking(self.create_database)

    async def drop_database(self, url: str) -> None:
        """Drop a database :meth:`create_database` made (``FORCE``: a leaked connection must not block it)."""
        name = urlsplit(url).path.lstrip("/")
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


class LocalPostgres:
    """A PostgreSQL server in a temp dir, run with ``initdb``/``pg_ctl`` from PATH (as ``postgres`` when root)."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self._initdb = initdb
        self._pg_ctl = pg_ctl
        self._dir: Path | None = None
        self._started = False
        self._watchdog: subprocess.Popen[bytes] | None = None
        self.port = 0

    @classmethod
    def from_path(cls) -> LocalPostgres | None:
        """The server programs on PATH, or None when either is missing."""
        initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if initdb is None or pg_ctl is None:
            return None
        return cls(initdb, pg_ctl)

    @property
    def url(self) -> str:
        """The base URL: the ``postgres`` superuser (trust auth, loopback only) on the maintenance database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        # PostgreSQL refuses to run as root; tests here run as root, so drop to the postgres OS user.
        if os.geteuid() != 0:
            return argv
        runuser = shutil.which("runuser")
        if runuser is not None:
            return [runuser, "-u", "postgres", "--", *argv]
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            return [setpriv, "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *argv]
        raise PostgresUnavailable("tests run as root but neither runuser nor setpriv is on PATH to start PostgreSQL")

    def _run(self, argv: list[str], what: str) -> None:
        done = subprocess.run(
            self._as_server_user(argv),
            capture_output=True,
            text=True,
            timeout=STARTUP_TIMEOUT_SECONDS,
            # Its own session: a Ctrl-C in the terminal must not reach the server before our teardown does.
            start_new_session=True,
            check=False,
        )
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-2000:]
            raise PostgresUnavailable(f"{what} failed (exit {done.returncode}): {output}")

    def start(self) -> None:
        """initdb a new cluster in a temp dir and start it; returns once it accepts connections."""
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "tests run as root and there is no 'postgres' OS user to run PostgreSQL as: "
                    "create one (useradd -r postgres) or set TEST_DATABASE_URL"
                ) from None
        self._dir = Path(tempfile.mkdtemp(prefix="hypereal-pg-", dir=_memory_dir()))
        atexit.register(self.stop)  # backstop: pytest normally stops it in the fixture's teardown
        if os.geteuid() == 0:
            shutil.chown(self._dir, user="postgres")
        data = self._dir / "data"
        self._start_watchdog(self._as_server_user([self._pg_ctl, "stop", "-D", str(data), "-m", "immediate"]))
        self._run(
            [self._initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
            "initdb",
        )
        # A free port can be taken between our probe and the server's bind: try a few.
        last_error: PostgresUnavailable | None = None
        for _ in range(3):
            self.port = _free_port()
            options = " ".join(
                [
                    "-c listen_addresses=127.0.0.1",
                    f"-c port={self.port}",
                    f"-c unix_socket_directories={self._dir}",
                    # Throwaway data: durability costs time and buys nothing here.
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    # Shared memory segments inside the data dir (not loose in /dev/shm): deleted along with it.
                    "-c dynamic_shared_memory_type=mmap",
                    # End-to-end tests run several bot processes with pools, plus concurrency tests.
                    "-c max_connections=300",
                ]
            )
            try:
                self._run(
                    [
                        self._pg_ctl,
                        "start",
                        "-D",
                        str(data),
                        "-l",
                        str(self._dir / "server.log"),
                        "-o",
                        options,
                        "-w",
                        "-t",
                        str(int(STARTUP_TIMEOUT_SECONDS)),
                    ],
                    "pg_ctl start",
                )
            except PostgresUnavailable as error:
                last_error = PostgresUnavailable(f"{error}\n{self._log_tail()}")
                continue
            self._started = True
            return
        assert last_error is not None
        raise last_error

    def _log_tail(self) -> str:
        assert self._dir is not None
        log = self._dir / "server.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""

    def _start_watchdog(self, stop_argv: list[str]) -> None:
        # A session killed outright (SIGKILL, a CI timeout) runs no teardown and no atexit: a watchdog process
        # holding the read end of a pipe sees EOF when this process dies, then stops the server and deletes it.
        assert self._dir is not None
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self._dir), *stop_argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C meant for pytest must not kill the watchdog first
        )

    def stop(self) -> None:
        """Stop the server at once and delete its directory (idempotent; never raises)."""
        watchdog, self._watchdog = self._watchdog, None
        try:
            self._stop()
        finally:
            if watchdog is not None:
                # Nothing left for it to do: closing the pipe lets it run its (now no-op) cleanup and exit.
                with contextlib.suppress(Exception):
                    assert watchdog.stdin is not None
                    watchdog.stdin.close()
                    watchdog.wait(timeout=STARTUP_TIMEOUT_SECONDS)

    def _stop(self) -> None:
        if self._dir is None:
            return
        directory, self._dir = self._dir, None
        if self._started:
            self._started = False
            with contextlib.suppress(Exception):
                subprocess.run(
                    self._as_server_user([self._pg_ctl, "stop", "-D", str(directory / "data"), "-m", "immediate"]),
                    capture_output=True,
                    timeout=STARTUP_TIMEOUT_SECONDS,
                    start_new_session=True,
                    check=False,
                )
        shutil.rmtree(directory, ignore_errors=True)


async def _server_version(url: str) -> str:
    conn = await asyncpg.connect(url)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def _check_server(url: str) -> str:
    """The server's version; raises PostgresUnavailable (password redacted) when it cannot be reached."""
    try:
        return _run_blocking(lambda: asyncio.wait_for(_server_version(url), timeout=STARTUP_TIMEOUT_SECONDS))
    except (OSError, asyncpg.PostgresError, TimeoutError, ValueError) as error:
        raise PostgresUnavailable(
            f"cannot connect to PostgreSQL at {redact_url(url)}: {type(error).__name__}: {error}; "
            "check TEST_DATABASE_URL or unset it to let the tests start their own server"
        ) from None


def _unavailable(reason: str) -> NoReturn:
    """Skip (the summary says why, once), or fail when ``REQUIRE_POSTGRES=1``."""
    if os.environ.get("REQUIRE_POSTGRES") == "1":
        pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (started on first use); skips or fails when there is none."""
    report = request.config.stash[REPORT_KEY]
    external = os.environ.get("TEST_DATABASE_URL")
    if external:
        try:
            version = _check_server(external)
        except PostgresUnavailable as error:
            # pytrace=False: a traceback would print the URL argument, password and all.
            pytest.fail(str(error), pytrace=False)
        server = PostgresServer(url=external, owned=False, version=version)
        report.server = server
        yield server
        return
    local = LocalPostgres.from_path()
    if local is None:
        _unavailable(NO_POSTGRES_REASON)
    started = time.monotonic()
    try:
        local.start()
        version = _check_server(local.url)
    except PostgresUnavailable as error:
        # The programs are here but the server would not run: that is broken, not absent — fail, do not skip.
        local.stop()
        pytest.fail(f"cannot start the test PostgreSQL: {error}", pytrace=False)
    except BaseException:
        local.stop()
        raise
    server = PostgresServer(url=local.url, owned=True, version=version, startup_seconds=time.monotonic() - started)
    report.server = server
    try:
        yield server
    finally:
        local.stop()


@pytest.fixture
async def fresh_postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty database for this test; its URL."""
    url = await postgres_server.create_database()
    try:
        yield url
    finally:
        # Dropped even on our own server: it lives in memory, and hundreds of 7 MB databases would add up.
        await postgres_server.drop_database(url)


def _uses_postgres(item: pytest.Item) -> bool:
    if POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    # A backend parameter may fetch the database with request.getfixturevalue: its id names it.
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgres" in callspec.id.lower()


class PostgresReport:
    """Counts PostgreSQL-backed tests and writes the summary line (a plugin object, one per pytest run)."""

    def __init__(self) -> None:
        self.server: PostgresServer | None = None
        self.passed = 0
        self.failed = 0
        self.skipped_no_server = 0

    @pytest.hookimpl(tryfirst=True)  # before -m deselects: ``-m postgres`` / ``-m "not postgres"`` must see the marker
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            if _uses_postgres(item):
                item.add_marker(pytest.mark.postgres)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if "postgres" not in report.keywords:
            return
        if report.failed:
            self.failed += 1  # in the call, or a setup error (REQUIRE_POSTGRES=1 and no server) or teardown
        elif report.passed and report.when == "call":
            self.passed += 1
        elif report.skipped and report.when == "setup" and NO_POSTGRES_REASON in str(report.longrepr):
            self.skipped_no_server += 1

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.skipped_no_server:
            terminalreporter.write_line(f"{NO_POSTGRES} ({self.skipped_no_server} tests)", yellow=True)
        if not (self.passed or self.failed):
            return
        if self.server is None:  # pytest-xdist: each worker started (or reached) its own server
            where = "a server per test worker"
        elif self.server.owned:
            where = f"own server {self.server.version}, started in {self.server.startup_seconds:.1f} s"
        else:
            where = f"TEST_DATABASE_URL, server {self.server.version}"
        failed = f", {self.failed} failed" if self.failed else ""
        terminalreporter.write_line(f"PostgreSQL tests: {self.passed} passed{failed} ({where})", green=not failed)


REPORT_KEY = pytest.StashKey[PostgresReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against PostgreSQL (TEST_DATABASE_URL or a throwaway server)")
    report = PostgresReport()
    config.stash[REPORT_KEY] = report
    config.pluginmanager.register(report, "postgres-report")
