"""The SSE parser on raw byte chunks, split anywhere."""

from __future__ import annotations

import json

import pytest

from bot.hypereal.sse import SSEParseError, SSEParser, credits_of, delta_text, finish_reason


def _chunk(text: str, **extra: object) -> bytes:
    body = {"id": "c1", "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}], **extra}
    return f"data: {json.dumps(body)}\n\n".encode()


def _texts(events: list) -> str:
    return "".join(delta_text(e.data) for e in events if e.data)


def test_parses_deltas_comments_blank_lines_and_done() -> None:
    stream = b": keepalive\n\n" + _chunk("Hel") + b"event: ping\nid: 3\n" + _chunk("lo") + b"data: [DONE]\n\n"
    events = SSEParser().feed(stream)
    assert _texts(events) == "Hello"
    assert events[-1].done


@pytest.mark.parametrize("size", [1, 2, 3, 7, 16])
def test_any_split_of_the_bytes_gives_the_same_events(size: int) -> None:
    stream = _chunk("Grüße, 世界 🌍") + _chunk(" and more") + b"data: [DONE]\r\n\r\n"
    parser = SSEParser()
    events = []
    for start in range(0, len(stream), size):  # splits mid-line and mid-UTF-8 sequence
        events.extend(parser.feed(stream[start : start + size]))
    events.extend(parser.close())
    assert _texts(events) == "Grüße, 世界 🌍 and more"
    assert events[-1].done


def test_stream_without_final_newline_or_done() -> None:
    parser = SSEParser()
    events = parser.feed(_chunk("a") + _chunk("b").rstrip(b"\n"))
    events += parser.close()
    assert _texts(events) == "ab"
    assert not any(e.done for e in events)


def test_bad_data_line_raises() -> None:
    with pytest.raises(SSEParseError):
        SSEParser().feed(b"data: <html>oops</html>\n")


def test_credits_and_finish_reason_fields() -> None:
    assert credits_of({"creditsUsed": 3}) == (3, None)
    assert credits_of({"usage": {"creditsUsed": "4"}}) == (4, None)
    assert credits_of({"usage": {"prompt_tokens": 5}}) == (None, None)
    assert finish_reason({"choices": [{"delta": {}, "finish_reason": "length"}]}) == "length"
    assert delta_text({"choices": []}) == ""


@pytest.mark.parametrize("value", [-5, "abc", True, 1e20, float("nan"), 2.5])
def test_stream_credits_that_are_not_a_count_are_refused(value: object) -> None:
    credits, problem = credits_of({"creditsUsed": value})
    assert credits is None
    assert problem
