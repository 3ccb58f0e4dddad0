"""Guild settings and budget alerts (usage reports: test_usage.py)."""

from __future__ import annotations

import pytest

from bot.credits import BudgetAlerts, CreditLedger, GuildSettingsRepo
from bot.db import Database
from bot.errors import InvalidInput
from tests.credits.conftest import Clock

G = 1


async def _spend(ledger: CreditLedger, user: int, category: str, credits: int, key: str, channel: int = 5) -> None:
    await ledger.reserve(G, user, [], category, credits, key, channel_id=channel)
    await ledger.settle(key, credits)


async def test_guild_settings_defaults_and_updates(db: Database) -> None:
    repo = GuildSettingsRepo(db, default_confirm_threshold=50)
    assert (await repo.get(G)).confirm_threshold == 50
    updated = await repo.update(G, confirm_threshold=10, alert_channel_id=99, alert_thresholds=(50, 90))
    assert (updated.confirm_threshold, updated.alert_channel_id, updated.alert_thresholds) == (10, 99, (50, 90))
    assert (await repo.update(G, system_prompt="be nice")).confirm_threshold == 10


async def test_guild_settings_refuse_values_out_of_range_and_keep_the_old_ones(db: Database) -> None:
    repo = GuildSettingsRepo(db, default_confirm_threshold=50)
    await repo.update(G, confirm_threshold=10, system_prompt="be nice")
    cases = [
        ({"confirm_threshold": -1}, "The confirmation threshold must be a whole number from 0 to 1,000,000"),
        ({"confirm_threshold": 10**30}, "far outside"),
        ({"alert_thresholds": (80, 0)}, "Alert thresholds must be a whole number from 1 to 100"),
        ({"system_prompt": "\u200b"}, "The system prompt is empty"),
        ({"system_prompt": "x" * 4001}, "System prompts can be up to 4,000 characters"),
    ]
    for changes, problem in cases:
        with pytest.raises(InvalidInput, match=problem):
            await repo.update(G, **changes)
    kept = await repo.get(G)
    assert (kept.confirm_threshold, kept.system_prompt, kept.alert_thresholds) == (10, "be nice", (80, 100))


async def test_alerts_fire_once_per_threshold_per_period(ledger: CreditLedger, db: Database, clock: Clock) -> None:
    repo = GuildSettingsRepo(db, default_confirm_threshold=50)
    alerts = BudgetAlerts(db, ledger, repo, clock)
    assert await alerts.crossed(G) is None  # no alert channel: nothing to do
    await repo.update(G, alert_channel_id=77)
    await _spend(ledger, 10, "video", 85, "a")
    first = await alerts.crossed(G)
    assert first is not None
    assert (first.channel_id, first.threshold) == (77, 80)
    assert await alerts.crossed(G) is None
    await _spend(ledger, 10, "image", 15, "b")
    second = await alerts.crossed(G)
    assert second is not None
    assert second.threshold == 100
    clock.now = (await ledger.budget(G)).resets_at or 0
    await _spend(ledger, 10, "video", 90, "c")
    again = await alerts.crossed(G)
    assert again is not None
    assert again.threshold == 80  # a new period alerts again


async def test_an_alert_states_the_spend_and_the_balance_and_names_the_threshold(
    ledger: CreditLedger, db: Database, clock: Clock
) -> None:
    repo = GuildSettingsRepo(db, default_confirm_threshold=50)
    await ledger.set_allowance(G, 100, "month", by=1)
    await repo.update(G, alert_channel_id=77, alert_thresholds=(1,))
    await _spend(ledger, 10, "video", 46, "big")
    alert = await BudgetAlerts(db, ledger, repo, clock).crossed(G)
    assert alert is not None
    assert "passed 1 % of its 100-credit allowance" in alert.text
    assert "used 46 % · 54 of 100 left" in alert.text
