"""The words members read, defined once: credit amounts, category names, nouns for results.

Every user-facing string that names a number of credits or a kind of request takes it from here,
so "1 credit" / "2 credits", "an image model" and "3D model" are spelled the same everywhere.
"""

from __future__ import annotations

# Budget categories (what admins cap) as members read them.
CATEGORY_LABELS: dict[str, str] = {
    "chat": "Chat",
    "image": "Images",
    "image_edit": "Image edits",
    "video": "Video",
    "audio": "Audio",
    "model3d": "3D models",
}

# Budget categories inside a sentence: "Image requests are not enabled here", "your 5-credit image cap".
CATEGORY_NOUNS: dict[str, str] = {
    "chat": "chat",
    "image": "image",
    "image_edit": "image editing",
    "video": "video",
    "audio": "audio",
    "model3d": "3D model",
}

# Catalog categories → what one result of that kind is called ("your video is ready").
RESULT_NOUNS: dict[str, str] = {
    "chat": "answer",
    "image": "image",
    "image_edit": "edited image",
    "video": "video",
    "audio_tts": "speech",
    "audio_clone": "cloned voice",
    "audio_asr": "transcript",
    "model3d": "3D model",
}

# Catalog categories → the kind of model, for sentences like "`x` is not an image model".
MODEL_KINDS: dict[str, str] = {
    "chat": "chat",
    "image": "image",
    "image_edit": "image editing",
    "video": "video",
    "audio_tts": "speech",
    "audio_clone": "voice cloning",
    "audio_asr": "transcription",
    "model3d": "3D",
}


def credits_text(amount: int) -> str:
    """``1 credit``, ``2 credits``, ``-3 credits`` ."""
    return f"{amount} credit" if abs(amount) == 1 else f"{amount} credits"


def with_article(phrase: str) -> str:
    """``an image model``, ``a video model``, ``a 3D model`` (by sound: vowels, and digits read as words)."""
    first = phrase.lstrip()[:1].lower()
    sounds_like_vowel = first in "aeio" or (first == "u" and not phrase.lower().startswith(("use", "uni")))
    if first == "8" or phrase.lstrip().startswith(("11", "18")):
        sounds_like_vowel = True
    return f"{'an' if sounds_like_vowel else 'a'} {phrase}"


def result_noun(category: str) -> str:
    """What one result of a catalog category is called (``result`` for an unknown one)."""
    return RESULT_NOUNS.get(category, "result")


def category_noun(budget_category: str) -> str:
    """A budget category inside a sentence (``image``, ``3D model``)."""
    return CATEGORY_NOUNS.get(budget_category, budget_category.replace("_", " "))


def sentence_start(text: str) -> str:
    """``text`` with its first letter upper-cased (``3D model`` stays as it is)."""
    return text[:1].upper() + text[1:]


def category_label(budget_category: str) -> str:
    """A budget category as members read it."""
    return CATEGORY_LABELS.get(budget_category, budget_category.replace("_", " "))


def percent(part: int, whole: int) -> int:
    """Whole percent, rounded down (so 99.9 % is not shown as 100 %); 0 when ``whole`` is 0."""
    return part * 100 // whole if whole > 0 else 0


def balance_text(balance: int, allowance: int) -> str:
    """``**954** of 1000 credits left`` — the one way every command prints a server's balance (it may be negative)."""
    return f"**{balance}** of {credits_text(allowance)} left"


QUESTION_QUOTE_MAX = 100  # characters of the prompt quoted above a public answer


def question_line(user_id: int, prompt: str) -> str:
    """``-# <@123> asked: “a fox in the snow”``: who asked what, one small line above a public answer.

    The prompt is collapsed to one line and cut at :data:`QUESTION_QUOTE_MAX` characters; the mention must be
    sent with no allowed mentions, so it names the asker without pinging them.
    """
    text = " ".join(prompt.split())
    if len(text) > QUESTION_QUOTE_MAX:
        text = text[: QUESTION_QUOTE_MAX - 1].rstrip() + "…"
    return f"-# <@{user_id}> asked: “{text}”"
