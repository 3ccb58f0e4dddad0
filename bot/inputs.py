"""Checks on what members send: text is normalised and length-checked, numbers range-checked, ids parsed.

Discord's client enforces ``min_value``/``max_length``/choices, but an interaction is only JSON: a
modified client (or the tests' fake Discord) can send any value, and discord.py 2.7 does not check
``app_commands.Range`` or ``Literal`` options against their bounds (``RangeTransformer`` and
``LiteralTransformer`` are identity transforms; only ``Choice[...]`` parameters are matched). So every
value is checked here, in ``bot/``, before anything is reserved or changed.

**Text.** :func:`clean_text` removes what a member cannot see but Hypereal would receive (and charge
for): C0/C1 control characters except newline and tab (a carriage return is dropped, so CRLF becomes
LF), surrogates, every Unicode *format* character (category Cf: zero-width space, bidi embeddings,
overrides and isolates, word joiner, invisible operators, soft hyphen, BOM, interlinear annotation…)
and the Hangul filler letters that render as nothing. Two exceptions keep real text intact:

- ZERO WIDTH JOINER (U+200D) and ZERO WIDTH NON-JOINER (U+200C) are kept when they sit between two
  visible characters: emoji ZWJ sequences (👩‍💻) and Persian/Indic spelling need them; a joiner at either
  end, next to a space or next to another joiner joins nothing and is dropped;
- tag characters (U+E0020–E007F) are kept right after a black flag (U+1F3F4) or another tag: that is
  how subdivision flags such as England's are spelled.

Line and paragraph separators (U+2028/2029) become newlines. The result is NFC-normalised and
stripped; only then is it checked for emptiness and length (in code points).

**Length limits** when the catalog gives a model no ``prompt_max`` (:data:`DEFAULT_PROMPT_MAX`):
image and edit prompts 4000 characters, video prompts 2500 (the tightest limit the catalog records
for a video model), 3D prompts 600 (likewise), speech text 5000, chat prompts 8000, system prompts 4000.

**Numbers** are whole numbers inside a documented range (:func:`check_int`): /image count 1–4;
/video duration the model's catalog list, or 1–20 seconds for a model that takes a duration but lists
none (left out, the model's catalog default is used, else none is sent and Hypereal picks its own,
priced at the base price); caps 0–10,000,000 credits; the confirmation threshold 0–1,000,000;
alert thresholds 1–100 %; /budget allowance 0–100,000,000 and grants ±100,000,000. Discord ids typed
as text (``server_id``) are 17–20 ASCII digits below 2**63 (:func:`parse_snowflake`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from bot.errors import InvalidInput

CHAT_PROMPT_MAX = 8000
SYSTEM_PROMPT_MAX = 4000
# Per catalog category, for models whose catalog entry gives no prompt_max.
DEFAULT_PROMPT_MAX = {
    "image": 4000,
    "image_edit": 4000,
    "video": 2500,
    "model3d": 600,
    "audio_tts": 5000,
    "audio_clone": 5000,
    "chat": CHAT_PROMPT_MAX,
}
# What the too-long message calls the text, per category ("Speech text can be up to …").
TEXT_LABELS = {"audio_tts": "Speech text", "audio_clone": "Speech text"}
EMPTY_MESSAGES = {
    "audio_tts": "The text is empty. Write what should be said and try again.",
    "audio_clone": "The text is empty. Write what should be said and try again.",
    "chat": "The prompt is empty. Ask something and try again.",
}
EMPTY_PROMPT = "The prompt is empty. Describe what you want and try again."

# A model that takes a duration but whose catalog entry lists no allowed values: seconds.
VIDEO_DURATION_RANGE = (1, 20)
CAP_RANGE = (0, 10_000_000)
CONFIRM_RANGE = (0, 1_000_000)
INFLIGHT_RANGE = (1, 20)  # requests one member may have in flight at once (server setting)
COOLDOWN_RANGE = (1, 3600)  # seconds between two requests of one category (server setting)
ALERT_RANGE = (1, 100)
ALLOWANCE_RANGE = (0, 100_000_000)
GRANT_RANGE = (-100_000_000, 100_000_000)

JOINERS = frozenset("\u200c\u200d")
BLACK_FLAG = "\U0001f3f4"
TAGS = range(0xE0020, 0xE0080)
# Letters (category Lo) that render as nothing: used to make "empty" names and prompts look non-empty.
BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
LINE_BREAKS = {"\u2028": "\n", "\u2029": "\n"}
KEPT_CONTROLS = frozenset("\n\t")

SNOWFLAKE_DIGITS = (17, 20)
SNOWFLAKE_LIMIT = 2**63  # SQLite integers are signed 64-bit
ASPECT_RATIO = re.compile(r"[1-9][0-9]?:[1-9][0-9]?")
RESOLUTION = re.compile(r"[1-9][0-9]{2,3}[pP]|[1-8][kK]")
# ISO 639 language, optionally a region or script: en, pt-BR, zh-Hans.
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8}){0,2}")


def _dropped(char: str) -> bool:
    """True for a character that is removed wherever it appears (joiners and tags are decided by context)."""
    if char in KEPT_CONTROLS:
        return False
    if char in BLANK_LETTERS:
        return True
    return unicodedata.category(char) in ("Cc", "Cf", "Cs")


def _visible(char: str | None) -> bool:
    return char is not None and not char.isspace() and char not in JOINERS


def clean_text(text: str) -> str:
    """``text`` without invisible characters (see the module docstring), NFC-normalised and stripped."""
    kept: list[str] = []
    for char in text:
        char = LINE_BREAKS.get(char, char)
        if char in JOINERS:
            kept.append(char)  # decided below, once its neighbours are known
        elif ord(char) in TAGS:
            if kept and (kept[-1] == BLACK_FLAG or ord(kept[-1]) in TAGS):
                kept.append(char)
        elif not _dropped(char):
            kept.append(char)
    joined = [
        char
        for index, char in enumerate(kept)
        if char not in JOINERS
        or (index > 0 and _visible(kept[index - 1]) and _visible(kept[index + 1] if index + 1 < len(kept) else None))
    ]
    return unicodedata.normalize("NFC", "".join(joined)).strip()


def check_text(text: object, *, limit: int | None, label: str = "Prompts", empty: str = EMPTY_PROMPT) -> str:
    """The cleaned text, or ``InvalidInput`` when nothing visible is left or it is longer than ``limit``.

    ``label`` starts the too-long message ("Prompts can be up to N characters; yours has M.");
    ``empty`` is the message for a text with nothing visible in it. ``limit`` None: no limit.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"{label} must be text. Type it in and try again.")
    cleaned = clean_text(text)
    if not cleaned:
        raise InvalidInput(empty)
    if limit is not None and len(cleaned) > limit:
        raise InvalidInput(
            f"{label} can be up to {limit:,} characters; yours has {len(cleaned):,}. Shorten it and try again."
        )
    return cleaned


