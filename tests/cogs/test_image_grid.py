"""/image count:N > 1 end to end: one grid picture, U<k> / V<k> buttons, the per-image menu, after a restart too."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from PIL import Image

from bot import grid
from bot.images import Generation
from bot.sandbox import SandboxProvider
from tests.cogs.results import closed_reservations, image_result
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, MessageRecord

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

SANDBOX_SIDE = 256  # the sandbox's square images (bot/sandbox/media.py)


async def _grid(bot: RunningBot, count: int = 4, **options: object) -> tuple[MessageRecord, Generation]:
    fake = bot.fake
    message = await image_result(fake, await fake.invoke("image", prompt="a lighthouse", count=count, **options))
    generation_id = message.custom_ids()[0].split(":")[2]
    await closed_reservations(bot)
    for _ in range(100):  # the message and its attachments are noted right after the charge
        generation = await bot.services.images.generation(generation_id)
        assert generation is not None
        if generation.message_id is not None:
            break
        await asyncio.sleep(0.02)
    assert generation.message_id == message.id
    return message, generation


def _rows(message: MessageRecord) -> list[list[str]]:
    return [[c.get("label") or c.get("placeholder") for c in row["components"]] for row in message.components]


def _make_distinct(sandbox: SandboxProvider, url: str, colour: tuple[int, int, int]) -> bytes:
    """Give one sandbox output its own pixels (the sandbox draws the same picture for the same prompt)."""
    out = io.BytesIO()
    Image.new("RGB", (40, 30), colour).save(out, format="PNG")
    sandbox.files[url.rsplit("/", 1)[1]] = (out.getvalue(), "image/png")
    return out.getvalue()


async def test_count_4_posts_one_grid_png_with_per_image_buttons(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message, generation = await _grid(running_bot)
    (png,) = message.latest_files
    assert png.filename == "grid.png"
    image = Image.open(io.BytesIO(png.data))
    assert image.format == "PNG"
    side = 2 * SANDBOX_SIDE + 3 * grid.GAP
    assert image.size == (side, side)  # 2×2
    (embed,) = message.embeds
    assert embed["image"]["url"] == "attachment://grid.png"
    assert embed["title"] == "🎨 a lighthouse"
    assert embed["footer"]["text"] == "nano-banana-t2i · 16 credits · 984 left"  # the same receipt
    assert message.content == f"-# <@{fake.MEMBER.id}> asked: “a lighthouse”"  # the same question line
    assert _rows(message) == [
        ["U1", "U2", "U3", "U4", "Reroll"],
        ["V1", "V2", "V3", "V4"],
        ["Animate, edit or turn one image into 3D…"],
    ]
    gid = generation.id
    assert message.custom_ids() == [
        *(f"gen:u:{gid}:{n}" for n in range(1, 5)),
        f"gen:reroll:{gid}",
        *(f"gen:v:{gid}:{n}" for n in range(1, 5)),
        f"gen:pick:{gid}",
    ]
    menu = message.components[2]["components"][0]
    assert [o["value"] for o in menu["options"]][:3] == ["animate:1", "edit:1", "model3d:1"]
    assert len(menu["options"]) == 12
    assert menu["options"][0]["label"] == "Animate image 1 (42 credits per 5 s)"
    assert len(generation.output_urls) == 4
    assert generation.attachment_urls == []  # the message shows the grid, not the originals
    assert await closed_reservations(running_bot) == [("settled", 16)]


@pytest.mark.parametrize("count", [2, 3])
async def test_two_or_three_images_make_one_row(running_bot: RunningBot, count: int) -> None:
    message, _generation = await _grid(running_bot, count=count)
    image = Image.open(io.BytesIO(message.latest_files[0].data))
    assert image.size == (count * SANDBOX_SIDE + (count + 1) * grid.GAP, SANDBOX_SIDE + 2 * grid.GAP)
    rows = _rows(message)
    assert rows[0] == [*(f"U{n}" for n in range(1, count + 1)), "Reroll"]
    assert rows[1] == [f"V{n}" for n in range(1, count + 1)]
    assert len(message.components[2]["components"][0]["options"]) == 3 * count


async def test_u3_posts_image_3_full_size_and_charges_nothing(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    message, generation = await _grid(running_bot)
    third = _make_distinct(sandbox, generation.output_urls[2], (200, 10, 10))
    posted = await image_result(fake, await fake.click(message, f"gen:u:{generation.id}:3"))
    assert posted.id != message.id
    assert not posted.ephemeral
    (original,) = posted.latest_files
    assert original.data == third
    (embed,) = posted.embeds
    assert embed["image"]["url"] == "attachment://image-3.png"
    assert embed["footer"]["text"] == "Image 3 of 4 · nano-banana-t2i · no charge (paid with the grid)"
    assert posted.content == f"-# <@{fake.MEMBER.id}> asked: “a lighthouse”"
    # Under it: that image's own actions.
    assert posted.custom_ids() == [f"gen:{a}:{generation.id}:3" for a in ("v", "edit", "animate", "model3d")]
    assert await closed_reservations(running_bot) == [("settled", 16)]
    assert len([r for r in sandbox.requests if r.path == "/v1/images/generate"]) == 4


@pytest.mark.parametrize(("model", "reference"), [("nano-banana-t2i", False), ("gpt-image-2", True)])
async def test_v2_calls_hypereal_with_image_2s_prompt_and_model(
    running_bot: RunningBot, model: str, reference: bool
) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    message, generation = await _grid(running_bot, count=2, model=model)
    sandbox.requests.clear()
    variation = await image_result(fake, await fake.click(message, f"gen:v:{generation.id}:2"))
    (sent,) = [r.json for r in sandbox.requests if r.path == "/v1/images/generate"]
    assert sent["prompt"] == "a lighthouse"
    assert sent["model"] == model
    if reference:  # a model that takes reference images is given image 2 itself
        assert sent["reference_images"] == [generation.output_urls[1]]
    else:
        assert "reference_images" not in sent
    # A normal image result: one image, the single-image buttons, its own receipt.
    assert [f.filename for f in variation.latest_files] == ["image-1.png"]
    assert [cid.split(":")[1] for cid in variation.custom_ids()] == ["reroll", "edit", "animate", "model3d"]
    assert variation.embeds[0]["title"] == "🎨 a lighthouse"
    assert f"{model} · " in variation.embeds[0]["footer"]["text"]
    assert [state for state, _ in await closed_reservations(running_bot)] == ["settled", "settled"]


async def test_a_variation_over_the_threshold_asks_first(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message, generation = await _grid(running_bot)
    await fake.response(await fake.invoke("quota confirm", user=fake.ADMIN, credits=1))
    ask = await fake.response(await fake.click(message, f"gen:v:{generation.id}:4"))
    assert ask.ephemeral
    assert ask.content == "A variation of image 4 with nano-banana-t2i costs **4 credits**. Go ahead?"
    _confirm, cancel = ask.custom_ids()
    await fake.click(ask, cancel)
    await fake.wait_for(lambda: "Cancelled" in ask.content)
    assert await closed_reservations(running_bot) == [("settled", 16)]


async def test_the_menu_animates_and_makes_3d_from_the_chosen_image(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    message, generation = await _grid(running_bot)
    pick = f"gen:pick:{generation.id}"
    status = await fake.response(await fake.select(message, pick, ["animate:3"]))
    assert status.content.startswith("⏳ Generating · kling-3-0-std-i2v · 42 credits")
    video = await fake.wait_for(
        lambda: next((r.json for r in sandbox.requests if r.path == "/v1/videos/generate"), None)
    )
    assert video["input"]["image"] == generation.output_urls[2]
    status = await fake.response(await fake.select(message, pick, ["model3d:2"]))
    assert status.content.startswith("⏳ Generating · hunyuan3d-v2-base")
    model3d = await fake.wait_for(
        lambda: next((r.json for r in sandbox.requests if r.path == "/api/media/generate"), None)
    )
    assert model3d["input"]["image"] == generation.output_urls[1]
    # Edit opens the prompt modal for that image.
    opened = await fake.select(message, pick, ["edit:4"])
    await fake.wait_for(lambda: 9 in opened.callback_types)
    # Wait for both jobs to be delivered before the ledger check at teardown.
    await fake.wait_for(lambda: len([m for m in fake.messages() if m.latest_files]) >= 3, timeout=20)


async def test_a_forged_menu_value_or_image_number_is_refused(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message, generation = await _grid(running_bot, count=2)
    forged = await fake.response(await fake.select(message, f"gen:pick:{generation.id}", ["reroll:1"]))
    assert forged.ephemeral
    assert "Pick one of the menu's entries." in forged.content
    missing = await fake.response(await fake.select(message, f"gen:pick:{generation.id}", ["animate:4"]))
    assert missing.ephemeral
    assert "This result has no image 4." in missing.content
    assert await closed_reservations(running_bot) == [("settled", 8)]


async def test_only_the_requester_may_press_grid_buttons(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message, generation = await _grid(running_bot, count=2)
    for custom_id in (f"gen:u:{generation.id}:1", f"gen:v:{generation.id}:1"):
        refusal = await fake.response(await fake.click(message, custom_id, user=fake.OTHER_MEMBER))
        assert refusal.ephemeral
        assert "These buttons belong to" in refusal.content
    refusal = await fake.response(await fake.select(message, f"gen:pick:{generation.id}", ["animate:1"],
                                                    user=fake.OTHER_MEMBER))  # fmt: skip
    assert "These buttons belong to" in refusal.content
    assert await closed_reservations(running_bot) == [("settled", 8)]


async def test_a_failed_call_leaves_a_smaller_grid_and_is_not_charged(running_bot: RunningBot) -> None:
    running_bot.sandbox.faults.server_errors = 1
    message, generation = await _grid(running_bot)
    image = Image.open(io.BytesIO(message.latest_files[0].data))
    assert image.size == (3 * SANDBOX_SIDE + 4 * grid.GAP, SANDBOX_SIDE + 2 * grid.GAP)  # 1×3
    assert _rows(message)[0] == ["U1", "U2", "U3", "Reroll"]
    assert (
        message.embeds[0]["footer"]["text"]
        == "nano-banana-t2i · 12 credits · 988 left · 1 of 4 failed and were not charged"
    )
    assert len(generation.output_urls) == 3


async def test_u1_still_works_after_a_restart(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path, e2e_backend: dict[str, object]
) -> None:
    settings = bot_settings(fake_discord, sandbox, tmp_path, **e2e_backend)
    async with run_bot(settings, fake_discord, sandbox) as first:
        message, generation = await _grid(first)
    first_image = _make_distinct(sandbox, generation.output_urls[0], (10, 200, 10))
    async with run_bot(settings, fake_discord, sandbox) as restarted:
        posted = await image_result(fake_discord, await fake_discord.click(message, f"gen:u:{generation.id}:1"))
        assert posted.latest_files[0].data == first_image
        assert posted.embeds[0]["footer"]["text"].startswith("Image 1 of 4")
        assert await closed_reservations(restarted) == [("settled", 16)]


async def test_the_grid_buttons_fit_discords_limits() -> None:
    """5 rows of 5 at most, custom_ids of at most 100 characters, menu entries of at most 100 characters."""
    from bot.catalog import Catalog
    from cogs.images import grid_buttons

    view = grid_buttons(Catalog.load(), "0123456789abcdef", 4)
    rows = view.to_components()
    assert len(rows) <= 5
    assert all(len(row["components"]) <= 5 for row in rows)
    for row in rows:
        for component in row["components"]:
            assert len(component["custom_id"]) <= 100
            for option in component.get("options", []):
                assert len(option["label"]) <= 100


async def test_after_forget_me_u_still_posts_but_v_explains(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message, generation = await _grid(running_bot, count=2)
    await running_bot.services.db.execute("UPDATE generations SET prompt = '' WHERE id = ?", (generation.id,))
    refusal = await fake.response(await fake.click(message, f"gen:v:{generation.id}:1"))
    assert refusal.ephemeral
    assert "prompt was deleted" in refusal.content
    posted = await image_result(fake, await fake.click(message, f"gen:u:{generation.id}:2"))
    assert posted.latest_files
    assert posted.content == f"-# <@{fake.MEMBER.id}>'s image 2"  # no prompt left to quote
    assert await closed_reservations(running_bot) == [("settled", 8)]


async def test_an_original_hypereal_no_longer_serves_says_what_to_do(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    message, generation = await _grid(running_bot, count=2)
    del sandbox.files[generation.output_urls[0].rsplit("/", 1)[1]]
    ix = await fake.click(message, f"gen:u:{generation.id}:1")
    (error,) = await fake.wait_for(lambda: [m for m in fake.messages() if m.ephemeral and m.content.startswith("❌")])
    assert "HTTP 404" in error.content
    assert "Image 1 cannot be posted full size; V1 makes a new variation of it." in error.content
    original = fake.original(ix)
    assert original is not None
    assert original.deleted  # the public "thinking…" went away
    assert await closed_reservations(running_bot) == [("settled", 8)]


async def test_images_that_make_no_grid_are_stacked_with_the_same_buttons(
    running_bot: RunningBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A grid too heavy even when shrunk (here: a tiny limit) falls back to one embed per image."""
    monkeypatch.setattr("bot.images.GRID_MAX_BYTES", 100)
    message, generation = await _grid(running_bot, count=3)
    assert [f.filename for f in message.latest_files] == ["image-1.png", "image-2.png", "image-3.png"]
    assert _rows(message)[0] == ["U1", "U2", "U3", "Reroll"]
    assert len(generation.attachment_urls) == 3  # Discord's copies, image by image
    assert message.embeds[-1]["footer"]["text"] == "nano-banana-t2i · 12 credits · 988 left"
