"""The credit ledger: guild budgets, caps, reservations, and the append-only ledger that explains them.

Every change to a guild's counters (``balance``: free to spend, ``reserved``: held by open
reservations) is one ledger row with a unique key, written in the same transaction as the
counters: a retried call finds its key and changes nothing, and the counters always equal the
ledger's sums (:meth:`CreditLedger.check_invariants` proves it).

Several processes may share the ledger (PostgreSQL): every transaction that changes a guild first
locks that guild's budget row (``SELECT … FOR UPDATE``; on SQLite the write transaction holds the
whole file), so the balance and cap checks see every committed reservation, and the debit itself is
a conditional ``UPDATE … WHERE balance >= estimate``: two processes can never spend one credit twice.

Rollover is lazy and exact: every access first checks whether the guild's period has ended and,
if so, writes one ``rollover`` row keyed by the new period's start (so it can never happen twice).
The new balance is the allowance minus what is still reserved: credits held by requests still in
flight stay held, and their settle or refund then moves the difference as usual.

A settle may charge more than was reserved (Hypereal reports the real price); the balance can then
dip below zero, and the next requests are refused until it is topped up or resets.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.audit import AuditLog
from bot.credits.errors import (
    BudgetFrozen,
    CooldownActive,
    GrantBelowZero,
    InsufficientCredits,
    QuotaExceeded,
    ReservationNotFound,
    TooManyInFlight,
)
from bot.credits.periods import PERIODS, next_reset, period_start
from bot.db import Database, Executor, Row
from bot.inputs import CAP_RANGE, check_int
from bot.metrics import Metrics

BUDGET_CATEGORIES: tuple[str, ...] = ("chat", "image", "image_edit", "video", "audio", "model3d")


@dataclass(frozen=True)
class GuildBudget:
    """A guild's budget as of now (after any rollover)."""

    guild_id: int
    period: str
    allowance: int
    balance: int
    reserved: int
    period_start: int
    frozen: bool

    @property
    def resets_at(self) -> int | None:
        """When the balance goes back to the allowance (None: a one-off pool)."""
        return next_reset(self.period, self.period_start)


@dataclass(frozen=True)
class Reservation:
    """Credits held for one request until Hypereal says what it cost."""

    key: str
    guild_id: int
    user_id: int
    category: str
    model: str | None
    estimate: int
    actual: int | None
    state: str
    created_at: int


@dataclass(frozen=True)
class CategoryStatus:
    """A member's cap and use in one category this period."""

    category: str
    cap: int | None  # None = no cap (only the server balance limits)
    used: int
    resets_at: int | None


@dataclass(frozen=True)
class CapTable:
    """Every cap set on a guild: defaults for everyone, per role, per user (None = unlimited)."""

    default: dict[str, int | None]
    roles: dict[int, dict[str, int | None]]
    users: dict[int, dict[str, int | None]]


