"""The services holder the Bot receives: every dependency a cog may need, built in one place (`bot.app`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

    from bot.attachments import AttachmentInspector
    from bot.audit import AuditLog
    from bot.catalog import Catalog
    from bot.chat.conversations import ConversationStore
    from bot.chat.service import ChatService
    from bot.consent import VoiceCloneConsent
    from bot.credits import BudgetAlerts, ChannelPolicy, CreditLedger, GuildSettingsRepo, UsageReport
    from bot.db import Database
    from bot.download import SafeDownloader
    from bot.hypereal import HyperealClient
    from bot.images import ImageService
    from bot.jobs import JobService
    from bot.logs import PromptLog
    from bot.member_settings import MemberSettingsRepo
    from bot.metrics import Metrics
    from bot.moderation import Moderation
    from bot.paid import PaidRequests
    from bot.privacy import PrivacyStore
    from bot.redact import Redactor
    from bot.retention import Retention
    from bot.settings import Settings
    from bot.transcribe import TranscriptionService


@dataclass(frozen=True)
class Services:
    """Built by the composition root; cogs read it as ``bot.services``."""

    settings: Settings
    metrics: Metrics
    redactor: Redactor
    db: Database
    http: aiohttp.ClientSession
    hypereal: HyperealClient
    catalog: Catalog
    downloader: SafeDownloader
    clock: Callable[[], float]
    ledger: CreditLedger
    channels: ChannelPolicy
    guild_settings: GuildSettingsRepo
    member_settings: MemberSettingsRepo
    voice_clone_consent: VoiceCloneConsent
    paid: PaidRequests
    audit: AuditLog
    moderation: Moderation
    usage: UsageReport
    alerts: BudgetAlerts
    conversations: ConversationStore
    chat: ChatService
    images: ImageService
    jobs: JobService
    transcription: TranscriptionService
    attachments: AttachmentInspector
    privacy: PrivacyStore
    retention: Retention
    prompt_log: PromptLog
