"""What ``/help`` shows: the commands the asking member can use, grouped by what they do, with price ranges.

The cog turns its command tree into :class:`CommandInfo` rows (name, description, whether Discord hides it
from members without Manage Server) and renders the sections this module builds; which sections a member
sees, and the credits each paid command costs, are decided here so they can be tested without Discord.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.catalog import Catalog, quote_of
from bot.wording import credits_text

# Sections in display order. Admin and operator sections are shown only to members who have those rights.
MEMBER_SECTIONS: tuple[str, ...] = ("Chat", "Images", "Video", "Audio", "3D", "Your account", "About the bot")
ADMIN_SECTION = "Server admin (Manage Server)"
OPERATOR_SECTION = "Bot operator (OWNER_IDS)"
OTHER_SECTION = "More"

# A command's first word → its section. Commands not listed land in "More" (or the admin section).
COMMAND_SECTIONS: dict[str, str] = {
    "chat": "Chat",
    "image": "Images",
    "edit": "Images",
    "Edit image": "Images",
    "video": "Video",
    "tts": "Audio",
    "voice-clone": "Audio",
    "transcribe": "Audio",
    "Transcribe": "Audio",
    "3d": "3D",
    "3d-multiview": "3D",
    "credits": "Your account",
    "jobs": "Your account",
    "settings": "Your account",
    "forget-me": "Your account",
    "models": "About the bot",
    "help": "About the bot",
    "about": "About the bot",
}
# Commands only the operator may run (Discord shows them to Manage Server too; /help does not).
OPERATOR_COMMANDS: frozenset[str] = frozenset({"budget"})
# A paid command's first word → the catalog categories its price range is taken from.
COMMAND_PRICES: dict[str, tuple[str, ...]] = {
    "chat": ("chat",),
    "image": ("image",),
    "edit": ("image_edit",),
    "Edit image": ("image_edit",),
    "video": ("video",),
    "tts": ("audio_tts",),
    "voice-clone": ("audio_clone",),
    "transcribe": ("audio_asr",),
    "Transcribe": ("audio_asr",),
    "3d": ("model3d",),
    "3d-multiview": ("model3d",),
}
# Context menus have no description in Discord: what /help says about them.
MENU_DESCRIPTIONS: dict[str, str] = {
    "Edit image": "Edit a message's image with a prompt",
    "Transcribe": "Transcribe a message's audio, video or voice message",
}


@dataclass(frozen=True)
class CommandInfo:
    """One command as the tree describes it."""

    name: str  # qualified name without the slash ("quota set"), or a context menu's label ("Edit image")
    description: str
    admin: bool = False  # hidden by Discord from members without Manage Server (default_permissions)
    menu: bool = False  # a message context menu (Apps ▸ name), not a slash command

    @property
    def root(self) -> str:
        """The first word of a slash command (its group), or a menu's whole label."""
        return self.name if self.menu else self.name.split()[0]


@dataclass(frozen=True)
class HelpSection:
    """A titled block of one-line command descriptions."""

    title: str
    lines: tuple[str, ...]


def price_range(catalog: Catalog, categories: Iterable[str]) -> str | None:
    """``1–10 credits``, ``~2–3 credits`` (some prices estimated) or ``42 credits``; None with no models."""
    quotes = [quote_of(spec) for spec in catalog.by_category(*categories)]
    if not quotes:
        return None
    low, high = min(q.credits for q in quotes), max(q.credits for q in quotes)
    mark = "" if all(q.exact for q in quotes) else "~"
    text = f"{mark}{credits_text(high)}" if low == high else f"{mark}{low}–{credits_text(high)}"
    # Chat grows with the conversation: say what the base price buys.
    return text + " per message" if any(spec.price.per_chars for spec in catalog.by_category(*categories)) else text


def command_line(command: CommandInfo, catalog: Catalog) -> str:
    """``• `/image` — Generate images from a prompt · 1–10 credits`` (menus read "Apps ▸ Edit image")."""
    label = f"Apps ▸ **{command.name}** (message menu)" if command.menu else f"`/{command.name}`"
    description = command.description or MENU_DESCRIPTIONS.get(command.name, "")
    text = f"• {label} — {description.rstrip('.')}" if description else f"• {label}"
    categories = COMMAND_PRICES.get(command.root)
    price = price_range(catalog, categories) if categories else None
    if price:
        text += f" · {price}"
    return text


def section_of(command: CommandInfo) -> str:
    """Which section a command belongs in (operator before admin: /budget is hidden only by Manage Server)."""
    if command.root in OPERATOR_COMMANDS:
        return OPERATOR_SECTION
    if command.admin:
        return ADMIN_SECTION
    return COMMAND_SECTIONS.get(command.root, OTHER_SECTION)


def help_sections(
    commands: Iterable[CommandInfo], catalog: Catalog, *, is_admin: bool, is_operator: bool
) -> list[HelpSection]:
    """The sections the member sees: member commands always; admin ones with Manage Server; operator ones for owners."""
    visible = {title: [] for title in (*MEMBER_SECTIONS, OTHER_SECTION, ADMIN_SECTION, OPERATOR_SECTION)}
    for command in sorted(commands, key=lambda c: (c.menu, c.name.lower())):
        section = section_of(command)
        if section == ADMIN_SECTION and not is_admin:
            continue
        if section == OPERATOR_SECTION and not is_operator:
            continue
        visible[section].append(command_line(command, catalog))
    return [HelpSection(title, tuple(lines)) for title, lines in visible.items() if lines]


def render_help(sections: Iterable[HelpSection]) -> str:
    """The sections as one embed description: a bold title, then its lines."""
    return "\n\n".join(f"**{s.title}**\n" + "\n".join(s.lines) for s in sections)


#: Discord's limit for one embed's description.
EMBED_DESCRIPTION_LIMIT = 4096


def render_help_pages(sections: Iterable[HelpSection], limit: int = EMBED_DESCRIPTION_LIMIT) -> list[str]:
    """The sections packed into as few embed descriptions as fit ``limit`` each (whole sections where they fit).

    With every admin and operator command listed the text outgrows one embed; a section never starts on one page
    and ends on another unless it is longer than a page itself.
    """
    pages: list[str] = []
    current = ""
    for section in sections:
        block = render_help([section])
        while len(block) > limit:  # one section longer than a page: cut it between lines
            cut = block.rfind("\n", 0, limit)
            head, block = block[:cut], block[cut + 1 :]
            if current:
                pages.append(current)
                current = ""
            pages.append(head)
        candidate = f"{current}\n\n{block}" if current else block
        if len(candidate) > limit:
            pages.append(current)
            current = block
        else:
            current = candidate
    if current:
        pages.append(current)
    return pages
