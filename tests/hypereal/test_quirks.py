"""Hypereal's early-status quirk, decided in one place for image and job polls."""

from __future__ import annotations

from bot.hypereal import JobStatus
from bot.hypereal.quirks import EARLY_FAILURE_POLLS, EARLY_FAILURE_WINDOW, failure_may_be_early


def _status(state: str, error: str | None = None) -> JobStatus:
    return JobStatus.model_validate({"jobId": "j", "status": state, "error": error})


def test_the_quirk_is_tolerated_while_the_job_is_young_or_barely_polled() -> None:
    quirk = _status("failed", "Failed to check status")
    assert failure_may_be_early(quirk, polls=0, age=5)
    assert failure_may_be_early(quirk, polls=EARLY_FAILURE_POLLS - 1, age=EARLY_FAILURE_WINDOW + 1)
    assert failure_may_be_early(quirk, polls=EARLY_FAILURE_POLLS + 3, age=EARLY_FAILURE_WINDOW - 1)
    assert not failure_may_be_early(quirk, polls=EARLY_FAILURE_POLLS, age=EARLY_FAILURE_WINDOW)


def test_a_real_failure_or_another_state_is_never_the_quirk() -> None:
    assert not failure_may_be_early(_status("failed", "Generation failed"), polls=0, age=1)
    assert not failure_may_be_early(_status("failed"), polls=0, age=1)
    assert not failure_may_be_early(_status("processing"), polls=0, age=1)
