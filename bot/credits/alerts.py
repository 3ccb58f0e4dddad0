"""Budget alerts: tell the admins once per period when spend crosses one of their thresholds.

Checked after every settle (by :class:`bot.paid.PaidRequests`, the one place credits are charged),
so every paid path — chat, images, jobs, transcription — alerts alike. The message states the
actual spend and balance and names the threshold crossed: "passed 80 % — used 84 % · 160 of 1,000 left".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bot.credits.guild_settings import GuildSettingsRepo
from bot.credits.ledger import CreditLedger, GuildBudget
from bot.db import Database
from bot.wording import percent

log = logging.getLogger(__name__)


class AlertPort(Protocol):
    """Where alerts go (the Discord side implements it; the composition root attaches it)."""

    async def post_alert(self, guild_id: int, channel_id: int, text: str) -> None:
        """Post ``text`` in the server's alert channel (mentions nobody)."""
        ...


@dataclass(frozen=True)
class BudgetAlert:
    """A threshold newly crossed this period, and what to tell the admins."""

    guild_id: int
    channel_id: int
    threshold: int
    text: str


def alert_text(budget: GuildBudget, threshold: int) -> str:
    """``⚠️ Budget alert: this server passed 80 % of its allowance — used 84 % · 160 of 1,000 left …``."""
    spent = budget.allowance - budget.balance
    resets = f", resets <t:{budget.resets_at}:R>" if budget.resets_at else ""
    return (
        f"⚠️ Budget alert: this server passed {threshold} % of its {budget.allowance}-credit allowance this "
        f"period — used {percent(spent, budget.allowance)} % · {budget.balance} of {budget.allowance} left"
        f"{resets}."
    )


class BudgetAlerts:
    """Which thresholds were newly crossed; each is reported once per period."""

    def __init__(
        self, db: Database, ledger: CreditLedger, guild_settings: GuildSettingsRepo, clock: Callable[[], float]
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.guild_settings = guild_settings
        self.clock = clock
        self._port: AlertPort | None = None

    def attach(self, port: AlertPort) -> None:
        """Where alerts are posted (the composition root attaches the Discord side)."""
        self._port = port

    async def crossed(self, guild_id: int) -> BudgetAlert | None:
        """The highest threshold crossed for the first time this period (all of them are recorded as sent)."""
        settings = await self.guild_settings.get(guild_id)
        if settings.alert_channel_id is None:
            return None
        budget = await self.ledger.budget(guild_id)
        if budget.allowance <= 0:
            return None
        spent_percent = percent(budget.allowance - budget.balance, budget.allowance)
        newly: list[int] = []
        for threshold in sorted(settings.alert_thresholds):
            if spent_percent < threshold:
                continue
            inserted = await self.db.execute(
                "INSERT INTO budget_alerts (guild_id, period_start, threshold, sent_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (guild_id, budget.period_start, threshold, int(self.clock())),
            )
            if inserted:
                newly.append(threshold)
        if not newly:
            return None
        return BudgetAlert(guild_id, settings.alert_channel_id, max(newly), alert_text(budget, max(newly)))

    async def after_spend(self, guild_id: int | None) -> None:
        """After a charge: post an alert if one is due. Never raises (a charge must not fail on an alert)."""
        if not guild_id:
            return
        try:
            alert = await self.crossed(guild_id)
            if alert is not None and self._port is not None:
                await self._port.post_alert(guild_id, alert.channel_id, alert.text)
        except Exception:
            log.exception("budget alert failed guild=%s", guild_id)
