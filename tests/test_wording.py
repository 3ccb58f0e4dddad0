"""Every message template that names credits, rendered with 1 and 2 credits: grammar members can trust."""

from __future__ import annotations

import re

import pytest

from bot.catalog import Quote
from bot.credits import GrantBelowZero, GuildBudget, InsufficientCredits, QuotaExceeded
from bot.credits.alerts import alert_text
from bot.paid import Charge
from bot.wording import (
    CATEGORY_LABELS,
    QUESTION_QUOTE_MAX,
    category_noun,
    credits_text,
    question_line,
    result_noun,
    with_article,
)
from cogs._shared import queue_text

BAD = re.compile(
    r"\b1 credits\b|\b(?<!-)[02-9] credit\b|\ba (?:image|edit|audio|[aeiou]\w*) model\b|Model3d|unverified"
)


def _templates(n: int) -> list[str]:
    budget = GuildBudget(1, "month", allowance=n * 10, balance=n, reserved=0, period_start=0, frozen=False)
    return [
        credits_text(n),
        Quote(n).label,
        Quote(n, exact=False).label,
        Charge("nano-banana-t2i", n, n).cost_line(),
        InsufficientCredits(n, n, 1_800_000_000).user_message,
        QuotaExceeded("image", n, n, None).user_message,
        QuotaExceeded("model3d", n, n, None).user_message,
        GrantBelowZero(n, -n - 1).user_message,
        alert_text(budget, 50),
        queue_text(n, 60.0 * n, Quote(n, exact=False)),
    ]


@pytest.mark.parametrize("n", [1, 2])
def test_templates_read_right_with_one_and_two_credits(n: int) -> None:
    rendered = _templates(n)
    for text in rendered:
        assert not BAD.search(text), text
    assert any(f"{n} credit{'s' if n != 1 else ''}" in text for text in rendered)


def test_one_credit_and_two_credits() -> None:
    assert credits_text(1) == "1 credit"
    assert credits_text(2) == "2 credits"
    assert credits_text(-1) == "-1 credit"
    assert Quote(1).label == "1 credit"
    assert Quote(2, exact=False).label == "~2 credits"
    assert Charge("m", 1, 2).cost_line() == "m · 1 credit · 2 left"


def test_articles_and_nouns() -> None:
    assert with_article("image model") == "an image model"
    assert with_article("audio model") == "an audio model"
    assert with_article("video model") == "a video model"
    assert with_article("3D model") == "a 3D model"
    assert with_article("8-bit image") == "an 8-bit image"
    assert category_noun("model3d") == "3D model"
    assert CATEGORY_LABELS["model3d"] == "3D models"
    assert result_noun("audio_tts") == "speech"
    assert result_noun("model3d") == "3D model"


def test_the_question_line_is_small_one_line_and_short() -> None:
    assert question_line(7, "a red fox") == "-# <@7> asked: “a red fox”"
    long = question_line(7, "first\n\nsecond   " + "x" * 300)
    assert long.startswith("-# <@7> asked: “first second x")
    assert long.endswith("…”")
    assert "\n" not in long
    assert len(long) <= len("-# <@7> asked: “”") + QUESTION_QUOTE_MAX
