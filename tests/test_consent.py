"""Voice-clone consent (bot.consent) on both backends: who accepted where, the server's switch, the paid-flow step."""

from __future__ import annotations

import pytest

from bot.consent import VOICE_CLONE_NOTICE, Notice, VoiceCloneConsent
from bot.credits import BudgetAlerts, ChannelPolicy, CreditLedger, GuildSettingsRepo
from bot.db import Database
from bot.paid import Bill, ChannelNotAllowed, PaidRequest, PaidRequests, Quote, RequestDeclined, Requester
from bot.privacy import PrivacyStore, PurgeReport, purge_summary

GUILD, OTHER_GUILD = 1, 7
ALICE, BOB = 2, 3
NOW = 1_795_003_200


class Member:
    """A member who answers the notice and price questions as told, recording what they were asked, in order."""

    def __init__(self, *, accept_notice: bool = True, confirm: bool = True) -> None:
        self.accepts = accept_notice
        self.confirms = confirm
        self.asked: list[str] = []

    async def accept_notice(self, notice: Notice) -> bool:
        self.asked.append("notice")
        return self.accepts

    async def confirm(self, what: str, quote: Quote) -> bool:
        self.asked.append(f"price {quote.label}")
        return self.confirms

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        return None

    async def working(self, model: str, quote: Quote, since: int) -> None:
        return None


@pytest.fixture
def settings(migrated: Database) -> GuildSettingsRepo:
    return GuildSettingsRepo(migrated, default_confirm_threshold=50)


@pytest.fixture
def consent(migrated: Database, settings: GuildSettingsRepo) -> VoiceCloneConsent:
    return VoiceCloneConsent(migrated, settings, lambda: NOW)


async def test_each_member_accepts_once_per_server(consent: VoiceCloneConsent, migrated: Database) -> None:
    assert await consent.needed(GUILD, ALICE)
    await consent.accept(GUILD, ALICE)
    assert not await consent.needed(GUILD, ALICE)
    assert await consent.needed(GUILD, BOB)  # another member still sees it
    assert await consent.needed(OTHER_GUILD, ALICE)  # and so does she on another server
    consent.clock = lambda: NOW + 60
    await consent.accept(GUILD, ALICE)  # idempotent: the first acceptance's time is kept
    rows = await migrated.fetch_all("SELECT guild_id, user_id, accepted_at FROM voice_clone_consents")
    assert [tuple(r) for r in rows] == [(GUILD, ALICE, NOW)]


async def test_an_admin_can_switch_the_notice_off_and_on(
    consent: VoiceCloneConsent, settings: GuildSettingsRepo
) -> None:
    assert (await settings.get(GUILD)).voice_clone_notice  # on by default
    await settings.update(GUILD, by=ALICE, voice_clone_notice=False)
    assert not (await settings.get(GUILD)).voice_clone_notice
    assert not await consent.needed(GUILD, BOB)
    assert await consent.needed(OTHER_GUILD, BOB)  # a server's switch is its own
    await settings.update(GUILD, by=ALICE, voice_clone_notice=True)
    assert await consent.needed(GUILD, BOB)


async def test_obtain_asks_only_when_needed_and_remembers_an_accept(
    consent: VoiceCloneConsent, settings: GuildSettingsRepo
) -> None:
    declines = Member(accept_notice=False)
    assert not await consent.obtain(GUILD, ALICE, declines)
    assert declines.asked == ["notice"]
    assert await consent.needed(GUILD, ALICE)  # a Cancel is not remembered: asked again next time

    accepts = Member()
    assert await consent.obtain(GUILD, ALICE, accepts)
    assert await consent.obtain(GUILD, ALICE, accepts)
    assert accepts.asked == ["notice"]  # the second time goes straight on
    assert await consent.accepted(GUILD, ALICE)

    await settings.update(GUILD, voice_clone_notice=False)
    silent = Member()
    assert await consent.obtain(GUILD, BOB, silent)
    assert silent.asked == []
    assert not await consent.accepted(GUILD, BOB)  # not asked, so nothing recorded


