"""Credits: guild budgets, caps, reservations and the ledger; channel rules; guild settings; usage; alerts."""

from bot.credits.alerts import BudgetAlerts
from bot.credits.errors import BudgetFrozen, GrantBelowZero, InsufficientCredits, QuotaExceeded, ReservationNotFound
from bot.credits.guild_settings import GuildSettings, GuildSettingsRepo
from bot.credits.ledger import (
    BUDGET_CATEGORIES,
    CapTable,
    CategoryStatus,
    CreditLedger,
    GuildBudget,
    Reservation,
)
from bot.credits.periods import PERIODS, next_reset, period_start
from bot.credits.policy import CategoryPolicy, ChannelPolicy
from bot.credits.usage import Usage, UsageReport, UsageRow, UsageWindow, usage_csv, usage_window

__all__ = [
    "BUDGET_CATEGORIES",
    "PERIODS",
    "BudgetAlerts",
    "BudgetFrozen",
    "CapTable",
    "CategoryPolicy",
    "CategoryStatus",
    "ChannelPolicy",
    "CreditLedger",
    "GrantBelowZero",
    "GuildBudget",
    "GuildSettings",
    "GuildSettingsRepo",
    "InsufficientCredits",
    "QuotaExceeded",
    "Reservation",
    "ReservationNotFound",
    "Usage",
    "UsageReport",
    "UsageRow",
    "UsageWindow",
    "next_reset",
    "period_start",
    "usage_csv",
    "usage_window",
]
