"""Typed requests and responses of the Hypereal API (pydantic; unknown fields are ignored)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ChatMessage(_Model):
    """One chat turn sent to Hypereal."""

    role: Literal["system", "user", "assistant"]
    content: str


class _ChoiceMessage(_Model):
    role: str = "assistant"
    content: str | None = ""


class _Choice(_Model):
    index: int = 0
    message: _ChoiceMessage | None = None
    finish_reason: str | None = None


class ChatResponse(_Model):
    """A non-streamed chat answer."""

    id: str | None = None
    choices: list[_Choice] = Field(min_length=1)
    credits_used: int | None = Field(default=None, alias="creditsUsed")

    @property
    def content(self) -> str:
        """The text of the first choice."""
        message = self.choices[0].message
        return (message.content or "") if message else ""

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped (``stop``, ``length``…)."""
        return self.choices[0].finish_reason


class _ImageData(_Model):
    url: str
    model: str | None = None


class ImageResult(_Model):
    """An image generate/edit answer: URLs to download, or a job id to poll (``type=image``)."""

    created: int | None = None
    data: list[_ImageData] = Field(default_factory=list)
    result_id: str | None = Field(default=None, alias="resultId")
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    job_id: str | None = Field(default=None, alias="jobId")
    poll_url: str | None = Field(default=None, alias="pollUrl")

    @property
    def urls(self) -> list[str]:
        """The output URLs, in order."""
        return [item.url for item in self.data]


class JobSubmission(_Model):
    """The 202 answer to an async submission."""

    job_id: str = Field(alias="jobId", min_length=1)
    status: str = "processing"
    message: str | None = None
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    poll_url: str | None = Field(default=None, alias="pollUrl")


class TranscriptSegment(_Model):
    """One timed piece of a transcription."""

    text: str
    start: float
    end: float


class MediaResult(_Model):
    """An audio/3D answer: a finished ``outputUrl`` (sync), a ``jobId`` (async), or an ASR transcript."""

    success: bool | None = None
    output_url: str | None = Field(default=None, alias="outputUrl")
    job_id: str | None = Field(default=None, alias="jobId")
    poll_url: str | None = Field(default=None, alias="pollUrl")
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    text: str | None = None
    duration: float | None = None
    segments: list[TranscriptSegment] = Field(default_factory=list)


JobState = Literal["pending", "completed", "failed"]

_SUCCESS = {"completed", "succeeded", "success"}
_FAILURE = {"failed", "error"}


def normalise_job_state(raw: str | None) -> JobState:
    """``completed``/``succeeded`` → completed, ``failed``/``error`` → failed, anything else → pending."""
    value = (raw or "").lower()
    if value in _SUCCESS:
        return "completed"
    if value in _FAILURE:
        return "failed"
    return "pending"


class JobStatus(_Model):
    """A job status poll answer, with its state normalised."""

    job_id: str | None = Field(default=None, alias="jobId")
    raw_status: str = Field(alias="status")
    output_url: str | None = Field(default=None, alias="outputUrl")
    error: str | None = None
    credits_used: int | None = Field(default=None, alias="creditsUsed")

    @field_validator("error", mode="before")
    @classmethod
    def _error_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value.get("message") or str(value)
        return value

    @property
    def state(self) -> JobState:
        """pending, completed or failed."""
        return normalise_job_state(self.raw_status)


class WebhookPayload(_Model):
    """What Hypereal POSTs to a job's ``webhook_url``."""

    job_id: str = Field(alias="jobId", min_length=1)
    status: str
    output_url: str | None = Field(default=None, alias="outputUrl")
    type: str | None = None
    model: str | None = None
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    error: str | None = None

    @field_validator("error", mode="before")
    @classmethod
    def _error_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value.get("message") or str(value)
        return value

    @property
    def state(self) -> JobState:
        """pending, completed or failed."""
        return normalise_job_state(self.status)
