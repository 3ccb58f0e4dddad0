"""What members type: invisible characters removed, lengths, number ranges, ids and percentages parsed."""

from __future__ import annotations

import pytest

from bot.errors import InvalidInput
from bot.inputs import (
    check_choice,
    check_format,
    check_int,
    check_language,
    check_system_prompt,
    check_text,
    clean_text,
    parse_percentages,
    parse_snowflake,
)


@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("\u200b\u200b\x07", ""),  # zero-width spaces and a bell: nothing visible
        ("\ufeff\u2060\u00ad\u180e\u3164", ""),  # BOM, word joiner, soft hyphen, Mongolian separator, Hangul filler
        ("a\u202eb\u2066c\u2069", "abc"),  # bidi override and isolates
        ("\x00line\r\nnext\x1b[31m\x9b", "line\nnext[31m"),  # C0/C1 controls, CR dropped
        ("tab\there", "tab\there"),
        ("one\u2028two\u2029three", "one\ntwo\nthree"),
        ("  cafe\u0301  ", "café"),  # NFC, stripped
        ("👩\u200d💻", "👩\u200d💻"),  # an emoji ZWJ sequence is kept
        ("❤\ufe0f\u200d🔥", "❤\ufe0f\u200d🔥"),  # after a variation selector too
        ("\u200dfox\u200d", "fox"),  # a joiner at either end joins nothing
        ("a \u200d b", "a  b"),  # nor next to a space
        ("a\u200d\u200db", "ab"),  # nor next to another joiner
        ("می\u200cخواهم", "می\u200cخواهم"),  # Persian needs the non-joiner
        ("\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f", None),  # England's flag
        ("x\U000e0067y", "xy"),  # a tag character anywhere else is dropped
    ],
)
def test_clean_text(typed: str, cleaned: str | None) -> None:
    assert clean_text(typed) == (typed if cleaned is None else cleaned)


def test_check_text_refuses_invisible_and_long_text_with_the_numbers() -> None:
    with pytest.raises(InvalidInput, match="The prompt is empty"):
        check_text("\u200b\u200b\x07", limit=10)
    with pytest.raises(InvalidInput, match="Prompts can be up to 2,500 characters; yours has 6,000"):
        check_text("x" * 6000, limit=2500)
    # Invisible characters do not count against the limit.
    assert check_text("ab" + "\u200b" * 50, limit=2) == "ab"
    with pytest.raises(InvalidInput, match="must be text"):
        check_text(123, limit=10)
    with pytest.raises(InvalidInput, match="system prompt is empty"):
        check_system_prompt("\u200b")


@pytest.mark.parametrize("value", [-5, 0, 21, 10**9, 10**30, True, "5", 5.0, None])
def test_check_int_refuses_outside_the_range(value: object) -> None:
    with pytest.raises(InvalidInput, match="Duration must be a whole number from 1 to 20 seconds"):
        check_int(value, 1, 20, name="Duration", unit="seconds")


def test_check_int_does_not_echo_huge_numbers() -> None:
    with pytest.raises(InvalidInput, match="you gave a number far outside that range") as caught:
        check_int(10**30, 0, 10, name="Cap")
    assert "1000000000" not in caught.value.user_message
    assert check_int(20, 1, 20, name="Duration") == 20


def test_check_choice() -> None:
    assert check_choice("week", ("day", "week"), name="The period") == "week"
    with pytest.raises(InvalidInput, match="The period must be one of day, week; you gave `year`"):
        check_choice("year", ("day", "week"), name="The period")


@pytest.mark.parametrize(
    "typed",
    [
        "²" * 18,
        "1" * 30,
        "9" * 20,
        "123",
        "12345678901234567x",
        "-12345678901234567",
        "",
        "１２３４５６７８９０１２３４５６７８",
    ],
)
def test_parse_snowflake_refuses_what_is_not_a_discord_id(typed: str) -> None:
    with pytest.raises(InvalidInput, match="server_id must be a Discord id: 17 to 20 digits"):
        parse_snowflake(typed)


def test_parse_snowflake_accepts_ids() -> None:
    assert parse_snowflake(" 100000000000000001 ") == 100000000000000001
    assert parse_snowflake(str(2**63 - 1)) == 2**63 - 1


def test_parse_percentages() -> None:
    assert parse_percentages("100, 80%,80") == (80, 100)
    for typed in ("", "abc", "80,x", "٨٠", "99999999999999999999"):
        with pytest.raises(InvalidInput, match="whole percentages"):
            parse_percentages(typed)
    for typed in ("0", "101", "80,-5"):
        with pytest.raises(InvalidInput, match="between 1 and 100"):
            parse_percentages(typed)


def test_check_format_and_language() -> None:
    assert check_format("aspect_ratio", "16:9") == "16:9"
    assert check_format("resolution", "1080P") == "1080P"
    assert check_format("aspect_ratio", None) is None
    for name, value in (("aspect_ratio", "16:9; rm -rf"), ("resolution", "9" * 50), ("aspect_ratio", 3)):
        with pytest.raises(InvalidInput, match="is not a valid"):
            check_format(name, value)
    assert check_language(" pt-BR ") == "pt-BR"
    assert check_language(None) is None
    with pytest.raises(InvalidInput, match="not a language code"):
        check_language("english please")
