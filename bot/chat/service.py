"""Answering a chat request: quote, reserve, stream from Hypereal, lay out, pace edits, settle, remember.

The Discord side is behind :class:`AnswerSurface` (the cog implements it with the interaction and
the channel), so this flow is testable without Discord and the cog stays thin.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.catalog import Catalog
from bot.chat.conversations import ConversationStore
from bot.chat.layout import DISCORD_LIMIT, AnswerLayout, Part
from bot.chat.pacing import PacedMessage, PacerRegistry
from bot.credits import GuildSettingsRepo
from bot.hypereal import ChatMessage, HyperealClient, HyperealError
from bot.inputs import CHAT_PROMPT_MAX, EMPTY_MESSAGES, check_system_prompt, check_text
from bot.logs import PromptLog
from bot.paid import Bill, Charge, MemberPort, PaidRequest, PaidRequests, Quote, Requester
from bot.wording import question_line

log = logging.getLogger(__name__)

MAX_TOKENS = 4096
# Room left in the last message for the cost line and notes under the answer.
FOOTER_ROOM = 160


class AnswerSurface(Protocol):
    """Where an answer is shown (the cog implements it on top of Discord)."""

    async def show_first(self, content: str) -> int:
        """Show ``content`` in the answer's first message (the deferred reply); returns its message id."""
        ...

    async def edit(self, message_id: int, content: str) -> None:
        """Replace the content of one of the answer's messages."""
        ...

    async def continue_in_new_message(self, content: str, reply_to: int) -> int:
        """Post a continuation part as a reply to the previous part; returns its message id."""
        ...


class ChatMember(AnswerSurface, MemberPort, Protocol):
    """The member asking: where the answer is shown, plus the paid flow's port and "thinking…"."""

    async def acknowledge(self) -> None:
        """The credits are held: show "thinking…" (a refusal before this stays ephemeral)."""
        ...


@dataclass(frozen=True)
class ChatRequest:
    """One question: who asks where, what, and which conversation it continues."""

    requester: Requester
    prompt: str
    key: str  # idempotency key of the reservation (the interaction or message id)
    model: str | None = None
    system: str | None = None
    parent_turn: int | None = None  # the answer being replied to, if any
    show_question: bool = False  # a public /chat answer starts with who asked what (onlookers see the question)


@dataclass
class ChatOutcome:
    """What happened, for the caller and the tests."""

    text: str = ""
    message_ids: list[int] = field(default_factory=list)
    charge: Charge | None = None
    stopped: bool = False
    interrupted: bool = False
    cut_off: bool = False
    reported_credits: int | None = None  # what Hypereal said the answer cost, when it said
    turn_id: int | None = None


