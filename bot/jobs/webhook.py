"""``POST /hypereal/webhook/{token}``: Hypereal tells us a job finished.

Nothing signs Hypereal's webhooks, so the URL is the secret: one random token per job, stored
hashed. The handler only checks and records; the job service confirms the result with a status
poll in the background. Answers: unknown token 404, other methods 405 (aiohttp), body over 64 KiB
413, a body not complete within ``BODY_TIMEOUT_SECONDS`` 408, not JSON, nested deeper than
``MAX_NESTING`` or the wrong shape 400, a ``jobId`` that is not the token's job 409, a job already
finished 200 with no effect, otherwise 200 at once. Nothing a client sends is logged per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import ValidationError

from bot.hypereal.models import WebhookPayload
from bot.web import BODY_TIMEOUT_SECONDS

if TYPE_CHECKING:
    from bot.jobs.service import JobService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
# Hypereal's webhook is two levels deep; json.loads recurses per level and dies past ~1000.
MAX_NESTING = 64
ROUTE = "/hypereal/webhook/{token}"

# A string (to its closing quote, or to the end when unterminated: no backtracking, so linear), or a bracket.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)


class _TooLarge(Exception):
    pass


def nesting_exceeds(text: str, limit: int = MAX_NESTING) -> bool:
    """Whether the JSON in ``text`` opens more than ``limit`` arrays/objects inside one another.

    Brackets inside strings do not count. Linear in the length of ``text``.
    """
    if text.count("[") + text.count("{") <= limit:
        return False  # the usual case, without a scan
    depth = 0
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif token in ("]", "}"):
            depth -= 1
    return False


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body, however many TCP writes or chunks it comes in; raises _TooLarge past ``limit``.

    ``request.content.read(n)`` answers with what is buffered so far, not the body: loop to EOF.
    """
    body = bytearray()
    while True:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise _TooLarge


def parse_json(body: bytes) -> tuple[object, None] | tuple[None, str]:
    """(value, None), or (None, why it is refused): not JSON, or nested too deeply to parse safely."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return None, "body is not JSON"
    if nesting_exceeds(text):
        return None, f"body is nested deeper than {MAX_NESTING} levels"
    try:
        return json.loads(text), None
    except (ValueError, RecursionError):  # JSONDecodeError, huge integers, lone surrogates
        return None, "body is not JSON"


def _answer(status: int, reason: str) -> web.Response:
    return web.json_response({"status": "ok" if status == 200 else "error", "detail": reason}, status=status)


def install_webhook_route(
    jobs: JobService, *, body_timeout: float = BODY_TIMEOUT_SECONDS
) -> Callable[[web.Application], None]:
    """A route installer for :func:`bot.web.create_web_app` that serves the webhook for ``jobs``.

    ``body_timeout``: how long a client may take to send the whole body (then 408).
    """

    async def webhook(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _answer(413, "body too large")
        try:
            async with asyncio.timeout(body_timeout):
                body = await read_body(request)
        except _TooLarge:
            return _answer(413, "body too large")
        except TimeoutError:
            return _answer(408, f"body not received within {body_timeout:g} s")
        except web.RequestPayloadError:  # broken chunked framing, a body that does not decompress
            return _answer(400, "body could not be read (check its Transfer-Encoding and Content-Encoding)")
        except ConnectionError:  # the client went away: nobody to answer, nothing to log
            return _answer(400, "connection closed before the body was complete")
        token = request.match_info["token"]
        job = await jobs.job_for_token(token) if 16 <= len(token) <= 128 else None
        if job is None:
            return _answer(404, "unknown webhook")
        raw, refused = parse_json(body)
        if refused is not None:
            return _answer(400, refused)
        if not isinstance(raw, dict):
            return _answer(400, "body is not a JSON object")
        try:
            payload = WebhookPayload.model_validate(raw)
        except ValidationError:
            return _answer(400, "body is not a Hypereal job webhook (needs jobId and status)")
        status, reason = await jobs.accept_webhook(job, raw, payload.job_id)
        return _answer(status, reason)

    def install(app: web.Application) -> None:
        app.router.add_post(ROUTE, webhook)

    return install
