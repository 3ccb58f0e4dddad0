"""Per-member defaults: what a member gets when they leave a command's option out (``/settings``).

Stored per member per server in ``member_settings``. Precedence is always: the command's option, then the
member's setting, then the server's default, then the bot's. A member setting that no longer fits (a model
removed from the catalog, an aspect ratio the chosen model does not take) is skipped, never an error: the
member did not type it in this command.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from bot.catalog import Catalog
from bot.db import Database
from bot.errors import InvalidInput
from bot.images import SIZE_FOR_RATIO

TTS_FORMATS: tuple[str, ...] = ("mp3", "wav")  # the /tts format choices


@dataclass(frozen=True)
class MemberSettings:
    """One member's defaults in one server; None = no preference."""

    image_model: str | None = None
    aspect_ratio: str | None = None
    chat_model: str | None = None
    tts_model: str | None = None
    tts_format: str | None = None
    private_answers: bool | None = None

    @property
    def empty(self) -> bool:
        """True when the member has set nothing."""
        return all(getattr(self, f.name) is None for f in fields(self))


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(MemberSettings))
# Which catalog categories a model setting must name.
MODEL_CATEGORIES: dict[str, str] = {"image_model": "image", "chat_model": "chat", "tts_model": "audio_tts"}


@dataclass(frozen=True)
class ImageChoice:
    """The model and aspect ratio one /image uses after the member's defaults are applied."""

    model: str | None
    aspect_ratio: str | None


