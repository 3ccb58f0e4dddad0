"""Typed requests and responses of the Hypereal API (pydantic; unknown fields are ignored).

Answers are untrusted input, so every model of one (:class:`_Answer`) checks what it is given:

- credits fields (``creditsUsed``) must be non-negative integers ≤ 10**9 (``bot.hypereal.fields``);
- link fields (``outputUrl``, ``data[].url``, ``pollUrl``) must have a sane shape (``bot.urls``);
- optional job ids must be non-empty, ≤ 200 printable characters.

A bad value does not make the whole answer unusable: it reads as None (credits: "unknown", so the
caller settles to its estimate; a poll URL: the client builds the status URL from the job id), and
``problems`` lists each field that was dropped and why (field names and reasons only, never values).
An invalid output link also sets ``output_url_problem``, a phrase the caller can show as the reason
a job failed, instead of retrying a link that can never work. A *required* job id that is invalid
(a submission's or a webhook's) still fails validation: without it there is nothing to follow.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.hypereal.fields import clean_error_text, job_id_problem, parse_credits
from bot.urls import url_problem


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


def _job_id_text(value: Any) -> Any:
    # Some ids arrive as JSON numbers; they are still ids (booleans are not).
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _check_job_id(value: Any) -> Any:
    """A field validator for required job ids: refuse the answer when the id is unusable."""
    value = _job_id_text(value)
    problem = job_id_problem(value)
    if problem:
        raise ValueError(f"jobId {problem}")
    return value


def _error_text(value: Any) -> Any:
    """Either error shape (text, or ``{"message": ...}``) as clean, capped text; the client redacts its key too."""
    if value is None:
        return None
    if isinstance(value, dict):
        message = value.get("message")
        value = message if isinstance(message, str) and message else str(value)
    return clean_error_text(value if isinstance(value, str) else str(value))


def output_link_problem(problem: str) -> str:
    """The ``output_url_problem`` phrase for a link check's reason (``it contains a backslash``)."""
    return f"Hypereal's output link is malformed: {problem}"