def check_system_prompt(text: str) -> str:
    """A chat system prompt (``/chat system``, ``/chat-defaults``), cleaned and length-checked."""
    return check_text(
        text,
        limit=SYSTEM_PROMPT_MAX,
        label="System prompts",
        empty="The system prompt is empty. Write instructions for the model, or leave it out.",
    )


def shown_value(value: object) -> str:
    """A value for an error message: huge numbers and long strings are not echoed in full, nor invisibles."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return "a number far outside that range"
    text = clean_text(str(value)).replace("`", "'")
    return f"`{text}`" if len(text) <= 40 else f"`{text[:40]}…`"


def check_int(value: object, low: int, high: int, *, name: str, unit: str = "") -> int:
    """``value`` when it is a whole number from ``low`` to ``high``; otherwise ``InvalidInput`` with the range."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        suffix = f" {unit}" if unit else ""
        raise InvalidInput(
            f"{name} must be a whole number from {low:,} to {high:,}{suffix}; you gave {shown_value(value)}."
        )
    return value


def check_choice(value: object, allowed: Sequence[str], *, name: str) -> str:
    """``value`` when it is one of ``allowed``; otherwise ``InvalidInput`` listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}; you gave {shown_value(value)}.")
    return value


def parse_snowflake(text: object, *, name: str = "server_id") -> int:
    """A Discord id typed as text: 17–20 ASCII digits, below 2**63 (what SQLite and Discord can hold)."""
    digits = text.strip() if isinstance(text, str) else ""
    fewest, most = SNOWFLAKE_DIGITS
    # str.isdigit() accepts "²" and other non-ASCII digits that int() then rejects: ASCII only.
    if not (digits.isascii() and digits.isdigit() and fewest <= len(digits) <= most and int(digits) < SNOWFLAKE_LIMIT):
        raise InvalidInput(
            f"{name} must be a Discord id: {fewest} to {most} digits, like 123456789012345678 "
            "(right-click the server → Copy Server ID)."
        )
    return int(digits)


def parse_percentages(text: object, *, name: str = "Thresholds") -> tuple[int, ...]:
    """Comma-separated whole percentages (``80,100`` or ``80%, 100%``), each in :data:`ALERT_RANGE`, sorted."""
    low, high = ALERT_RANGE
    parts = [part.strip().rstrip("%").strip() for part in text.split(",")] if isinstance(text, str) else [""]
    # ASCII digits only (int() would also take "٨٠" or "１００"); a sign is read so "-5" hears the range.
    digits = [part.removeprefix("-") for part in parts if part]
    if not digits or not all(d.isascii() and d.isdigit() and len(d) <= 4 for d in digits):
        raise InvalidInput(f"{name} are whole percentages separated by commas, like 80,100.")
    values = tuple(sorted({int(part) for part in parts if part}))
    if any(not low <= value <= high for value in values):
        raise InvalidInput(f"{name} must be between {low} and {high} %, like 80,100.")
    return values


def check_format(name: str, value: object) -> str | None:
    """A free-form ``aspect_ratio`` (``16:9``) or ``resolution`` (``720p``, ``2k``) that has the right shape.

    Other option names only have to be short text. None passes (the option was left out).
    """
    if value is None:
        return None
    pattern = {"aspect_ratio": ASPECT_RATIO, "resolution": RESOLUTION}.get(name)
    label = name.replace("_", " ")
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        example = {"aspect_ratio": "16:9", "resolution": "720p or 2k"}.get(name)
        hint = f" Use a value like {example}." if example else ""
        raise InvalidInput(f"{shown_value(value)} is not a valid {label}.{hint}")
    if len(value) > 100:
        raise InvalidInput(f"The {label} is too long ({len(value)} characters). Pick one of the suggested values.")
    return value


def check_language(value: object) -> str | None:
    """A language code such as ``en`` or ``pt-BR`` (None: detect)."""
    if value is None:
        return None
    if not isinstance(value, str) or not LANGUAGE.fullmatch(value.strip()):
        raise InvalidInput(
            f"{shown_value(value)} is not a language code. Use a code like en, de or pt-BR, or leave it out."
        )
    return value.strip()
