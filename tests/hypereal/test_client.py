"""The Hypereal client against the sandbox provider over loopback: every endpoint, every typed error."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from pydantic import SecretStr

from bot.hypereal import (
    BadRequest,
    ChatMessage,
    HyperealClient,
    HyperealError,
    InsufficientCredits,
    MalformedResponse,
    NotFound,
    PayloadTooLarge,
    ProviderTimeout,
    RateLimited,
    RedirectRefused,
    RequestLimiter,
    ServerError,
    StreamInterrupted,
    Unauthorized,
)
from bot.sandbox import SandboxProvider

KEY = "ck_test_secret_key_0123456789"
HI = [ChatMessage(role="user", content="hi there")]


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxProvider]:
    async with SandboxProvider(api_key=KEY, job_delay=0.2) as provider:
        yield provider


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def client(sandbox: SandboxProvider, session: aiohttp.ClientSession) -> HyperealClient:
    return HyperealClient(session, sandbox.base_url, SecretStr(KEY), timeout=5, retry_base_delay=0.01)


def _api_calls(sandbox: SandboxProvider, path: str) -> int:
    return sum(1 for request in sandbox.requests if request.path.startswith(path))


# ── endpoints ────────────────────────────────────────────────────────────────


async def test_chat_plain(client: HyperealClient, sandbox: SandboxProvider) -> None:
    answer = await client.chat(HI, model="gpt-5", temperature=0.5, max_tokens=100)
    assert answer.content.startswith("Sandbox reply to: hi there")
    assert answer.finish_reason == "stop"
    assert answer.credits_used is not None
    sent = sandbox.requests[-1].json
    assert sent["stream"] is False  # always explicit: the documented default is true
    assert sent["model"] == "gpt-5"
    assert sent["messages"] == [{"role": "user", "content": "hi there"}]
    assert sent["max_tokens"] == 100


async def test_chat_stream_yields_deltas_and_final_credits(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.chat_reply = "Hello, streaming world! " * 5
    sandbox.faults.chat_chunk_size = 7
    async with client.chat_stream(HI) as stream:
        deltas = [delta async for delta in stream]
    assert len(deltas) > 5
    assert "".join(deltas) == sandbox.faults.chat_reply
    assert stream.completed
    assert stream.finish_reason == "stop"
    assert stream.credits_used is not None
    assert sandbox.requests[-1].json["stream"] is True


async def test_chat_stream_without_done_still_completes(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.chat_reply = "no done marker here"
    sandbox.faults.chat_no_done = True
    async with client.chat_stream(HI) as stream:
        text = "".join([delta async for delta in stream])
    assert text == "no done marker here"
    assert stream.finish_reason == "stop"


async def test_chat_stream_reports_max_tokens_cut(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.chat_finish_reason = "length"
    async with client.chat_stream(HI, max_tokens=5) as stream:
        _ = [delta async for delta in stream]
    assert stream.finish_reason == "length"


async def test_chat_stream_dropped_mid_way_keeps_what_arrived(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.chat_reply = "x" * 200
    sandbox.faults.chat_chunk_size = 10
    sandbox.faults.chat_fail_after_chunks = 3
    received: list[str] = []
    stream = client.chat_stream(HI)

    async def read_all() -> None:
        async with stream:
            async for delta in stream:
                received.append(delta)

    with pytest.raises(StreamInterrupted):
        await read_all()
    assert "".join(received) == "x" * 30
    assert not stream.completed


async def test_chat_stream_error_before_start_is_typed(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.status_error = 400
    sandbox.faults.status_error_body = {"error": "Model is required"}
    with pytest.raises(BadRequest, match="Model is required"):
        async with client.chat_stream(HI) as stream:
            _ = [delta async for delta in stream]


async def test_generate_image(client: HyperealClient, sandbox: SandboxProvider) -> None:
    result = await client.generate_image("a red fox", model="nano-banana-t2i", aspect_ratio="16:9")
    assert len(result.urls) == 1
    assert result.urls[0].startswith(sandbox.base_url)
    assert result.credits_used is not None
    sent = sandbox.requests[-1].json
    assert sent == {"prompt": "a red fox", "model": "nano-banana-t2i", "aspect_ratio": "16:9"}


async def test_edit_image_sends_the_images_list(client: HyperealClient, sandbox: SandboxProvider) -> None:
    images = ["https://cdn.example/a.png", "https://cdn.example/b.png"]
    result = await client.edit_image("make it blue", model="nano-banana-edit", images=images)
    assert result.urls
    assert sandbox.requests[-1].json["images"] == images


async def test_image_answered_with_a_job_id(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.image_async = True
    result = await client.generate_image("slow fox", model="nano-banana-t2i")
    assert result.job_id
    assert not result.urls


async def test_video_job_lifecycle_through_poll_url(client: HyperealClient, sandbox: SandboxProvider) -> None:
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves", "duration": 5})
    assert submission.job_id
    assert submission.poll_url
    first = await client.job_status(submission.job_id, poll_url=submission.poll_url)
    assert first.state == "pending"
    await asyncio.sleep(0.4)
    done = await client.job_status(submission.job_id, model="kling-3-0-std-t2v", type="video")
    assert done.state == "completed"
    assert done.output_url
    assert done.output_url.endswith(".mp4")


async def test_poll_url_on_a_foreign_host_is_not_used(client: HyperealClient, sandbox: SandboxProvider) -> None:
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    status = await client.job_status(
        submission.job_id, model="kling-3-0-std-t2v", type="video", poll_url="https://evil.example/steal"
    )
    assert status.state == "pending"  # answered by the sandbox: the key never went to evil.example


async def test_media_sync_async_and_transcript(client: HyperealClient, sandbox: SandboxProvider) -> None:
    speech = await client.generate_media("audio-tts", {"text": "(happy) Hello!", "format": "wav"})
    assert speech.output_url
    assert speech.output_url.endswith(".wav")
    transcript = await client.generate_media("audio-asr", {"audio": "https://cdn.example/a.mp3"})
    assert transcript.text
    assert transcript.segments
    mesh = await client.generate_media("hunyuan3d-v2-base", {"image": "https://cdn.example/a.png"})
    assert mesh.job_id
    assert not mesh.output_url


# ── typed errors ─────────────────────────────────────────────────────────────


async def test_wrong_key_is_unauthorized(sandbox: SandboxProvider, session: aiohttp.ClientSession) -> None:
    client = HyperealClient(session, sandbox.base_url, SecretStr("ck_wrong"), timeout=5)
    with pytest.raises(Unauthorized) as caught:
        await client.chat(HI)
    assert "operator" in caught.value.user_message


async def test_bad_request_message_is_kept_verbatim(client: HyperealClient) -> None:
    with pytest.raises(BadRequest) as caught:
        await client.generate_image("a forbidden thing", model="nano-banana-t2i")
    assert caught.value.message == "Your request was rejected by the safety system."
    assert "rejected by the safety system" in caught.value.user_message


async def test_402_is_insufficient_credits_with_figures(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.credits = 1
    with pytest.raises(InsufficientCredits) as caught:
        await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    assert caught.value.required is not None
    assert caught.value.required > 1
    assert caught.value.available == 1


async def test_400_saying_insufficient_credits_is_the_same_error(
    client: HyperealClient, sandbox: SandboxProvider
) -> None:
    sandbox.faults.status_error = 400
    sandbox.faults.status_error_body = {"error": "Insufficient credits", "required": 69, "available": 10}
    with pytest.raises(InsufficientCredits) as caught:
        await client.generate_image("fox", model="nano-banana-t2i")
    assert (caught.value.required, caught.value.available) == (69, 10)


async def test_unknown_job_is_not_found(client: HyperealClient) -> None:
    with pytest.raises(NotFound):
        await client.job_status("no-such-job", type="video")


async def test_413_is_payload_too_large(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.status_error = 413
    sandbox.faults.status_error_body = None
    with pytest.raises(PayloadTooLarge):
        await client.generate_image("fox", model="nano-banana-t2i")


async def test_429_carries_retry_after(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.rate_limit_per_hour = 1
    await client.generate_image("fox", model="nano-banana-t2i")
    with pytest.raises(RateLimited) as caught:
        await client.generate_image("fox", model="nano-banana-t2i")
    assert caught.value.retry_after is not None


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": "E9999", "message": "Internal error", "type": "api_error"}},
        {"error": "upstream exploded"},
    ],
)
async def test_5xx_both_error_shapes(client: HyperealClient, sandbox: SandboxProvider, body: dict) -> None:
    sandbox.faults.status_error = 503
    sandbox.faults.status_error_body = body
    with pytest.raises(ServerError) as caught:
        await client.chat(HI)
    assert caught.value.status == 503
    assert ("Internal error" in str(caught.value)) or ("upstream exploded" in str(caught.value))


async def test_timeout(sandbox: SandboxProvider, session: aiohttp.ClientSession) -> None:
    client = HyperealClient(session, sandbox.base_url, SecretStr(KEY), timeout=0.2)
    sandbox.faults.delay_seconds = 1.0
    with pytest.raises(ProviderTimeout):
        await client.generate_image("fox", model="nano-banana-t2i")


async def test_malformed_body(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.malformed = 1
    with pytest.raises(MalformedResponse):
        await client.generate_image("fox", model="nano-banana-t2i")


# ── retries and redirects ────────────────────────────────────────────────────


async def test_a_post_is_never_retried(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.server_errors = 1
    with pytest.raises(ServerError):
        await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    assert _api_calls(sandbox, "/v1/videos/generate") == 1
    assert sandbox.faults.server_errors == 0


async def test_a_get_retries_5xx_and_html_bodies(client: HyperealClient, sandbox: SandboxProvider) -> None:
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    sandbox.faults.server_errors = 2
    status = await client.job_status(submission.job_id, type="video")
    assert status.state == "pending"
    assert _api_calls(sandbox, "/api/v1/jobs/") == 3
    sandbox.faults.malformed = 1
    await client.job_status(submission.job_id, type="video")
    assert _api_calls(sandbox, "/api/v1/jobs/") == 5


async def test_a_get_gives_up_after_its_retries(sandbox: SandboxProvider, session: aiohttp.ClientSession) -> None:
    client = HyperealClient(session, sandbox.base_url, SecretStr(KEY), get_retries=2, retry_base_delay=0.01)
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    sandbox.faults.server_errors = 10
    with pytest.raises(ServerError):
        await client.job_status(submission.job_id, type="video")
    assert _api_calls(sandbox, "/api/v1/jobs/") == 3  # the first try and two retries


async def test_a_post_redirect_is_refused_not_followed(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.redirect_posts = True
    with pytest.raises(RedirectRefused) as caught:
        await client.generate_image("fox", model="nano-banana-t2i")
    assert "HYPEREAL_BASE_URL" in str(caught.value)
    assert _api_calls(sandbox, "/v1/images/generate") == 1


# ── limiter and secrecy ──────────────────────────────────────────────────────


async def test_every_request_takes_a_limiter_slot_and_waits_when_full(
    sandbox: SandboxProvider, session: aiohttp.ClientSession
) -> None:
    limiter = RequestLimiter(max_requests=2, window=0.3)
    client = HyperealClient(session, sandbox.base_url, SecretStr(KEY), limiter=limiter)
    results = await asyncio.gather(*(client.generate_image(f"fox {n}", model="nano-banana-t2i") for n in range(4)))
    assert len(results) == 4  # queued, not failed
    assert _api_calls(sandbox, "/v1/images/generate") == 4
    assert limiter.used() <= 2


async def test_the_key_never_appears_in_logs_reprs_or_errors(
    client: HyperealClient, sandbox: SandboxProvider, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[HyperealError] = []
    sandbox.faults.status_error = 500
    sandbox.faults.status_error_body = {"error": "boom"}
    for call in (
        client.chat(HI),
        client.generate_image("a forbidden thing", model="nano-banana-t2i"),
        client.job_status("missing", type="video"),
    ):
        try:
            await call
        except HyperealError as exc:
            errors.append(exc)
    sandbox.faults.redirect_posts = True
    try:
        await client.generate_image("fox", model="nano-banana-t2i")
    except HyperealError as exc:
        errors.append(exc)
    assert len(errors) == 4
    texts = [repr(client), *(f"{e!s} {e!r} {e.user_message} {e.args}" for e in errors)]
    texts += [record.getMessage() for record in caplog.records]
    assert not [text for text in texts if KEY in text]


# ── what Hypereal returns is validated at the boundary ────────────────────────


@pytest.mark.parametrize(
    "body",
    [
        {"error": f"Invalid key {KEY} for this request\x07\u202e " + "x" * 2000},
        {"error": {"code": "E1", "message": f"Bearer {KEY.upper()} was rejected\n" + "y" * 2000}},
    ],
)
@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
async def test_error_text_from_a_body_never_carries_the_key(
    client: HyperealClient, sandbox: SandboxProvider, caplog: pytest.LogCaptureFixture, status: int, body: dict
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.faults.status_error = status
    sandbox.faults.status_error_body = body
    with pytest.raises(HyperealError) as caught:
        await client.generate_image("fox", model="nano-banana-t2i")
    error = caught.value
    for text in (error.user_message, str(error), *(record.getMessage() for record in caplog.records)):
        assert KEY.lower() not in text.lower()
        assert not [char for char in text if char in "\x07\u202e\n"]
    assert "[redacted]" in str(error)
    if isinstance(error, BadRequest):
        assert len(error.message) <= 300
        assert error.message.endswith("…")
        assert "[redacted]" in error.user_message


async def test_a_job_status_error_is_redacted(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.status_error = 200
    sandbox.faults.status_error_body = {"jobId": "j1", "status": "failed", "error": f"upstream said {KEY}"}
    status = await client.job_status("j1", type="video")
    assert status.error == "upstream said [redacted]"


async def test_an_error_in_a_200_answer_is_redacted(client: HyperealClient, sandbox: SandboxProvider) -> None:
    for call in (lambda: client.chat(HI), lambda: _read_stream(client)):
        sandbox.faults.status_error = 200
        sandbox.faults.status_error_body = {"error": f"request broke for {KEY}"}
        with pytest.raises(BadRequest) as caught:
            await call()
        assert caught.value.message == "request broke for [redacted]"


async def _read_stream(client: HyperealClient) -> str:
    async with client.chat_stream(HI) as stream:
        return "".join([delta async for delta in stream])


@pytest.mark.parametrize("value", [-5, "abc", True, 1e20, float("nan")], ids=repr)
async def test_invalid_credits_from_the_provider_read_as_unknown(
    client: HyperealClient, sandbox: SandboxProvider, caplog: pytest.LogCaptureFixture, value: object
) -> None:
    sandbox.faults.credits_used = value
    image = await client.generate_image("fox", model="nano-banana-t2i")
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    assert (image.credits_used, submission.credits_used) == (None, None)
    async with client.chat_stream(HI) as stream:
        _ = [delta async for delta in stream]
    assert stream.credits_used is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("creditsUsed" in text for text in warnings)  # named for the operator, without the body


async def test_insufficient_credits_with_bogus_figures(client: HyperealClient, sandbox: SandboxProvider) -> None:
    sandbox.faults.status_error = 402
    sandbox.faults.status_error_body = {"error": "Insufficient credits", "required": -5, "available": "abc"}
    with pytest.raises(InsufficientCredits) as caught:
        await client.generate_image("fox", model="nano-banana-t2i")
    assert (caught.value.required, caught.value.available) == (None, None)


BAD_OUTPUT = "https://evil.example\\@cdn.hypereal.tech/x"


async def test_a_malformed_output_url_is_a_clear_failure_not_an_exception(
    client: HyperealClient, sandbox: SandboxProvider
) -> None:
    sandbox.faults.output_url = BAD_OUTPUT
    with pytest.raises(MalformedResponse, match="output link is malformed: it contains a backslash"):
        await client.generate_image("fox", model="nano-banana-t2i")
    with pytest.raises(MalformedResponse, match="output link is malformed"):
        await client.generate_media("audio-tts", {"text": "hi"})
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    await sandbox.finish_job(submission.job_id)
    status = await client.job_status(submission.job_id, type="video")
    assert status.state == "completed"
    assert status.output_url is None  # so the caller fails the job at once instead of retrying a bad link
    assert status.output_url_problem == "Hypereal's output link is malformed: it contains a backslash"


@pytest.mark.parametrize("poll_url", ["http://[::1", "https://evil\\@x/", "/api/v1/jobs/x", "https://xn--zz.example/"])
async def test_a_malformed_stored_poll_url_falls_back_to_the_job_id(
    client: HyperealClient, sandbox: SandboxProvider, poll_url: str
) -> None:
    submission = await client.generate_video("kling-3-0-std-t2v", {"prompt": "waves"})
    status = await client.job_status(submission.job_id, type="video", poll_url=poll_url)
    assert status.state == "pending"
    assert sandbox.requests[-1].path == f"/api/v1/jobs/{submission.job_id}"
