"""What /models shows, page by page."""

from __future__ import annotations

import pytest

from bot.catalog import Catalog
from bot.errors import InvalidInput
from bot.model_list import LINES_PER_PAGE, model_list_pages, resolve_category


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


def test_video_pages_list_every_video_model_with_its_price(catalog: Catalog) -> None:
    pages = model_list_pages(catalog, "video")
    text = "\n".join(line for page in pages for line in page.lines)
    for spec in catalog.by_category("video"):
        assert f"`{spec.id}`" in text
    assert "`kling-3-0-std-i2v` — 42 credits per 5 s · durations 3, 5, 10, 15 s · async" in text
    assert "`seedance-2-0-t2v` — 100 credits per 5 s" in text
    assert "nano-banana" not in text
    assert all(page.title == "Models — Video" for page in pages)


def test_everything_is_paged_and_grouped(catalog: Catalog) -> None:
    pages = model_list_pages(catalog, None)
    assert len(pages) > 1
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))
    assert all(p.total == len(pages) for p in pages)
    assert all(len(p.lines) <= LINES_PER_PAGE for p in pages)
    assert all(len("\n".join(p.lines)) <= 4096 for p in pages)
    headers = [line for p in pages for line in p.lines if line.startswith("**")]
    assert headers[0] == "**Chat**"
    assert "**3D models**" in headers


def test_audio_groups_all_audio_kinds(catalog: Catalog) -> None:
    text = "\n".join(line for page in model_list_pages(catalog, "audio") for line in page.lines)
    assert "`audio-tts`" in text
    assert "`audio-clone` — 107 credits" in text
    assert "`audio-asr`" in text


@pytest.mark.parametrize(("typed", "key"), [("Video", "video"), ("3d", "model3d"), ("audio_tts", "audio"), ("", None)])
def test_resolve_category(typed: str, key: str | None) -> None:
    assert resolve_category(typed) == key


def test_unknown_category_lists_the_choices() -> None:
    with pytest.raises(InvalidInput, match="Pick one of: chat, image, image_edit, video, audio, model3d"):
        resolve_category("holograms")


def test_chat_models_at_one_price_are_one_line(catalog: Catalog) -> None:
    (page,) = model_list_pages(catalog, "chat")
    chat = catalog.by_category("chat")
    (line,) = [line for line in page.lines if line.startswith("• ")]
    assert line.startswith(f"• {len(chat)} models at ~2 credits per message")
    assert all(f"`{spec.id}`" in line for spec in chat)


def test_a_video_model_shows_its_durations_and_sizes(catalog: Catalog) -> None:
    lines = [line for page in model_list_pages(catalog, "video") for line in page.lines]
    veo = next(line for line in lines if "`veo-3-1-i2v`" in line)
    assert "durations 4, 6, 8 s" in veo
    assert "aspect ratios 16:9, 9:16" in veo
    assert "resolutions 1080p" in veo
