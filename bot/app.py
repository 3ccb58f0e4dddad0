"""The composition root's body: builds every service, owns their lifetimes, and runs the bot.

``python -m bot`` uses it, and so does the in-process end-to-end test fixture, so tests start the
bot exactly the way production does (only the settings differ).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from pydantic import SecretStr

from bot.attachments import AttachmentInspector
from bot.audit import AuditLog
from bot.bot import HyperealBot, point_discord_at
from bot.catalog import Catalog
from bot.chat.conversations import ConversationStore
from bot.chat.pacing import PacerRegistry
from bot.chat.service import ChatService
from bot.consent import VoiceCloneConsent
from bot.credits import BudgetAlerts, ChannelPolicy, CreditLedger, GuildSettingsRepo, UsageReport
from bot.db import (
    Database,
    DatabaseError,
    DatabaseUnusable,
    MigrationError,
    ProcessLock,
    SQLiteDatabase,
    open_postgres,
    preflight,
)
from bot.download import AllowList, SafeDownloader
from bot.health import WriteProbe
from bot.hypereal import HyperealClient, RequestLimiter
from bot.hypereal.shared_budget import SharedRequestLog
from bot.images import ImageService
from bot.jobs import JobService, JobStore, JobTiming, install_webhook_route
from bot.kv import KeyValueStore
from bot.logs import PromptLog
from bot.member_settings import MemberSettingsRepo
from bot.metrics import LoopLagMonitor, Metrics, install_metrics_route
from bot.moderation import Moderation, load_terms
from bot.paid import PaidRequests
from bot.privacy import PrivacyStore
from bot.processes import ProcessRegistry, process_slot
from bot.redact import Redactor
from bot.retention import Retention
from bot.services import Services
from bot.settings import Settings
from bot.transcribe import TranscriptionService
from bot.web import HealthProbe, WebServer, create_web_app
from cogs._ports import DiscordAlerts, DiscordJobDelivery
from cogs._shared import show_error

log = logging.getLogger(__name__)

SANDBOX_DEFAULT_KEY = "sandbox-key"


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret in the settings, for the redactors of log lines and member-facing text."""
    secrets = [settings.discord_token.get_secret_value()]
    for secret in (settings.hypereal_api_key, settings.metrics_token):
        if secret is not None:
            secrets.append(secret.get_secret_value())
    return secrets


def build_services(
    settings: Settings,
    db: Database,
    http: aiohttp.ClientSession,
    hypereal: HyperealClient,
    catalog: Catalog,
    downloader: SafeDownloader,
    clock: Callable[[], float],
) -> Services:
    """Wire the domain services on top of the infrastructure (constructor injection, no globals)."""
    metrics = hypereal.metrics  # one registry per app: the one the Hypereal client already reports to
    redactor = Redactor(settings_secrets(settings))
    prompt_log = PromptLog(settings.log_prompts)  # prompts reach the log only at DEBUG with LOG_PROMPTS=1
    # A restarted process (same host, same shards) takes over its killed predecessor's work at once.
    processes = ProcessRegistry(db, clock, slot=process_slot(settings.shard_ids, settings.shard_count))
    audit = AuditLog(db, clock)
    ledger = CreditLedger(
        db,
        clock,
        default_allowance=settings.default_allowance,
        default_period=settings.default_period,
        metrics=metrics,
        owner=processes.owner,
        audit=audit,
    )
    channels = ChannelPolicy(db, audit)
    guild_settings = GuildSettingsRepo(db, default_confirm_threshold=settings.confirm_threshold, audit=audit)
    alerts = BudgetAlerts(db, ledger, guild_settings, clock)
    moderation = Moderation(
        db,
        audit,
        guild_settings,
        clock,
        explicit_terms=load_terms(),
        default_max_inflight=settings.max_inflight_per_member,
    )
    paid = PaidRequests(ledger, channels, guild_settings, alerts, hypereal.limiter, moderation, clock=clock)
    conversations = ConversationStore(db, clock)
    chat = ChatService(
        hypereal=hypereal,
        catalog=catalog,
        paid=paid,
        conversations=conversations,
        guild_settings=guild_settings,
        pacers=PacerRegistry(),
        default_model=settings.default_chat_model,
        context_chars=settings.chat_context_chars,
        clock=clock,
        prompt_log=prompt_log,
    )
    images = ImageService(
        hypereal=hypereal,
        catalog=catalog,
        paid=paid,
        downloader=downloader,
        db=db,
        clock=clock,
        metrics=metrics,
        prompt_log=prompt_log,
    )
    voice_clone_consent = VoiceCloneConsent(db, guild_settings, clock)
    jobs = JobService(
        store=JobStore(db, clock, owner=processes.owner),
        hypereal=hypereal,
        paid=paid,
        catalog=catalog,
        downloader=downloader,
        clock=clock,
        public_url=str(settings.public_url) if settings.public_url else None,
        timing=JobTiming(
            first_poll=settings.job_poll_first_seconds,
            max_poll=settings.job_poll_max_seconds,
            deadline=settings.job_deadline_minutes * 60.0,
            submit_grace=settings.job_submit_grace_seconds,
        ),
        metrics=metrics,
        processes=processes,
        prompt_log=prompt_log,
        voice_clone_consent=voice_clone_consent,
    )
    privacy = PrivacyStore(db, clock)
    member_settings = MemberSettingsRepo(db, catalog, clock)
    return Services(
        settings=settings,
        metrics=metrics,
        redactor=redactor,
        db=db,
        http=http,
        hypereal=hypereal,
        catalog=catalog,
        downloader=downloader,
        clock=clock,
        ledger=ledger,
        channels=channels,
        guild_settings=guild_settings,
        member_settings=member_settings,
        voice_clone_consent=voice_clone_consent,
        paid=paid,
        audit=audit,
        moderation=moderation,
        usage=UsageReport(db),
        alerts=alerts,
        conversations=conversations,
        chat=chat,
        images=images,
        jobs=jobs,
        transcription=TranscriptionService(hypereal=hypereal, catalog=catalog, paid=paid),
        # Stored results may point at Hypereal's outputs: the same allow-list the downloader uses.
        attachments=AttachmentInspector(discord_api_base=settings.discord_api_base, output_hosts=downloader.allowed),
        privacy=privacy,
        retention=Retention(db, privacy, clock, retention_days=settings.retention_days),
        prompt_log=prompt_log,
    )