class ChatService:
    """Streams chat answers into Discord messages inside the channel's edit budget."""

    def __init__(
        self,
        *,
        hypereal: HyperealClient,
        catalog: Catalog,
        paid: PaidRequests,
        conversations: ConversationStore,
        guild_settings: GuildSettingsRepo,
        pacers: PacerRegistry,
        default_model: str,
        context_chars: int,
        clock: Callable[[], float],
        prompt_log: PromptLog | None = None,
    ) -> None:
        self.hypereal = hypereal
        self.catalog = catalog
        self.paid = paid
        self.conversations = conversations
        self.guild_settings = guild_settings
        self.pacers = pacers
        self.default_model = default_model
        self.context_chars = context_chars
        self.clock = clock
        self.prompt_log = prompt_log or PromptLog()

    async def prepare(self, request: ChatRequest) -> tuple[str, list[ChatMessage]]:
        """Validate the request and build the messages to send (before anything is reserved)."""
        prompt = check_text(request.prompt, limit=CHAT_PROMPT_MAX, empty=EMPTY_MESSAGES["chat"])
        own_system = None if request.system is None else check_system_prompt(request.system)
        guild = await self.guild_settings.get(request.requester.guild_id)
        model = self.catalog.require(request.model or guild.default_chat_model or self.default_model, "chat").id
        history = await self.conversations.context(request.parent_turn, self.context_chars - len(prompt))
        system = own_system or guild.system_prompt
        messages: list[ChatMessage] = []
        if system and not any(m.role == "system" for m in history):
            messages.append(ChatMessage(role="system", content=system))
        messages += history
        messages.append(ChatMessage(role="user", content=prompt))
        return model, messages

    def quote(self, model: str, messages: list[ChatMessage]) -> int:
        """The credits to reserve: the catalog price, scaled by the conversation's length."""
        return self.catalog.quote(model, conversation_chars=sum(len(m.content) for m in messages))

    async def answer(
        self, request: ChatRequest, surface: ChatMember, *, stop: asyncio.Event | None = None
    ) -> ChatOutcome:
        """Answer ``request`` on ``surface`` through the paid flow; ``stop`` (the Stop button) ends the stream early.

        Like every paid request it asks for confirmation when its estimate is over the server's threshold.
        """
        model, messages = await self.prepare(request)
        quote = Quote(self.quote(model, messages), exact=False)  # scales with the conversation: an estimate
        paid = PaidRequest(
            request.requester, "chat", model, quote, request.key, f"An answer from {model}",
            texts=(request.prompt, request.system or ""),
        )  # fmt: skip
        outcome = ChatOutcome()
        stop = stop or asyncio.Event()

        async def work(bill: Bill) -> ChatOutcome:
            await surface.acknowledge()
            header = question_line(request.requester.user_id, request.prompt) if request.show_question else ""
            writer = _AnswerWriter(surface, self.pacers, request.requester.channel_id, header=header)
            try:
                await self._stream(model, messages, writer, outcome, stop)
            except HyperealError as exc:
                if not outcome.text:
                    raise  # nothing shown yet: the pipeline refunds and the user gets the typed error
                outcome.interrupted = True
                log.warning("chat stream interrupted guild=%s: %s", request.requester.guild_id, exc)
            outcome.charge = await self._settle(request.requester, bill, outcome)
            # Remember the turn before the final edit, so a reply to the finished answer always finds it.
            outcome.message_ids = list(writer.message_ids)
            outcome.turn_id = await self._remember(request, model, messages[-1].content, outcome)
            outcome.message_ids = await writer.finish(outcome.text, self._footer(outcome))
            if outcome.turn_id is not None:
                # The final layout may have opened one more message (idempotent for the others).
                await self.conversations.link_messages(outcome.turn_id, outcome.message_ids)
            return outcome

        status = _PacedStatus(surface, self.pacers, request.requester.channel_id, started=lambda: bool(outcome.text))
        return await self.paid.run(paid, status, work)

    async def _stream(
        self,
        model: str,
        messages: list[ChatMessage],
        writer: _AnswerWriter,
        outcome: ChatOutcome,
        stop: asyncio.Event,
    ) -> None:
        async with self.hypereal.chat_stream(messages, model=model, max_tokens=MAX_TOKENS) as stream:
            async for delta in stream:
                outcome.text += delta
                await writer.update(outcome.text)
                if stop.is_set():
                    outcome.stopped = True
                    break
            outcome.cut_off = stream.finish_reason == "length"
            outcome.reported_credits = stream.credits_used

    async def _settle(self, requester: Requester, bill: Bill, outcome: ChatOutcome) -> Charge | None:
        if outcome.interrupted and outcome.reported_credits is None:
            # Hypereal failed mid-answer without reporting usage: the server is not charged for its failure.
            return await self.paid.refund_bill(bill, "chat stream interrupted")
        return await self.paid.settle_bill(requester, bill, outcome.reported_credits)

    @staticmethod
    def _footer(outcome: ChatOutcome) -> str:
        notes: list[str] = []
        if outcome.cut_off:
            notes.append("✂️ The answer was cut off: the model reached its length limit.")
        if outcome.stopped:
            notes.append("⏹️ Stopped.")
        if outcome.interrupted:
            notes.append("⚠️ Interrupted by a Hypereal error; what arrived is shown above.")
        if outcome.charge is not None:
            notes.append(f"-# {outcome.charge.cost_line()}")
        return "\n".join(notes)

    async def _remember(self, request: ChatRequest, model: str, prompt: str, outcome: ChatOutcome) -> int | None:
        if not outcome.text:
            return None
        requester = request.requester
        self.prompt_log.debug(log, "chat prompt", prompt, guild=requester.guild_id, user=requester.user_id)
        self.prompt_log.debug(log, "chat answer", outcome.text, guild=requester.guild_id, model=model)
        asked = await self.conversations.add_turn(
            guild_id=requester.guild_id,
            channel_id=requester.channel_id,
            user_id=requester.user_id,
            role="user",
            content=prompt,
            parent_id=request.parent_turn,
        )
        return await self.conversations.add_turn(
            guild_id=requester.guild_id,
            channel_id=requester.channel_id,
            user_id=requester.user_id,
            role="assistant",
            content=outcome.text,
            parent_id=asked,
            model=model,
            message_ids=outcome.message_ids,
        )


