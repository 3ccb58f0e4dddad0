"""The sandbox Hypereal over real HTTP: shapes, jobs, webhooks, faults and real media files."""

from __future__ import annotations

import asyncio
import io
import json
import struct
import sys
import wave
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from PIL import Image

from bot.sandbox import SandboxProvider

KEY = "sandbox-test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxProvider]:
    async with SandboxProvider(api_key=KEY, job_delay=0.05) as provider:
        yield provider


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class WebhookReceiver:
    """A tiny server that collects webhook POSTs."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        return web.Response(text="ok")


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    hook = WebhookReceiver()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/hook"  # type: ignore[union-attr]
    yield hook
    await runner.cleanup()


async def _post(http: aiohttp.ClientSession, sandbox: SandboxProvider, path: str, body: Any) -> tuple[int, Any]:
    async with http.post(f"{sandbox.base_url}{path}", json=body, headers=AUTH) as response:
        assert response.headers["Content-Type"] == "application/json"
        return response.status, await response.json()


async def _fetch(http: aiohttp.ClientSession, url: str) -> tuple[bytes, str]:
    async with http.get(url) as response:
        assert response.status == 200
        return await response.read(), response.headers["Content-Type"]


async def _wait_done(sandbox: SandboxProvider, job_id: str) -> None:
    """Until the job has finished and its webhooks (if any) have been posted: its task is done."""
    for _ in range(500):
        running = any(task.get_name() == f"sandbox-job-{job_id}" for task in sandbox._tasks)
        if sandbox.jobs[job_id].status != "processing" and not running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("job did not finish")


async def test_requests_need_the_key(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sandbox.base_url}/v1/chat", json={"messages": []}) as response:
        assert response.status == 401
        assert "Unauthorized" in (await response.json())["error"]
    assert sandbox.requests[-1].authorized is False


async def test_chat_stream_framing(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    sandbox.faults.chat_reply = "abcdefghij"
    sandbox.faults.chat_chunk_size = 4
    body = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    async with http.post(f"{sandbox.base_url}/v1/chat", json=body, headers=AUTH) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = (await response.read()).decode()
    assert text.startswith(": keep-alive")
    data = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "abcdefghij"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["creditsUsed"] == 2


async def test_image_is_a_png_of_the_requested_shape(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    status, body = await _post(
        http, sandbox, "/v1/images/generate", {"prompt": "a fox", "model": "nano-banana-t2i", "aspect_ratio": "16:9"}
    )
    assert status == 200
    assert body["creditsUsed"] == 4
    data, content_type = await _fetch(http, body["data"][0]["url"])
    assert content_type == "image/png"
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.width > image.height
    assert image.width * 9 == pytest.approx(image.height * 16, rel=0.05)


async def test_edit_needs_images(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    status, body = await _post(http, sandbox, "/v1/images/generate", {"prompt": "blue", "model": "nano-banana-edit"})
    assert status == 400
    assert "images" in body["error"]


async def test_video_job_polls_and_posts_its_webhook(
    sandbox: SandboxProvider, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    status, body = await _post(
        http, sandbox, "/v1/videos/generate", {"model": "m", "input": {"prompt": "x"}, "webhook_url": receiver.url}
    )
    assert status == 202
    assert body["status"] == "processing"
    await _wait_done(sandbox, body["jobId"])
    async with http.get(body["pollUrl"], headers=AUTH) as response:
        polled = await response.json()
    assert polled["status"] == "completed"
    assert receiver.received == [
        {
            "status": "completed",
            "jobId": body["jobId"],
            "type": "video",
            "model": "m",
            "creditsUsed": 40,
            "outputUrl": polled["outputUrl"],
        }
    ]
    data, content_type = await _fetch(http, polled["outputUrl"])
    assert content_type == "video/mp4"
    assert data[4:8] == b"ftyp"


async def test_failed_dropped_and_duplicated_webhooks(
    sandbox: SandboxProvider, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    sandbox.faults.fail_jobs = True
    sandbox.faults.duplicate_webhooks = True
    before = sandbox.credits
    _, body = await _post(
        http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}, "webhook_url": receiver.url}
    )
    await _wait_done(sandbox, body["jobId"])
    assert [hook["status"] for hook in receiver.received] == ["failed", "failed"]
    assert receiver.received[0]["error"]
    assert sandbox.credits == before  # failed jobs are refunded
    sandbox.faults.fail_jobs = False
    sandbox.faults.drop_webhooks = True
    _, body = await _post(
        http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}, "webhook_url": receiver.url}
    )
    await _wait_done(sandbox, body["jobId"])
    assert len(receiver.received) == 2


async def test_early_status_quirk_and_unknown_job(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    sandbox.job_delay = 5
    sandbox.faults.early_status_failures = 2
    _, body = await _post(http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}})
    states = []
    for _ in range(3):
        async with http.get(body["pollUrl"], headers=AUTH) as response:
            states.append((await response.json())["status"])
    assert states == ["failed", "failed", "processing"]
    async with http.get(f"{sandbox.base_url}/api/v1/jobs/nope", headers=AUTH) as response:
        assert response.status == 404
        assert await response.json() == {"error": "Job not found"}


async def test_media_outputs_open(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    _, tts = await _post(http, sandbox, "/api/media/generate", {"model": "audio-tts", "input": {"text": "(happy) hi"}})
    mp3, content_type = await _fetch(http, tts["outputUrl"])
    assert content_type == "audio/mpeg"
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    _, wav_answer = await _post(
        http, sandbox, "/api/media/generate", {"model": "audio-tts", "input": {"text": "hi", "format": "wav"}}
    )
    wav_bytes, _ = await _fetch(http, wav_answer["outputUrl"])
    with wave.open(io.BytesIO(wav_bytes)) as wav:
        assert wav.getnframes() > 0
    _, asr = await _post(http, sandbox, "/api/media/generate", {"model": "audio-asr", "input": {"audio": "u"}})
    assert asr["segments"][0]["start"] == 0.0
    _, mesh = await _post(http, sandbox, "/api/media/generate", {"model": "hunyuan3d-v2-base", "input": {"image": "u"}})
    await _wait_done(sandbox, mesh["jobId"])
    glb, content_type = await _fetch(http, sandbox.jobs[mesh["jobId"]].output_url or "")
    assert content_type == "model/gltf-binary"
    magic, version, length = struct.unpack("<4sII", glb[:12])
    assert (magic, version, length) == (b"glTF", 2, len(glb))
    json_length, kind = struct.unpack("<II", glb[12:20])
    assert kind == 0x4E4F534A
    document = json.loads(glb[20 : 20 + json_length])
    assert document["asset"]["version"] == "2.0"
    status, bad = await _post(http, sandbox, "/api/media/generate", {"model": "nope", "input": {}})
    assert status == 400
    assert bad["error"] == "Unsupported model: nope"


async def test_credits_rate_limit_and_faults_over_http(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    sandbox.credits = 3
    status, body = await _post(http, sandbox, "/v1/images/generate", {"prompt": "p", "model": "nano-banana-t2i"})
    assert (status, body) == (402, {"error": "Insufficient credits", "required": 4, "available": 3})
    async with http.post(f"{sandbox.base_url}/_sandbox/faults", json={"rate_limit_per_hour": 0}) as response:
        assert (await response.json())["rate_limit_per_hour"] == 0
    async with http.post(f"{sandbox.base_url}/v1/chat", json={}, headers=AUTH) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "60"
    async with http.post(f"{sandbox.base_url}/_sandbox/faults", json={"no_such_fault": 1}) as response:
        assert response.status == 400
    async with http.post(f"{sandbox.base_url}/_sandbox/reset") as response:
        assert response.status == 200
    assert sandbox.faults.rate_limit_per_hour is None


async def test_python_m_bot_sandbox_serves(tmp_path: Any) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sandbox", "--port", "0", "--api-key", "k",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        base_url = line.split(" on ", 1)[1].split(" ", 1)[0]
        async with aiohttp.ClientSession() as http:
            status, body = await _post_with(http, base_url, "k")
        assert status == 200
        assert body["choices"][0]["message"]["content"].startswith("Sandbox reply to: hello")
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def _post_with(http: aiohttp.ClientSession, base_url: str, key: str) -> tuple[int, Any]:
    body = {"messages": [{"role": "user", "content": "hello"}], "stream": False}
    async with http.post(f"{base_url}/v1/chat", json=body, headers={"Authorization": f"Bearer {key}"}) as response:
        return response.status, await response.json()


# ── provider faults for the soak: bad figures, bad links, contradictions, lost and late answers ──────────


async def _video_job(
    http: aiohttp.ClientSession, sandbox: SandboxProvider, receiver: WebhookReceiver
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit a video job with a webhook, wait for it, and return (submit answer, status poll answer)."""
    _, body = await _post(
        http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}, "webhook_url": receiver.url}
    )
    await _wait_done(sandbox, body["jobId"])
    async with http.get(f"{sandbox.base_url}/api/v1/jobs/{body['jobId']}", headers=AUTH) as response:
        return body, await response.json()


