"""The sandbox's switches: failures and behaviours a test (or a curious operator) turns on.

Set them as attributes (``sandbox.faults.fail_jobs = True``) or over HTTP
(``POST /_sandbox/faults`` with a JSON object of field → value).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """Everything off by default: the sandbox then behaves like a healthy Hypereal."""

    server_errors: int = 0  # the next N API requests answer 500 (the structured error shape)
    status_error: int | None = None  # the next API request answers this status once...
    status_error_body: Any = None  # ...with this JSON body (None = no body)
    malformed: int = 0  # the next N API requests answer 200 with an HTML body
    delay_seconds: float = 0.0  # wait this long before answering API requests
    fail_jobs: bool = False  # async jobs end "failed"
    drop_webhooks: bool = False  # never POST webhooks
    duplicate_webhooks: bool = False  # POST every webhook twice
    rate_limit_per_hour: int | None = None  # answer 429 beyond this many API requests in a rolling hour
    early_status_failures: int = 0  # the first N polls of a job say "Failed to check status" (Hypereal's quirk)
    job_delay: float | None = None  # override the provider's job duration
    credits_used: int | None = None  # report this as every request's creditsUsed
    chat_reply: str | None = None  # the exact chat answer (default: echoes the last user message)
    chat_chunk_size: int = 12  # characters per streamed delta
    chat_chunk_delay: float = 0.0  # seconds between streamed deltas
    chat_fail_after_chunks: int | None = None  # drop the connection after N deltas (no [DONE])
    chat_no_done: bool = False  # end the stream cleanly but without "data: [DONE]"
    chat_finish_reason: str = "stop"  # "length" simulates max_tokens
    image_async: bool = False  # image generation answers {"jobId"} instead of data
    redirect_posts: bool = False  # POSTs answer 302 to the same path (clients must not follow)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes a test may attach

    def update(self, values: dict[str, Any]) -> None:
        """Set fields from a JSON object; unknown names or wrong types raise ``ValueError``."""
        known = {f.name: f for f in dataclasses.fields(self)}
        for name, value in values.items():
            if name not in known:
                raise ValueError(f"unknown fault {name!r}; known: {', '.join(sorted(known))}")
            current = getattr(self, name)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if isinstance(current, bool) and not isinstance(value, bool):
                raise ValueError(f"{name} takes true or false")
            if isinstance(current, int | float) and not isinstance(current, bool) and not numeric:
                raise ValueError(f"{name} takes a number")
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        """The current switches, as JSON."""
        return dataclasses.asdict(self)
