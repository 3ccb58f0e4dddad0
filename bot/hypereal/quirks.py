"""Hypereal's known quirks, handled in one place for every caller (image polls and job polls alike)."""

from __future__ import annotations

from bot.hypereal.models import JobStatus

# A fresh job can answer "failed" / "Failed to check status" while it still runs (hypereal-api.md):
# not terminal during its first polls, nor during its first minutes.
EARLY_FAILURE_TEXT = "failed to check status"
EARLY_FAILURE_POLLS = 6
EARLY_FAILURE_WINDOW = 120.0


def failure_may_be_early(status: JobStatus, *, polls: int, age: float) -> bool:
    """True when a "failed" answer is the early-status quirk and the job must be polled again.

    ``polls`` is how many scheduled polls came before this one; ``age`` the seconds since submission.
    Any other failure — a real error message — is terminal at once.
    """
    if status.state != "failed" or EARLY_FAILURE_TEXT not in (status.error or "").lower():
        return False
    return polls < EARLY_FAILURE_POLLS or age < EARLY_FAILURE_WINDOW