class MemberSettingsRepo:
    """Reads, checks and writes ``member_settings``."""

    def __init__(self, db: Database, catalog: Catalog, clock: Callable[[], float]) -> None:
        self.db = db
        self.catalog = catalog
        self.clock = clock

    async def get(self, guild_id: int, user_id: int) -> MemberSettings:
        """The member's settings in this server (all None when they set nothing)."""
        row = await self.db.fetch_one(
            "SELECT * FROM member_settings WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        )
        if row is None:
            return MemberSettings()
        values: dict[str, Any] = {name: row[name] for name in SETTING_NAMES}
        if values["private_answers"] is not None:
            values["private_answers"] = bool(values["private_answers"])
        return MemberSettings(**values)

    def check(self, name: str, value: Any) -> Any:
        """``value`` as stored for setting ``name`` (None clears it), or ``InvalidInput`` saying what fits."""
        if name not in SETTING_NAMES:
            raise ValueError(f"unknown member setting: {name}")
        if value is None:
            return None
        if name in MODEL_CATEGORIES:
            return self.catalog.require(str(value), MODEL_CATEGORIES[name]).id
        if name == "tts_format":
            if str(value).lower() not in TTS_FORMATS:
                raise InvalidInput(f"Speech comes as {' or '.join(TTS_FORMATS)}; pick one of those.")
            return str(value).lower()
        if name == "aspect_ratio":
            if str(value) not in self.aspect_ratios():
                raise InvalidInput(f"Pick an aspect ratio from the list: {', '.join(self.aspect_ratios())}.")
            return str(value)
        return bool(value)

    async def update(self, guild_id: int, user_id: int, **changes: Any) -> MemberSettings:
        """Change some settings (None clears one) in one upsert of only those columns; returns the new settings."""
        checked = {name: self.check(name, value) for name, value in changes.items()}
        if not checked:
            return await self.get(guild_id, user_id)
        row = {name: _column(checked.get(name)) for name in SETTING_NAMES}
        # Column names come from the dataclass (never from input); values are bound parameters.
        columns = ", ".join(SETTING_NAMES)
        marks = ", ".join("?" for _ in SETTING_NAMES)
        updates = ", ".join(f"{name} = excluded.{name}" for name in checked)
        await self.db.execute(
            f"INSERT INTO member_settings (guild_id, user_id, {columns}, updated_at) VALUES (?, ?, {marks}, ?)"
            f" ON CONFLICT (guild_id, user_id) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
            (guild_id, user_id, *row.values(), self.clock()),
        )
        return await self.get(guild_id, user_id)

    async def reset(self, guild_id: int, user_id: int) -> bool:
        """Forget every setting of the member in this server; True when there was something to forget."""
        had = not (await self.get(guild_id, user_id)).empty
        await self.db.execute("DELETE FROM member_settings WHERE guild_id = ? AND user_id = ?", (guild_id, user_id))
        return had

    # ── applying them (option > member > server > global) ────────────────────

    async def image_options(
        self, guild_id: int, user_id: int, *, model: str | None, aspect_ratio: str | None
    ) -> ImageChoice:
        """/image's model and aspect ratio for this member (see :meth:`image_choice`)."""
        return self.image_choice(await self.get(guild_id, user_id), model=model, aspect_ratio=aspect_ratio)

    async def chat_options(
        self, guild_id: int, user_id: int, *, model: str | None, private: bool | None
    ) -> tuple[str | None, bool]:
        """/chat's model (None = the server's default) and whether the answer is private, for this member."""
        member = await self.get(guild_id, user_id)
        return self.chat_model(member, model), self.private(member, private)

    async def tts_options(
        self, guild_id: int, user_id: int, *, model: str | None, format: str | None
    ) -> tuple[str | None, str | None]:
        """/tts's model and format for this member (see :meth:`tts_choice`)."""
        return self.tts_choice(await self.get(guild_id, user_id), model=model, format=format)

    def aspect_ratios(self) -> list[str]:
        """Every aspect ratio some image model takes, in catalog order (the choices /settings offers)."""
        ratios: dict[str, None] = {}
        for spec in self.catalog.by_category("image"):
            for ratio in (*spec.allowed("aspect_ratio"), *SIZE_FOR_RATIO.get(spec.id, {})):
                ratios.setdefault(str(ratio), None)
        return list(ratios)

    def image_choice(self, member: MemberSettings, *, model: str | None, aspect_ratio: str | None) -> ImageChoice:
        """/image's model and aspect ratio: the options as typed, else the member's when the model takes them."""
        chosen = model or _known(self.catalog, member.image_model, "image")
        if aspect_ratio is None and member.aspect_ratio and self._takes_ratio(chosen, member.aspect_ratio):
            aspect_ratio = member.aspect_ratio
        return ImageChoice(chosen, aspect_ratio)

    def chat_model(self, member: MemberSettings, option: str | None) -> str | None:
        """The option, else the member's chat model; None leaves it to the server's default, then the bot's."""
        return option or _known(self.catalog, member.chat_model, "chat")

    def tts_choice(
        self, member: MemberSettings, *, model: str | None, format: str | None
    ) -> tuple[str | None, str | None]:
        """/tts's model and format: the options, else the member's (a format only when the model takes one)."""
        chosen = model or _known(self.catalog, member.tts_model, "audio_tts")
        spec = self.catalog.get(chosen) if chosen else self.catalog.default("audio_tts")
        if format is None and member.tts_format and spec is not None and "format" in spec.inputs:
            allowed = [str(v) for v in spec.allowed("format")]
            format = member.tts_format if not allowed or member.tts_format in allowed else None
        return chosen, format

    @staticmethod
    def private(member: MemberSettings, option: bool | None) -> bool:
        """Whether an answer is private: the option when given, else the member's default, else public."""
        return option if option is not None else bool(member.private_answers)

    def _takes_ratio(self, model: str | None, ratio: str) -> bool:
        spec = self.catalog.get(model) if model else self.catalog.default("image")
        if spec is None:
            return False
        if spec.id in SIZE_FOR_RATIO:
            return ratio in SIZE_FOR_RATIO[spec.id]
        if "aspect_ratio" not in spec.inputs:
            return False
        allowed = [str(v) for v in spec.allowed("aspect_ratio")]
        return not allowed or ratio in allowed


def _known(catalog: Catalog, model: str | None, category: str) -> str | None:
    """A stored model id if the catalog still has it in ``category`` (an operator may have removed it)."""
    if model is None:
        return None
    spec = catalog.get(model)
    return spec.id if spec is not None and spec.category == category else None


def _column(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def describe(member: MemberSettings, catalog: Catalog, *, server_chat_model: str | None, bot_chat_model: str) -> str:
    """What /settings shows: each setting, and where its value comes from when the member set nothing."""
    image_default = catalog.default("image").id
    tts_default = catalog.default("audio_tts").id

    def shown(value: str | None, fallback: str) -> str:
        return f"**{value}** (yours)" if value else f"{fallback} (default)"

    chat_fallback = f"`{server_chat_model}` — the server's" if server_chat_model else f"`{bot_chat_model}` — the bot's"
    lines = [
        f"Image model: {shown(member.image_model and f'`{member.image_model}`', f'`{image_default}`')}",
        f"Aspect ratio: {shown(member.aspect_ratio, 'the model’s own')}",
        f"Chat model: {shown(member.chat_model and f'`{member.chat_model}`', chat_fallback)}",
        f"Speech: {shown(member.tts_model and f'`{member.tts_model}`', f'`{tts_default}`')}"
        f" · format {shown(member.tts_format, 'the model’s own')}",
        "Answers: "
        + (
            "**private** (yours)"
            if member.private_answers
            else "public" + (" (yours)" if member.private_answers is False else " (default)")
        ),
    ]
    return "\n".join(lines)
