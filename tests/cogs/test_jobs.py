"""/video, the webhook endpoint, the poller, delivery and /jobs end to end (fake Discord + sandbox)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY, RunningBot, bot_settings, free_port, run_bot
from tests.fakediscord import FakeDiscord, MessageRecord, files

pytestmark = pytest.mark.both_backends  # each end-to-end test runs on SQLite and on PostgreSQL

PNG = files.PNG


async def _results(fake: FakeDiscord) -> list[MessageRecord]:
    return [m for m in fake.messages() if m.latest_files and m.latest_files[0].filename.endswith(".mp4")]


async def _one_result(fake: FakeDiscord) -> MessageRecord:
    return (await fake.wait_for(lambda: [m for m in fake.messages() if "is ready" in m.content], timeout=15))[0]


async def _reservations(bot: RunningBot) -> list[tuple[str, int | None]]:
    rows = await bot.services.db.fetch_all("SELECT state, actual FROM reservations ORDER BY created_at")
    return [(row["state"], row["actual"]) for row in rows]


async def _job_states(bot: RunningBot) -> list[str]:
    return [row["state"] for row in await bot.services.db.fetch_all("SELECT state FROM jobs ORDER BY created_at")]


async def _wait_for_state(bot: RunningBot, state: str) -> None:
    for _ in range(100):
        if await _job_states(bot) == [state]:
            return
        await asyncio.sleep(0.05)
    assert await _job_states(bot) == [state]


async def _sandbox_job(sandbox: SandboxProvider, fake: FakeDiscord) -> Any:
    return await fake.wait_for(lambda: next(iter(sandbox.jobs.values()), None))


async def test_video_by_webhook_replies_with_one_mp4_and_settles(
    webhook_bot: RunningBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake, sandbox = webhook_bot.fake, webhook_bot.sandbox
    status = await fake.response(await fake.invoke("video", prompt="a cat surfing"))
    assert status.content.startswith("⏳ Generating · kling-3-0-std-t2v · 42 credits · started <t:")
    assert not status.ephemeral
    result = await _one_result(fake)
    assert result.latest_files[0].filename.endswith(".mp4")
    assert result.latest_files[0].data == sandbox.files[next(iter(sandbox.files))][0]
    assert str(result.current["message_reference"]["message_id"]) == str(status.id)
    assert result.content.startswith(
        f"<@{fake.MEMBER.id}> your video is ready · kling-3-0-std-t2v · 42 credits · 958 left"
    )
    assert [str(u) for u in result.current["allowed_mentions"]["users"]] == [str(fake.MEMBER.id)]
    submitted = next(r.json for r in sandbox.requests if r.path == "/v1/videos/generate")
    assert submitted["webhook_url"].startswith(str(webhook_bot.app.settings.public_url))
    assert [status_code for _, _, status_code in sandbox.webhooks_sent] == [200]
    await fake.wait_for(lambda: fake.message(status.id).content.startswith("✅ Done"))
    assert await _reservations(webhook_bot) == [("settled", 42)]
    assert await _job_states(webhook_bot) == ["delivered"]
    assert await webhook_bot.services.ledger.check_invariants() == []
    token = submitted["webhook_url"].rsplit("/", 1)[1]
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert token not in logged  # the webhook secret is never logged
    assert HYPEREAL_KEY not in logged


async def test_duplicate_webhooks_post_once(webhook_bot: RunningBot) -> None:
    fake, sandbox = webhook_bot.fake, webhook_bot.sandbox
    sandbox.faults.duplicate_webhooks = True
    await fake.response(await fake.invoke("video", prompt="twice"))
    await _one_result(fake)
    await fake.wait_for(lambda: len(sandbox.webhooks_sent) == 2)
    assert [code for _, _, code in sandbox.webhooks_sent] == [200, 200]
    await asyncio.sleep(0.5)
    assert len(await _results(fake)) == 1
    assert await _reservations(webhook_bot) == [("settled", 42)]


async def test_forged_webhooks_change_nothing(webhook_bot: RunningBot) -> None:
    fake, sandbox = webhook_bot.fake, webhook_bot.sandbox
    sandbox.job_delay = 30  # the real job stays pending while we forge
    sandbox.faults.job_delay = 30
    await fake.response(await fake.invoke("video", prompt="forged"))
    job = await _sandbox_job(sandbox, fake)
    real_url = job.webhook_url
    assert real_url is not None
    base = real_url.rsplit("/", 1)[0]
    async with aiohttp.ClientSession() as http:
        forged = {"jobId": job.id, "status": "completed", "outputUrl": "https://evil.example/x.mp4", "creditsUsed": 1}
        async with http.post(f"{base}/{'A' * 32}", json=forged) as response:
            assert response.status == 404
        async with http.post(real_url, json={**forged, "jobId": "job_someone_else"}) as response:
            assert response.status == 409
        async with http.post(real_url, data=b"not json", headers={"Content-Type": "application/json"}) as response:
            assert response.status == 400
        async with http.post(real_url, json={"hello": "world"}) as response:
            assert response.status == 400
        async with http.post(real_url, data=b"x" * (65 * 1024)) as response:
            assert response.status == 413
        async with http.get(real_url) as response:
            assert response.status == 405
    await _wait_for_state(webhook_bot, "pending")
    assert await _reservations(webhook_bot) == [("held", None)]
    assert await _results(fake) == []


async def test_a_completed_webhook_is_confirmed_by_a_status_poll(webhook_bot: RunningBot) -> None:
    fake, sandbox = webhook_bot.fake, webhook_bot.sandbox
    sandbox.faults.job_delay = 30
    await fake.response(await fake.invoke("video", prompt="premature"))
    job = await _sandbox_job(sandbox, fake)
    assert job.webhook_url is not None
    async with aiohttp.ClientSession() as http:
        claim = {"jobId": job.id, "status": "completed", "outputUrl": f"{sandbox.base_url}/files/none.mp4"}
        async with http.post(job.webhook_url, json=claim) as response:
            assert response.status == 200
    # Hypereal still says "processing": nothing is settled or posted on the webhook's word alone.
    await fake.wait_for(lambda: any(r.path.startswith("/api/v1/jobs/") for r in sandbox.requests))
    assert await _job_states(webhook_bot) == ["pending"]
    await sandbox.finish_job(job.id)
    await _one_result(fake)
    assert await _reservations(webhook_bot) == [("settled", 42)]


async def test_without_webhooks_the_poller_delivers(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.early_status_failures = 2  # Hypereal's "Failed to check status" quirk on the first polls
    await fake.response(await fake.invoke("video", prompt="polled"))
    result = await _one_result(fake)
    assert result.latest_files[0].filename.endswith(".mp4")
    submitted = next(r.json for r in sandbox.requests if r.path == "/v1/videos/generate")
    assert "webhook_url" not in submitted
    assert sandbox.webhooks_sent == []
    assert await _reservations(running_bot) == [("settled", 42)]


async def test_dropped_webhooks_fall_back_to_polling(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path
) -> None:
    port = free_port()
    settings = bot_settings(fake_discord, sandbox, tmp_path, web_port=port, public_url=f"http://127.0.0.1:{port}")
    sandbox.faults.drop_webhooks = True
    async with run_bot(settings, fake_discord, sandbox) as running:
        await fake_discord.response(await fake_discord.invoke("video", prompt="lost webhook"))
        await _one_result(fake_discord)
        assert await _reservations(running) == [("settled", 42)]


async def test_a_failed_job_is_refunded_and_explained(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.fail_jobs = True
    status = await fake.response(await fake.invoke("video", prompt="doomed"))
    notice = (await fake.wait_for(lambda: [m for m in fake.messages() if "your video failed" in m.content]))[0]
    assert "Generation failed (sandbox)" in notice.content
    assert "Its 42 credits were refunded · 1000 left" in notice.content
    await fake.wait_for(lambda: fake.message(status.id).content.startswith("❌ Failed"))
    assert await _reservations(running_bot) == [("refunded", 0)]
    assert await _job_states(running_bot) == ["failed"]


async def test_options_are_checked_against_the_model_before_anything_is_reserved(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    answer = await fake.response(await fake.invoke("video", prompt="x", model="kling-3-0-std-i2v"))
    assert answer.ephemeral
    assert "animates an image" in answer.content
    answer = await fake.response(
        await fake.invoke(
            "video", prompt="x", model="kling-2-5-i2v", duration=7, image=fake.attachment("a.png", PNG, "image/png")
        )
    )
    assert answer.ephemeral
    assert "accepts duration 5, 10" in answer.content
    answer = await fake.response(
        await fake.invoke("video", prompt="x", image=fake.attachment("a.txt", b"hello", "text/plain"))
    )
    assert answer.ephemeral
    assert await _reservations(running_bot) == []


async def test_image_to_video_sends_the_attachment_and_prices_the_duration(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    image = fake.attachment("cat.png", PNG, "image/png")
    status = await fake.response(
        await fake.invoke("video", prompt="wave", image=image, model="kling-3-0-pro-i2v", duration=10)
    )
    # 39 credits buy 5 s: 10 s cost 78, over the confirmation threshold (50) — the price is asked first.
    assert status.ephemeral
    assert "78 credits" in status.content
    await fake.click(status, status.custom_ids()[0])
    await _one_result(fake)
    submitted = next(r.json for r in sandbox.requests if r.path == "/v1/videos/generate")
    assert submitted["input"] == {"prompt": "wave", "image": image["url"], "duration": 10}


async def test_jobs_lists_and_cancel_says_what_happens_to_credits(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.job_delay = 30
    status = await fake.response(await fake.invoke("video", prompt="long one"))
    await _wait_for_state(running_bot, "pending")
    listing = await fake.response(await fake.invoke("jobs"))
    assert listing.ephemeral
    assert "**pending** · kling-3-0-std-t2v · 42 credits" in listing.embeds[0]["description"]
    stranger = await fake.response(await fake.click(status, status.custom_ids()[0], user=fake.OTHER_MEMBER))
    assert "Only the member who started a job" in stranger.content
    answer = await fake.response(await fake.click(status, status.custom_ids()[0]))
    assert "it charged 42 credits for it, which stay spent" in answer.content
    await fake.wait_for(lambda: fake.message(status.id).content.startswith("⏹️ Cancelled"))
    await _wait_for_state(running_bot, "cancelled")
    assert await _reservations(running_bot) == [("settled", 42)]


async def test_a_gone_channel_gets_the_result_by_dm(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    running_bot.sandbox.faults.job_delay = 1.0
    await fake.response(await fake.invoke("video", prompt="to my DMs"))
    fake.inject(r"POST /channels/\{channel_id\}/messages$", 404, body={"message": "Unknown Channel", "code": 10003})
    result = await _one_result(fake)
    assert result.channel_id != fake.CHANNEL_ID
    assert "comes here" in result.content
    assert result.latest_files[0].filename.endswith(".mp4")
    await _wait_for_state(running_bot, "delivered")


async def test_a_refused_submit_says_not_started_and_refunds(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.status_error = 400
    sandbox.faults.status_error_body = {"error": "Prompt rejected by the content filter"}
    handle = await fake.invoke("video", prompt="something forbidden")
    status = await fake.response(handle)
    await fake.wait_for(lambda: fake.message(status.id).content.startswith("❌ Not started"))
    error = await fake.wait_for(lambda: next((m for m in fake.messages() if m.ephemeral), None))
    assert "Prompt rejected by the content filter" in error.content
    assert await _reservations(running_bot) == [("refunded", 0)]
    assert await _job_states(running_bot) == ["failed"]


async def test_a_video_asked_in_a_thread_is_posted_in_that_thread(running_bot: RunningBot) -> None:
    fake = running_bot.fake
    status = await fake.response(await fake.invoke("video", prompt="in a thread", channel_id=fake.THREAD_ID))
    result = await _one_result(fake)
    assert result.channel_id == fake.THREAD_ID
    assert str(result.current["message_reference"]["message_id"]) == str(status.id)


async def test_a_result_over_the_upload_limit_is_posted_as_a_link(running_bot: RunningBot) -> None:
    fake, sandbox = running_bot.fake, running_bot.sandbox
    sandbox.faults.job_delay = 30
    await fake.response(await fake.invoke("video", prompt="a long film"))
    job = await _sandbox_job(sandbox, fake)
    await sandbox.finish_job(job.id, output=b"\0" * (11 * 1024 * 1024))  # over the 10 MB of an unboosted server
    result = await _one_result(fake)
    assert result.latest_files == []
    assert result.embeds[0]["url"] == job.output_url
    assert "Too large to attach here (11 MB)" in result.embeds[0]["description"]
