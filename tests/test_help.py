"""What /help shows to whom, and the price ranges it quotes (pure: no Discord)."""

from __future__ import annotations

import pytest

from bot.catalog import Catalog
from bot.help import (
    ADMIN_SECTION,
    OPERATOR_SECTION,
    CommandInfo,
    HelpSection,
    command_line,
    help_sections,
    price_range,
    render_help,
    render_help_pages,
)

COMMANDS = [
    CommandInfo("chat", "Ask a chat model"),
    CommandInfo("image", "Generate images from a prompt"),
    CommandInfo("credits", "Your credits"),
    CommandInfo("quota set", "Set a cap", admin=True),
    CommandInfo("budget set", "Give a server its allowance", admin=True),
    CommandInfo("Edit image", "", menu=True),
    CommandInfo("newthing", "Something another cog added"),
]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def _titles(sections: list) -> list[str]:
    return [s.title for s in sections]


def test_a_member_sees_member_sections_only(catalog: Catalog) -> None:
    sections = help_sections(COMMANDS, catalog, is_admin=False, is_operator=False)
    assert _titles(sections) == ["Chat", "Images", "Your account", "More"]
    text = render_help(sections)
    assert "/quota" not in text
    assert "/budget" not in text


def test_an_admin_who_is_not_the_operator_sees_admin_but_not_operator(catalog: Catalog) -> None:
    sections = help_sections(COMMANDS, catalog, is_admin=True, is_operator=False)
    assert ADMIN_SECTION in _titles(sections)
    assert OPERATOR_SECTION not in _titles(sections)
    admin = next(s for s in sections if s.title == ADMIN_SECTION)
    assert admin.lines == ("• `/quota set` — Set a cap",)


def test_the_operator_sees_budget_in_its_own_section(catalog: Catalog) -> None:
    sections = help_sections(COMMANDS, catalog, is_admin=True, is_operator=True)
    operator = next(s for s in sections if s.title == OPERATOR_SECTION)
    assert operator.lines == ("• `/budget set` — Give a server its allowance",)


def test_price_ranges_come_from_the_catalog(catalog: Catalog) -> None:
    image_prices = [spec.price.credits for spec in catalog.by_category("image")]
    assert price_range(catalog, ["image"]) == f"~{min(image_prices)}–{max(image_prices)} credits"
    assert price_range(catalog, ["audio_asr"]) == "1 credit"
    assert price_range(catalog, ["chat"]) == "~2 credits per message"
    assert price_range(catalog, ["nothing"]) is None


def test_one_line_each_with_the_price_and_menus_described(catalog: Catalog) -> None:
    assert command_line(CommandInfo("image", "Generate images."), catalog) == (
        f"• `/image` — Generate images · {price_range(catalog, ['image'])}"
    )
    menu = command_line(CommandInfo("Edit image", "", menu=True), catalog)
    assert menu.startswith("• Apps ▸ **Edit image** (message menu) — Edit a message's image")
    assert "\n" not in menu


def test_help_pages_fit_discords_embed_limit_and_keep_sections_whole() -> None:
    sections = [HelpSection(f"S{n}", tuple(f"• `/c{n}-{m}` — {'x' * 80}" for m in range(12))) for n in range(8)]
    pages = render_help_pages(sections, limit=2500)
    assert len(pages) > 1
    assert all(len(page) <= 2500 for page in pages)
    assert "\n\n".join(pages) == render_help(sections)  # nothing lost or reordered
    assert all(page.startswith("**S") for page in pages)  # every page starts with a section title