def _reservation(row: Row) -> Reservation:
    return Reservation(
        key=row["key"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        category=row["category"],
        model=row["model"],
        estimate=row["estimate"],
        actual=row["actual"],
        state=row["state"],
        created_at=row["created_at"],
    )


class CreditLedger:
    """Budgets, caps and reservations of every guild, in the bot's database (SQLite or PostgreSQL)."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], float],
        *,
        default_allowance: int,
        default_period: str,
        metrics: Metrics | None = None,
        owner: str | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        if default_period not in PERIODS:
            raise ValueError(f"default_period must be one of {PERIODS}")
        self.db = db
        self.clock = clock
        self.default_allowance = default_allowance
        self.default_period = default_period
        self.metrics = metrics or Metrics()
        self.owner = owner  # the process that holds the reservations it makes (bot.processes)
        self.audit = audit

    async def _audit(self, tx: Executor, guild_id: int, by: int | None, action: str, **fields: object) -> None:
        if self.audit is not None:
            await self.audit.record(guild_id, by, action, tx=tx, **fields)  # type: ignore[arg-type]

    def _now(self) -> int:
        return int(self.clock())

    # ── budget rows: lazy creation and exact rollover ────────────────────────

    async def _budget(self, tx: Executor, guild_id: int) -> GuildBudget:
        """The guild's budget inside an open write transaction, locked, created or rolled over as needed."""
        now = self._now()
        select = "SELECT * FROM guild_budgets WHERE guild_id = ?" + self.db.for_update
        row = await tx.fetch_one(select, (guild_id,))
        if row is None:
            start = period_start(self.default_period, now)
            created = await tx.execute(
                "INSERT INTO guild_budgets (guild_id, period, allowance, balance, reserved, period_start, created_at)"
                " VALUES (?, ?, ?, 0, 0, ?, ?) ON CONFLICT (guild_id) DO NOTHING",
                (guild_id, self.default_period, self.default_allowance, start, now),
            )
            if created:
                await self._append(
                    tx, f"init:{guild_id}", guild_id, "grant", self.default_allowance, 0, note="initial allowance"
                )
                return GuildBudget(guild_id, self.default_period, self.default_allowance, self.default_allowance, 0,
                                   start, False)  # fmt: skip
            row = await tx.fetch_one(select, (guild_id,))  # another process created it meanwhile
            assert row is not None
        budget = GuildBudget(
            guild_id=guild_id,
            period=row["period"],
            allowance=row["allowance"],
            balance=row["balance"],
            reserved=row["reserved"],
            period_start=row["period_start"],
            frozen=bool(row["frozen"]),
        )
        resets_at = budget.resets_at
        if resets_at is None or now < resets_at:
            return budget
        start = period_start(budget.period, now)
        new_balance = budget.allowance - budget.reserved
        await self._append(
            tx, f"rollover:{guild_id}:{start}", guild_id, "rollover", new_balance - budget.balance, 0,
            note=f"new {budget.period} period",
        )  # fmt: skip
        await tx.execute("UPDATE guild_budgets SET period_start = ? WHERE guild_id = ?", (start, guild_id))
        return GuildBudget(guild_id, budget.period, budget.allowance, new_balance, budget.reserved, start,
                           budget.frozen)  # fmt: skip

    async def _append(
        self,
        tx: Executor,
        key: str,
        guild_id: int,
        kind: str,
        balance_delta: int,
        reserved_delta: int,
        *,
        user_id: int | None = None,
        category: str | None = None,
        reservation_key: str | None = None,
        actor_id: int | None = None,
        note: str | None = None,
        require_balance: int | None = None,
    ) -> bool:
        """One ledger row and the matching counter update; False (no change) when the key exists already.

        ``require_balance``: the counter update only happens while the balance is at least that much
        (the reserve's conditional debit); otherwise :class:`InsufficientCredits` rolls the row back.
        """
        inserted = await tx.execute(
            "INSERT INTO ledger (key, guild_id, kind, balance_delta, reserved_delta, user_id, category,"
            " reservation_key, actor_id, note, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING",
            (key, guild_id, kind, balance_delta, reserved_delta, user_id, category, reservation_key, actor_id,
             note, self._now()),
        )  # fmt: skip
        if inserted == 0:
            return False
        if require_balance is None:
            await tx.execute(
                "UPDATE guild_budgets SET balance = balance + ?, reserved = reserved + ? WHERE guild_id = ?",
                (balance_delta, reserved_delta, guild_id),
            )
            return True
        debited = await tx.execute(
            "UPDATE guild_budgets SET balance = balance + ?, reserved = reserved + ? WHERE guild_id = ?"
            " AND balance >= ?",
            (balance_delta, reserved_delta, guild_id, require_balance),
        )
        if debited != 1:
            balance = await tx.fetch_value("SELECT balance FROM guild_budgets WHERE guild_id = ?", (guild_id,))
            raise InsufficientCredits(require_balance, int(balance or 0), None)
        return True

    # ── caps ─────────────────────────────────────────────────────────────────

    @staticmethod
    async def _effective_cap(
        tx: Executor, guild_id: int, user_id: int, role_ids: Sequence[int], category: str
    ) -> tuple[bool, int | None]:
        """(is there a cap, the cap). A personal cap wins; else the highest role cap; else the default."""
        row = await tx.fetch_one(
            "SELECT cap FROM user_caps WHERE guild_id = ? AND user_id = ? AND category = ?",
            (guild_id, user_id, category),
        )
        if row is not None:
            return row["cap"] is not None, row["cap"]
        if role_ids:
            marks = ",".join("?" * len(role_ids))
            caps = [
                r["cap"]
                for r in await tx.fetch_all(
                    f"SELECT cap FROM role_caps WHERE guild_id = ? AND category = ? AND role_id IN ({marks})",
                    (guild_id, category, *role_ids),
                )
            ]
            if caps:
                if any(cap is None for cap in caps):
                    return False, None  # an unlimited role wins
                return True, max(caps)
        row = await tx.fetch_one(
            "SELECT cap FROM user_caps WHERE guild_id = ? AND user_id = 0 AND category = ?", (guild_id, category)
        )
        if row is not None and row["cap"] is not None:
            return True, row["cap"]
        return False, None

    @staticmethod
    async def _used(tx: Executor, guild_id: int, user_id: int, category: str, start: int) -> int:
        row = await tx.fetch_one(
            "SELECT COALESCE(SUM(CASE state WHEN 'held' THEN estimate WHEN 'settled' THEN actual ELSE 0 END), 0)"
            " FROM reservations WHERE guild_id = ? AND user_id = ? AND category = ? AND period_start = ?",
            (guild_id, user_id, category, start),
        )
        return int(row[0]) if row else 0

    # ── reservations ─────────────────────────────────────────────────────────

    async def reserve(
        self,
        guild_id: int,
        user_id: int,
        role_ids: Sequence[int],
        category: str,
        estimate: int,
        key: str,
        *,
        channel_id: int | None = None,
        model: str | None = None,
        user_name: str | None = None,
        channel_name: str | None = None,
        max_in_flight: int | None = None,
        cooldown: int | None = None,
    ) -> Reservation:
        """Hold ``estimate`` credits for a request, checking the balance and the member's cap, atomically.

        With ``max_in_flight``, a member who already holds that many reservations is refused
        (``TooManyInFlight``); with ``cooldown`` (seconds), one whose last request of this category
        is more recent is refused (``CooldownActive``). Both are counted under the guild's lock, so
        concurrent requests of one member cannot all slip past the count (also across processes).
        The same ``key`` twice returns the first reservation and changes nothing.
        """
        if estimate < 0:
            raise ValueError("estimate must not be negative")
        if category not in BUDGET_CATEGORIES:
            raise ValueError(f"unknown budget category {category!r}")
        created = False

        async def work(tx: Executor) -> Reservation:
            nonlocal created
            budget = await self._budget(tx, guild_id)  # locks the guild: what follows sees every reservation
            existing = await tx.fetch_one("SELECT * FROM reservations WHERE key = ?", (key,))
            if existing is not None:
                return _reservation(existing)
            if budget.frozen:
                raise BudgetFrozen()
            if max_in_flight is not None:
                held = await tx.fetch_value(
                    "SELECT COUNT(*) FROM reservations WHERE guild_id = ? AND user_id = ? AND state = 'held'",
                    (guild_id, user_id),
                )
                if int(held or 0) >= max_in_flight:
                    raise TooManyInFlight(max_in_flight)
            if cooldown:
                last = await tx.fetch_value(
                    "SELECT MAX(created_at) FROM reservations WHERE guild_id = ? AND user_id = ? AND category = ?",
                    (guild_id, user_id, category),
                )
                if last is not None and self._now() - int(last) < cooldown:
                    raise CooldownActive(category, cooldown, cooldown - (self._now() - int(last)))
            if budget.balance < estimate:
                raise InsufficientCredits(estimate, budget.balance, budget.resets_at)
            capped, cap = await self._effective_cap(tx, guild_id, user_id, role_ids, category)
            if capped and cap is not None:
                used = await self._used(tx, guild_id, user_id, category, budget.period_start)
                if used + estimate > cap:
                    raise QuotaExceeded(category, cap, used, budget.resets_at)
            now = self._now()
            await tx.execute(
                "INSERT INTO reservations (key, guild_id, user_id, channel_id, category, model, estimate, state,"
                " period_start, created_at, user_name, channel_name, owner)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'held', ?, ?, ?, ?, ?)",
                (
                    key,
                    guild_id,
                    user_id,
                    channel_id,
                    category,
                    model,
                    estimate,
                    budget.period_start,
                    now,
                    (user_name or "")[:100] or None,
                    (channel_name or "")[:100] or None,
                    self.owner,
                ),
            )
            await self._append(
                tx, f"reserve:{key}", guild_id, "reserve", -estimate, estimate,
                user_id=user_id, category=category, reservation_key=key, require_balance=estimate,
            )  # fmt: skip
            created = True
            return Reservation(key, guild_id, user_id, category, model, estimate, None, "held", now)

        async with self.db.transaction() as tx:
            reservation = await work(tx)
        if created:  # counted once committed; a retried key changes nothing, here too
            self.metrics.count_credits("reserved", category, estimate)
        return reservation

    async def _close(self, key: str, state: str, actual: int | None, note: str | None) -> Reservation:
        closed = False

        async def work(tx: Executor) -> Reservation:
            nonlocal closed
            guild_id = await tx.fetch_value("SELECT guild_id FROM reservations WHERE key = ?", (key,))
            if guild_id is None:
                raise ReservationNotFound(key)
            await self._budget(tx, guild_id)  # lock the guild (and roll over first, so the rows stay in order)
            row = await tx.fetch_one("SELECT * FROM reservations WHERE key = ?", (key,))
            assert row is not None
            reservation = _reservation(row)
            if reservation.state != "held":
                return reservation  # settled or refunded already: a retry changes nothing
            charged = actual if state == "settled" else 0
            assert charged is not None
            await tx.execute(
                "UPDATE reservations SET state = ?, actual = ?, closed_at = ? WHERE key = ? AND state = 'held'",
                (state, charged, self._now(), key),
            )
            kind = "settle" if state == "settled" else "refund"
            await self._append(
                tx, f"{kind}:{key}", reservation.guild_id, kind, reservation.estimate - charged,
                -reservation.estimate, user_id=reservation.user_id, category=reservation.category,
                reservation_key=key, note=note,
            )  # fmt: skip
            closed = True
            return Reservation(
                reservation.key, reservation.guild_id, reservation.user_id, reservation.category, reservation.model,
                reservation.estimate, charged, state, reservation.created_at,
            )  # fmt: skip

        async with self.db.transaction() as tx:
            result = await work(tx)
        if closed:
            if state == "settled":
                self.metrics.count_credits("settled", result.category, result.actual or 0)
            else:
                self.metrics.count_credits("refunded", result.category, result.estimate)
        return result

    async def settle(self, key: str, actual: int) -> Reservation:
        """Charge what Hypereal reported (more or less than the estimate). Idempotent."""
        if actual < 0:
            raise ValueError("actual must not be negative")
        return await self._close(key, "settled", actual, None)

    async def refund(self, key: str, reason: str) -> Reservation:
        """Give the whole estimate back. Idempotent; a settled reservation stays settled."""
        return await self._close(key, "refunded", None, reason)

    async def reservation(self, key: str) -> Reservation | None:
        """A reservation by key."""
        row = await self.db.fetch_one("SELECT * FROM reservations WHERE key = ?", (key,))
        return None if row is None else _reservation(row)

    async def held_keys(self, *, except_owners: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Every reservation still held, on any server, except those of live processes (``except_owners``).

        Recovery looks here for reservations a crash orphaned; a live neighbour's are not orphans.
        """
        rows = await self.db.fetch_all("SELECT key, owner FROM reservations WHERE state = 'held' ORDER BY created_at")
        return [row["key"] for row in rows if row["owner"] is None or row["owner"] not in except_owners]

    async def open_reservations(self, guild_id: int, user_id: int) -> list[Reservation]:
        """A member's reservations still waiting for Hypereal, oldest first."""
        rows = await self.db.fetch_all(
            "SELECT * FROM reservations WHERE guild_id = ? AND user_id = ? AND state = 'held' ORDER BY created_at",
            (guild_id, user_id),
        )
        return [_reservation(row) for row in rows]

    # ── operator and admin actions ───────────────────────────────────────────

    async def budget(self, guild_id: int) -> GuildBudget:
        """The guild's budget now (creating it with the defaults, rolling it over when due)."""
        async with self.db.transaction() as tx:
            return await self._budget(tx, guild_id)

    async def balance(self, guild_id: int) -> int:
        """Credits the guild can spend now."""
        return (await self.budget(guild_id)).balance

    async def grant(
        self, guild_id: int, amount: int, by: int, *, key: str | None = None, allow_negative: bool = False
    ) -> int:
        """Add ``amount`` credits (negative takes them away); returns the new balance.

        Taking away more than the balance is refused with ``GrantBelowZero`` (it names the balance)
        unless ``allow_negative``: a negative balance blocks every request until it is paid back.
        """
        ledger_key = key or f"grant:{guild_id}:{secrets.token_hex(8)}"

        async with self.db.transaction() as tx:
            budget = await self._budget(tx, guild_id)
            if amount < 0 and budget.balance + amount < 0 and not allow_negative:
                raise GrantBelowZero(budget.balance, amount)
            await self._append(tx, ledger_key, guild_id, "grant", amount, 0, actor_id=by, note="grant")
            balance = int(await tx.fetch_value("SELECT balance FROM guild_budgets WHERE guild_id = ?", (guild_id,)))
            await self._audit(
                tx, guild_id, by, "grant", target=f"{amount:+d} credits", old=f"balance {budget.balance}",
                new=f"balance {balance}",
            )  # fmt: skip
            return balance

    async def set_allowance(self, guild_id: int, allowance: int, period: str, by: int) -> GuildBudget:
        """Give the guild a new allowance and period, starting a fresh period at the full allowance."""
        if period not in PERIODS:
            raise ValueError(f"period must be one of {PERIODS}")
        if allowance < 0:
            raise ValueError("allowance must not be negative")

        async with self.db.transaction() as tx:
            budget = await self._budget(tx, guild_id)
            start = period_start(period, self._now())
            await tx.execute(
                "UPDATE guild_budgets SET allowance = ?, period = ?, period_start = ? WHERE guild_id = ?",
                (allowance, period, start, guild_id),
            )
            new_balance = allowance - budget.reserved
            await self._append(
                tx, f"set:{guild_id}:{secrets.token_hex(8)}", guild_id, "set", new_balance - budget.balance, 0,
                actor_id=by, note=f"allowance {allowance} per {period}",
            )  # fmt: skip
            await self._audit(
                tx, guild_id, by, "allowance", old=f"{budget.allowance} per {budget.period}",
                new=f"{allowance} per {period}",
            )  # fmt: skip
            return await self._budget(tx, guild_id)

    async def set_frozen(self, guild_id: int, frozen: bool, by: int) -> None:
        """Freeze (no new reservations) or unfreeze a guild's budget."""

        async with self.db.transaction() as tx:
            budget = await self._budget(tx, guild_id)
            await tx.execute("UPDATE guild_budgets SET frozen = ? WHERE guild_id = ?", (int(frozen), guild_id))
            if budget.frozen != frozen:
                await self._audit(
                    tx, guild_id, by, "freeze", old="frozen" if budget.frozen else "active",
                    new="frozen" if frozen else "active",
                )  # fmt: skip

    async def set_user_cap(
        self, guild_id: int, user_id: int, category: str, cap: int | None, *, by: int | None = None
    ) -> None:
        """A member's own cap for a category (user 0 = the default for everyone; None = unlimited)."""
        self._check_cap(category, cap)
        await self._change_cap("user_caps", "user_id", guild_id, user_id, category, cap, by, remove=False)

    async def set_role_cap(
        self, guild_id: int, role_id: int, category: str, cap: int | None, *, by: int | None = None
    ) -> None:
        """A role's cap for a category (None = unlimited: members with the role are not capped)."""
        self._check_cap(category, cap)
        await self._change_cap("role_caps", "role_id", guild_id, role_id, category, cap, by, remove=False)

    async def clear_user_cap(self, guild_id: int, user_id: int, category: str, *, by: int | None = None) -> None:
        """Remove a member's own cap (their roles' or the default applies again)."""
        await self._change_cap("user_caps", "user_id", guild_id, user_id, category, None, by, remove=True)

    async def clear_role_cap(self, guild_id: int, role_id: int, category: str, *, by: int | None = None) -> None:
        """Remove a role's cap."""
        await self._change_cap("role_caps", "role_id", guild_id, role_id, category, None, by, remove=True)

    async def _change_cap(
        self, table: str, column: str, guild_id: int, owner_id: int, category: str, cap: int | None,
        by: int | None, *, remove: bool,
    ) -> None:  # fmt: skip
        """Write or delete one cap row and audit old → new (table and column are constants, never input)."""
        async with self.db.transaction() as tx:
            old = await tx.fetch_one(
                f"SELECT cap FROM {table} WHERE guild_id = ? AND {column} = ? AND category = ?",
                (guild_id, owner_id, category),
            )
            if remove:
                await tx.execute(
                    f"DELETE FROM {table} WHERE guild_id = ? AND {column} = ? AND category = ?",
                    (guild_id, owner_id, category),
                )
            else:
                await tx.execute(
                    f"INSERT INTO {table} (guild_id, {column}, category, cap) VALUES (?, ?, ?, ?)"
                    f" ON CONFLICT (guild_id, {column}, category) DO UPDATE SET cap = excluded.cap",
                    (guild_id, owner_id, category, cap),
                )
            if column == "role_id":
                target = f"<@&{owner_id}> {category}"
            else:
                target = f"default {category}" if owner_id == 0 else f"<@{owner_id}> {category}"

            def text(row_cap: int | None, present: bool) -> str:
                if not present:
                    return "not set"
                return "unlimited" if row_cap is None else f"{row_cap} credits"

            await self._audit(
                tx, guild_id, by, "cap", target=target, old=text(old["cap"] if old else None, old is not None),
                new=text(cap, not remove),
            )  # fmt: skip

    @staticmethod
    def _check_cap(category: str, cap: int | None) -> None:
        """A known category and a cap in :data:`bot.inputs.CAP_RANGE` (or None: unlimited)."""
        if category not in BUDGET_CATEGORIES:
            raise ValueError(f"unknown budget category {category!r}")
        if cap is not None:
            check_int(cap, *CAP_RANGE, name="A cap", unit="credits")

    async def caps(self, guild_id: int) -> CapTable:
        """Every cap set on the guild."""
        table = CapTable(default={}, roles={}, users={})
        for row in await self.db.fetch_all("SELECT * FROM user_caps WHERE guild_id = ?", (guild_id,)):
            target = table.default if row["user_id"] == 0 else table.users.setdefault(row["user_id"], {})
            target[row["category"]] = row["cap"]
        for row in await self.db.fetch_all("SELECT * FROM role_caps WHERE guild_id = ?", (guild_id,)):
            table.roles.setdefault(row["role_id"], {})[row["category"]] = row["cap"]
        return table

    async def user_status(self, guild_id: int, user_id: int, role_ids: Sequence[int]) -> list[CategoryStatus]:
        """A member's cap and use in every category this period."""

        async with self.db.transaction() as tx:
            budget = await self._budget(tx, guild_id)
            statuses = []
            for category in BUDGET_CATEGORIES:
                capped, cap = await self._effective_cap(tx, guild_id, user_id, role_ids, category)
                used = await self._used(tx, guild_id, user_id, category, budget.period_start)
                statuses.append(CategoryStatus(category, cap if capped else None, used, budget.resets_at))
            return statuses

    # ── the invariant ────────────────────────────────────────────────────────

    async def check_invariants(self, guild_id: int | None = None) -> list[str]:
        """Drift between counters and the ledger (empty list = none): the books must always balance."""
        where, params = ("WHERE b.guild_id = ?", (guild_id,)) if guild_id is not None else ("", ())
        rows = await self.db.fetch_all(
            f"""
            SELECT b.guild_id, b.balance, b.reserved,
                   (SELECT COALESCE(SUM(balance_delta), 0) FROM ledger l WHERE l.guild_id = b.guild_id) AS l_balance,
                   (SELECT COALESCE(SUM(reserved_delta), 0) FROM ledger l WHERE l.guild_id = b.guild_id) AS l_reserved,
                   (SELECT COALESCE(SUM(estimate), 0) FROM reservations r
                     WHERE r.guild_id = b.guild_id AND r.state = 'held') AS held
            FROM guild_budgets b {where}
            """,
            params,
        )
        problems = []
        for row in rows:
            if row["balance"] != row["l_balance"]:
                problems.append(f"guild {row['guild_id']}: balance {row['balance']} != ledger {row['l_balance']}")
            if row["reserved"] != row["l_reserved"]:
                problems.append(f"guild {row['guild_id']}: reserved {row['reserved']} != ledger {row['l_reserved']}")
            if row["reserved"] != row["held"]:
                problems.append(f"guild {row['guild_id']}: reserved {row['reserved']} != held {row['held']}")
        return problems
