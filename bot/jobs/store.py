"""The job table: one row per async job, moved through its states by conditional updates.

``submitting`` (stored before the request is sent) → ``pending`` (Hypereal gave a jobId) →
``completed`` | ``failed`` | ``cancelled`` → ``delivered`` (only from ``completed``).

Every transition is ``UPDATE … WHERE state IN (…)`` and reports whether it changed the row: only
the caller whose update won acts on it, so a webhook and the poller seeing the same result — or
a restart halfway — never settle or post twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.db import Database, Row

OPEN_STATES = ("submitting", "pending")
#: How long a claimed job stays with the process that claimed it without being claimed again. The
#: poller re-claims its own jobs (renewing the lease) every time one is due, at least every minute.
LEASE_SECONDS = 120.0
TERMINAL_STATES = ("completed", "failed", "cancelled", "delivered")
JOB_STATES = (*OPEN_STATES, *TERMINAL_STATES)


def new_job_id() -> str:
    """A job id: short (it doubles as the Discord message nonce, ≤ 25 characters) and unguessable."""
    return secrets.token_hex(8)


def new_webhook_token() -> str:
    """A per-job webhook secret: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def hash_token(token: str) -> str:
    """What the database keeps instead of the token: a leaked database does not leak webhook URLs."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Job:
    """One stored job."""

    id: str
    guild_id: int | None
    channel_id: int
    user_id: int
    category: str
    model: str
    poll_type: str
    request: dict[str, Any]
    state: str
    reservation_key: str | None
    estimate: int
    credits_used: int | None
    hypereal_job_id: str | None
    poll_url: str | None
    output_url: str | None
    error: str | None
    status_message_id: int | None
    result_message_id: int | None
    result_channel_id: int | None
    upload_limit: int | None
    poll_count: int
    delivery_attempts: int
    next_poll_at: float | None
    deadline_at: int
    created_at: int
    finished_at: int | None
    step_failures: int = 0
    last_polled_at: float | None = None
    confirm_requested: bool = False  # a webhook asked for a confirmation poll (it may not fail the job)

    @property
    def prompt(self) -> str:
        """The prompt (or text to speak) the job was asked with; empty for models that take neither."""
        given = self.request.get("input", {})
        return str(given.get("prompt") or given.get("text") or "")

    @property
    def is_open(self) -> bool:
        """Still waiting for Hypereal."""
        return self.state in OPEN_STATES


@dataclass(frozen=True)
class NewJob:
    """What a command knows when it asks for a job."""

    id: str
    guild_id: int | None
    channel_id: int
    user_id: int
    category: str
    model: str
    poll_type: str
    request: dict[str, Any]
    reservation_key: str
    estimate: int
    upload_limit: int | None = None


def _job(row: Row) -> Job:
    return Job(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        user_id=row["user_id"],
        category=row["category"],
        model=row["model"],
        poll_type=row["poll_type"],
        request=json.loads(row["request_json"]),
        state=row["state"],
        reservation_key=row["reservation_key"],
        estimate=row["estimate"],
        credits_used=row["credits_used"],
        hypereal_job_id=row["hypereal_job_id"],
        poll_url=row["poll_url"],
        output_url=row["output_url"],
        error=row["error"],
        status_message_id=row["status_message_id"],
        result_message_id=row["result_message_id"],
        result_channel_id=row["result_channel_id"],
        upload_limit=row["upload_limit"],
        poll_count=row["poll_count"],
        delivery_attempts=row["delivery_attempts"],
        next_poll_at=row["next_poll_at"],
        deadline_at=row["deadline_at"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        step_failures=row["step_failures"],
        last_polled_at=row["last_polled_at"],
        confirm_requested=bool(row["confirm_requested"]),
    )


class JobStore:
    """Reads and conditional writes of the ``jobs`` table."""

    def __init__(
        self, db: Database, clock: Callable[[], float], *, owner: str = "local", lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self.db = db
        self.clock = clock
        self.owner = owner  # this process (bot.processes): the lease holder of the jobs it works on
        self.lease_seconds = lease_seconds

    def _now(self) -> int:
        return int(self.clock())

    async def create(self, new: NewJob, *, webhook_token: str | None, deadline_at: int, recheck_at: float) -> Job:
        """Store a job in ``submitting`` before anything is sent to Hypereal.

        ``recheck_at`` is when a submit that never got an answer is given up (and refunded).
        """
        now = self._now()
        await self.db.execute(
            "INSERT INTO jobs (id, guild_id, channel_id, user_id, category, model, poll_type, request_json, state,"
            " reservation_key, estimate, webhook_token_hash, upload_limit, delivery_nonce, next_poll_at, deadline_at,"
            " created_at, updated_at, lease_owner, lease_until)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'submitting', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                new.id, new.guild_id, new.channel_id, new.user_id, new.category, new.model, new.poll_type,
                json.dumps(new.request), new.reservation_key, new.estimate,
                hash_token(webhook_token) if webhook_token else None, new.upload_limit, new.id, recheck_at,
                deadline_at, now, now, self.owner, self.clock() + self.lease_seconds,
            ),
        )  # fmt: skip
        job = await self.get(new.id)
        assert job is not None
        return job

    async def get(self, job_id: str) -> Job | None:
        """A job by our id."""
        row = await self.db.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    async def by_reservation(self, key: str) -> Job | None:
        """The job holding a reservation key, if any."""
        row = await self.db.fetch_one("SELECT * FROM jobs WHERE reservation_key = ?", (key,))
        return _job(row) if row else None

    async def by_token(self, token: str) -> Job | None:
        """The job a webhook token was handed out for.

        The lookup is by the token's SHA-256, so index timing says nothing about the token itself;
        the final check is constant-time all the same.
        """
        token_hash = hash_token(token)
        row = await self.db.fetch_one("SELECT * FROM jobs WHERE webhook_token_hash = ?", (token_hash,))
        if row is None or not hmac.compare_digest(row["webhook_token_hash"], token_hash):
            return None
        return _job(row)

    async def _transition(self, job_id: str, from_states: tuple[str, ...], sets: dict[str, Any]) -> bool:
        assignments = ", ".join(f"{column} = ?" for column in sets)
        marks = ", ".join("?" for _ in from_states)
        changed = await self.db.execute(
            f"UPDATE jobs SET {assignments}, updated_at = ? WHERE id = ? AND state IN ({marks})",
            (*sets.values(), self._now(), job_id, *from_states),
        )
        return changed == 1

    async def set_status_message(self, job_id: str, message_id: int) -> None:
        """Remember the "⏳ Generating" message the result will reply to."""
        await self.db.execute("UPDATE jobs SET status_message_id = ? WHERE id = ?", (message_id, job_id))

    async def mark_pending(
        self, job_id: str, hypereal_job_id: str, poll_url: str | None, credits_used: int | None, next_poll_at: float
    ) -> bool:
        """Hypereal accepted the job."""
        return await self._transition(
            job_id,
            ("submitting",),
            {
                "state": "pending",
                "hypereal_job_id": hypereal_job_id,
                "poll_url": poll_url,
                "credits_used": credits_used,
                "next_poll_at": next_poll_at,
            },
        )

    async def adopt(self, job_id: str, hypereal_job_id: str, next_poll_at: float) -> bool:
        """A ``submitting`` job whose answer was lost learns its Hypereal id (from its webhook), to be confirmed."""
        return await self._transition(
            job_id,
            ("submitting",),
            {
                "state": "pending",
                "hypereal_job_id": hypereal_job_id,
                "next_poll_at": next_poll_at,
                "confirm_requested": 1,
            },
        )

    async def store_webhook(self, job_id: str, payload: dict[str, Any]) -> None:
        """Keep the last webhook payload (for the record; the status poll decides)."""
        await self.db.execute("UPDATE jobs SET webhook_payload = ? WHERE id = ?", (json.dumps(payload), job_id))

    async def schedule_poll(self, job_id: str, at: float, *, polled: bool, scheduled: bool = True) -> None:
        """When to look at an unfinished job next, after a poll (``polled``) or without one.

        A poll clears the job's confirmation request; only ``scheduled`` polls (the poller's own,
        not a webhook's confirmation) count towards ``poll_count``, which Hypereal's early-failure
        quirk is measured in.
        """
        counted = 1 if polled and scheduled else 0
        await self.db.execute(
            "UPDATE jobs SET next_poll_at = ?, poll_count = poll_count + ?,"
            " last_polled_at = CASE WHEN ? = 1 THEN ? ELSE last_polled_at END,"
            " confirm_requested = CASE WHEN ? = 1 THEN 0 ELSE confirm_requested END"
            " WHERE id = ? AND state IN (?, ?, ?)",
            (at, counted, int(polled), self.clock(), int(polled), job_id, *OPEN_STATES, "completed"),
        )

    async def request_confirmation(self, job_id: str, at: float) -> bool:
        """A webhook arrived: poll the job once at ``at`` (or sooner if already due). Coalesced per job."""
        changed = await self.db.execute(
            "UPDATE jobs SET confirm_requested = 1,"
            " next_poll_at = CASE WHEN next_poll_at IS NULL OR next_poll_at > ? THEN ? ELSE next_poll_at END"
            " WHERE id = ? AND state = 'pending'",
            (at, at, job_id),
        )
        return changed == 1

    async def count_step_failure(self, job_id: str, retry_at: float) -> int:
        """A job step raised: count it and look again at ``retry_at``; returns the failures so far."""
        await self.db.execute(
            "UPDATE jobs SET step_failures = step_failures + 1, next_poll_at = ? WHERE id = ?", (retry_at, job_id)
        )
        return int(await self.db.fetch_value("SELECT step_failures FROM jobs WHERE id = ?", (job_id,)) or 0)

    async def due_now(self, job_id: str, at: float) -> None:
        """Make an unfinished job due at ``at`` (start-up resumes everything at once)."""
        await self.db.execute(
            "UPDATE jobs SET next_poll_at = ? WHERE id = ? AND state IN ('submitting', 'pending', 'completed')",
            (at, job_id),
        )

    async def mark_completed(self, job_id: str, output_url: str, credits_used: int | None) -> bool:
        """Hypereal finished the job; only the caller that gets True settles and delivers."""
        return await self._transition(
            job_id,
            OPEN_STATES,
            {
                "state": "completed",
                "output_url": output_url,
                "credits_used": credits_used,
                "finished_at": self._now(),
                "next_poll_at": self.clock(),
            },
        )

    async def mark_failed(self, job_id: str, error: str, *, from_states: tuple[str, ...] = OPEN_STATES) -> bool:
        """The job failed (Hypereal said so, it timed out, or it was never confirmed).

        ``from_states`` narrows the open states it may fail from to the one the caller decided on, so a
        decision taken on a stale read loses to a transition that happened since (a webhook adopting an
        unconfirmed submit while its refund was being decided).
        """
        allowed = tuple(state for state in from_states if state in OPEN_STATES)
        if not allowed:
            return False
        return await self._transition(
            job_id, allowed, {"state": "failed", "error": error[:1000], "finished_at": self._now()}
        )

    async def fail_completed(self, job_id: str, error: str) -> bool:
        """A finished job whose output the bot refuses to fetch (off the allow-list, private address)."""
        return await self._transition(job_id, ("completed",), {"state": "failed", "error": error[:1000]})

    async def mark_cancelled(self, job_id: str, *, from_state: str) -> bool:
        """The requester stopped tracking the job, read in ``from_state`` (what the credits' fate depends on)."""
        if from_state not in OPEN_STATES:
            return False
        return await self._transition(
            job_id,
            (from_state,),
            {"state": "cancelled", "error": "cancelled by the requester", "finished_at": self._now()},
        )

    async def mark_delivered(
        self, job_id: str, message_id: int | None, channel_id: int | None, note: str | None
    ) -> bool:
        """The result was posted (or could not be, and stays in /jobs with ``note``)."""
        return await self._transition(
            job_id,
            ("completed",),
            {"state": "delivered", "result_message_id": message_id, "result_channel_id": channel_id, "error": note},
        )

    async def delivery_failed(self, job_id: str, retry_at: float) -> int:
        """Count a failed delivery attempt and schedule the next; returns the attempts so far."""
        await self.db.execute(
            "UPDATE jobs SET delivery_attempts = delivery_attempts + 1, next_poll_at = ? WHERE id = ?",
            (retry_at, job_id),
        )
        return int(await self.db.fetch_value("SELECT delivery_attempts FROM jobs WHERE id = ?", (job_id,)))

    async def due(self, now: float, limit: int = 50, *, live_owners: set[str] | None = None) -> list[Job]:
        """Claim the due jobs: open ones whose next poll is due and completed ones waiting for delivery, oldest first.

        Claiming takes a lease (``lease_owner``/``lease_until``) in one conditional update, so two
        processes never work on one job at once. A job is free to claim when it has no lease, the
        lease is this process's own or has expired, or its holder is not among ``live_owners`` (a
        dead process: its jobs are resumed here). On PostgreSQL rows another process is claiming
        right now are skipped (``FOR UPDATE SKIP LOCKED``) instead of waited for.
        """
        live = sorted((live_owners or set()) | {self.owner})
        marks = ", ".join("?" for _ in live)
        rows = await self.db.fetch_all(
            "UPDATE jobs SET lease_owner = ?, lease_until = ? WHERE id IN ("
            " SELECT id FROM jobs WHERE state IN ('submitting', 'pending', 'completed') AND next_poll_at <= ?"
            f" AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ? OR lease_owner NOT IN ({marks}))"
            f" ORDER BY next_poll_at LIMIT ?{self.db.skip_locked}) RETURNING *",
            (self.owner, now + self.lease_seconds, now, self.owner, now, *live, limit),
        )
        return sorted((_job(row) for row in rows), key=lambda job: (job.next_poll_at or 0.0, job.created_at))

    async def unfinished(self) -> list[Job]:
        """Every job that still needs work: open, or completed but not delivered."""
        rows = await self.db.fetch_all(
            "SELECT * FROM jobs WHERE state IN ('submitting', 'pending', 'completed') ORDER BY created_at"
        )
        return [_job(row) for row in rows]

    async def next_due_at(self) -> float | None:
        """The earliest scheduled poll or delivery."""
        value = await self.db.fetch_value(
            "SELECT MIN(next_poll_at) FROM jobs"
            " WHERE state IN ('submitting', 'pending', 'completed') AND next_poll_at IS NOT NULL"
        )
        return float(value) if value is not None else None

    async def typical_duration(self, model: str, *, last: int = 20, at_least: int = 3) -> int | None:
        """Median seconds from request to result over ``model``'s last ``last`` finished jobs.

        None until ``at_least`` jobs finished: one or two runs say little about the next.
        """
        rows = await self.db.fetch_all(
            "SELECT finished_at - created_at AS took FROM jobs "
            "WHERE model = ? AND state IN ('completed', 'delivered') AND finished_at IS NOT NULL "
            "ORDER BY finished_at DESC LIMIT ?",
            (model, last),
        )
        took = [max(0, int(row["took"])) for row in rows]
        if len(took) < at_least:
            return None
        return int(statistics.median(took))

    async def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (every state listed, 0 when none): the metrics gauge."""
        rows = await self.db.fetch_all("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state")
        counts = dict.fromkeys(JOB_STATES, 0)
        counts.update({row["state"]: row["n"] for row in rows})
        return counts

    async def for_user(self, guild_id: int | None, user_id: int, limit: int = 10) -> list[Job]:
        """A member's jobs on a server, open ones first, then the most recent."""
        rows = await self.db.fetch_all(
            "SELECT * FROM jobs WHERE user_id = ? AND COALESCE(guild_id, 0) = ? "
            "ORDER BY CASE WHEN state IN ('submitting', 'pending') THEN 0 ELSE 1 END, created_at DESC LIMIT ?",
            (user_id, guild_id or 0, limit),  # a DM job has no guild: 0 stands for it on both backends
        )
        return [_job(row) for row in rows]
