"""Content rules and abuse limits per server: the prompt blocklist, adult content, blocked members, cooldowns.

The matcher is pure: rules are words or words with ``*`` wildcards, compared case- and accent-insensitively
(Unicode NFKD with the combining marks dropped, then casefold) on word boundaries, so ``sex`` blocks
"Sex" and "séx" but not "Sussex". The starter list of explicit terms is data (``moderation_terms.txt``);
it applies outside age-restricted channels when a server keeps adult content to "age-restricted channels
only", and everywhere when the server switches adult content off. :class:`bot.paid.PaidRequests` runs the
checks before anything is reserved, so no paid path can skip them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bot.audit import AuditLog
from bot.credits import BUDGET_CATEGORIES, GuildSettingsRepo
from bot.db import Database
from bot.errors import BotError, InvalidInput
from bot.inputs import COOLDOWN_RANGE, check_int

TERMS_FILE = Path(__file__).with_name("moderation_terms.txt")
Scope = Literal["everywhere", "outside_age_restricted"]
SCOPES: tuple[Scope, ...] = ("everywhere", "outside_age_restricted")
AdultContent = Literal["off", "age_restricted"]
ADULT_CONTENT: tuple[AdultContent, ...] = ("off", "age_restricted")
MAX_RULES = 200  # per server: the whole list is compiled into one pattern per request
RULE_CHARS = 60
_RULE_SHAPE = re.compile(r"[\w*'\- ]+")


def fold(text: str) -> str:
    """``text`` without case or accents (NFKD, combining marks dropped, casefold): "Séx" → "sex"."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def normalize_rule(rule: str) -> str:
    """A rule as stored: folded, spaces collapsed; ``InvalidInput`` when it is empty, too long or not word-like."""
    cleaned = " ".join(fold(rule).split())
    if not cleaned.strip("*"):
        raise InvalidInput("A rule needs at least one letter or digit, e.g. `badword` or `badword*`.")
    if len(cleaned) > RULE_CHARS:
        raise InvalidInput(f"A rule is at most {RULE_CHARS} characters; yours has {len(cleaned)}.")
    if not _RULE_SHAPE.fullmatch(cleaned):
        raise InvalidInput("A rule is a word or phrase with optional `*` wildcards (letters, digits, ' and -).")
    return cleaned


def _rule_regex(rule: str) -> str:
    """``porn*`` → ``porn\\w*``, on word boundaries; spaces in a phrase match any run of whitespace."""
    parts = [re.escape(part).replace(r"\*", r"\w*") for part in rule.split()]
    return r"(?<!\w)" + r"\s+".join(parts) + r"(?!\w)"


@dataclass(frozen=True)
class Rule:
    """One blocklist entry of a server."""

    pattern: str
    scope: Scope = "everywhere"

    def applies(self, age_restricted: bool) -> bool:
        """True when the rule is enforced in this kind of channel."""
        return self.scope == "everywhere" or not age_restricted


class Matcher:
    """A compiled list of rules: :meth:`first_match` names the rule a text breaks."""

    def __init__(self, rules: Iterable[str]) -> None:
        self.rules = [normalize_rule(rule) for rule in rules]
        self._compiled = [(rule, re.compile(_rule_regex(rule))) for rule in self.rules]

    def first_match(self, *texts: str) -> str | None:
        """The first rule any of ``texts`` matches, or None."""
        folded = [fold(text) for text in texts if text]
        for rule, regex in self._compiled:
            if any(regex.search(text) for text in folded):
                return rule
        return None


