"""Async jobs (video, audio, 3D): the job table, the lifecycle service and the webhook endpoint."""

from bot.jobs.service import (
    Deliverer,
    DeliveryRetry,
    JobPlan,
    JobService,
    JobTiming,
    JobUnconfirmed,
    Receipt,
)
from bot.jobs.store import Job, JobStore
from bot.jobs.webhook import install_webhook_route

__all__ = [
    "Deliverer",
    "DeliveryRetry",
    "Job",
    "JobPlan",
    "JobService",
    "JobStore",
    "JobTiming",
    "JobUnconfirmed",
    "Receipt",
    "install_webhook_route",
]
