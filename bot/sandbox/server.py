"""The sandbox Hypereal: the API contract of ``hypereal-api.md`` served on loopback, spending nothing.

It authenticates, answers every endpoint with the documented shapes (SSE chat, sync images, async
video/audio/3D jobs that finish after a delay, POST their webhook and answer polls), keeps a credit
balance with "Insufficient credits", rate-limits, and serves the outputs it made as small real
files under ``/files/``. Tests and operators switch failures on through :class:`Faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.catalog import Catalog, quote_price
from bot.sandbox import media
from bot.sandbox.faults import Faults

log = logging.getLogger(__name__)

PriceOf = Callable[[str, dict[str, Any]], int]
TTS_MODELS = ("audio-tts", "minimax-speech-02")
MODEL3D_PREFIXES = ("hunyuan3d-", "tripo3d-", "meshy6-")
MULTIVIEW_KEYS = ("front_image_url", "back_image_url", "left_image_url", "right_image_url")
_API_PREFIXES = ("/v1/", "/api/")
JSON_BODY = web.RequestKey("json_body", object)
# Set on a POST whose answer Faults.lose_post_answers will lose; ANSWER_HELD once delay/loss were applied.
LOSE_ANSWER = web.RequestKey("lose_answer", bool)
ANSWER_HELD = web.RequestKey("answer_held", bool)


@dataclass(frozen=True)
class RecordedRequest:
    """One API call the sandbox received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    authorized: bool
    at: float


@dataclass
class SandboxJob:
    """An async job in the sandbox."""

    id: str
    model: str
    type: str
    extension: str
    credits_used: int
    webhook_url: str | None
    status: str = "processing"
    output_url: str | None = None
    error: str | None = None
    polls: int = 0
    created_at: float = field(default_factory=time.time)


def catalog_prices(catalog: Catalog) -> PriceOf:
    """The sandbox charges what the bot's catalog quotes (so a quoted price and the charge agree).

    Chat scales with the conversation's length, video with its duration, images with their
    resolution, as the catalog says; a model the catalog does not know costs 40 credits as a job
    (a body with ``input``) and 4 otherwise.
    """

    def price(model: str, body: dict[str, Any]) -> int:
        spec = catalog.get(model)
        if spec is None:
            return 40 if "input" in body else 4
        given = body.get("input") if isinstance(body.get("input"), dict) else body
        duration = given.get("duration")
        resolution = given.get("resolution")
        chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []) if isinstance(m, dict))
        return quote_price(
            spec,
            duration=duration if isinstance(duration, int) and not isinstance(duration, bool) else None,
            resolution=resolution if isinstance(resolution, str) else None,
            conversation_chars=chars,
        )

    return price


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly application/json, like the real API (no charset parameter).
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json", headers=headers)


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return _json({"error": message, **extra}, status=status)


