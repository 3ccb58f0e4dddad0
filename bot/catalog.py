"""The model catalog: which Hypereal models exist, what they take, and what they cost.

The catalog is data (``bot/catalog.json``), not code, so an operator can add a model or fix a
price by editing the file. This module loads and validates it (a broken file stops start-up with
a message naming the file and the bad field), looks models up, quotes prices, checks options
against a model's allowed values and answers autocomplete.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.errors import ConfigError, InvalidInput, ModelUnavailable
from bot.inputs import (
    DEFAULT_PROMPT_MAX,
    EMPTY_MESSAGES,
    EMPTY_PROMPT,
    TEXT_LABELS,
    VIDEO_DURATION_RANGE,
    check_format,
    check_int,
    check_text,
    shown_value,
)
from bot.wording import MODEL_KINDS, credits_text, with_article

DEFAULT_CATALOG_PATH = Path(__file__).with_name("catalog.json")

Category = Literal["chat", "image", "image_edit", "video", "audio_tts", "audio_clone", "audio_asr", "model3d"]
CATEGORIES: tuple[str, ...] = (
    "chat",
    "image",
    "image_edit",
    "video",
    "audio_tts",
    "audio_clone",
    "audio_asr",
    "model3d",
)
MAX_CHOICES = 25  # Discord's limit on autocomplete choices
MAX_CHOICE_LABEL = 100  # Discord's limit on a choice's name


class Price(BaseModel):
    """How many credits a model costs, and how that scales."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    credits: int = Field(ge=0)
    estimated: bool = False  # no published price: an estimate; the ledger settles to what Hypereal reports
    per_seconds: int | None = Field(default=None, ge=1)  # ``credits`` buys this many seconds; longer costs more
    by_resolution: dict[str, int] = Field(default_factory=dict)  # resolution → flat price replacing ``credits``
    per_chars: int | None = Field(default=None, ge=1)  # chat: one more credit per this many characters of context
    note: str | None = None


