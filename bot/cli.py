"""Operator subcommands: ``python -m bot check``, ``backup PATH`` and ``migrate-to-postgres --from … --to …``.

``check`` answers "will it start, and is it wired right?" without starting anything: it loads the
settings, reads the database (read-only; nothing is migrated or created), asks Discord who the token
belongs to (``GET /users/@me``, then ``GET /oauth2/applications/@me`` for the invite link's client id),
checks the Hypereal key with a status poll for a job that cannot exist (``GET /api/v1/jobs/…``: free,
it starts nothing, and a 404 proves the key was accepted — a bad key gets 401 first), and resolves
``PUBLIC_URL``. Each result is one ``✓``/``✗`` line.

``backup`` copies the live database with SQLite's online backup API (a consistent snapshot even
while the bot writes), checks the copy (integrity, and the ledger invariant: counters equal the
ledger's sums), and only then moves it into place.

``migrate-to-postgres`` copies a SQLite database into an empty PostgreSQL one in one transaction and
verifies it (:mod:`bot.migrate_pg`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import sqlite3
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from pydantic import SecretStr
from yarl import URL

from bot.credits import CreditLedger
from bot.db import DatabaseUnusable, SQLiteDatabase, latest_version, preflight
from bot.download import is_public_address
from bot.errors import ConfigError
from bot.hypereal import HyperealClient, HyperealError, NotFound, RedirectRefused, Unauthorized
from bot.hypereal.errors import BadRequest, RateLimited
from bot.invite import invite_url
from bot.settings import Settings, load_settings, load_storage_settings
from bot.startup import EXIT_CONFIG, EXIT_OK, LOGIN_REJECTED, unreachable_reason

EXIT_CHECK_FAILED = 1
USAGE = (
    "usage: python -m bot [check | backup PATH]   (no argument: run the bot)\n"
    "       python -m bot migrate-to-postgres --from SQLITE_FILE --to POSTGRESQL_URL"
)
# A job id Hypereal cannot have issued: polling it is free, starts nothing, and tells a good key from a bad one.
PROBE_JOB_ID = "bot-check-no-such-job"
HTTP_TIMEOUT = 15.0


@dataclass(frozen=True)
class Result:
    """One line of ``check``'s report."""

    ok: bool
    text: str

    def line(self) -> str:
        """``✓ text`` or ``✗ text``."""
        return f"{'✓' if self.ok else '✗'} {self.text}"


def main(args: Sequence[str]) -> int:
    """Dispatch a subcommand; returns the exit status."""
    if args and args[0] == "check" and len(args) == 1:
        return check()
    if args and args[0] == "backup" and len(args) == 2:
        return backup(Path(args[1]), into_directory=args[1].endswith(("/", os.sep)))
    if args and args[0] == "migrate-to-postgres":
        options = _options(args[1:], ("--from", "--to"))
        if options is not None and len(options) == 2:
            return migrate_to_postgres(Path(options["--from"]), options["--to"])
    print(USAGE, file=sys.stderr)
    return EXIT_CONFIG


def _options(args: Sequence[str], names: Sequence[str]) -> dict[str, str] | None:
    """``--name value`` / ``--name=value`` pairs, each name at most once; None for anything else."""
    found: dict[str, str] = {}
    rest = list(args)
    while rest:
        name, equals, value = rest.pop(0).partition("=")
        if name not in names or name in found:
            return None
        if not equals:
            if not rest:
                return None
            value = rest.pop(0)
        found[name] = value
    return found


# ── check ────────────────────────────────────────────────────────────────────


