"""Laying a growing chat answer out as Discord messages of at most 2,000 characters.

An answer is cut into *parts*. Each part is a slice of the model's text, so the slices joined give
the answer back exactly; the part's *rendering* may add fence lines around its slice so that every
message, and every intermediate version of one while it streams, is valid markdown on its own:

- a part that ends inside a code block gets a closing fence, and the next part reopens the block
  with the same fence and language;
- cuts fall on paragraph, then line, then word boundaries, and avoid code blocks when they can.

Parts are committed once and never change again, so earlier messages are never re-edited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DISCORD_LIMIT = 2000
CURSOR = " ▌"  # shown at the end of the message that is still growing
# Room kept free in every rendering for the cursor and a closing fence.
_RESERVE = len(CURSOR) + 8
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class Fence:
    """An open code fence: its marker (e.g. ``` or ~~~~) and the info string (language)."""

    marker: str
    info: str

    def opening(self) -> str:
        """The line that (re)opens this block."""
        return f"{self.marker}{self.info}\n"

    def closing(self, text_before: str) -> str:
        """The text that closes this block after ``text_before``."""
        return ("" if text_before.endswith("\n") or not text_before else "\n") + self.marker


def open_fence_after(text: str, start: Fence | None = None) -> Fence | None:
    """The code block still open at the end of ``text`` (which begins inside ``start``), or None."""
    fence = start
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if not match:
            continue
        marker, info = match.group(1), match.group(2)
        if fence is None:
            fence = Fence(marker=marker, info=info.strip())
        elif marker[0] == fence.marker[0] and len(marker) >= len(fence.marker) and not info.strip():
            fence = None
    return fence


@dataclass(frozen=True)
class Part:
    """One message's worth of the answer."""

    text: str  # the exact slice of the model's output
    opens_in: Fence | None  # the code block this part starts inside (reopened at its top)

    def render(self, *, cursor: bool = False) -> str:
        """The message content: the slice, with fences reopened/closed as needed, and the cursor if growing."""
        prefix = self.opens_in.opening() if self.opens_in else ""
        body = prefix + self.text
        fence = open_fence_after(self.text, self.opens_in)
        suffix = fence.closing(body) if fence else ""
        return body + suffix + (CURSOR if cursor else "")


class AnswerLayout:
    """Turns the answer-so-far into committed parts plus one growing part.

    ``feed(text)`` takes the whole answer so far (it only ever grows) and returns the parts: all but
    the last are final and never change; the last is still growing until ``finish``.
    """

    def __init__(self, limit: int = DISCORD_LIMIT) -> None:
        if limit < 200:
            raise ValueError("limit must leave room for fences")
        self.limit = limit
        self._committed: list[Part] = []
        self._start = 0  # where the growing part begins in the answer
        self._start_fence: Fence | None = None
        self._text = ""

    @property
    def parts(self) -> list[Part]:
        """Committed parts and the growing one."""
        return [*self._committed, Part(self._text[self._start :], self._start_fence)]

    def feed(self, text: str) -> list[Part]:
        """Take the answer so far; commit as many full parts as it now fills."""
        if not text.startswith(self._text):
            raise ValueError("the answer can only grow")
        self._text = text
        while True:
            tail = self._text[self._start :]
            budget = self.limit - _RESERVE - (len(self._start_fence.opening()) if self._start_fence else 0)
            if len(tail) <= budget:
                break
            cut = _cut_point(tail, budget, self._start_fence)
            part = Part(tail[:cut], self._start_fence)
            self._committed.append(part)
            self._start += cut
            self._start_fence = open_fence_after(part.text, part.opens_in)
        return self.parts


def _cut_point(tail: str, budget: int, fence: Fence | None) -> int:
    """Where to end a part of ``tail``: the latest good boundary within ``budget`` characters.

    Preference: a paragraph break outside code, a line break outside code, a line break inside
    code (fences get closed and reopened), a space, and only then a hard cut.
    """
    window = tail[:budget]
    floor = budget // 3  # a cut earlier than this wastes too much of the message

    def outside_code(index: int) -> bool:
        return open_fence_after(tail[:index], fence) is None

    for separator in ("\n\n", "\n"):
        position = window.rfind(separator)
        while position >= floor:
            cut = position + len(separator)
            if outside_code(cut):
                return cut
            position = window.rfind(separator, 0, position)
    position = window.rfind("\n")
    if position >= floor:
        return position + 1
    position = window.rfind(" ")
    if position >= floor:
        return position + 1
    return budget


def split_answer(text: str, limit: int = DISCORD_LIMIT) -> list[str]:
    """The final renderings of a whole answer, each at most ``limit`` characters."""
    layout = AnswerLayout(limit)
    return [part.render() for part in layout.feed(text) if part.text or len(text) == 0]