class BotApp:
    """Everything the process runs, opened on ``async with`` and closed in reverse order on exit."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.time, **bot_options: Any) -> None:
        self.settings = settings
        self.clock = clock
        self._bot_options = bot_options
        self._stack = contextlib.AsyncExitStack()
        self.sandbox: Any = None
        self.bot: HyperealBot
        self.services: Services

    async def __aenter__(self) -> BotApp:
        try:
            await self._build()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def _build(self) -> None:
        settings = self.settings
        catalog = Catalog.load()  # a broken catalog stops start-up before anything connects
        point_discord_at(settings.discord_api_base, settings.discord_gateway_url)

        http = await self._stack.enter_async_context(aiohttp.ClientSession())
        db = await self._open_database()

        base_url, api_key = await self._hypereal_endpoint()
        output_hosts = list(settings.output_hosts)
        if self.sandbox is not None:
            output_hosts.append(base_url)  # the sandbox serves its outputs itself, on loopback
        downloader = SafeDownloader(AllowList.parse(output_hosts), max_bytes=settings.output_max_bytes)
        self._stack.push_async_callback(downloader.close)
        hypereal = HyperealClient(
            http,
            base_url,
            api_key,
            limiter=RequestLimiter(
                max_requests=settings.hypereal_requests_per_hour,
                shared=SharedRequestLog(db) if db.shared else None,  # N processes together stay under the budget
            ),
            timeout=settings.hypereal_timeout_seconds,
            metrics=Metrics(),
        )
        self.services = build_services(settings, db, http, hypereal, catalog, downloader, self.clock)
        self._stack.push_async_callback(self.services.attachments.close)
        processes = self.services.jobs.processes
        assert processes is not None
        await processes.register()  # before recovery: what this process holds from now on is not an orphan
        processes.start()
        self._stack.push_async_callback(processes.stop)
        await self.services.jobs.recover()  # before any command can reserve anything
        write_probe = WriteProbe(KeyValueStore(db))  # /healthz checks that a write works, not just a read
        web = WebServer(
            create_web_app(
                HealthProbe(gateway_connected=self._gateway_connected, database_problem=write_probe.problem),
                install_webhook_route(self.services.jobs),
                install_metrics_route(self.services.metrics, settings.metrics_token),
            ),
            settings.web_host,
            settings.web_port,
        )
        # The Discord side of the services' ports, wired here and nowhere else; the poller starts once
        # the bot is logged in (its setup hook), and stops before the bot and the database close.
        self.bot = HyperealBot(
            self.services,
            web,
            on_error=show_error,
            on_setup=[self.services.jobs.start, self.services.retention.start],
            **self._bot_options,
        )
        self.services.jobs.attach(DiscordJobDelivery(self.bot))
        self.services.alerts.attach(DiscordAlerts(self.bot))
        self._stack.push_async_callback(self._close_bot)
        # Closed first (the stack unwinds in reverse): no job step may run against a closed bot or database.
        self._stack.push_async_callback(self.services.jobs.stop)
        self._stack.push_async_callback(self.services.retention.stop)  # off the database before it closes
        self._watch_metrics(db)

    async def _open_database(self) -> Database:
        """Check, open and migrate the database; every way it can be unusable is one ConfigError line.

        The read-only preflight runs first, so a file that is refused (damaged, from a newer version,
        unwritable) is left exactly as it was: even switching it to WAL would write to it.
        """
        if self.settings.database_url is not None:
            return await self._open_postgres(self.settings.database_url.get_secret_value())
        path = self.settings.database_path
        await asyncio.to_thread(preflight, path)
        if str(path) != ":memory:":
            lock = ProcessLock(Path(path).absolute())  # one live process per file: a second one is refused
            lock.acquire()
            self._stack.callback(lock.release)
        try:
            db = await SQLiteDatabase.open(path)
        except (sqlite3.Error, DatabaseError) as exc:
            raise DatabaseUnusable(
                f"The database {path} cannot be opened ({exc}): check the disk and the file, or restore a backup."
            ) from None
        self._stack.push_async_callback(db.close)
        try:
            await db.migrate()
        except MigrationError as exc:
            raise DatabaseUnusable(f"The database {path} cannot be brought up to date: {exc}.") from None
        return db

    async def _open_postgres(self, url: str) -> Database:
        """Connect to PostgreSQL and migrate it (under an advisory lock: processes starting together take turns)."""
        db = await open_postgres(url)
        self._stack.push_async_callback(db.close)
        try:
            await db.migrate()
        except MigrationError as exc:
            raise DatabaseUnusable(f"The PostgreSQL database {db.label} cannot be brought up to date: {exc}.") from None
        log.info("database: PostgreSQL at %s", db.label)
        return db

    def _watch_metrics(self, db: Database) -> None:
        """Gauges read at scrape time, and the event-loop lag sampler (owned: stopped with the app)."""
        metrics = self.services.metrics
        store = JobStore(db, self.clock)

        async def jobs_by_state() -> None:
            for state, count in (await store.count_by_state()).items():
                metrics.jobs.labels(state=state).set(count)

        metrics.add_refresher(jobs_by_state)
        lag = LoopLagMonitor(metrics)
        lag.start()
        self._stack.push_async_callback(lag.stop)

    async def _hypereal_endpoint(self) -> tuple[str, SecretStr]:
        """The real API, or the sandbox started in-process when HYPEREAL_SANDBOX=1."""
        settings = self.settings
        key = settings.hypereal_api_key or SecretStr(SANDBOX_DEFAULT_KEY)
        if not settings.hypereal_sandbox:
            return str(settings.hypereal_base_url).rstrip("/"), key
        from bot.sandbox import SandboxProvider  # only imported when asked for

        self.sandbox = SandboxProvider(api_key=key.get_secret_value())
        base_url = await self.sandbox.start(host="127.0.0.1", port=0)
        self._stack.push_async_callback(self.sandbox.close)
        log.warning("HYPEREAL_SANDBOX=1: using the sandbox provider at %s, nothing is spent", base_url)
        return base_url, key

    def _gateway_connected(self) -> bool:
        return self.bot.gateway_connected()

    async def _close_bot(self) -> None:
        if not self.bot.is_closed():
            await self.bot.close()
        else:
            await self.bot.web.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        """Log in and run the gateway until ``stop`` is set or the client stops on its own (errors propagate).

        While Discord cannot be reached the bot keeps trying (one log line per try) until ``stop``.
        """
        token = self.settings.discord_token.get_secret_value()
        runner = asyncio.create_task(self.bot.start_when_reachable(token), name="gateway")
        stopper = asyncio.create_task(stop.wait(), name="stop-signal")
        try:
            await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not runner.done():
                await self.bot.close()
            await asyncio.wait({runner})
        runner.result()