async def test_omit_credits_used_everywhere(
    sandbox: SandboxProvider, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    sandbox.faults.omit_credits_used = True
    before = sandbox.credits
    _, image = await _post(http, sandbox, "/v1/images/generate", {"prompt": "p", "model": "nano-banana-t2i"})
    _, chat = await _post(http, sandbox, "/v1/chat", {"messages": [{"role": "user", "content": "hi"}], "stream": False})
    submitted, polled = await _video_job(http, sandbox, receiver)
    for answer in (image, chat, submitted, polled, *receiver.received):
        assert "creditsUsed" not in answer
    assert sandbox.credits == before - 4 - 2 - 40  # still charged: only the report is missing


async def test_bogus_credits_used_is_reported_verbatim_and_the_price_charged(
    sandbox: SandboxProvider, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    sandbox.faults.credits_used = -5
    before = sandbox.credits
    _, image = await _post(http, sandbox, "/v1/images/generate", {"prompt": "p", "model": "nano-banana-t2i"})
    submitted, polled = await _video_job(http, sandbox, receiver)
    assert [a["creditsUsed"] for a in (image, submitted, polled, *receiver.received)] == [-5, -5, -5, -5]
    assert sandbox.credits == before - 4 - 40
    sandbox.faults.update({"credits_used": "abc"})
    _, image = await _post(http, sandbox, "/v1/images/generate", {"prompt": "p", "model": "nano-banana-t2i"})
    assert image["creditsUsed"] == "abc"


async def test_output_url_is_reported_verbatim_everywhere(
    sandbox: SandboxProvider, http: aiohttp.ClientSession, receiver: WebhookReceiver
) -> None:
    bad = "https://evil.example\\@cdn.hypereal.tech/x"
    sandbox.faults.output_url = bad
    _, image = await _post(http, sandbox, "/v1/images/generate", {"prompt": "p", "model": "nano-banana-t2i"})
    _, speech = await _post(http, sandbox, "/api/media/generate", {"model": "audio-tts", "input": {"text": "hi"}})
    _, polled = await _video_job(http, sandbox, receiver)
    assert [image["data"][0]["url"], speech["outputUrl"], polled["outputUrl"], receiver.received[0]["outputUrl"]] == [
        bad
    ] * 4
    async with http.post(f"{sandbox.base_url}/_sandbox/faults", json={"output_url": 5}) as response:
        assert response.status == 400


@pytest.mark.parametrize(
    ("fail_jobs", "truth_last", "expected"),
    [
        (False, False, ["failed", "completed"]),
        (True, False, ["completed", "failed"]),
        (False, True, ["completed", "failed"]),
    ],
)
async def test_contradicting_webhooks(
    sandbox: SandboxProvider,
    http: aiohttp.ClientSession,
    receiver: WebhookReceiver,
    fail_jobs: bool,
    truth_last: bool,
    expected: list[str],
) -> None:
    sandbox.faults.update({"contradicting_webhooks": True, "fail_jobs": fail_jobs})
    sandbox.faults.contradicting_webhook_last = truth_last
    submitted, polled = await _video_job(http, sandbox, receiver)
    assert [hook["status"] for hook in receiver.received] == expected
    assert {hook["jobId"] for hook in receiver.received} == {submitted["jobId"]}
    assert polled["status"] == ("failed" if fail_jobs else "completed")  # the poll tells the truth
    completed = next(hook for hook in receiver.received if hook["status"] == "completed")
    data, _ = await _fetch(http, completed["outputUrl"])  # even the lie carries a real, fetchable output
    assert data[4:8] == b"ftyp"


async def test_lost_post_answers_are_processed_and_charged(
    sandbox: SandboxProvider, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.lose_post_answers = 2
    before = sandbox.credits
    with pytest.raises(aiohttp.ClientConnectionError):
        await _post(http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}})
    chat = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.post(f"{sandbox.base_url}/v1/chat", json=chat, headers=AUTH) as response:
            await response.read()
    assert len(sandbox.jobs) == 1  # the job exists although its submitter never heard of it
    assert sandbox.credits == before - 40 - 2
    status, _ = await _post(http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}})
    assert status == 202
    assert sandbox.faults.lose_post_answers == 0


async def test_late_post_answers_arrive_after_the_work_is_done(
    sandbox: SandboxProvider, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.post_answer_delay = 0.5
    with pytest.raises(TimeoutError):
        async with http.post(
            f"{sandbox.base_url}/v1/videos/generate",
            json={"model": "m", "input": {}},
            headers=AUTH,
            timeout=aiohttp.ClientTimeout(total=0.1),
        ) as response:
            await response.read()
    assert len(sandbox.jobs) == 1  # created before the answer was held back
    sandbox.faults.post_answer_delay = 0.05
    status, body = await _post(http, sandbox, "/v1/videos/generate", {"model": "m", "input": {}})
    assert (status, body["jobId"] in sandbox.jobs) == (202, True)


async def test_status_storm_429(sandbox: SandboxProvider, http: aiohttp.ClientSession) -> None:
    sandbox.faults.update({"status_storm_429": 2})
    answers = []
    for _ in range(3):
        async with http.get(f"{sandbox.base_url}/api/v1/jobs/nope", headers=AUTH) as response:
            answers.append((response.status, response.headers.get("Retry-After")))
    assert answers == [(429, "1"), (429, "1"), (404, None)]
