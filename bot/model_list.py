"""What /models shows: the catalog as pages of lines with prices, ready for one embed each."""

from __future__ import annotations

from dataclasses import dataclass

from bot.catalog import Catalog, ModelSpec
from bot.errors import InvalidInput

# What a user can pick in /models, in display order. "audio" covers the three audio kinds.
CATEGORY_TITLES: dict[str, str] = {
    "chat": "Chat",
    "image": "Image generation",
    "image_edit": "Image editing",
    "video": "Video",
    "audio": "Audio (speech, voice cloning, transcription)",
    "model3d": "3D models",
}
CATEGORY_MEMBERS: dict[str, tuple[str, ...]] = {
    "chat": ("chat",),
    "image": ("image",),
    "image_edit": ("image_edit",),
    "video": ("video",),
    "audio": ("audio_tts", "audio_clone", "audio_asr"),
    "model3d": ("model3d",),
}
ALIASES = {"3d": "model3d", "edit": "image_edit", "images": "image", "videos": "video", "tts": "audio"}
LINES_PER_PAGE = 18  # keeps a page readable on a phone, far under the 4,096-character embed limit
# Options that say how big or what shape a result is, as /models names them.
SIZE_OPTIONS = {"aspect_ratio": "aspect ratios", "size": "sizes", "resolution": "resolutions"}
# Categories whose models are listed as one line per price (21 chat models cost the same: one line, not 21).
GROUPED_CATEGORIES = frozenset({"chat"})
ESTIMATE_NOTE = "~ = estimated price; you are charged what Hypereal reports."


@dataclass(frozen=True)
class ModelListPage:
    """One embed's worth of the catalog."""

    title: str
    lines: tuple[str, ...]
    number: int
    total: int


def resolve_category(category: str | None) -> str | None:
    """The /models category key for what the user typed (None = all), or ``InvalidInput`` listing the choices."""
    if category is None or not category.strip():
        return None
    key = category.strip().lower().replace(" ", "_")
    key = ALIASES.get(key, key)
    if key in CATEGORY_MEMBERS:
        return key
    for candidate, members in CATEGORY_MEMBERS.items():
        if key in members:
            return candidate
    choices = ", ".join(CATEGORY_TITLES)
    raise InvalidInput(f"There is no model category `{category[:40]}`. Pick one of: {choices}.")


def model_line(spec: ModelSpec) -> str:
    """``• `kling-3-0-std-i2v` — 42 credits · durations 3, 5, 10, 15 s · needs an image``."""
    parts = [f"`{spec.id}` — {spec.price_label()}"]
    durations = spec.allowed("duration")
    if durations:
        parts.append("durations " + ", ".join(str(d) for d in durations) + " s")
    for option, word in SIZE_OPTIONS.items():
        values = spec.allowed(option)
        if values:
            parts.append(f"{word} " + ", ".join(str(v) for v in values))
    if spec.price.by_resolution:
        parts.append(", ".join(f"{res}: {credits}" for res, credits in spec.price.by_resolution.items()))
    if spec.mode == "async":
        parts.append("async")
    if spec.unverified:
        parts.append("experimental: may not be available")
    return "• " + " · ".join(parts)


def grouped_lines(specs: list[ModelSpec]) -> list[str]:
    """One line per distinct price: ``• 21 models at ~2 credits per message…: `a`, `b`, …`` (catalog order kept)."""
    by_label: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        by_label.setdefault(model_line(spec).split(" — ", 1)[1], []).append(spec)
    lines = []
    for label, members in by_label.items():
        if len(members) == 1:
            lines.append(model_line(members[0]))
            continue
        ids = ", ".join(f"`{spec.id}`" for spec in members)
        lines.append(f"• {len(members)} models at {label}: {ids}")
    return lines


def model_list_pages(catalog: Catalog, category: str | None) -> list[ModelListPage]:
    """The pages /models shows for ``category`` (None = everything, grouped by category)."""
    key = resolve_category(category)
    keys = [key] if key else list(CATEGORY_TITLES)
    lines: list[str] = []
    for group in keys:
        specs = catalog.by_category(*CATEGORY_MEMBERS[group])
        if not specs:
            continue
        if key is None:
            lines.append(f"**{CATEGORY_TITLES[group]}**")
        lines.extend(grouped_lines(specs) if group in GROUPED_CATEGORIES else [model_line(spec) for spec in specs])
    title = f"Models — {CATEGORY_TITLES[key]}" if key else "Models — everything"
    if not lines:
        lines = ["No models in this category yet. The operator can add them to `bot/catalog.json`."]
    if any(spec.price.estimated for group in keys for spec in catalog.by_category(*CATEGORY_MEMBERS[group])):
        lines.append(f"-# {ESTIMATE_NOTE}")
    chunks = [lines[i : i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)]
    return [
        ModelListPage(title=title, lines=tuple(chunk), number=n, total=len(chunks)) for n, chunk in enumerate(chunks, 1)
    ]