class _PacedStatus:
    """The member as the paid flow sees it, with its status lines paid from the channel's write budget.

    "Queued (position k)" and "⏳ Generating" edit the answer's message like every part of a stream does:
    at 10 concurrent streams in one channel, an unpaced status edit was the write that drew Discord's 429.
    The status line is for a model slow to start: once its words have arrived and only wait for the
    channel's budget, the line is skipped, since it would spend that budget before the words.
    """

    def __init__(
        self, member: MemberPort, pacers: PacerRegistry, channel_id: int, *, started: Callable[[], bool]
    ) -> None:
        self.member = member
        self.pacers = pacers
        self.channel_id = channel_id
        self.started = started

    async def confirm(self, what: str, quote: Quote) -> bool:
        """Asked ephemerally, before anything streams: not a write of the channel."""
        return await self.member.confirm(what, quote)

    async def queued(self, position: int, eta: float, quote: Quote) -> None:
        await self.pacers.for_channel(self.channel_id).acquire()
        await self.member.queued(position, eta, quote)

    async def working(self, model: str, quote: Quote, since: int) -> None:
        if self.started():
            return
        await self.pacers.for_channel(self.channel_id).acquire()
        if not self.started():
            await self.member.working(model, quote, since)


class _AnswerWriter:
    """Keeps the answer's messages in step with the text so far, through the channel's pacer."""

    def __init__(self, surface: AnswerSurface, pacers: PacerRegistry, channel_id: int, *, header: str = "") -> None:
        self.surface = surface
        self.pacer = pacers.for_channel(channel_id)
        # The header goes on the first message only; every part leaves room for it (simpler than one shorter part).
        self.header = f"{header}\n" if header else ""
        self.layout = AnswerLayout(DISCORD_LIMIT - FOOTER_ROOM - len(self.header))
        self.message_ids: list[int] = []
        self._current: PacedMessage | None = None
        self._committed = 0  # parts whose message has its final content

    async def _open_first(self, content: str) -> None:
        await self.pacer.acquire()
        self.message_ids.append(await self.surface.show_first(self.header + content))
        self._current = self._paced(self.message_ids[-1], content, prefix=self.header)

    def _paced(self, message_id: int, shown: str, *, prefix: str = "") -> PacedMessage:
        async def send(content: str) -> None:
            await self.surface.edit(message_id, prefix + content)

        return self.pacer.message(send, shown=shown)

    async def update(self, text: str) -> None:
        """The answer grew: commit full parts, show the growing one."""
        parts = self.layout.feed(text)
        if self._current is None:
            await self._open_first(parts[0].render(cursor=len(parts) == 1))
        await self._advance(parts, final=False)

    async def _advance(self, parts: list[Part], *, final: bool) -> None:
        assert self._current is not None
        while self._committed < len(parts) - 1:
            await _finish_quietly(self._current, parts[self._committed].render())
            self._committed += 1
            await self.pacer.acquire()
            last = self._committed == len(parts) - 1
            first_view = parts[self._committed].render(cursor=not (final and last))
            message_id = await self.surface.continue_in_new_message(first_view, reply_to=self.message_ids[-1])
            self.message_ids.append(message_id)
            self._current = self._paced(message_id, first_view)
        if not final:
            self._current.show(parts[-1].render(cursor=True))

    async def finish(self, text: str, footer: str) -> list[int]:
        """Send every part's final content (the last one with the footer); returns the message ids."""
        parts = self.layout.feed(text)
        if self._current is None:
            # Nothing streamed (empty answer or stopped at once): one message with whatever there is.
            body = parts[0].render() or "*(no answer)*"
            await self._open_first(_join(body, footer))
            assert self._current is not None
            await self._current.finish(_join(body, footer))
            return self.message_ids
        await self._advance(parts, final=True)
        await _finish_quietly(self._current, _join(parts[-1].render() or "*(no answer)*", footer))
        return self.message_ids


async def _finish_quietly(message: PacedMessage, content: str) -> None:
    """Send a message's final content; a message that vanished (deleted by a moderator) is not fatal."""
    try:
        await message.finish(content)
    except Exception as exc:
        log.warning("could not send the final content of an answer part: %s", type(exc).__name__)


def _join(body: str, footer: str) -> str:
    return f"{body}\n{footer}" if footer else body
