"""``POST /hypereal/webhook/{token}``: Hypereal tells us a job finished.

Nothing signs Hypereal's webhooks, so the URL is the secret: one random token per job, stored
hashed. The handler only checks and records; the job service confirms the result with a status
poll in the background. Answers: unknown token 404, other methods 405 (aiohttp), body over 64 KiB
413, not JSON or the wrong shape 400, a ``jobId`` that is not the token's job 409, a job already
finished 200 with no effect, otherwise 200 at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web
from pydantic import ValidationError

from bot.hypereal.models import WebhookPayload

if TYPE_CHECKING:
    from bot.jobs.service import JobService

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
ROUTE = "/hypereal/webhook/{token}"


def _answer(status: int, reason: str) -> web.Response:
    return web.json_response({"status": "ok" if status == 200 else "error", "detail": reason}, status=status)


def install_webhook_route(jobs: JobService) -> Callable[[web.Application], None]:
    """A route installer for :func:`bot.web.create_web_app` that serves the webhook for ``jobs``."""

    async def webhook(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _answer(413, "body too large")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _answer(413, "body too large")
        token = request.match_info["token"]
        job = await jobs.job_for_token(token) if 16 <= len(token) <= 128 else None
        if job is None:
            return _answer(404, "unknown webhook")
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _answer(400, "body is not JSON")
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