class _Answer(_Model):
    """Something Hypereal sent back. Subclasses name their credits, link and optional job-id fields."""

    _credit_fields: ClassVar[tuple[str, ...]] = ()
    _url_fields: ClassVar[tuple[str, ...]] = ()
    _optional_id_fields: ClassVar[tuple[str, ...]] = ()

    # What was wrong in the answer and normalised away, e.g. ("creditsUsed is negative",).
    problems: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _normalise(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic refuses it with the usual error
        clean = dict(data)
        problems: list[str] = []
        for name in cls._credit_fields:
            key = cls._key_of(clean, name)
            value, problem = parse_credits(clean.get(key))
            if problem:
                problems.append(f"{key} {problem}")
            if key in clean:
                clean[key] = value
        for name in cls._url_fields:
            key = cls._key_of(clean, name)
            problem = url_problem(clean[key]) if clean.get(key) is not None else None
            if problem:
                problems.append(f"{key}: {problem}")
                clean[key] = None
            if f"{name}_problem" in cls.model_fields:
                clean[f"{name}_problem"] = output_link_problem(problem) if problem else None
        for name in cls._optional_id_fields:
            key = cls._key_of(clean, name)
            if clean.get(key) is not None:
                clean[key] = _job_id_text(clean[key])
                problem = job_id_problem(clean[key])
                if problem:
                    problems.append(f"{key} {problem}")
                    clean[key] = None
        problems.extend(cls._normalise_more(clean))
        clean["problems"] = tuple(problems)  # whatever the body said under this name is replaced
        return clean

    @classmethod
    def _key_of(cls, data: dict[str, Any], name: str) -> str:
        """The key ``name`` arrives under: its alias (Hypereal's spelling) unless given by field name."""
        alias = cls.model_fields[name].alias or name
        return name if name in data and alias not in data else alias

    @classmethod
    def _normalise_more(cls, data: dict[str, Any]) -> list[str]:
        """A subclass's own checks on the (copied) raw answer; returns the problems found."""
        return []


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


class ChatResponse(_Answer):
    """A non-streamed chat answer."""

    _credit_fields = ("credits_used",)

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


class ImageResult(_Answer):
    """An image generate/edit answer: URLs to download, or a job id to poll (``type=image``).

    ``data`` keeps only the items whose ``url`` has a sane shape; ``output_url_problem`` says why the
    first dropped one was refused (None when every link was fine).
    """

    _credit_fields = ("credits_used",)
    _url_fields = ("poll_url",)
    _optional_id_fields = ("job_id",)

    created: int | None = None
    data: list[_ImageData] = Field(default_factory=list)
    result_id: str | None = Field(default=None, alias="resultId")
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    job_id: str | None = Field(default=None, alias="jobId")
    poll_url: str | None = Field(default=None, alias="pollUrl")
    output_url_problem: str | None = None

    @classmethod
    def _normalise_more(cls, data: dict[str, Any]) -> list[str]:
        items = data.get("data")
        data["output_url_problem"] = None
        if not isinstance(items, list):
            return []
        kept: list[Any] = []
        problems: list[str] = []
        for number, item in enumerate(items):
            problem = url_problem(item.get("url")) if isinstance(item, dict) else None
            if problem is None:
                kept.append(item)  # a non-object item is left for pydantic to refuse
                continue
            problems.append(f"data[{number}].url: {problem}")
            if data["output_url_problem"] is None:
                data["output_url_problem"] = output_link_problem(problem)
        data["data"] = kept
        return problems

    @property
    def urls(self) -> list[str]:
        """The output URLs (only well-formed ones), in order."""
        return [item.url for item in self.data]


class JobSubmission(_Answer):
    """The 202 answer to an async submission (an unusable ``jobId`` fails validation)."""

    _credit_fields = ("credits_used",)
    _url_fields = ("poll_url",)

    job_id: str = Field(alias="jobId", min_length=1)
    status: str = "processing"
    message: str | None = None
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    poll_url: str | None = Field(default=None, alias="pollUrl")

    _job_id = field_validator("job_id", mode="before")(_check_job_id)


class TranscriptSegment(_Model):
    """One timed piece of a transcription."""

    text: str
    start: float
    end: float


class MediaResult(_Answer):
    """An audio/3D answer: a finished ``outputUrl`` (sync), a ``jobId`` (async), or an ASR transcript."""

    _credit_fields = ("credits_used",)
    _url_fields = ("output_url", "poll_url")
    _optional_id_fields = ("job_id",)

    success: bool | None = None
    output_url: str | None = Field(default=None, alias="outputUrl")
    job_id: str | None = Field(default=None, alias="jobId")
    poll_url: str | None = Field(default=None, alias="pollUrl")
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    text: str | None = None
    duration: float | None = None
    segments: list[TranscriptSegment] = Field(default_factory=list)
    output_url_problem: str | None = None


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


class JobStatus(_Answer):
    """A job status poll answer, with its state normalised."""

    _credit_fields = ("credits_used",)
    _url_fields = ("output_url",)
    _optional_id_fields = ("job_id",)

    job_id: str | None = Field(default=None, alias="jobId")
    raw_status: str = Field(alias="status")
    output_url: str | None = Field(default=None, alias="outputUrl")
    error: str | None = None
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    output_url_problem: str | None = None

    _error = field_validator("error", mode="before")(_error_text)

    @property
    def state(self) -> JobState:
        """pending, completed or failed."""
        return normalise_job_state(self.raw_status)


class WebhookPayload(_Answer):
    """What Hypereal POSTs to a job's ``webhook_url`` (an unusable ``jobId`` fails validation)."""

    _credit_fields = ("credits_used",)
    _url_fields = ("output_url",)

    job_id: str = Field(alias="jobId", min_length=1)
    status: str
    output_url: str | None = Field(default=None, alias="outputUrl")
    type: str | None = None
    model: str | None = None
    credits_used: int | None = Field(default=None, alias="creditsUsed")
    error: str | None = None
    output_url_problem: str | None = None

    _job_id = field_validator("job_id", mode="before")(_check_job_id)
    _error = field_validator("error", mode="before")(_error_text)

    @property
    def state(self) -> JobState:
        """pending, completed or failed."""
        return normalise_job_state(self.status)
