"""Reply-chain conversations rebuilt from the database (each backend)."""

from __future__ import annotations

import pytest

from bot.chat.conversations import ConversationStore
from bot.db import Database


@pytest.fixture
def store(migrated: Database) -> ConversationStore:
    return ConversationStore(migrated, clock=lambda: 1_700_000_000)


async def _exchange(store: ConversationStore, parent: int | None, question: str, answer: str, message: int) -> int:
    asked = await store.add_turn(
        guild_id=1, channel_id=2, user_id=3, role="user", content=question, parent_id=parent, message_ids=[message]
    )
    return await store.add_turn(
        guild_id=1, channel_id=2, user_id=3, role="assistant", content=answer, parent_id=asked,
        model="gpt-5", message_ids=[message + 1, message + 2],
    )  # fmt: skip


async def test_a_reply_to_any_part_of_an_answer_finds_its_turn(store: ConversationStore) -> None:
    first = await _exchange(store, None, "q1", "a1", 100)
    assert await store.turn_for_message(101) == first
    assert await store.turn_for_message(102) == first
    assert await store.turn_for_message(999) is None
    await store.link_messages(first, [103])
    assert await store.turn_for_message(103) == first


async def test_context_is_the_chain_oldest_first(store: ConversationStore) -> None:
    first = await _exchange(store, None, "q1", "a1", 100)
    second = await _exchange(store, first, "q2", "a2", 200)
    await _exchange(store, first, "other branch", "x", 300)  # a sibling reply is not in second's context
    context = await store.context(second, budget_chars=10_000)
    assert [(m.role, m.content) for m in context] == [
        ("user", "q1"),
        ("assistant", "a1"),
        ("user", "q2"),
        ("assistant", "a2"),
    ]
    assert await store.context(None, 100) == []


async def test_budget_drops_the_oldest_turns_but_keeps_the_system_prompt(store: ConversationStore) -> None:
    system = await store.add_turn(guild_id=1, channel_id=2, user_id=3, role="system", content="be brief")
    first = await _exchange(store, system, "q" * 50, "a" * 50, 100)
    second = await _exchange(store, first, "q2", "a2", 200)
    context = await store.context(second, budget_chars=len("be brief") + 60)
    assert [(m.role, m.content) for m in context] == [("system", "be brief"), ("user", "q2"), ("assistant", "a2")]