def load_terms(path: Path = TERMS_FILE) -> list[str]:
    """The starter list: one rule a line; blank lines and ``#`` comments skipped."""
    lines = (line.strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


class ContentRefused(BotError):
    """A prompt breaks one of the server's content rules; nothing was reserved."""


class MemberBlocked(BotError):
    """A server admin blocked this member from paid requests."""


@dataclass(frozen=True)
class ModerationSettings:
    """What /moderation show prints."""

    rules: tuple[Rule, ...]
    adult_content: AdultContent
    blocked: tuple[int, ...]
    cooldowns: dict[str, int]
    max_inflight: int


class Moderation:
    """Reads and changes a server's content rules, blocked members and cooldowns (every change audited)."""

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        guild_settings: GuildSettingsRepo,
        clock: Callable[[], float],
        *,
        explicit_terms: Iterable[str],
        default_max_inflight: int,
    ) -> None:
        self.db = db
        self.audit = audit
        self.guild_settings = guild_settings
        self.clock = clock
        self.explicit = Matcher(explicit_terms)
        self.default_max_inflight = default_max_inflight

    # ── the checks (run by the paid flow before reserving) ───────────────────

    async def check_member(self, guild_id: int, user_id: int) -> None:
        """Raise ``MemberBlocked`` (saying whom to ask) when an admin blocked this member."""
        row = await self.db.fetch_one(
            "SELECT reason FROM blocked_members WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        if row is not None:
            reason = f" (reason: {row['reason']})" if row["reason"] else ""
            raise MemberBlocked(
                f"A server admin has blocked you from using the bot's paid commands on this server{reason}. "
                "Nothing was charged. Ask a server admin (Manage Server) if you think this is a mistake."
            )

    async def check_text(self, guild_id: int, texts: Iterable[str], *, age_restricted: bool) -> None:
        """Raise ``ContentRefused`` naming the rule a prompt breaks (never the whole list)."""
        texts = [text for text in texts if text]
        if not texts:
            return
        rules = [rule for rule in await self.rules(guild_id) if rule.applies(age_restricted)]
        matched = Matcher(rule.pattern for rule in rules).first_match(*texts) if rules else None
        if matched is not None:
            raise ContentRefused(
                f"This prompt matches the server's blocked term `{matched}`, so it was not sent and nothing was "
                "charged. Rephrase it; a server admin can review the rules with /moderation show."
            )
        adult = await self.adult_content(guild_id)
        if adult == "age_restricted" and age_restricted:
            return
        matched = self.explicit.first_match(*texts)
        if matched is not None:
            where = (
                "This server does not allow explicit content"
                if adult == "off"
                else "Explicit content is only allowed in age-restricted channels here"
            )
            raise ContentRefused(
                f"{where} (the prompt matches `{matched}`), so it was not sent and nothing was charged. "
                "Rephrase it" + (", or use an age-restricted channel." if adult == "age_restricted" else ".")
            )

    async def limits(self, guild_id: int, category: str) -> tuple[int, int | None]:
        """(requests a member may have in flight, seconds between two requests of ``category`` or None)."""
        inflight = (await self.guild_settings.get(guild_id)).max_inflight
        cooldown = await self.db.fetch_value(
            "SELECT seconds FROM category_cooldowns WHERE guild_id = ? AND category = ?", (guild_id, category)
        )
        return (int(inflight) if inflight else self.default_max_inflight), (int(cooldown) if cooldown else None)

    # ── reading ──────────────────────────────────────────────────────────────

    async def rules(self, guild_id: int) -> list[Rule]:
        """The server's blocklist, alphabetically."""
        rows = await self.db.fetch_all(
            "SELECT pattern, scope FROM moderation_rules WHERE guild_id = ? ORDER BY pattern", (guild_id,)
        )
        return [Rule(row["pattern"], row["scope"]) for row in rows]

    async def adult_content(self, guild_id: int) -> AdultContent:
        """'off' (explicit terms refused everywhere) or 'age_restricted' (allowed in age-restricted channels)."""
        value = (await self.guild_settings.get(guild_id)).adult_content
        return "off" if value == "off" else "age_restricted"

    async def show(self, guild_id: int) -> ModerationSettings:
        """Everything /moderation show prints."""
        blocked = await self.db.fetch_all(
            "SELECT user_id FROM blocked_members WHERE guild_id = ? ORDER BY created_at", (guild_id,)
        )
        cooldowns = await self.db.fetch_all(
            "SELECT category, seconds FROM category_cooldowns WHERE guild_id = ? ORDER BY category", (guild_id,)
        )
        inflight, _ = await self.limits(guild_id, "")
        return ModerationSettings(
            rules=tuple(await self.rules(guild_id)),
            adult_content=await self.adult_content(guild_id),
            blocked=tuple(row["user_id"] for row in blocked),
            cooldowns={row["category"]: row["seconds"] for row in cooldowns},
            max_inflight=inflight,
        )

    # ── changes (each one audited) ───────────────────────────────────────────

    async def add_rule(self, guild_id: int, rule: str, *, scope: Scope = "everywhere", by: int) -> Rule:
        """Add (or re-scope) a blocklist rule."""
        if scope not in SCOPES:
            raise InvalidInput(f"The scope must be one of {', '.join(SCOPES)}.")
        pattern = normalize_rule(rule)
        async with self.db.transaction() as tx:
            old = await tx.fetch_value(
                "SELECT scope FROM moderation_rules WHERE guild_id = ? AND pattern = ?", (guild_id, pattern)
            )
            if old is None:
                count = await tx.fetch_value("SELECT COUNT(*) FROM moderation_rules WHERE guild_id = ?", (guild_id,))
                if int(count or 0) >= MAX_RULES:
                    raise InvalidInput(f"A server can have at most {MAX_RULES} rules. Remove one first.")
            await tx.execute(
                "INSERT INTO moderation_rules (guild_id, pattern, scope, created_by, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, pattern) DO UPDATE SET scope = excluded.scope",
                (guild_id, pattern, scope, by, self.clock()),
            )
            await self.audit.record(
                guild_id, by, "blocklist rule", target=pattern, old=old and f"blocked {old}", new=f"blocked {scope}",
                tx=tx,
            )  # fmt: skip
        return Rule(pattern, scope)

    async def remove_rule(self, guild_id: int, rule: str, *, by: int) -> bool:
        """Remove a rule; False when there was no such rule."""
        pattern = normalize_rule(rule)
        async with self.db.transaction() as tx:
            old = await tx.fetch_value(
                "SELECT scope FROM moderation_rules WHERE guild_id = ? AND pattern = ?", (guild_id, pattern)
            )
            if old is None:
                return False
            await tx.execute("DELETE FROM moderation_rules WHERE guild_id = ? AND pattern = ?", (guild_id, pattern))
            await self.audit.record(
                guild_id, by, "blocklist rule", target=pattern, old=f"blocked {old}", new="removed", tx=tx
            )
        return True

    async def set_adult_content(self, guild_id: int, value: str, *, by: int) -> None:
        """'off' or 'age_restricted' (audited by the guild settings)."""
        if value not in ADULT_CONTENT:
            raise InvalidInput("Adult content is either `off` or `age_restricted`.")
        await self.guild_settings.update(guild_id, adult_content=value, by=by)

    async def set_max_inflight(self, guild_id: int, value: int | None, *, by: int) -> int:
        """Requests a member may have in flight at once (None: back to MAX_INFLIGHT_PER_MEMBER); the new limit."""
        settings = await self.guild_settings.update(guild_id, max_inflight=value, by=by)
        return settings.max_inflight or self.default_max_inflight

    async def set_cooldown(self, guild_id: int, category: str, seconds: int | None, *, by: int) -> None:
        """Seconds a member waits between two requests of a budget category (None or 0: no cooldown)."""
        if category not in BUDGET_CATEGORIES:
            raise InvalidInput(f"Unknown category {category!r}.")
        if seconds:
            seconds = check_int(seconds, *COOLDOWN_RANGE, name="The cooldown", unit="seconds")
        async with self.db.transaction() as tx:
            old = await tx.fetch_value(
                "SELECT seconds FROM category_cooldowns WHERE guild_id = ? AND category = ?", (guild_id, category)
            )
            if seconds:
                await tx.execute(
                    "INSERT INTO category_cooldowns (guild_id, category, seconds) VALUES (?, ?, ?)"
                    " ON CONFLICT (guild_id, category) DO UPDATE SET seconds = excluded.seconds",
                    (guild_id, category, seconds),
                )
            else:
                await tx.execute(
                    "DELETE FROM category_cooldowns WHERE guild_id = ? AND category = ?", (guild_id, category)
                )
            await self.audit.record(
                guild_id, by, "cooldown", target=category,
                old=f"{old} s" if old else "none", new=f"{seconds} s" if seconds else "none", tx=tx,
            )  # fmt: skip

    async def block(self, guild_id: int, user_id: int, *, by: int, reason: str | None = None) -> bool:
        """Block a member from paid requests; False when they already were."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "INSERT INTO blocked_members (guild_id, user_id, blocked_by, reason, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (guild_id, user_id) DO NOTHING",
                (guild_id, user_id, by, (reason or "")[:200] or None, self.clock()),
            )
            if changed:
                await self.audit.record(
                    guild_id, by, "member block", target=f"<@{user_id}>", old="allowed", new="blocked", tx=tx
                )
        return bool(changed)

    async def unblock(self, guild_id: int, user_id: int, *, by: int) -> bool:
        """Unblock a member; False when they were not blocked."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "DELETE FROM blocked_members WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            )
            if changed:
                await self.audit.record(
                    guild_id, by, "member block", target=f"<@{user_id}>", old="blocked", new="allowed", tx=tx
                )
        return bool(changed)
