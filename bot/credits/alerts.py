"""Budget alerts: tell the admins once per period when spend crosses 80 % or 100 % of the allowance."""

from __future__ import annotations

from collections.abc import Callable

from bot.credits.guild_settings import GuildSettingsRepo
from bot.credits.ledger import CreditLedger
from bot.db import Database


class BudgetAlerts:
    """Which thresholds were newly crossed; each is reported once per period."""

    def __init__(
        self, db: Database, ledger: CreditLedger, guild_settings: GuildSettingsRepo, clock: Callable[[], float]
    ) -> None:
        self.db = db
        self.ledger = ledger
        self.guild_settings = guild_settings
        self.clock = clock

    async def crossed(self, guild_id: int) -> tuple[int | None, list[int]]:
        """(alert channel, thresholds crossed for the first time this period); records them as sent."""
        settings = await self.guild_settings.get(guild_id)
        if settings.alert_channel_id is None:
            return None, []
        budget = await self.ledger.budget(guild_id)
        if budget.allowance <= 0:
            return settings.alert_channel_id, []
        spent = budget.allowance - budget.balance
        percent = spent * 100 // budget.allowance
        newly: list[int] = []
        for threshold in sorted(settings.alert_thresholds):
            if percent < threshold:
                continue
            inserted = await self.db.execute(
                "INSERT OR IGNORE INTO budget_alerts (guild_id, period_start, threshold, sent_at) VALUES (?, ?, ?, ?)",
                (guild_id, budget.period_start, threshold, int(self.clock())),
            )
            if inserted:
                newly.append(threshold)
        return settings.alert_channel_id, newly
