"""Long answers split into valid Discord messages."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.chat.layout import CURSOR, AnswerLayout, open_fence_after, split_answer


def _balanced(rendering: str) -> bool:
    return open_fence_after(rendering) is None


def _answer_with_code(paragraphs: int = 30) -> str:
    prose = "This paragraph explains the next step of the program in some detail. " * 3
    code = "```python\n" + "".join(f"value_{n} = compute({n})  # step {n}\n" for n in range(40)) + "```\n"
    chunks = []
    for n in range(paragraphs):
        chunks.append(prose + f"({n})\n\n")
        if n % 10 == 5:
            chunks.append(code + "\n")
    return "".join(chunks)


def test_short_answer_is_one_part() -> None:
    assert split_answer("hello") == ["hello"]


def test_long_answer_splits_on_paragraphs_and_keeps_every_character() -> None:
    text = _answer_with_code()
    assert len(text) > 6000
    layout = AnswerLayout()
    parts = layout.feed(text)
    assert len(parts) >= 3
    assert "".join(part.text for part in parts) == text
    for part in parts:
        rendering = part.render()
        assert len(rendering) <= 2000
        assert _balanced(rendering)
    assert all(part.text.endswith("\n\n") for part in parts[:-1])  # paragraph boundaries were available


def test_a_code_block_longer_than_a_message_is_closed_and_reopened_with_its_language() -> None:
    code = "```rust\n" + "".join(f"let x{n} = {n};\n" for n in range(400)) + "```\n"
    renderings = split_answer("Intro.\n\n" + code + "\nDone.")
    assert len(renderings) >= 3
    for rendering in renderings:
        assert len(rendering) <= 2000
        assert _balanced(rendering)
    assert renderings[1].startswith("```rust\n")
    assert renderings[0].endswith("```")


def test_streaming_versions_are_valid_and_committed_parts_never_change() -> None:
    text = _answer_with_code()
    layout = AnswerLayout()
    committed: list[str] = []
    for end in range(0, len(text) + 1, 37):
        parts = layout.feed(text[:end])
        finals = [p.render() for p in parts[:-1]]
        assert finals[: len(committed)] == committed
        committed = finals
        growing = parts[-1].render(cursor=True)
        assert growing.endswith(CURSOR)
        assert len(growing) <= 2000
        assert _balanced(growing.removesuffix(CURSOR))
    assert "".join(p.text for p in layout.feed(text)) == text


def test_a_word_longer_than_a_message_is_cut_hard() -> None:
    renderings = split_answer("x" * 4500)
    assert all(len(r) <= 2000 for r in renderings)
    assert "".join(renderings) == "x" * 4500


_pieces = st.sampled_from(["word ", "line\n", "\n\n", "```py\n", "```\n", "~~~\n", "x" * 300, "code();\n", "` "])


@settings(max_examples=200, deadline=None)
@given(st.lists(_pieces, min_size=1, max_size=120))
def test_any_answer_splits_into_balanced_messages_that_rejoin_exactly(pieces: list[str]) -> None:
    text = "".join(pieces)
    parts = AnswerLayout().feed(text)
    assert "".join(p.text for p in parts) == text
    for part in parts:
        rendering = part.render()
        assert len(rendering) <= 2000
        assert _balanced(rendering)
