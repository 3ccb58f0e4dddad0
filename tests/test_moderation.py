"""The content-rule matcher and the moderation repository (real database, both backends)."""

from __future__ import annotations

import pytest

from bot.audit import AuditLog
from bot.credits import CreditLedger, GuildSettingsRepo
from bot.credits.errors import CooldownActive, TooManyInFlight
from bot.db import Database
from bot.errors import InvalidInput
from bot.moderation import ContentRefused, Matcher, MemberBlocked, Moderation, fold, load_terms, normalize_rule

GUILD = 7


def test_fold_drops_case_and_accents() -> None:
    assert fold("Crème BRÛLÉE") == "creme brulee"
    assert fold("ＳＥＸ") == "sex"  # fullwidth letters: NFKD compatibility forms


@pytest.mark.parametrize(
    ("rules", "text", "expected"),
    [
        (["fox"], "a red FOX in snow", "fox"),
        (["fox"], "a foxglove", None),  # word boundary: no match inside a longer word
        (["fox*"], "a foxglove", "fox*"),
        (["*glove"], "a foxglove", "*glove"),
        (["sex"], "Sussex countryside", None),
        (["sex"], "Séx appeal", "sex"),
        (["red fox"], "a red   fox", "red fox"),
        (["red fox"], "a red dog and a fox", None),
        (["f*x"], "a fix", "f*x"),
    ],
)
def test_matcher(rules: list[str], text: str, expected: str | None) -> None:
    assert Matcher(rules).first_match(text) == expected


def test_rules_are_normalized_and_checked() -> None:
    assert normalize_rule("  Crème   Brûlée ") == "creme brulee"
    for bad in ("***", "", "a" * 61, "no;sql"):
        with pytest.raises(InvalidInput):
            normalize_rule(bad)


def test_the_starter_list_is_data_and_compiles() -> None:
    terms = load_terms()
    assert len(terms) >= 20
    assert "porn*" in terms
    assert Matcher(terms).first_match("some pornographic stuff") == "porn*"
    assert Matcher(terms).first_match("a cat on a sofa") is None


def _moderation(db: Database, clock: list[float]) -> tuple[Moderation, AuditLog]:
    audit = AuditLog(db, lambda: clock[0])
    settings = GuildSettingsRepo(db, default_confirm_threshold=50, audit=audit)
    return (
        Moderation(db, audit, settings, lambda: clock[0], explicit_terms=load_terms(), default_max_inflight=3),
        audit,
    )


async def test_rules_scope_adult_content_and_blocks(migrated: Database) -> None:
    moderation, audit = _moderation(migrated, [1000.0])
    await moderation.add_rule(GUILD, "Dragon*", by=1)
    await moderation.add_rule(GUILD, "gore", scope="outside_age_restricted", by=1)
    with pytest.raises(ContentRefused, match="`dragon\\*`") as refused:
        await moderation.check_text(GUILD, ["two DRAGONS fighting"], age_restricted=True)
    assert "gore" not in refused.value.user_message  # names the rule that matched, never the list
    with pytest.raises(ContentRefused, match="`gore`"):
        await moderation.check_text(GUILD, ["gore"], age_restricted=False)
    await moderation.check_text(GUILD, ["gore"], age_restricted=True)
    # Explicit terms: allowed only in age-restricted channels by default, nowhere once adult content is off.
    with pytest.raises(ContentRefused, match="only allowed in age-restricted channels"):
        await moderation.check_text(GUILD, ["a nude statue"], age_restricted=False)
    await moderation.check_text(GUILD, ["a nude statue"], age_restricted=True)
    await moderation.set_adult_content(GUILD, "off", by=1)
    with pytest.raises(ContentRefused, match="does not allow explicit content"):
        await moderation.check_text(GUILD, ["a nude statue"], age_restricted=True)
    await moderation.check_text(8, ["a nude statue"], age_restricted=True)  # another server, its own rules

    assert await moderation.block(GUILD, 42, by=1, reason="spam")
    assert not await moderation.block(GUILD, 42, by=1)
    with pytest.raises(MemberBlocked, match="Ask a server admin"):
        await moderation.check_member(GUILD, 42)
    assert await moderation.unblock(GUILD, 42, by=1)
    await moderation.check_member(GUILD, 42)

    assert await moderation.remove_rule(GUILD, "dragon*", by=1)
    assert not await moderation.remove_rule(GUILD, "dragon*", by=1)
    lines = [e.line() for e in await audit.latest(GUILD)]
    assert len(lines) == 6
    assert "blocklist rule (dragon*): blocked everywhere → removed" in lines[0]
    assert "member block (<@42>): blocked → allowed" in lines[1]
    assert "setting adult_content: age_restricted → off" in lines[3]
    assert "blocklist rule (dragon*): — → blocked everywhere" in lines[-1]


async def test_in_flight_limit_and_cooldown_in_the_reserve_transaction(migrated: Database) -> None:
    clock = [1000.0]
    moderation, _ = _moderation(migrated, clock)
    ledger = CreditLedger(migrated, lambda: clock[0], default_allowance=1000, default_period="month")
    await moderation.set_max_inflight(GUILD, 2, by=1)
    await moderation.set_cooldown(GUILD, "video", 30, by=1)
    assert await moderation.limits(GUILD, "video") == (2, 30)
    assert await moderation.limits(GUILD, "image") == (2, None)
    for n in range(2):
        await ledger.reserve(GUILD, 5, (), "image", 1, f"k{n}", max_in_flight=2)
    with pytest.raises(TooManyInFlight, match="Refused, not queued"):
        await ledger.reserve(GUILD, 5, (), "image", 1, "k2", max_in_flight=2)
    await ledger.reserve(GUILD, 6, (), "image", 1, "other", max_in_flight=2)  # per member
    await ledger.settle("k0", 1)
    await ledger.reserve(GUILD, 5, (), "image", 1, "k3", max_in_flight=2)  # one finished: room again

    await ledger.reserve(GUILD, 9, (), "video", 1, "v1", cooldown=30)
    await ledger.settle("v1", 1)
    clock[0] += 10
    with pytest.raises(CooldownActive, match="try again in 20 s"):
        await ledger.reserve(GUILD, 9, (), "video", 1, "v2", cooldown=30)
    clock[0] += 20
    await ledger.reserve(GUILD, 9, (), "video", 1, "v3", cooldown=30)
    for key in ("k1", "k3", "other", "v3"):
        await ledger.refund(key, "test over")
    assert await ledger.check_invariants() == []
