"""Voice-clone consent: a one-time notice per member per server before their first ``/voice-clone``.

Cloning a voice sends a recording of someone to Hypereal and makes them say things: the member
confirms once, per server, that they have the right to use the voice. An admin can turn the notice
off for a server (``/quota voice-clone-notice off``, audited like every setting).

The step runs inside the paid flow (``PaidRequest.consent``): after the member block, the content
rules and the channel policy — a request that would be refused anyway asks nothing — and before the
price confirmation and the reservation, so a member who does not accept is charged nothing and
nothing reaches Hypereal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.credits import GuildSettingsRepo
from bot.db import Database

# How long the notice waits for Accept / Cancel (a member may read it, and the sample stays attached).
NOTICE_WAIT = 300.0


@dataclass(frozen=True)
class Notice:
    """A notice a member accepts before a request goes on, and what it says after each answer."""

    text: str
    accepted: str
    cancelled: str
    timed_out: str
    wait: float = NOTICE_WAIT  # seconds before the notice stops waiting (a timeout declines)


VOICE_CLONE_NOTICE = Notice(
    text=(
        "**Before your first voice clone on this server**\n"
        "• Clone only voices you have the right to use: your own, or someone who agreed to it.\n"
        "• The sample you attach is sent to Hypereal, the service that makes the clone.\n"
        "Accept to go on (asked once on this server); nothing is charged until you do."
    ),
    accepted="✅ Accepted: you will not be asked again on this server.",
    cancelled="Cancelled: no voice was cloned and nothing was charged.",
    timed_out="Timed out: no voice was cloned and nothing was charged. Run /voice-clone again to accept.",
)


class NoticePort(Protocol):
    """The member as a notice talks to them (the cogs implement it on the interaction)."""

    async def accept_notice(self, notice: Notice) -> bool:
        """Show ``notice`` with Accept / Cancel (only the member can answer); False when cancelled or timed out."""
        ...


class VoiceCloneConsent:
    """Who has accepted the voice-clone notice on which server, and whether the server shows it."""

    def __init__(
        self,
        db: Database,
        guild_settings: GuildSettingsRepo,
        clock: Callable[[], float],
        *,
        notice: Notice = VOICE_CLONE_NOTICE,
    ) -> None:
        self.db = db
        self.guild_settings = guild_settings
        self.clock = clock
        self.notice = notice

    async def needed(self, guild_id: int, user_id: int) -> bool:
        """True when the member must see and accept the notice before cloning a voice here."""
        if not (await self.guild_settings.get(guild_id)).voice_clone_notice:
            return False
        return not await self.accepted(guild_id, user_id)

    async def accepted(self, guild_id: int, user_id: int) -> bool:
        """True when the member accepted the notice on this server (whatever the server's setting now)."""
        count = await self.db.fetch_value(
            "SELECT COUNT(*) FROM voice_clone_consents WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        return bool(count)

    async def accept(self, guild_id: int, user_id: int) -> None:
        """Remember that the member accepted (idempotent: the first acceptance's time is kept)."""
        await self.db.execute(
            "INSERT INTO voice_clone_consents (guild_id, user_id, accepted_at) VALUES (?, ?, ?) "
            "ON CONFLICT (guild_id, user_id) DO NOTHING",
            (guild_id, user_id, int(self.clock())),
        )

    async def obtain(self, guild_id: int, user_id: int, member: NoticePort) -> bool:
        """The paid flow's consent step: True when the request may go on (accepted now, before, or not asked).

        Shows the notice only when :meth:`needed`; an Accept is remembered before the request goes on,
        so a later price cancellation does not ask again.
        """
        if not await self.needed(guild_id, user_id):
            return True
        if not await member.accept_notice(self.notice):
            return False
        await self.accept(guild_id, user_id)
        return True
