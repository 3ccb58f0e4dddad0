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
    status_storm_429: int = 0  # the next N API requests answer 429 with Retry-After: 1 (a burst, not the hourly cap)
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
    # Report this value verbatim as every answer's and webhook's creditsUsed (any JSON value: -5, "abc",
    # 1e20, NaN...). The sandbox's own balance is charged this when it is a non-negative int, else the price.
    credits_used: Any = None
    omit_credits_used: bool = False  # answers, stream chunks and webhooks carry no creditsUsed at all
    # Report this exact string as every output URL (sync images, media, job status, webhooks); the real
    # file is still stored and served, so a test can switch back and fetch it.
    output_url: str | None = None
    # Each job's webhook is preceded by a contradicting one: "failed" before the real "completed", or
    # "completed" (with an output URL) before the real "failed". The job's status poll tells the truth.
    contradicting_webhooks: bool = False
    contradicting_webhook_last: bool = False  # with contradicting_webhooks: the real webhook first, then the lie
    # The next N API POSTs are processed (job created, credits charged) but the connection is closed
    # without an answer, as if the answer were lost in transit.
    lose_post_answers: int = 0
    post_answer_delay: float = 0.0  # process API POSTs at once, then wait this long before answering
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
            # Types come from the defaults, not the current value: a None-default field (credits_used)
            # takes any JSON value, even after a number was set.
            default = known[name].default
            sample = getattr(self, name) if default is dataclasses.MISSING else default
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if isinstance(sample, bool) and not isinstance(value, bool):
                raise ValueError(f"{name} takes true or false")
            if isinstance(sample, int | float) and not isinstance(sample, bool) and not numeric:
                raise ValueError(f"{name} takes a number")
            if name == "output_url" and value is not None and not isinstance(value, str):
                raise ValueError("output_url takes a string or null")
            setattr(self, name, value)

    def as_dict(self) -> dict[str, Any]:
        """The current switches, as JSON."""
        return dataclasses.asdict(self)
