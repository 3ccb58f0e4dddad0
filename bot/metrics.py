"""The bot's Prometheus metrics: one registry per running app (no module-level collectors).

``prometheus_client``'s default registry is process-global; a registry of our own keeps two bots
in one test process apart and keeps library collectors we did not ask for out of ``/metrics``.
No label ever carries a guild, user or job id (cardinality and privacy).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class Metrics:
    """Every counter the services update. Built once by the composition root and passed in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs_unconfirmed_refunded = Counter(
            "jobs_unconfirmed_refunded",
            "Jobs refunded because Hypereal never confirmed their submit (the answer was lost).",
            registry=self.registry,
        )
        self.job_step_failures = Counter(
            "job_step_failures",
            "Job steps (poll, download, delivery) that raised unexpectedly.",
            registry=self.registry,
        )
        self.jobs_given_up = Counter(
            "jobs_given_up",
            "Jobs failed and refunded after repeated step failures.",
            registry=self.registry,
        )
        self.results_undeliverable = Counter(
            "results_undeliverable",
            "Paid results that could not be posted anywhere and were refunded.",
            ["kind"],
            registry=self.registry,
        )
