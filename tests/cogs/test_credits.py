"""Credits and server policy end to end: /credits, /quota, /channels, /budget (/usage: test_usage.py)."""

from __future__ import annotations

import pytest

from tests.conftest import RunningBot
from tests.fakediscord import FakeDiscord

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL


async def _audit(fake: FakeDiscord, **options: object) -> list[str]:
    """The lines of /quota audit, newest first, without their relative timestamps."""
    shown = await fake.response(await fake.invoke("quota audit", user=fake.ADMIN, **options))
    assert shown.ephemeral
    return [line.split(":R> ", 1)[1] for line in shown.embeds[0]["description"].splitlines()]


async def test_credits_shows_the_server_balance(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await fake.response(await fake.invoke("credits"))
    assert message.ephemeral
    server = message.embeds[0]["fields"][0]
    assert "**1000** of 1000 credits left" in server["value"]
    assert "Resets <t:" in server["value"]


async def test_a_member_cannot_use_quota(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    synced = {c["name"]: c for c in fake.commands(fake.GUILD_ID)}
    assert int(synced["quota"]["default_member_permissions"]) == 1 << 5  # hidden from non-managers
    message = await fake.response(await fake.invoke("quota show", user=fake.MEMBER))
    assert message.ephemeral
    assert "Manage Server" in message.content


async def test_admin_sets_caps_and_sees_them(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    done = await fake.response(
        await fake.invoke("quota role-cap", user=fake.ADMIN, role=fake.ROLE_ID, category="image", cap=5)
    )
    assert "can spend 5 credits on Images" in done.content
    await fake.response(
        await fake.invoke("quota user-cap", user=fake.ADMIN, member=fake.OTHER_MEMBER, category="video", unlimited=True)
    )
    shown = await fake.response(await fake.invoke("quota show", user=fake.ADMIN))
    fields = {f["name"]: f["value"] for f in shown.embeds[0]["fields"]}
    assert f"<@&{fake.ROLE_ID}>: Images 5 credits" in fields["Role caps (a member gets the highest)"]
    assert f"<@{fake.OTHER_MEMBER.id}>: Video unlimited" in fields["Member caps (override roles)"]
    statuses = await running_bot.services.ledger.user_status(fake.GUILD_ID, fake.MEMBER.id, [fake.ROLE_ID])
    assert {s.category: s.cap for s in statuses}["image"] == 5
    admin = f"<@{fake.ADMIN.id}>"
    assert await _audit(fake) == [
        f"{admin} cap (<@{fake.OTHER_MEMBER.id}> video): not set → unlimited",
        f"{admin} cap (<@&{fake.ROLE_ID}> image): not set → 5 credits",
    ]
    await fake.response(
        await fake.invoke("quota role-cap", user=fake.ADMIN, role=fake.ROLE_ID, category="image", cap=8)
    )
    await fake.response(await fake.invoke("quota role-cap", user=fake.ADMIN, role=fake.ROLE_ID, category="image"))
    assert (await _audit(fake))[:2] == [
        f"{admin} cap (<@&{fake.ROLE_ID}> image): 8 credits → not set",
        f"{admin} cap (<@&{fake.ROLE_ID}> image): 5 credits → 8 credits",
    ]
    # Filtered by member: changes about them (or made by them) only.
    assert await _audit(fake, member=fake.OTHER_MEMBER) == [
        f"{admin} cap (<@{fake.OTHER_MEMBER.id}> video): not set → unlimited"
    ]


async def test_channels_enable_and_show(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    reply = await fake.response(
        await fake.invoke("channels enable", user=fake.ADMIN, category="video", channel=fake.OTHER_CHANNEL_ID)
    )
    assert reply.content == f"Video: only in <#{fake.OTHER_CHANNEL_ID}>."
    shown = await fake.response(await fake.invoke("channels show", user=fake.ADMIN))
    assert f"**Video**: only in <#{fake.OTHER_CHANNEL_ID}>" in shown.embeds[0]["description"]
    assert "**Chat**: everywhere" in shown.embeds[0]["description"]
    await fake.response(await fake.invoke("channels reset", user=fake.ADMIN, category="video"))
    assert await _audit(fake) == [
        f"<@{fake.ADMIN.id}> channels (video): only in <#{fake.OTHER_CHANNEL_ID}> → everywhere",
        f"<@{fake.ADMIN.id}> channels (video): everywhere → only in <#{fake.OTHER_CHANNEL_ID}>",
    ]


async def test_budget_is_for_the_operator_only(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    refused = await fake.response(await fake.invoke("budget grant", user=fake.MEMBER, amount=50))
    assert "Only the bot operator" in refused.content
    granted = await fake.response(await fake.invoke("budget grant", user=fake.ADMIN, amount=50))
    assert "**1050** of 1000 credits left" in granted.content
    await fake.response(await fake.invoke("budget set", user=fake.ADMIN, allowance=200, period="week"))
    budget = await running_bot.services.ledger.budget(fake.GUILD_ID)
    assert (budget.allowance, budget.period, budget.balance) == (200, "week", 200)
    await fake.response(await fake.invoke("budget freeze", user=fake.ADMIN, frozen=True))
    assert (await running_bot.services.ledger.budget(fake.GUILD_ID)).frozen
    assert await running_bot.services.ledger.check_invariants() == []
    operator = f"<@{fake.ADMIN.id}>"  # the fake's admin is also the operator (OWNER_IDS)
    assert await _audit(fake) == [
        f"{operator} freeze: active → frozen",
        f"{operator} allowance: 1000 per month → 200 per week",
        f"{operator} grant (+50 credits): balance 1000 → balance 1050",
    ]  # the refused grant by a member left no row


async def test_a_member_over_the_role_cap_is_refused_with_the_reset_time(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(
        await fake.invoke("quota role-cap", user=fake.ADMIN, role=fake.ROLE_ID, category="image", cap=5)
    )
    first = await fake.response(await fake.invoke("image", prompt="a fox"))
    await fake.wait_for(lambda: first.latest_files)
    refused = await fake.response(await fake.invoke("image", prompt="another fox"))
    assert refused.ephemeral
    assert "You have used 4 of your 5-credit image cap this period" in refused.content
    assert "Your quota resets <t:" in refused.content
    rows = await running_bot.services.db.fetch_all("SELECT state FROM reservations")
    assert [row["state"] for row in rows] == ["settled"]


async def test_a_disabled_category_is_refused_with_where_it_is_allowed(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(
        await fake.invoke("channels enable", user=fake.ADMIN, category="image", channel=fake.OTHER_CHANNEL_ID)
    )
    refused = await fake.response(await fake.invoke("image", prompt="a fox", channel_id=fake.CHANNEL_ID))
    assert refused.ephemeral
    assert (
        refused.content == f"❌ Image requests are not enabled in this channel. Use them in <#{fake.OTHER_CHANNEL_ID}>."
    )
    assert await running_bot.services.db.fetch_all("SELECT * FROM reservations") == []
    allowed = await fake.response(await fake.invoke("image", prompt="a fox", channel_id=fake.OTHER_CHANNEL_ID))
    await fake.wait_for(lambda: allowed.latest_files)


async def test_every_server_setting_change_is_audited_old_to_new(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    admin = f"<@{fake.ADMIN.id}>"
    for command, options in [
        ("quota default-cap", {"category": "chat", "cap": 30}),
        ("quota period", {"period": "week"}),
        ("quota alerts", {"channel": fake.ALERT_CHANNEL_ID, "threshold": "50"}),
        ("quota confirm", {"credits": 20}),
        ("quota shared-buttons", {"state": "on"}),
        ("channels disable", {"category": "image", "channel": fake.OTHER_CHANNEL_ID}),
        ("quota default-cap", {"category": "chat"}),
    ]:
        reply = await fake.response(await fake.invoke(command, user=fake.ADMIN, **options))
        assert not reply.content.startswith("❌"), (command, reply.content)
    assert await _audit(fake) == [
        f"{admin} cap (default chat): 30 credits → not set",
        f"{admin} channels (image): everywhere → everywhere except <#{fake.OTHER_CHANNEL_ID}>",
        f"{admin} setting shared_buttons: off → on",
        f"{admin} setting confirm_threshold: 50 → 20",
        f"{admin} setting alert_thresholds: 80,100 → 50",
        f"{admin} setting alert_channel_id: none → {fake.ALERT_CHANNEL_ID}",
        f"{admin} allowance: 1000 per month → 1000 per week",
        f"{admin} cap (default chat): not set → 30 credits",
    ]
    member_view = await fake.response(await fake.invoke("quota audit", user=fake.MEMBER))
    assert "Manage Server" in member_view.content