def check() -> int:
    """Print one line per check and the invite link; 0 when every check passed, 1 otherwise, 2 for bad settings."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(Result(False, f"settings: {exc}").line())
        return EXIT_CONFIG
    print(Result(True, "settings: loaded from the environment and .env").line())
    results, link = asyncio.run(_checks(settings))
    for result in results:
        print(result.line())
    print(f"invite link: {link}" if link else "invite link: unknown until the Discord token works")
    return EXIT_OK if all(result.ok for result in results) else EXIT_CHECK_FAILED


async def _checks(settings: Settings) -> tuple[list[Result], str | None]:
    results = [await check_database(settings.database_path)]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as http:
        discord_result, application_id = await check_discord(http, settings)
        results.append(discord_result)
        results.append(await check_hypereal(http, settings))
    results.append(await check_public_url(settings))
    return results, invite_url(application_id) if application_id else None


async def check_database(path: Path) -> Result:
    """The file is usable as it is (read-only: nothing is created, nothing migrated)."""
    try:
        version = await asyncio.to_thread(preflight, path, create_directory=False)
    except DatabaseUnusable as exc:
        return Result(False, f"database: {exc}")
    known = latest_version()
    if version is None:
        return Result(True, f"database {path}: not created yet; the bot creates it at its first start")
    pending = known - version
    state = "up to date" if pending == 0 else f"{pending} migration(s) to apply at the next start"
    if version == 0:
        return Result(True, f"database {path}: empty ({state})")
    db = await SQLiteDatabase.open_readonly(path)
    try:
        drift = await CreditLedger(db, time.time, default_allowance=0, default_period="none").check_invariants()
    finally:
        await db.close()
    if drift:
        return Result(False, f"database {path}: the ledger does not balance ({drift[0]}); keep a copy and report it")
    return Result(True, f"database {path}: schema version {version} ({state}), ledger balanced")


async def check_discord(http: aiohttp.ClientSession, settings: Settings) -> tuple[Result, int | None]:
    """``GET /users/@me`` with the token; on success the application id (for the invite link)."""
    base = settings.discord_api_base.rstrip("/")
    headers = {"Authorization": f"Bot {settings.discord_token.get_secret_value()}"}
    try:
        async with http.get(f"{base}/users/@me", headers=headers) as response:
            if response.status == 401:
                return Result(False, LOGIN_REJECTED), None
            if response.status != 200:
                return Result(False, f"Discord token: {base} answered {response.status}; check DISCORD_API_BASE"), None
            user = await response.json(content_type=None)
        application_id = await _application_id(http, base, headers) or int(user["id"])
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return Result(False, f"Discord token: cannot reach Discord at {base} ({unreachable_reason(exc)})"), None
    except (ValueError, KeyError, TypeError):
        return Result(False, f"Discord token: {base} answered something that is not Discord's API"), None
    return Result(True, f"Discord token: accepted, the bot is {user.get('username')} (id {user['id']})"), application_id


async def _application_id(http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> int | None:
    # Old applications have a bot user whose id differs from the application's: ask for the application itself.
    async with http.get(f"{base}/oauth2/applications/@me", headers=headers) as response:
        if response.status != 200:
            return None
        return int((await response.json(content_type=None))["id"])


async def check_hypereal(http: aiohttp.ClientSession, settings: Settings) -> Result:
    """A status poll for a job that does not exist: free and harmless; 404 means the key was accepted."""
    if settings.hypereal_sandbox:
        return Result(True, "Hypereal: HYPEREAL_SANDBOX=1, the bundled sandbox is used (no key, nothing spent)")
    base = str(settings.hypereal_base_url).rstrip("/")
    key = settings.hypereal_api_key or SecretStr("")
    client = HyperealClient(http, base, key, timeout=HTTP_TIMEOUT, get_retries=0)
    try:
        await client.job_status(PROBE_JOB_ID, type="video")
    except (NotFound, BadRequest):
        pass  # the key passed authentication; the made-up job was (rightly) not found
    except RateLimited:
        return Result(True, f"Hypereal key: accepted by {base} (rate-limited right now; requests will queue)")
    except Unauthorized:
        return Result(False, "Hypereal rejected HYPEREAL_API_KEY (401): copy the key again from your Hypereal account")
    except RedirectRefused as exc:
        return Result(False, f"Hypereal: {exc}")
    except HyperealError as exc:
        return Result(False, f"Hypereal: cannot check the key at {base} ({exc})")
    return Result(True, f"Hypereal key: accepted by {base} (checked with a free status poll, nothing spent)")


async def check_public_url(settings: Settings) -> Result:
    """``PUBLIC_URL`` is https and every address its host resolves to is public (Hypereal must reach it)."""
    if settings.public_url is None:
        return Result(True, "PUBLIC_URL: unset, so no webhooks; the bot polls Hypereal for results (fine behind NAT)")
    url = URL(str(settings.public_url))
    if url.scheme != "https":
        return Result(False, f"PUBLIC_URL {url}: must be https (put a TLS reverse proxy in front of WEB_PORT)")
    host = url.raw_host or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, url.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        return Result(False, f"PUBLIC_URL {url}: {host} does not resolve ({exc.strerror or exc}); check the DNS name")
    addresses = sorted({str(info[4][0]) for info in infos})
    private = [address for address in addresses if not is_public_address(address)]
    if private:
        return Result(
            False,
            f"PUBLIC_URL {url}: {host} resolves to {', '.join(private)}, not a public address, so Hypereal cannot "
            "reach it; set PUBLIC_URL to the public https address of your reverse proxy, or leave it unset to poll",
        )
    return Result(True, f"PUBLIC_URL {url}: {host} resolves to {', '.join(addresses)} (public)")


# ── backup ───────────────────────────────────────────────────────────────────


def backup(target: Path, *, into_directory: bool = False) -> int:
    """Write a verified, consistent copy of the database to ``target`` (a file, or a directory to put it in).

    ``target`` is a directory when it is one already, or when ``into_directory`` (the argument ended with ``/``).
    """
    try:
        source = load_storage_settings().database_path.absolute()
    except ConfigError as exc:
        print(f"✗ settings: {exc}")
        return EXIT_CONFIG
    if not source.is_file():
        print(f"✗ backup: there is no database at {source} (DATABASE_PATH): nothing to back up")
        return EXIT_CHECK_FAILED
    if into_directory or target.is_dir():
        target = target / f"bot-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.sqlite3"
    target = target.absolute()
    if target == source or (target.exists() and target.samefile(source)):
        print(f"✗ backup: {target} is the live database itself; give another path")
        return EXIT_CONFIG
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        copy_database(source, partial)
        summary = asyncio.run(verify_copy(partial))
        os.replace(partial, target)  # atomic: PATH is the old backup or the new one, never half of one
    except (OSError, sqlite3.Error, BackupInvalid) as exc:
        with contextlib.suppress(OSError):
            partial.unlink()
        print(f"✗ backup of {source} to {target} failed: {exc}")
        return EXIT_CHECK_FAILED
    print(f"✓ backup: {target} ({target.stat().st_size} bytes) {summary}")
    return EXIT_OK


class BackupInvalid(Exception):
    """The copy did not pass its checks (it is deleted)."""


def copy_database(source: Path, destination: Path) -> None:
    """SQLite's online backup API from a read-only connection: one consistent snapshot, writers keep going.

    In WAL mode the copy is a read transaction, so the bot's writes are not blocked meanwhile. The
    copy is switched to a rollback journal so it is one self-contained file.
    """
    src = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
    try:
        src.execute("PRAGMA busy_timeout=10000")
        dst = sqlite3.connect(destination)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.commit()
        finally:
            dst.close()
    finally:
        src.close()
    with open(destination, "rb+") as handle:
        os.fsync(handle.fileno())


async def verify_copy(path: Path) -> str:
    """The copy opens, passes ``PRAGMA integrity_check`` and the ledger invariant; returns a short summary."""
    db = await SQLiteDatabase.open_readonly(path)
    try:
        integrity = await db.fetch_value("PRAGMA integrity_check")
        if integrity != "ok":
            raise BackupInvalid(f"integrity check: {integrity}")
        version = await db.schema_version()
        drift = await CreditLedger(db, time.time, default_allowance=0, default_period="none").check_invariants()
        if drift:
            raise BackupInvalid(f"the ledger does not balance in the copy: {drift[0]}")
        servers = await db.fetch_value("SELECT COUNT(*) FROM guild_budgets")
        rows = await db.fetch_value("SELECT COUNT(*) FROM ledger")
    except sqlite3.Error as exc:
        raise BackupInvalid(f"the copy cannot be read: {exc}") from None
    finally:
        await db.close()
    return f"schema version {version}, {servers} servers, {rows} ledger rows; integrity ok, ledger balanced"


# ── migrate-to-postgres ──────────────────────────────────────────────────────


def migrate_to_postgres(source: Path, url: str) -> int:
    """Copy the SQLite database ``source`` into the empty PostgreSQL database ``url``; 0, or 2 with one ✗ line."""
    from bot.migrate_pg import CopyRefused, check_postgres_url
    from bot.migrate_pg import migrate_to_postgres as copy

    try:
        target = check_postgres_url(url)
        summary = asyncio.run(copy(source, url))
    except CopyRefused as exc:
        print(f"✗ migrate-to-postgres: {exc}")
        return EXIT_CONFIG
    print(summary.line(str(source), target))
    return EXIT_OK