class ModelSpec(BaseModel):
    """One model: id, category, inputs and allowed values, price, sync or async."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    category: Category
    mode: Literal["sync", "async"]
    price: Price
    inputs: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    options: dict[str, tuple[int | str, ...]] = Field(default_factory=dict)
    defaults: dict[str, int | str] = Field(default_factory=dict)
    prompt_max: int | None = Field(default=None, ge=1)
    images: tuple[int, int] | None = None  # edit models: (fewest, most) input images
    note: str | None = None
    unverified: bool = False  # the id comes from third-party code and may not exist any more

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        unknown = [name for name in (*self.requires, *self.options) if name not in self.inputs]
        if unknown:
            raise ValueError(f"requires/options name inputs the model does not take: {', '.join(unknown)}")
        for name, value in self.defaults.items():
            if name in self.options and value not in self.options[name]:
                raise ValueError(f"default {name}={value!r} is not one of its allowed values")
        if self.images is not None and not 1 <= self.images[0] <= self.images[1]:
            raise ValueError("images must be [fewest, most] with 1 <= fewest <= most")
        return self

    @property
    def takes_image(self) -> bool:
        """True for models that start from an image (image-to-video, image-to-3D)."""
        return "image" in self.inputs

    def allowed(self, option: str) -> tuple[int | str, ...]:
        """The allowed values of ``option`` (empty: any value, or the model does not take it)."""
        return self.options.get(option, ())

    def price_label(self, **quote_args: Any) -> str:
        """``42 credits`` or ``~50 credits`` for an estimate; with the duration a price is for."""
        quote = quote_of(self, **quote_args)
        suffix = ""
        if self.price.per_seconds and "duration" not in quote_args:
            suffix = f" per {self.price.per_seconds} s"
        elif self.price.per_chars:
            suffix = " per message, more for long chats"
        return f"{quote.label}{suffix}"


@dataclass(frozen=True)
class Quote:
    """A price shown before a charge: exact (the catalog's published price) or an estimate ("~")."""

    credits: int
    exact: bool = True

    @property
    def label(self) -> str:
        """``42 credits`` or ``~5 credits``."""
        return ("" if self.exact else "~") + credits_text(self.credits)


def quote_of(spec: ModelSpec, **quote_args: Any) -> Quote:
    """The price of one request, marked as an estimate when the catalog's price is one (or scales with chat length)."""
    exact = not spec.price.estimated and spec.price.per_chars is None
    return Quote(quote_price(spec, **quote_args), exact=exact)


class CatalogFile(BaseModel):
    """The whole data file."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1]
    defaults: dict[str, str]
    models: list[ModelSpec]


def quote_price(
    spec: ModelSpec,
    *,
    duration: int | None = None,
    resolution: str | None = None,
    count: int = 1,
    conversation_chars: int = 0,
) -> int:
    """The credits to reserve for one request to ``spec`` with these options.

    Video prices scale linearly with duration when the catalog says what duration the base price
    buys; resolution-specific prices replace the base one; chat adds a credit per ``per_chars``
    characters of conversation. Rounded up: a reservation must cover the real charge.
    """
    price = spec.price
    credits = price.by_resolution.get(resolution.lower(), price.credits) if resolution else price.credits
    if price.per_seconds and duration:
        credits = math.ceil(credits * duration / price.per_seconds)
    if price.per_chars:
        credits += conversation_chars // price.per_chars
    return credits * max(count, 1)


@dataclass(frozen=True)
class Choice:
    """An autocomplete choice: what the user sees and the value the command receives."""

    label: str
    value: str


class Catalog:
    """The loaded, validated catalog."""

    def __init__(self, models: Iterable[ModelSpec], defaults: Mapping[str, str]) -> None:
        self._models: dict[str, ModelSpec] = {}
        for spec in models:
            if spec.id.lower() in self._models:
                raise ConfigError(f"model catalog: model id {spec.id!r} appears twice")
            self._models[spec.id.lower()] = spec
        for key, model_id in defaults.items():
            if model_id.lower() not in self._models:
                raise ConfigError(f"model catalog: defaults.{key} names {model_id!r}, which is not in the catalog")
        self.defaults = dict(defaults)

    @classmethod
    def load(cls, path: Path | None = None) -> Catalog:
        """Read and validate the catalog file; any problem is a one-line ``ConfigError``."""
        path = path or DEFAULT_CATALOG_PATH
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"model catalog {path}: cannot read it ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(f"model catalog {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
        try:
            data = CatalogFile.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = _describe_location(raw, first["loc"])
            raise ConfigError(f"model catalog {path}: {where}: {first['msg']}") from None
        return cls(data.models, data.defaults)

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Any:
        return iter(self._models.values())

    def get(self, model_id: str) -> ModelSpec | None:
        """The model with this id (case-insensitive), or None."""
        return self._models.get(model_id.strip().lower())

    def require(self, model_id: str, *categories: str) -> ModelSpec:
        """The model with this id in one of ``categories``, or a ``ModelUnavailable`` saying what to pick."""
        spec = self.get(model_id)
        if spec is None or (categories and spec.category not in categories):
            kinds = " or ".join(dict.fromkeys(MODEL_KINDS.get(c, c.replace("_", " ")) for c in categories))
            what = with_article(f"{kinds} model") if kinds else "a model"
            raise ModelUnavailable(
                f"`{model_id[:80]}` is not {what} this bot knows. Pick one from the list, or see /models."
            )
        return spec

    def by_category(self, *categories: str) -> list[ModelSpec]:
        """Models in these categories (all when none given), in catalog order."""
        return [spec for spec in self._models.values() if not categories or spec.category in categories]

    def default(self, key: str) -> ModelSpec:
        """The default model for a use (``chat``, ``image``, ``video_i2v``…)."""
        try:
            return self._models[self.defaults[key].lower()]
        except KeyError:
            raise ConfigError(f"model catalog: no default model for {key!r}") from None

    def quote(self, model_id: str, **quote_args: Any) -> int:
        """Credits to reserve for one request; see :func:`quote_price`."""
        return quote_price(self.require(model_id), **quote_args)

    def search(self, text: str, *categories: str, where: Any = None) -> list[Choice]:
        """Autocomplete: ≤25 models of ``categories`` whose id contains ``text``, labelled with their price.

        Ids that start with the typed text come first. ``where`` optionally filters further
        (e.g. only image-to-video models).
        """
        needle = text.strip().lower()
        matches = [
            spec
            for spec in self.by_category(*categories)
            if needle in spec.id.lower() and (where is None or where(spec))
        ]
        matches.sort(key=lambda spec: (not spec.id.lower().startswith(needle), spec.unverified))
        return [Choice(label=_choice_label(spec), value=spec.id) for spec in matches[:MAX_CHOICES]]

    def validate_options(self, spec: ModelSpec, options: Mapping[str, Any]) -> dict[str, Any]:
        """Check options against the model's allowed values; returns the options the model takes.

        ``None`` values are dropped; an option the model does not take, or a value outside its
        allowed values, is an ``InvalidInput`` that lists what is allowed. An option the catalog
        lists no values for must still have the right shape (:func:`bot.inputs.check_format`), since
        it goes to Hypereal as typed.
        """
        accepted: dict[str, Any] = {}
        for name, value in options.items():
            if value is None:
                continue
            if name not in spec.inputs:
                raise InvalidInput(f"`{spec.id}` does not take a {name.replace('_', ' ')} option. Leave it out.")
            allowed = spec.allowed(name)
            if allowed and not _is_allowed(value, allowed):
                listed = ", ".join(str(v) for v in allowed)
                raise InvalidInput(
                    f"`{spec.id}` accepts {name.replace('_', ' ')} {listed} — you asked for {shown_value(value)}."
                )
            if not allowed and not isinstance(value, int):
                value = check_format(name, value)
            accepted[name] = value
        return accepted

    def prompt_limit(self, spec: ModelSpec) -> int | None:
        """The longest prompt ``spec`` takes: its catalog ``prompt_max``, else its category's default."""
        return spec.prompt_max or DEFAULT_PROMPT_MAX.get(spec.category)

    def check_prompt(self, spec: ModelSpec, prompt: object) -> str:
        """The cleaned prompt (see :mod:`bot.inputs`), or ``InvalidInput`` when empty or too long.

        The limit is :meth:`prompt_limit`; the messages name the model ("Prompts for `x` can be up to…").
        """
        return check_text(
            prompt,
            limit=self.prompt_limit(spec),
            label=TEXT_LABELS.get(spec.category, f"Prompts for `{spec.id}`"),
            empty=EMPTY_MESSAGES.get(spec.category, EMPTY_PROMPT),
        )

    def check_duration(self, spec: ModelSpec, duration: object) -> int | None:
        """A video duration in seconds for ``spec``: checked, or the model's default when left out.

        A model with a list of durations in the catalog takes one of those; one that takes a
        duration but lists none takes :data:`bot.inputs.VIDEO_DURATION_RANGE`. Left out, the
        catalog default is used, else None (Hypereal picks; the base price is reserved).
        """
        if duration is None:
            default = spec.defaults.get("duration")
            return int(default) if default is not None else None
        if "duration" not in spec.inputs:
            raise InvalidInput(f"`{spec.id}` does not take a duration. Leave it out.")
        listed = [v for v in spec.allowed("duration") if isinstance(v, int)]
        low, high = (min(listed), max(listed)) if listed else VIDEO_DURATION_RANGE
        seconds = check_int(duration, low, high, name="Duration", unit="seconds")
        if listed and seconds not in listed:
            raise InvalidInput(f"`{spec.id}` accepts duration {', '.join(map(str, listed))} — you asked for {seconds}.")
        return seconds


def _is_allowed(value: Any, allowed: tuple[int | str, ...]) -> bool:
    if all(isinstance(v, int) for v in allowed) and (isinstance(value, bool) or not isinstance(value, int)):
        return False  # "10" or True where the model takes whole numbers
    if isinstance(value, str):
        return value.lower() in {str(v).lower() for v in allowed}
    return value in allowed


def _choice_label(spec: ModelSpec) -> str:
    label = f"{spec.id} · {spec.price_label()}"
    if spec.unverified:
        label += " · experimental"
    return label[:MAX_CHOICE_LABEL]


def _describe_location(raw: Any, loc: tuple[int | str, ...]) -> str:
    """``models[3] (veo-3-1-i2v).category`` rather than pydantic's bare tuple."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int):
            label = f"[{step}]"
            if isinstance(node, list) and step < len(node) and isinstance(node[step], dict) and "id" in node[step]:
                label += f" ({node[step]['id']})"
            parts.append(label)
        else:
            parts.append(f".{step}" if parts else str(step))
        node = node[step] if isinstance(node, (list, dict)) and _has(node, step) else None
    return "".join(parts) or "top level"


def _has(node: list[Any] | dict[str, Any], step: int | str) -> bool:
    if isinstance(node, list):
        return isinstance(step, int) and step < len(node)
    return step in node
