"""The async Hypereal client: every endpoint of the API contract, typed answers, typed errors.

Rules it keeps: a POST is never retried (it may have charged credits) and never follows a redirect
(a 302 can turn it into a GET); GETs (job polls) retry with exponential backoff and full jitter;
every request first takes a slot from the shared :class:`RequestLimiter`; the key goes only into
the Authorization header — never into a log line, a repr or an exception (error text from a body has it
redacted, see ``bot.hypereal.errors``). Answers are validated by the models (``bot.hypereal.models``):
malformed credits and links are normalised away and logged here by field name, never with the body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from pydantic import BaseModel, SecretStr, ValidationError
from yarl import URL

from bot.hypereal.errors import (
    AnswerLost,
    HyperealError,
    MalformedResponse,
    ProviderTimeout,
    RateLimited,
    RedirectRefused,
    ServerError,
    StreamInterrupted,
    error_for_status,
    error_message,
)
from bot.hypereal.fields import clean_error_text
from bot.hypereal.limiter import RequestLimiter
from bot.hypereal.models import ChatMessage, ChatResponse, ImageResult, JobStatus, JobSubmission, MediaResult
from bot.hypereal.sse import SSEParseError, SSEParser, credits_of, delta_text, finish_reason
from bot.metrics import Metrics
from bot.urls import url_problem

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

# GET failures worth another try: transient on Hypereal's side or ours.
_RETRYABLE = (RateLimited, ServerError, ProviderTimeout, MalformedResponse)


def _retry_after(response: aiohttp.ClientResponse) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return None if value is None else max(0.0, float(value))
    except ValueError:
        return None


# Metric label per POST path; every GET is a job status poll (its path holds the job id, never a label).
_ENDPOINTS = {
    "/v1/chat": "chat",
    "/v1/images/generate": "images",
    "/v1/videos/generate": "videos",
    "/api/media/generate": "media",
}


def endpoint_name(method: str, path: str) -> str:
    """The bounded endpoint label for a request (``job_status`` for every GET)."""
    return "job_status" if method == "GET" else _ENDPOINTS.get(path, "other")


def _without_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


class HyperealClient:
    """One client per process, sharing the bot's aiohttp session and one limiter per key."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        api_key: SecretStr,
        limiter: RequestLimiter | None = None,
        timeout: float = 300.0,
        get_retries: int = 4,
        retry_base_delay: float = 0.5,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.limiter = limiter or RequestLimiter()
        self.timeout = timeout
        self.get_retries = get_retries
        self.retry_base_delay = retry_base_delay
        self._sleep = sleep
        self.metrics = metrics or Metrics()

    def __repr__(self) -> str:
        return f"HyperealClient(base_url={self.base_url!r})"

    def _secrets(self) -> tuple[str, ...]:
        """What must never appear in error text taken from a Hypereal body."""
        return (self._api_key.get_secret_value(),)

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self._api_key.get_secret_value()}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }

    # ── transport ────────────────────────────────────────────────────────────

    def _observe(self, method: str, path: str, status: int | str, started: float) -> None:
        self.metrics.observe_hypereal(endpoint_name(method, path), status, time.monotonic() - started)

    async def _read_body(self, response: aiohttp.ClientResponse, started: float, method: str, path: str) -> Any:
        """Status checks and JSON parsing shared by every call; raises the typed error."""
        self._observe(method, path, response.status, started)
        log.info(
            "hypereal request method=%s path=%s status=%s ms=%d",
            method,
            path,
            response.status,
            (time.monotonic() - started) * 1000,
        )
        if 300 <= response.status < 400:
            raise RedirectRefused(response.status, response.headers.get("Location"), self._secrets())
        raw = await response.read()
        try:
            body: Any = json.loads(raw) if raw else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if response.status >= 400:
            raise error_for_status(response.status, body, _retry_after(response), secrets=self._secrets())
        if not isinstance(body, dict):
            kind = response.headers.get("Content-Type", "?")
            raise MalformedResponse(
                f"Hypereal {method} {path} answered {response.status} with a non-JSON body ({kind})"
            )
        if (
            "error" in body
            and error_message(body)
            and not any(k in body for k in ("data", "jobId", "choices", "status"))
        ):
            raise error_for_status(400, body, secrets=self._secrets())
        return body

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One POST, never retried, never redirected."""
        await self.limiter.acquire()
        started = time.monotonic()
        try:
            async with self._session.post(
                f"{self.base_url}{path}",
                json=payload,
                headers=self._headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            ) as response:
                return await self._read_body(response, started, "POST", path)
        except TimeoutError:
            self._observe("POST", path, "timeout", started)
            raise ProviderTimeout(f"Hypereal POST {path} timed out after {self.timeout:.0f} s") from None
        except aiohttp.ClientConnectorError as exc:
            # Never connected: the request cannot have reached Hypereal.
            self._observe("POST", path, "unreachable", started)
            raise ServerError(0, f"connection to Hypereal failed on POST {path}: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            # Sent, then the connection dropped (disconnect, reset, cut-off body): Hypereal may have acted on it,
            # so a caller must treat it like a timeout — never resend, never assume it was refused.
            self._observe("POST", path, "dropped", started)
            raise AnswerLost(f"connection to Hypereal dropped on POST {path}: {type(exc).__name__}") from None

    async def _get(self, url: URL) -> dict[str, Any]:
        """A GET with retries (exponential backoff, full jitter; Retry-After honoured)."""
        attempt = 0
        while True:
            try:
                return await self._get_once(url)
            except _RETRYABLE as exc:
                if attempt >= self.get_retries:
                    raise
                delay = random.uniform(0, self.retry_base_delay * 2**attempt)
                if isinstance(exc, RateLimited) and exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                attempt += 1
                log.info("hypereal GET retry path=%s attempt=%s delay=%.2f reason=%s", url.path, attempt, delay, exc)
                await self._sleep(delay)

    async def _get_once(self, url: URL) -> dict[str, Any]:
        await self.limiter.acquire()
        started = time.monotonic()
        try:
            async with self._session.get(
                url, headers=self._headers(), allow_redirects=False, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                return await self._read_body(response, started, "GET", url.path)
        except TimeoutError:
            self._observe("GET", url.path, "timeout", started)
            raise ProviderTimeout(f"Hypereal GET {url.path} timed out") from None
        except aiohttp.ClientError as exc:
            self._observe("GET", url.path, "unreachable", started)
            raise ServerError(0, f"connection to Hypereal failed on GET {url.path}: {type(exc).__name__}") from None

    @staticmethod
    def _parse(model: type[ModelT], body: dict[str, Any], what: str) -> ModelT:
        try:
            result = model.model_validate(body)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in error["loc"]) or "?" for error in exc.errors())
            raise MalformedResponse(f"Hypereal {what} answer has an unexpected shape (fields: {fields})") from None
        problems = getattr(result, "problems", ())
        if problems:
            # Field names and reasons only: the body itself may hold anything.
            log.warning("hypereal %s answer had invalid fields, ignored: %s", what, "; ".join(problems))
        return result

    # ── endpoints ────────────────────────────────────────────────────────────

    async def chat(
        self,
        messages: list[ChatMessage],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatResponse:
        """A whole chat answer at once (``stream: false``)."""
        body = await self._post("/v1/chat", self._chat_payload(messages, model, temperature, max_tokens, stream=False))
        return self._parse(ChatResponse, body, "chat")

    def chat_stream(
        self,
        messages: list[ChatMessage],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> ChatStream:
        """A streamed chat answer: ``async with client.chat_stream(...) as stream: async for delta in stream``."""
        return ChatStream(self, self._chat_payload(messages, model, temperature, max_tokens, stream=True))

    @staticmethod
    def _chat_payload(
        messages: list[ChatMessage],
        model: str | None,
        temperature: float | None,
        max_tokens: int | None,
        *,
        stream: bool,
    ) -> dict[str, Any]:
        # `stream` is always explicit: Hypereal's documented default is true.
        return _without_none(
            {
                "model": model,
                "messages": [m.model_dump() for m in messages],
                "stream": stream,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
        )

    async def generate_image(
        self,
        prompt: str,
        *,
        model: str,
        aspect_ratio: str | None = None,
        output_format: str | None = None,
        size: str | None = None,
        resolution: str | None = None,
        reference_images: list[str] | None = None,
    ) -> ImageResult:
        """Text to image (synchronous; can take minutes). May answer a job id to poll with ``type=image``.

        ``reference_images`` (URLs) only for models whose catalog inputs list them (``gpt-image-2``).
        """
        payload = _without_none(
            {
                "prompt": prompt,
                "model": model,
                "aspect_ratio": aspect_ratio,
                "output_format": output_format,
                "size": size,
                "resolution": resolution,
                "reference_images": reference_images or None,
            }
        )
        return self._image_result(await self._post("/v1/images/generate", payload))

    async def edit_image(
        self,
        prompt: str,
        *,
        model: str,
        images: list[str],
        aspect_ratio: str | None = None,
        output_format: str | None = None,
        resolution: str | None = None,
    ) -> ImageResult:
        """Edit ``images[0]`` (the rest are references) with an edit model; URLs, not bytes."""
        payload = _without_none(
            {
                "prompt": prompt,
                "model": model,
                "images": images,
                "aspect_ratio": aspect_ratio,
                "output_format": output_format,
                "resolution": resolution,
            }
        )
        return self._image_result(await self._post("/v1/images/generate", payload))

    def _image_result(self, body: dict[str, Any]) -> ImageResult:
        result = self._parse(ImageResult, body, "image")
        if not result.data and not result.job_id:
            raise MalformedResponse(result.output_url_problem or "Hypereal image answer has neither data nor jobId")
        return result

    async def generate_video(
        self, model: str, input: dict[str, Any], *, webhook_url: str | None = None
    ) -> JobSubmission:
        """Submit a video job (202 + jobId)."""
        body = await self._post(
            "/v1/videos/generate", _without_none({"model": model, "input": input, "webhook_url": webhook_url})
        )
        return self._parse(JobSubmission, body, "video")

    async def generate_media(self, model: str, input: dict[str, Any], *, webhook_url: str | None = None) -> MediaResult:
        """Audio (tts, clone, asr) and 3D: a finished ``outputUrl``, a transcript, or a ``jobId`` to wait for."""
        body = await self._post(
            "/api/media/generate", _without_none({"model": model, "input": input, "webhook_url": webhook_url})
        )
        result = self._parse(MediaResult, body, "media")
        if not (result.output_url or result.job_id or result.text is not None):
            raise MalformedResponse(
                result.output_url_problem or "Hypereal media answer has no outputUrl, jobId or text"
            )
        return result

    async def job_status(
        self, job_id: str, *, model: str | None = None, type: str | None = None, poll_url: str | None = None
    ) -> JobStatus:
        """Poll a job. ``poll_url`` is used when Hypereal gave one on our own host (the key is never sent elsewhere)."""
        url = self._status_url(job_id, model, type, poll_url)
        status = self._parse(JobStatus, await self._get(url), "job status")
        if status.error:
            # The model already cleaned and capped it; only the client knows the key to redact.
            status = status.model_copy(update={"error": clean_error_text(status.error, self._secrets())})
        return status

    def _status_url(self, job_id: str, model: str | None, type: str | None, poll_url: str | None) -> URL:
        base = URL(self.base_url)
        if poll_url and url_problem(poll_url) is None:
            # Same check as the models': a stored pollUrl from before it existed may be malformed.
            candidate = URL(poll_url)
            if (candidate.scheme, candidate.raw_host, candidate.port) == (base.scheme, base.raw_host, base.port):
                return candidate
            log.warning("ignoring pollUrl on a foreign host job=%s", job_id)
        elif poll_url:
            log.warning("ignoring a malformed pollUrl job=%s", job_id)
        url = base / "api" / "v1" / "jobs" / job_id
        return url.with_query(_without_none({"model": model, "type": type}))


class ChatStream:
    """The deltas of a streamed chat answer. After iteration: ``credits_used``, ``finish_reason``, ``completed``."""

    def __init__(self, client: HyperealClient, payload: dict[str, Any]) -> None:
        self._client = client
        self._payload = payload
        self._response: aiohttp.ClientResponse | None = None
        self.credits_used: int | None = None
        self.finish_reason: str | None = None
        self.completed = False

    async def __aenter__(self) -> ChatStream:
        await self._open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the connection (also when the reader stopped early, e.g. the Stop button)."""
        if self._response is not None:
            self._response.release()
            self._response.close()
            self._response = None

    async def _open(self) -> None:
        client = self._client
        await client.limiter.acquire()
        started = time.monotonic()
        try:
            response = await client._session.post(
                f"{client.base_url}/v1/chat",
                json=self._payload,
                headers=client._headers(),
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=client.timeout),
            )
        except TimeoutError:
            client._observe("POST", "/v1/chat", "timeout", started)
            raise ProviderTimeout("Hypereal chat stream did not start in time") from None
        except aiohttp.ClientError as exc:
            client._observe("POST", "/v1/chat", "unreachable", started)
            raise ServerError(0, f"connection to Hypereal failed on the chat stream: {type(exc).__name__}") from None
        content_type = response.headers.get("Content-Type", "")
        if response.status != 200 or "text/event-stream" not in content_type:
            try:
                await client._read_body(response, started, "POST", "/v1/chat")
            finally:
                response.release()
            raise MalformedResponse(f"Hypereal chat stream answered {content_type or 'no content type'}, not SSE")
        client._observe("POST", "/v1/chat", 200, started)
        log.info(
            "hypereal request method=POST path=/v1/chat status=200 stream=1 ms=%d", (time.monotonic() - started) * 1000
        )
        self._response = response

    def __aiter__(self) -> AsyncIterator[str]:
        return self._deltas()

    async def _deltas(self) -> AsyncIterator[str]:
        if self._response is None:
            await self._open()
        assert self._response is not None
        parser = SSEParser()
        try:
            async for chunk in self._response.content.iter_any():
                for event in parser.feed(chunk):
                    if event.done:
                        self.completed = True
                        return
                    text = self._absorb(event.data or {})
                    if text:
                        yield text
            for event in parser.close():
                if event.done:
                    self.completed = True
                    return
                text = self._absorb(event.data or {})
                if text:
                    yield text
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            raise StreamInterrupted(f"chat stream dropped: {type(exc).__name__}") from None
        except TimeoutError:
            raise StreamInterrupted("chat stream stalled (read timeout)") from None
        except SSEParseError as exc:
            raise StreamInterrupted(f"chat stream sent {exc}") from None

    def _absorb(self, data: dict[str, Any]) -> str:
        message = error_message(data, self._client._secrets()) if "error" in data else None
        if message:
            raise StreamInterrupted(f"Hypereal reported an error mid-stream: {message}")
        credits, problem = credits_of(data)
        if problem:
            log.warning("hypereal chat stream reported credits that %s; ignored", problem)
        elif credits is not None:
            self.credits_used = credits
        reason = finish_reason(data)
        if reason is not None:
            self.finish_reason = reason
            self.completed = True
        return delta_text(data)


__all__ = ["ChatStream", "HyperealClient", "HyperealError"]
