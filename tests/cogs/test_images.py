"""/image, /edit and result buttons end to end (fake Discord + sandbox)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from PIL import Image

from bot.logs import SecretScrubber
from bot.sandbox import SandboxProvider
from tests.cogs.results import closed_reservations, image_result
from tests.conftest import HYPEREAL_KEY, RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord, files

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

PNG = files.PNG


async def test_image_posts_a_png_with_the_cost_line(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await image_result(fake, await fake.invoke("image", prompt="a red fox", aspect_ratio="16:9"))
    assert not message.ephemeral
    (png,) = message.latest_files
    image = Image.open(io.BytesIO(png.data))
    assert image.format == "PNG"
    assert image.width > image.height
    embed = message.embeds[0]
    assert embed["title"] == "🎨 a red fox"
    assert embed["footer"]["text"] == "nano-banana-t2i · 4 credits · 996 left"
    assert embed["image"]["url"] == "attachment://image-1.png"
    assert [cid.split(":")[1] for cid in message.custom_ids()] == ["reroll", "edit", "animate", "model3d"]
    assert await closed_reservations(running_bot) == [("settled", 4)]
    # Onlookers see who asked what, in small text, and nobody is pinged.
    assert message.content == f"-# <@{fake.MEMBER.id}> asked: “a red fox”"
    assert message.current["allowed_mentions"] == {"parse": []}


async def test_count_runs_in_parallel_and_posts_one_grid(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await image_result(fake, await fake.invoke("image", prompt="cats", count=3))
    assert [f.filename for f in message.latest_files] == ["grid.png"]  # tests/cogs/test_image_grid.py has the rest
    assert message.embeds[-1]["footer"]["text"] == "nano-banana-t2i · 12 credits · 988 left"
    assert len([r for r in running_bot.sandbox.requests if r.path == "/v1/images/generate"]) == 3


async def test_edit_sends_the_attachment_url_first(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    source = fake.attachment("cat.png", PNG, "image/png")
    reference = fake.attachment("style.png", PNG, "image/png")
    message = await image_result(fake, await fake.invoke("edit", image=source, prompt="make it blue", image2=reference))
    sent = next(r.json for r in running_bot.sandbox.requests if r.path == "/v1/images/generate")
    assert sent["images"] == [source["url"], reference["url"]]
    assert sent["model"] == "nano-banana-edit"
    assert message.embeds[0]["title"] == "✏️ make it blue"


async def test_bad_input_is_refused_before_any_reservation(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    cases = [
        (dict(prompt="   "), "prompt is empty"),
        (dict(prompt="fox", model="no-such-model"), "not an image model"),
        (dict(prompt="fox", aspect_ratio="7:3"), "accepts aspect ratio"),
    ]
    for options, expected in cases:
        message = await fake.response(await fake.invoke("image", **options))
        assert message.ephemeral
        assert expected in message.content
    text = fake.attachment("notes.txt", b"hello", "text/plain")
    message = await fake.response(await fake.invoke("edit", image=text, prompt="x"))
    assert "is not an image" in message.content
    assert await closed_reservations(running_bot) == []
    assert running_bot.sandbox.requests == []


async def test_moderation_refusal_is_shown_verbatim_and_refunded(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    ix = await fake.invoke("image", prompt="something forbidden")
    message = await fake.wait_for(lambda: [m for m in fake.messages() if m.ephemeral and m.content.startswith("❌")])
    assert "Your request was rejected by the safety system." in message[0].content
    assert await closed_reservations(running_bot) == [("refunded", 0)]
    original = fake.original(ix)
    assert original is not None
    assert original.deleted  # the public "thinking…" message was removed


async def test_a_sandbox_failure_refunds_with_a_clear_message(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.server_errors = 1
    await fake.invoke("image", prompt="a fox")
    errors = await fake.wait_for(lambda: [m for m in fake.messages() if m.ephemeral and m.content.startswith("❌")])
    assert "Hypereal had a temporary problem. Nothing was charged" in errors[0].content
    assert await closed_reservations(running_bot) == [("refunded", 0)]
    assert await running_bot.services.ledger.check_invariants() == []


async def test_only_the_requester_may_reroll(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await image_result(fake, await fake.invoke("image", prompt="a fox"))
    reroll = message.custom_ids()[0]
    stranger = await fake.click(message, reroll, user=fake.OTHER_MEMBER)
    refusal = await fake.response(stranger)
    assert refusal.ephemeral
    assert "These buttons belong to" in refusal.content
    mine = await fake.click(message, reroll, user=fake.MEMBER)
    rerolled = await image_result(fake, mine)
    assert rerolled.id != message.id
    assert rerolled.embeds[0]["title"] == "🎨 a fox"
    assert await closed_reservations(running_bot) == [("settled", 4), ("settled", 4)]


async def test_animate_turns_the_image_into_a_video_job(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    message = await image_result(fake, await fake.invoke("image", prompt="a fox"))
    status = await fake.response(await fake.click(message, message.custom_ids()[2]))
    assert status.content.startswith("⏳ Generating · kling-3-0-std-i2v · 42 credits")
    video = await fake.wait_for(
        lambda: next((m for m in fake.messages() if m.id != message.id and m.latest_files), None)
    )
    assert video.latest_files[0].filename.endswith(".mp4")
    sent = next(r.json for r in running_bot.sandbox.requests if r.path == "/v1/videos/generate")
    # The image as Discord hosts it, or Hypereal's own output URL if clicked before the bot noted the former.
    assert sent["input"]["image"] in (message.current["attachments"][0]["url"], *running_bot.sandbox.output_urls())
    assert sent["model"] == "kling-3-0-std-i2v"


async def test_reroll_still_works_after_a_restart(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    settings = bot_settings(fake_discord, sandbox, tmp_path)
    async with run_bot(settings, fake_discord, sandbox):
        message = await image_result(fake_discord, await fake_discord.invoke("image", prompt="a fox"))
    async with run_bot(settings, fake_discord, sandbox) as restarted:
        rerolled = await image_result(fake_discord, await fake_discord.click(message, message.custom_ids()[0]))
        assert rerolled.embeds[0]["title"] == "🎨 a fox"
        assert await closed_reservations(restarted) == [("settled", 4), ("settled", 4)]


async def test_a_role_cap_refuses_with_the_reset_time(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(
        await fake.invoke("quota role-cap", user=fake.ADMIN, role=fake.ROLE_ID, category="image", cap=6)
    )
    await image_result(fake, await fake.invoke("image", prompt="first"))
    refusal = await fake.response(await fake.invoke("image", prompt="second"))
    assert refusal.ephemeral
    assert "You have used 4 of your 6-credit image cap this period" in refusal.content
    resets_at = (await running_bot.services.ledger.budget(fake.GUILD_ID)).resets_at
    assert f"<t:{resets_at}:R>" in refusal.content


async def test_a_category_disabled_here_lists_where_it_is_allowed(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    await fake.response(
        await fake.invoke("channels enable", user=fake.ADMIN, category="image", channel=fake.OTHER_CHANNEL_ID)
    )
    refusal = await fake.response(await fake.invoke("image", prompt="a fox", channel_id=fake.CHANNEL_ID))
    assert refusal.ephemeral
    assert f"Use them in <#{fake.OTHER_CHANNEL_ID}>" in refusal.content
    assert await closed_reservations(running_bot) == []
    allowed = await image_result(fake, await fake.invoke("image", prompt="a fox", channel_id=fake.OTHER_CHANNEL_ID))
    assert allowed.latest_files


async def test_expensive_requests_ask_first(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    ix = await fake.invoke("image", prompt="a fox", model="nano-banana-pro-t2i", count=4)  # ~40 credits
    assert (await fake.response(ix)).latest_files  # under the default threshold of 50: no question
    await fake.response(await fake.invoke("quota confirm", user=fake.ADMIN, credits=10))
    ask = await fake.response(await fake.invoke("image", prompt="a fox", count=3))
    assert "costs **12 credits**" in ask.content
    confirm_id, _cancel = ask.custom_ids()
    click = await fake.click(ask, confirm_id)
    posted = await fake.wait_for(lambda: [fake.message(i) for i in click.followup_ids if fake.message(i).latest_files])
    assert [f.filename for f in posted[0].latest_files] == ["grid.png"]


async def test_an_image_answered_with_a_job_id_is_polled(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.image_async = True
    message = await image_result(fake, await fake.invoke("image", prompt="slow fox"))
    assert Image.open(io.BytesIO(message.latest_files[0].data)).format == "PNG"
    polls = [r for r in running_bot.sandbox.requests if r.path.startswith("/api/v1/jobs/")]
    assert polls
    assert polls[0].query["type"] == "image"
    assert await closed_reservations(running_bot) == [("settled", 4)]


async def test_a_failed_image_job_is_refunded_at_once_not_after_six_polls(running_bot: RunningBot) -> None:
    """Only Hypereal's "Failed to check status" is the early-status quirk; a real failure ends the request."""
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.image_async = True
    sandbox.faults.fail_jobs = True
    await fake.invoke("image", prompt="a doomed fox")
    (error,) = await fake.wait_for(lambda: [m for m in fake.messages() if m.ephemeral and m.content.startswith("❌")])
    assert "Hypereal could not make this image (Generation failed (sandbox))" in error.content
    polls = [r for r in sandbox.requests if r.path.startswith("/api/v1/jobs/")]
    assert len(polls) == 1
    assert await closed_reservations(running_bot) == [("refunded", 0)]


async def test_no_interaction_token_reaches_the_log_at_debug(
    running_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    """discord.py's webhook module logs interaction-token URLs at DEBUG: the scrubber must catch them."""
    handler_filter = SecretScrubber([running_bot.fake.token])
    caplog.handler.addFilter(handler_filter)
    caplog.set_level(logging.DEBUG)
    fake = running_bot.fake
    handle = await fake.invoke("image", prompt="a quiet fox")
    await image_result(fake, handle)
    text = "\n".join(caplog.handler.format(r) for r in caplog.records)
    assert "/webhooks/" in text or "/interactions/" in text  # the lines are there…
    assert handle.token not in text  # …without the token


async def test_hypereal_error_text_never_shows_the_api_key(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.status_error = 400
    sandbox.faults.status_error_body = {"error": f"Invalid prompt for key {HYPEREAL_KEY}: " + "blah " * 400}
    await fake.invoke("image", prompt="a fox")
    (message,) = await fake.wait_for(lambda: [m for m in fake.messages() if m.ephemeral and m.content.startswith("❌")])
    assert "Hypereal refused the request" in message.content
    assert HYPEREAL_KEY not in message.content
    assert len(message.content) < 700
    assert await closed_reservations(running_bot) == [("refunded", 0)]
