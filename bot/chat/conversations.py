"""Conversations as reply chains, stored in SQLite.

Every turn (the user's question, the model's answer) is a row linked to the turn it answers or
continues; every Discord message that shows a turn maps to it. A reply to any of those messages
continues the conversation from that turn: the context is rebuilt by walking the chain back, never
by re-fetching Discord messages.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.db import Database
from bot.hypereal import ChatMessage

# Walk at most this many turns back: a guard against a pathological chain, far above any budget.
MAX_CHAIN = 500


# A message shows one turn; linking it again (an edit re-sent) moves it to the newer turn.
LINK_MESSAGE = (
    "INSERT INTO chat_messages (message_id, turn_id) VALUES (?, ?)"
    " ON CONFLICT (message_id) DO UPDATE SET turn_id = excluded.turn_id"
)


@dataclass(frozen=True)
class Turn:
    """One stored turn."""

    id: int
    parent_id: int | None
    role: str
    content: str
    model: str | None
    user_id: int


class ConversationStore:
    """Chat turns and the messages that show them."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    async def add_turn(
        self,
        *,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        role: str,
        content: str,
        parent_id: int | None = None,
        model: str | None = None,
        message_ids: Iterable[int] = (),
    ) -> int:
        """Store a turn (and the messages showing it); returns its id."""
        async with self.db.transaction() as tx:
            turn_id = await tx.fetch_value(
                "INSERT INTO chat_turns (guild_id, channel_id, user_id, parent_id, role, content, model, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (guild_id, channel_id, user_id, parent_id, role, content, model, int(self.clock())),
            )
            assert turn_id is not None
            await tx.execute_many(LINK_MESSAGE, [(message_id, turn_id) for message_id in message_ids])
        return int(turn_id)

    async def link_messages(self, turn_id: int, message_ids: Iterable[int]) -> None:
        """Record more messages showing a turn (an answer's continuation parts)."""
        await self.db.execute_many(LINK_MESSAGE, [(message_id, turn_id) for message_id in message_ids])

    async def turn_for_message(self, message_id: int) -> int | None:
        """The turn a Discord message shows, if it is one of ours."""
        value = await self.db.fetch_value("SELECT turn_id FROM chat_messages WHERE message_id = ?", (message_id,))
        return None if value is None else int(value)

    async def chain(self, turn_id: int) -> list[Turn]:
        """The turns from the conversation's start up to ``turn_id``, oldest first."""
        rows = await self.db.fetch_all(
            """
            WITH RECURSIVE chain(id, parent_id, role, content, model, user_id, depth) AS (
                SELECT id, parent_id, role, content, model, user_id, 0 FROM chat_turns WHERE id = ?
                UNION ALL
                SELECT t.id, t.parent_id, t.role, t.content, t.model, t.user_id, chain.depth + 1
                FROM chat_turns AS t JOIN chain ON t.id = chain.parent_id
                WHERE chain.depth < ?
            )
            SELECT id, parent_id, role, content, model, user_id FROM chain ORDER BY depth DESC
            """,
            (turn_id, MAX_CHAIN),
        )
        return [Turn(*row) for row in rows]

    async def context(self, turn_id: int | None, budget_chars: int) -> list[ChatMessage]:
        """The conversation up to ``turn_id`` as chat messages, newest turns kept within ``budget_chars``.

        The oldest turns are dropped first; a conversation's system turn is always kept.
        """
        if turn_id is None:
            return []
        turns = await self.chain(turn_id)
        system = [t for t in turns if t.role == "system"][:1]
        rest = [t for t in turns if t.role != "system"]
        budget = budget_chars - sum(len(t.content) for t in system)
        kept: list[Turn] = []
        for turn in reversed(rest):
            if len(turn.content) > budget:
                break
            kept.append(turn)
            budget -= len(turn.content)
        kept.reverse()
        # A context must not start with the assistant answering nothing: drop a leading answer.
        while kept and kept[0].role == "assistant":
            kept.pop(0)
        return [ChatMessage(role=t.role, content=t.content) for t in (*system, *kept)]  # type: ignore[arg-type]