class SandboxProvider:
    """The sandbox server. ``await start()`` (or ``async with``), use ``base_url``, ``await close()``."""

    def __init__(
        self,
        api_key: str = "sandbox-key",
        *,
        job_delay: float = 0.3,
        credits: int = 1_000_000,
        price_of: PriceOf | None = None,
    ) -> None:
        self._api_key = api_key
        self.job_delay = job_delay
        self.credits = credits
        self.price_of = price_of or catalog_prices(Catalog.load())
        self.faults = Faults()
        self.requests: list[RecordedRequest] = []
        self.jobs: dict[str, SandboxJob] = {}
        self.webhooks_sent: list[tuple[str, dict[str, Any], int | str]] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        # time.monotonic() when each chat stream wrote its first token (benchmarks compare it to Discord edits).
        self.first_token_at: list[float] = []
        # API POSTs being processed right now, and the most at once (tests of the per-member in-flight limit).
        self.in_flight = 0
        self.max_in_flight = 0
        self.base_url = ""
        self.port = 0
        self._stamps: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"SandboxProvider(base_url={self.base_url!r})"

    # ── lifetime ─────────────────────────────────────────────────────────────

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 = a free port); returns the base URL."""
        app = web.Application(middlewares=[self._api_middleware], client_max_size=8 * 1024 * 1024)
        app.router.add_post("/v1/chat", self._chat)
        app.router.add_post("/v1/images/generate", self._images)
        app.router.add_post("/v1/videos/generate", self._videos)
        app.router.add_post("/api/media/generate", self._media)
        app.router.add_get("/api/v1/jobs/{job_id}", self._job_status)
        app.router.add_get("/files/{name}", self._file)
        app.router.add_get("/_sandbox/faults", self._get_faults)
        app.router.add_post("/_sandbox/faults", self._set_faults)
        app.router.add_post("/_sandbox/reset", self._reset)
        app.router.add_post("/_sandbox/jobs/{job_id}/finish", self._finish_now)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
        self.port = sockets[0].getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self._http = aiohttp.ClientSession()
        log.info("sandbox Hypereal listening on %s", self.base_url)
        return self.base_url

    async def close(self) -> None:
        """Stop the jobs, the webhook client and the server."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> SandboxProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def output_urls(self) -> list[str]:
        """Every output URL the sandbox has handed out so far."""
        return [f"{self.base_url}/files/{name}" for name in self.files]

    def reset(self) -> None:
        """Forget faults, requests and jobs."""
        self.faults = Faults()
        self.requests.clear()
        self.jobs.clear()
        self.webhooks_sent.clear()
        self.first_token_at.clear()
        self._stamps.clear()
        self.max_in_flight = self.in_flight

    # ── the API gate: recording, auth, faults ────────────────────────────────

    @web.middleware
    async def _api_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(_API_PREFIXES):
            return await handler(request)
        if request.method != "POST":
            return await self._gate(request, handler)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._gate(request, handler)
        finally:
            self.in_flight -= 1

    async def _gate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                body = "<not json>"
        authorized = request.headers.get("Authorization") == f"Bearer {self._api_key}"
        now = time.monotonic()
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.query), body, authorized, now))
        faults = self.faults
        if faults.delay_seconds:
            await asyncio.sleep(faults.delay_seconds)
        if not authorized:
            return _error(401, "Unauthorized. Invalid or missing API key")
        if faults.rate_limit_per_hour is not None:
            while self._stamps and self._stamps[0] <= now - 3600:
                self._stamps.popleft()
            if len(self._stamps) >= faults.rate_limit_per_hour:
                return _json(
                    {"error": "Rate limit exceeded: 1000 requests per hour"}, 429, headers={"Retry-After": "60"}
                )
            self._stamps.append(now)
        if faults.status_storm_429 > 0:
            faults.status_storm_429 -= 1
            busy = {"error": "Too many requests: queued due to high demand, retry shortly"}
            return _json(busy, 429, headers={"Retry-After": "1"})
        if faults.redirect_posts and request.method == "POST":
            raise web.HTTPFound(location=request.path)
        if faults.server_errors > 0:
            faults.server_errors -= 1
            return _json({"error": {"code": "E9999", "message": "Internal error", "type": "api_error"}}, 500)
        if faults.status_error is not None:
            status, error_body = faults.status_error, faults.status_error_body
            faults.status_error, faults.status_error_body = None, None
            if error_body is None:
                return web.Response(status=status)
            return _json(error_body, status)
        if faults.malformed > 0:
            faults.malformed -= 1
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if request.method == "POST" and not isinstance(body, dict):
            return _error(400, "Request body must be a JSON object")
        request[JSON_BODY] = body
        if request.method == "POST" and faults.lose_post_answers > 0:
            faults.lose_post_answers -= 1  # claimed before processing, so concurrent POSTs each take one
            request[LOSE_ANSWER] = True
        response = await handler(request)
        if request.method == "POST" and not response.prepared:
            await self._hold_answer(request)
        return response

    async def _hold_answer(self, request: web.Request) -> bool:
        """Apply ``post_answer_delay`` and ``lose_post_answers`` to a processed POST; True when its answer is lost.

        Runs once per request: the chat stream calls it before its first byte, the middleware for the rest.
        """
        if request.get(ANSWER_HELD):
            return bool(request.get(LOSE_ANSWER))
        request[ANSWER_HELD] = True
        if self.faults.post_answer_delay > 0:
            await asyncio.sleep(self.faults.post_answer_delay)
        if request.get(LOSE_ANSWER):
            # The work is done and charged; closing the socket now loses the answer "in transit".
            if request.transport is not None:
                request.transport.close()
            return True
        return False

    def _charge(self, model: str, body: dict[str, Any]) -> int | web.Response:
        """Take the price from the sandbox's balance, or the "Insufficient credits" answer.

        ``faults.credits_used`` is charged only when it is a real figure (a non-negative int); a bogus one
        (-5, "abc") is just reported (:meth:`_with_credits`) while the model's price is charged.
        """
        forced = self.faults.credits_used
        usable = isinstance(forced, int) and not isinstance(forced, bool) and forced >= 0
        price = forced if usable else self.price_of(model, body)
        if self.credits < price:
            return _json({"error": "Insufficient credits", "required": price, "available": self.credits}, 402)
        self.credits -= price
        return price

    def _with_credits(self, answer: dict[str, Any], charged: int) -> dict[str, Any]:
        """``answer`` with its ``creditsUsed``: the charge, or what the faults say to report (or nothing)."""
        if self.faults.omit_credits_used:
            return answer
        forced = self.faults.credits_used
        return {**answer, "creditsUsed": charged if forced is None else forced}

    def _reported_url(self, real_url: str) -> str:
        """The output URL to hand out: the real one, or ``faults.output_url`` verbatim."""
        return real_url if self.faults.output_url is None else self.faults.output_url

    def _store_file(self, data: bytes, extension: str) -> str:
        name = f"{secrets.token_hex(8)}.{extension}"
        self.files[name] = (data, media.CONTENT_TYPES[extension])
        return f"{self.base_url}/files/{name}"

    # ── chat ─────────────────────────────────────────────────────────────────

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = request[JSON_BODY]  # type: ignore[assignment]
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in messages)
        ):
            return _error(400, "messages is required")
        model = str(body.get("model") or "claude-sonnet-4-6")
        price = self._charge(model, body)
        if isinstance(price, web.Response):
            return price
        reply = self.faults.chat_reply
        if reply is None:
            last_user = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
            reply = f"Sandbox reply to: {last_user} (turns: {len(messages)})"
        if body.get("stream") is False:
            answer = {
                "id": f"chat-{secrets.token_hex(6)}",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": self.faults.chat_finish_reason,
                    }
                ],
            }
            return _json(self._with_credits(answer, price))
        return await self._chat_stream(request, reply, price)

    async def _chat_stream(self, request: web.Request, reply: str, price: int) -> web.StreamResponse:
        faults = self.faults
        if await self._hold_answer(request):
            return web.Response()  # never sent: the connection is already closed
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        chat_id = f"chat-{secrets.token_hex(6)}"
        await response.write(b": keep-alive\n\n")
        size = max(1, faults.chat_chunk_size)
        pieces = [reply[i : i + size] for i in range(0, len(reply), size)]
        for number, piece in enumerate(pieces):
            if faults.chat_fail_after_chunks is not None and number >= faults.chat_fail_after_chunks:
                # The connection drops mid-answer: no final chunk, no [DONE].
                if request.transport is not None:
                    request.transport.close()
                return response
            chunk = {"id": chat_id, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            if number == 0:
                self.first_token_at.append(time.monotonic())
            if faults.chat_chunk_delay:
                await asyncio.sleep(faults.chat_chunk_delay)
        final = self._with_credits(
            {"id": chat_id, "choices": [{"index": 0, "delta": {}, "finish_reason": faults.chat_finish_reason}]}, price
        )
        await response.write(f"data: {json.dumps(final)}\n\n".encode())
        if not faults.chat_no_done:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # ── images ───────────────────────────────────────────────────────────────

    async def _images(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = request[JSON_BODY]  # type: ignore[assignment]
        model = body.get("model")
        if not model:
            return _error(400, "Model is required")
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error(400, "Prompt is required")
        if "edit" in str(model):
            images = body.get("images")
            if not isinstance(images, list) or not images or not all(isinstance(u, str) for u in images):
                return _error(400, "images must be a non-empty list of image URLs for edit models")
        if "forbidden" in prompt.lower():
            return _error(400, "Your request was rejected by the safety system.")
        price = self._charge(str(model), body)
        if isinstance(price, web.Response):
            return price
        fmt = "jpeg" if body.get("output_format") == "jpeg" else "png"
        data = media.render_image(prompt, aspect_ratio=body.get("aspect_ratio"), size=body.get("size"), fmt=fmt)
        if self.faults.image_async:
            job = self._new_job(str(model), "image", fmt, price, None, output=data)
            return _json(
                self._with_credits({"jobId": job.id, "status": "processing", "pollUrl": self._poll(job)}, price)
            )
        url = self._reported_url(self._store_file(data, fmt))
        answer = {
            "created": int(time.time()),
            "data": [{"url": url, "model": model}],
            "resultId": f"res-{secrets.token_hex(6)}",
        }
        return _json(self._with_credits(answer, price))

    # ── async jobs: video, audio, 3D ─────────────────────────────────────────

    async def _videos(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = request[JSON_BODY]  # type: ignore[assignment]
        model = body.get("model")
        if not model:
            return _error(400, "Model is required")
        if not isinstance(body.get("input"), dict):
            return _error(400, "input is required")
        price = self._charge(str(model), body)
        if isinstance(price, web.Response):
            return price
        job = self._new_job(str(model), "video", "mp4", price, body.get("webhook_url"), output=media.sample_mp4())
        answer = {"jobId": job.id, "status": "processing", "message": "Job queued", "pollUrl": self._poll(job)}
        return _json(self._with_credits(answer, price), 202)

    async def _media(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = request[JSON_BODY]  # type: ignore[assignment]
        model = str(body.get("model") or "")
        data = body.get("input")
        if not model:
            return _error(400, "Model is required")
        if not isinstance(data, dict):
            return _error(400, "input is required")
        problem = _media_input_problem(model, data)
        if problem:
            return _error(400, problem)
        price = self._charge(model, body)
        if isinstance(price, web.Response):
            return price
        webhook_url = body.get("webhook_url")
        if model in TTS_MODELS:
            extension = "wav" if data.get("format") == "wav" else "mp3"
            output = media.render_wav() if extension == "wav" else media.sample_mp3()
            url = self._reported_url(self._store_file(output, extension))
            return _json(self._with_credits({"success": True, "outputUrl": url}, price))
        if model == "audio-asr":
            segments = [
                {"text": "Hello from the sandbox.", "start": 0.0, "end": 1.2},
                {"text": "This is a transcript.", "start": 1.2, "end": 2.5},
            ]
            answer = {
                "success": True,
                "text": " ".join(s["text"] for s in segments),
                "duration": 2.5,
                "segments": segments,
            }
            return _json(self._with_credits(answer, price))
        if model == "audio-clone":
            job = self._new_job(model, "audio", "mp3", price, webhook_url, output=media.sample_mp3())
        else:
            job = self._new_job(model, "3d", "glb", price, webhook_url, output=media.render_glb())
        return _json(self._with_credits({"jobId": job.id, "status": "processing", "pollUrl": self._poll(job)}, price))

    def _poll(self, job: SandboxJob) -> str:
        return f"{self.base_url}/api/v1/jobs/{job.id}?model={job.model}&type={job.type}"

    def _new_job(
        self, model: str, kind: str, extension: str, price: int, webhook_url: Any, *, output: bytes
    ) -> SandboxJob:
        job = SandboxJob(
            id=f"job_{secrets.token_hex(8)}",
            model=model,
            type=kind,
            extension=extension,
            credits_used=price,
            webhook_url=webhook_url if isinstance(webhook_url, str) else None,
        )
        self.jobs[job.id] = job
        delay = self.faults.job_delay if self.faults.job_delay is not None else self.job_delay
        task = asyncio.create_task(self._run_job(job, delay, output), name=f"sandbox-job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run_job(self, job: SandboxJob, delay: float, output: bytes) -> None:
        await asyncio.sleep(delay)
        await self.finish_job(job.id, output=output)

    async def finish_job(self, job_id: str, *, output: bytes | None = None) -> None:
        """End a job now (completed, or failed when ``faults.fail_jobs``) and send its webhook."""
        job = self.jobs.get(job_id)
        if job is None or job.status != "processing":
            return
        data = output if output is not None else media.sample_mp4()
        if self.faults.fail_jobs:
            job.status = "failed"
            job.error = "Generation failed (sandbox)"
            self.credits += job.credits_used  # Hypereal refunds failed jobs
        else:
            job.output_url = self._store_file(data, job.extension)
            job.status = "completed"
        lie = self._contradiction(job, data) if self.faults.contradicting_webhooks else None
        truth = self._webhook_payload(job, job.status, job.output_url, job.error)
        if lie is None:
            await self._send_webhook(job, truth)
            return
        for payload in (truth, lie) if self.faults.contradicting_webhook_last else (lie, truth):
            await self._send_webhook(job, payload)

    def _contradiction(self, job: SandboxJob, data: bytes) -> dict[str, Any]:
        """A plausible webhook saying the opposite of how the job really ended."""
        if job.status == "completed":
            return self._webhook_payload(job, "failed", None, "Generation failed (sandbox contradiction)")
        # A real, fetchable output: a bot that trusts this lie would deliver (and charge for) a failed job.
        return self._webhook_payload(job, "completed", self._store_file(data, job.extension), None)

    def _webhook_payload(
        self, job: SandboxJob, status: str, output_url: str | None, error: str | None
    ) -> dict[str, Any]:
        payload = self._with_credits(
            {"status": status, "jobId": job.id, "type": job.type, "model": job.model}, job.credits_used
        )
        if output_url:
            payload["outputUrl"] = self._reported_url(output_url)
        if error:
            payload["error"] = error
        return payload

    async def _send_webhook(self, job: SandboxJob, payload: dict[str, Any]) -> None:
        if job.webhook_url is None or self.faults.drop_webhooks or self._http is None:
            return
        for _ in range(2 if self.faults.duplicate_webhooks else 1):
            try:
                async with self._http.post(job.webhook_url, json=payload, timeout=aiohttp.ClientTimeout(10)) as r:
                    self.webhooks_sent.append((job.webhook_url, payload, r.status))
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.webhooks_sent.append((job.webhook_url, payload, type(exc).__name__))

    async def _job_status(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None:
            return _error(404, "Job not found")
        job.polls += 1
        if job.status == "processing" and job.polls <= self.faults.early_status_failures:
            return _json({"jobId": job.id, "status": "failed", "error": "Failed to check status"})
        answer = self._with_credits({"jobId": job.id, "status": job.status}, job.credits_used)
        if job.output_url:
            answer["outputUrl"] = self._reported_url(job.output_url)
        if job.error:
            answer["error"] = job.error
        return _json(answer)

    # ── files and control ────────────────────────────────────────────────────

    async def _file(self, request: web.Request) -> web.Response:
        stored = self.files.get(request.match_info["name"])
        if stored is None:
            return web.Response(status=404, text="no such file")
        data, content_type = stored
        return web.Response(body=data, content_type=content_type)

    async def _get_faults(self, request: web.Request) -> web.Response:
        return _json(self.faults.as_dict())

    async def _set_faults(self, request: web.Request) -> web.Response:
        try:
            values = await request.json()
            if not isinstance(values, dict):
                raise ValueError("send a JSON object of fault names to values")
            self.faults.update(values)
        except (ValueError, json.JSONDecodeError) as exc:
            return _error(400, str(exc))
        return _json(self.faults.as_dict())

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return _json({"ok": True})

    async def _finish_now(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        if job_id not in self.jobs:
            return _error(404, "Job not found")
        with contextlib.suppress(Exception):
            await self.finish_job(job_id)
        return _json({"ok": True, "status": self.jobs[job_id].status})


def _media_input_problem(model: str, data: dict[str, Any]) -> str | None:
    """What is missing from a media request's input, or None."""
    if model in TTS_MODELS:
        return None if isinstance(data.get("text"), str) and data["text"].strip() else "input.text is required"
    if model == "audio-asr":
        return None if isinstance(data.get("audio"), str) else "input.audio is required"
    if model == "audio-clone":
        ok = isinstance(data.get("text"), str) and isinstance(data.get("audio"), str)
        return None if ok else "input.text and input.audio are required"
    if model.startswith(MODEL3D_PREFIXES):
        if "multiview" in model:
            needed = MULTIVIEW_KEYS[:3] if model.startswith("hunyuan3d") else MULTIVIEW_KEYS
            missing = [key for key in needed if not isinstance(data.get(key), str)]
            return f"input.{missing[0]} is required" if missing else None
        if model == "meshy6-text-to-3d":
            return None if isinstance(data.get("prompt"), str) else "input.prompt is required"
        return None if isinstance(data.get("image"), str) else "input.image is required"
    return f"Unsupported model: {model}"
