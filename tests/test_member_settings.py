"""Per-member settings: stored per member per server on both backends, checked, and applied option > member."""

from __future__ import annotations

import pytest

from bot.catalog import Catalog
from bot.db import Database
from bot.errors import InvalidInput, ModelUnavailable
from bot.member_settings import MemberSettings, MemberSettingsRepo

GUILD, OTHER_GUILD, USER, OTHER_USER = 1, 2, 10, 11


@pytest.fixture
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture
def repo(migrated: Database, catalog: Catalog) -> MemberSettingsRepo:
    return MemberSettingsRepo(migrated, catalog, clock=lambda: 1000.0)


async def test_settings_are_per_member_per_server(repo: MemberSettingsRepo) -> None:
    saved = await repo.update(GUILD, USER, aspect_ratio="16:9", private_answers=True)
    assert saved == MemberSettings(aspect_ratio="16:9", private_answers=True)
    assert await repo.get(GUILD, OTHER_USER) == MemberSettings()
    assert await repo.get(OTHER_GUILD, USER) == MemberSettings()
    # A second change keeps the first (only the changed columns are written).
    again = await repo.update(GUILD, USER, chat_model="GPT-5")
    assert again == MemberSettings(aspect_ratio="16:9", chat_model="gpt-5", private_answers=True)
    assert (await repo.update(GUILD, USER, aspect_ratio=None)).aspect_ratio is None


async def test_reset_forgets_everything_of_that_member_only(repo: MemberSettingsRepo) -> None:
    await repo.update(GUILD, USER, image_model="flux-1-dev")
    await repo.update(GUILD, OTHER_USER, image_model="gpt-4o-image")
    assert await repo.reset(GUILD, USER) is True
    assert await repo.get(GUILD, USER) == MemberSettings()
    assert await repo.reset(GUILD, USER) is False
    assert (await repo.get(GUILD, OTHER_USER)).image_model == "gpt-4o-image"


async def test_bad_values_are_refused_with_what_fits(repo: MemberSettingsRepo) -> None:
    with pytest.raises(ModelUnavailable):
        await repo.update(GUILD, USER, image_model="gpt-5")  # a chat model is not an image model
    with pytest.raises(InvalidInput, match="aspect ratio"):
        await repo.update(GUILD, USER, aspect_ratio="7:3")
    with pytest.raises(InvalidInput, match="mp3 or wav"):
        await repo.update(GUILD, USER, tts_format="flac")
    assert await repo.get(GUILD, USER) == MemberSettings()


def test_option_beats_member_and_unfit_member_values_are_skipped(repo: MemberSettingsRepo) -> None:
    member = MemberSettings(image_model="nano-banana-t2i", aspect_ratio="16:9")
    assert repo.image_choice(member, model=None, aspect_ratio=None).aspect_ratio == "16:9"
    assert repo.image_choice(member, model=None, aspect_ratio="1:1").aspect_ratio == "1:1"
    chosen = repo.image_choice(member, model="gpt-image-2", aspect_ratio=None)
    assert (chosen.model, chosen.aspect_ratio) == ("gpt-image-2", None)  # that model has no 16:9 size
    assert repo.image_choice(member, model="flux-1-dev", aspect_ratio=None).aspect_ratio is None  # takes none
    assert repo.image_choice(MemberSettings(image_model="removed-model"), model=None, aspect_ratio=None).model is None


def test_chat_tts_and_private_precedence(repo: MemberSettingsRepo) -> None:
    member = MemberSettings(chat_model="gpt-5", tts_model="minimax-speech-02", tts_format="wav", private_answers=True)
    assert repo.chat_model(member, None) == "gpt-5"
    assert repo.chat_model(member, "glm-5") == "glm-5"
    assert repo.chat_model(MemberSettings(), None) is None  # the server's default, then the bot's
    assert repo.tts_choice(member, model=None, format=None) == ("minimax-speech-02", "wav")
    assert repo.tts_choice(member, model="audio-tts", format="mp3") == ("audio-tts", "mp3")
    assert repo.private(member, None) is True
    assert repo.private(member, False) is False
    assert repo.private(MemberSettings(), None) is False