async def test_purges_delete_and_count_acceptances(consent: VoiceCloneConsent, migrated: Database) -> None:
    await consent.accept(GUILD, ALICE)
    await consent.accept(OTHER_GUILD, ALICE)
    await consent.accept(GUILD, BOB)
    privacy = PrivacyStore(migrated, lambda: NOW)
    report = await privacy.purge(user_id=ALICE, guild_id=GUILD)
    assert report == PurgeReport(consents=1)
    assert purge_summary(report).endswith(", 1 voice-clone notice acceptance.")
    assert await consent.needed(GUILD, ALICE)
    assert not await consent.needed(OTHER_GUILD, ALICE)  # "this server" leaves the other server's
    assert (await privacy.purge(user_id=ALICE)).consents == 1  # every server
    assert (await privacy.purge(guild_id=GUILD)).consents == 1  # a removed server's retention purge: Bob's
    assert await privacy.purge(guild_id=GUILD) == PurgeReport()


# ── the step in the paid flow ────────────────────────────────────────────────


@pytest.fixture
def ledger(migrated: Database) -> CreditLedger:
    return CreditLedger(migrated, lambda: NOW, default_allowance=200, default_period="month")


@pytest.fixture
def paid(migrated: Database, ledger: CreditLedger, settings: GuildSettingsRepo) -> PaidRequests:
    alerts = BudgetAlerts(migrated, ledger, settings, lambda: NOW)
    return PaidRequests(ledger, ChannelPolicy(migrated), settings, alerts)


def _clone_request(consent: VoiceCloneConsent, member: Member, key: str) -> PaidRequest:
    me = Requester(guild_id=GUILD, user_id=ALICE, channel_id=10)

    async def step() -> bool:
        return await consent.obtain(GUILD, ALICE, member)

    return PaidRequest(
        me, "audio_clone", "voice-clone", Quote(107, exact=True), key, "A cloned voice", texts=("hi",), consent=step
    )


async def _never(bill: Bill) -> None:
    raise AssertionError("nothing may be sent to Hypereal")


async def test_a_declined_notice_reserves_nothing_and_asks_no_price(
    paid: PaidRequests, ledger: CreditLedger, consent: VoiceCloneConsent
) -> None:
    member = Member(accept_notice=False)
    with pytest.raises(RequestDeclined):
        await paid.run(_clone_request(consent, member, "c1"), member, _never)
    assert member.asked == ["notice"]
    assert await ledger.reservation("c1") is None


async def test_the_notice_comes_before_the_price_and_the_reservation(
    paid: PaidRequests, ledger: CreditLedger, consent: VoiceCloneConsent
) -> None:
    member = Member()
    reserved: list[str | None] = []

    async def work(bill: Bill) -> None:
        reservation = await ledger.reservation(bill.key)
        reserved.append(reservation.state if reservation else None)

    await paid.run(_clone_request(consent, member, "c2"), member, work)
    assert member.asked == ["notice", "price 107 credits"]
    assert reserved == ["held"]
    assert await consent.accepted(GUILD, ALICE)


async def test_a_request_refused_anyway_shows_no_notice(
    paid: PaidRequests, migrated: Database, ledger: CreditLedger, consent: VoiceCloneConsent
) -> None:
    await ChannelPolicy(migrated).disable(GUILD, "audio", 10)
    member = Member()
    with pytest.raises(ChannelNotAllowed):
        await paid.run(_clone_request(consent, member, "c3"), member, _never)
    assert member.asked == []
    assert not await consent.accepted(GUILD, ALICE)


def test_the_notice_says_what_the_issue_asks() -> None:
    assert "right to use" in VOICE_CLONE_NOTICE.text
    assert "sent to Hypereal" in VOICE_CLONE_NOTICE.text
    assert "nothing was charged" in VOICE_CLONE_NOTICE.cancelled
    assert "nothing was charged" in VOICE_CLONE_NOTICE.timed_out
