"""Community generation channels."""

from __future__ import annotations

from bot.credits import ChannelPolicy
from bot.db import Database

G, GEN, GENERAL, OTHER, THREAD = 1, 100, 200, 300, 400


async def test_everything_is_allowed_everywhere_by_default(db: Database) -> None:
    policy = ChannelPolicy(db)
    assert await policy.is_allowed(G, "video", GENERAL)
    assert await policy.allowed_channels(G, "video") == []
    assert (await policy.policy(G, "video")).describe() == "everywhere"


async def test_enable_limits_a_category_to_listed_channels(db: Database) -> None:
    policy = ChannelPolicy(db)
    await policy.enable(G, "video", GEN)
    assert await policy.is_allowed(G, "video", GEN)
    assert not await policy.is_allowed(G, "video", GENERAL)
    assert await policy.is_allowed(G, "image", GENERAL)  # other categories are unaffected
    assert await policy.allowed_channels(G, "video") == [GEN]
    assert (await policy.policy(G, "video")).describe() == f"only in <#{GEN}>"


async def test_threads_follow_their_parent(db: Database) -> None:
    policy = ChannelPolicy(db)
    await policy.enable(G, "video", GEN)
    assert await policy.is_allowed(G, "video", THREAD, parent_id=GEN)
    assert not await policy.is_allowed(G, "video", THREAD, parent_id=GENERAL)


async def test_disable_in_everywhere_mode_excludes_one_channel(db: Database) -> None:
    policy = ChannelPolicy(db)
    await policy.disable(G, "chat", GENERAL)
    assert not await policy.is_allowed(G, "chat", GENERAL)
    assert await policy.is_allowed(G, "chat", OTHER)
    assert (await policy.policy(G, "chat")).describe() == f"everywhere except <#{GENERAL}>"


async def test_disabling_the_last_listed_channel_switches_the_category_off(db: Database) -> None:
    policy = ChannelPolicy(db)
    await policy.enable(G, "video", GEN)
    await policy.enable(G, "video", OTHER)
    await policy.disable(G, "video", OTHER)
    assert await policy.allowed_channels(G, "video") == [GEN]
    await policy.disable(G, "video", GEN)
    assert not await policy.is_allowed(G, "video", GEN)
    assert not await policy.is_allowed(G, "video", GENERAL)
    assert await policy.allowed_channels(G, "video") == []
    assert (await policy.policy(G, "video")).describe() == "switched off everywhere"
    await policy.enable(G, "video", GENERAL)
    assert await policy.allowed_channels(G, "video") == [GENERAL]
    await policy.reset(G, "video")
    assert await policy.is_allowed(G, "video", OTHER)
