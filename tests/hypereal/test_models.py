"""The answer models on raw Hypereal bodies: bad credits and links are normalised and named, never raised."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from bot.hypereal import ChatResponse, ImageResult, JobStatus, JobSubmission, MediaResult, WebhookPayload
from bot.hypereal.fields import clean_error_text, parse_credits

OK_URL = "https://cdn.hypereal.tech/out/a.mp4"
# Each model with the smallest valid body it needs besides the field under test.
BASES: dict[type, dict[str, Any]] = {
    ChatResponse: {"choices": [{"message": {"content": "hi"}}]},
    ImageResult: {"data": [{"url": OK_URL}]},
    JobSubmission: {"jobId": "job_1"},
    MediaResult: {"outputUrl": OK_URL},
    JobStatus: {"jobId": "job_1", "status": "completed", "outputUrl": OK_URL},
    WebhookPayload: {"jobId": "job_1", "status": "completed", "outputUrl": OK_URL},
}
BAD_CREDITS = [-5, "abc", True, 1e20, float("nan"), float("inf"), 2.5, 10**10, "-5", "", [], {"n": 1}]
BAD_URLS = [
    "https://evil.example\\@cdn.hypereal.tech/x",
    "https://xn--zz.example/x",
    "https://user@cdn.hypereal.tech/x",
    "https://cdn.hypereal.tech/a b.mp4",
    "javascript:alert(1)",
    "/files/a.mp4",
    "http://[::1",
    42,
]


@pytest.mark.parametrize("model", list(BASES))
@pytest.mark.parametrize("value", BAD_CREDITS, ids=repr)
def test_invalid_credits_read_as_unknown_and_are_named(model: type, value: Any) -> None:
    answer = model.model_validate({**BASES[model], "creditsUsed": value})
    assert answer.credits_used is None  # the caller settles to its estimate
    assert [p for p in answer.problems if p.startswith("creditsUsed ")]


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (5, 5), (5.0, 5), ("5", 5), (10**9, 10**9), (None, None)])
def test_valid_credits_are_kept(value: Any, expected: int | None) -> None:
    answer = JobStatus.model_validate({**BASES[JobStatus], "creditsUsed": value})
    assert (answer.credits_used, answer.problems) == (expected, ())


def test_nan_straight_from_json_is_refused() -> None:
    body = json.loads('{"jobId": "j", "status": "completed", "creditsUsed": NaN}')
    assert JobStatus.model_validate(body).credits_used is None


@pytest.mark.parametrize("model", [MediaResult, JobStatus, WebhookPayload])
@pytest.mark.parametrize("url", BAD_URLS, ids=repr)
def test_invalid_output_url_reads_as_none_with_a_reason(model: type, url: Any) -> None:
    answer = model.model_validate({**BASES[model], "outputUrl": url})
    assert answer.output_url is None
    assert answer.output_url_problem.startswith("Hypereal's output link is malformed: ")
    assert [p for p in answer.problems if p.startswith("outputUrl: ")]


@pytest.mark.parametrize("url", BAD_URLS, ids=repr)
def test_invalid_image_urls_are_dropped_with_a_reason(url: Any) -> None:
    answer = ImageResult.model_validate({"data": [{"url": url}, {"url": OK_URL}], "creditsUsed": 4})
    assert answer.urls == [OK_URL]
    assert answer.output_url_problem
    assert answer.problems[0].startswith("data[0].url: ")


@pytest.mark.parametrize("model", [ImageResult, JobSubmission, MediaResult])
def test_invalid_poll_url_is_dropped(model: type) -> None:
    answer = model.model_validate({**BASES[model], "jobId": "job_1", "pollUrl": "https://evil\\@api.hypereal.tech/"})
    assert answer.poll_url is None
    assert answer.problems == ("pollUrl: it contains a backslash",)


def test_good_links_and_figures_leave_no_problems() -> None:
    answer = MediaResult.model_validate(
        {
            "outputUrl": OK_URL,
            "jobId": "job_1",
            "pollUrl": "https://api.hypereal.tech/api/v1/jobs/job_1",
            "creditsUsed": 45,
        }
    )
    assert (answer.output_url, answer.credits_used, answer.problems, answer.output_url_problem) == (
        OK_URL, 45, (), None
    )  # fmt: skip


def test_problems_cannot_be_planted_by_the_body() -> None:
    answer = JobStatus.model_validate({**BASES[JobStatus], "problems": ["fine"], "output_url_problem": "x"})
    assert (answer.problems, answer.output_url_problem) == ((), None)


@pytest.mark.parametrize("job_id", ["", " ", "a b", "x" * 201, "job\x00", "job\n", True, None, ["j"]], ids=repr)
def test_required_job_ids_must_be_usable(job_id: Any) -> None:
    with pytest.raises(ValidationError):
        JobSubmission.model_validate({"jobId": job_id})
    with pytest.raises(ValidationError):
        WebhookPayload.model_validate({"jobId": job_id, "status": "completed"})


def test_optional_job_ids_that_are_unusable_read_as_none() -> None:
    answer = MediaResult.model_validate({"jobId": "a b", "outputUrl": OK_URL})
    assert answer.job_id is None
    assert answer.problems == ("jobId contains spaces or control characters",)
    assert JobSubmission.model_validate({"jobId": 12345}).job_id == "12345"  # a number is still an id


def test_error_text_is_cleaned_and_capped() -> None:
    status = JobStatus.model_validate({"status": "failed", "error": {"message": "bad\x07 \u202einput\n" + "x" * 500}})
    assert status.error is not None
    assert status.error.startswith("bad input ")
    assert len(status.error) == 300
    assert status.error.endswith("…")


def test_parse_credits_names_the_problem() -> None:
    assert parse_credits(-5) == (None, "is negative")
    assert parse_credits(True) == (None, "is a boolean, not a number of credits")
    assert parse_credits(1e20) == (None, "is implausibly large")
    assert parse_credits("abc") == (None, "is not a whole number of credits")


def test_clean_error_text_redacts_secrets_in_any_case_and_split_by_invisible_characters() -> None:
    key = "ck_live_SECRET123"
    text = f"key {key} / {key.upper()} / ck_live_\u200bSECRET123 end"
    assert clean_error_text(text, [key]) == "key [redacted] / [redacted] / [redacted] end"
    long = clean_error_text("y" * 295 + key, [key])
    assert key not in long
    assert "[red" in long
    assert len(long) == 300
