"""/image, /edit and the "Edit image" message menu, with persistent result buttons.

The buttons are ``DynamicItem``s whose custom_id carries the stored generation's id, so Reroll and
Edit still work after a restart. Only the requester may press them unless the server shares them.

Several images come as one grid picture with per-image controls, Midjourney style: U1–U4 post an
image full size (free: the grid paid for it), V1–V4 make a paid variation of one, and a menu
animates, edits or turns one into 3D. Their custom_ids add the image's number
(``gen:u:<generation>:3``, ``gen:pick:<generation>``), so they survive restarts too.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.catalog import Catalog
from bot.errors import InvalidInput
from bot.images import MAX_COUNT, Generation, ImageOutcome, ImagePlan, InputImage, PostedResult
from bot.wording import question_line
from cogs._jobs_ui import start_job
from cogs._shared import NO_MENTIONS, InteractionMember, input_image, requester_of, require_guild, show_error

if TYPE_CHECKING:
    from bot.bot import HyperealBot

log = logging.getLogger(__name__)

EMBED_COLOUR = discord.Colour.purple()
ACTIONS: dict[str, tuple[str, str | None]] = {
    "reroll": ("Reroll", "🎲"),
    "edit": ("Edit", "✏️"),
    "animate": ("Animate", "🎬"),
    "model3d": ("To 3D", "🧊"),
    "u": ("U", None),  # U<k>: image k full size
    "v": ("V", None),  # V<k>: a variation of image k
}
GRID_HINT = (
    "**U** posts an image full size (free) · **V** makes a variation of it · "
    "the menu animates, edits or turns one into 3D"
)


class GenerationButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=r"gen:(?P<action>reroll|edit|animate|model3d|u|v):(?P<generation>[0-9a-f]{16})(?::(?P<index>[1-9]))?",
):
    """A result button that survives restarts: its custom_id names the action, the generation and the image.

    Without an image number (a single image's buttons, as they always were) it acts on image 1.
    """

    def __init__(
        self,
        action: str,
        generation_id: str,
        *,
        number: int | None = None,
        label: str | None = None,
        row: int | None = None,
    ) -> None:
        default_label, emoji = ACTIONS[action]
        if action in ("u", "v"):
            default_label = f"{default_label}{number or 1}"
        suffix = f":{number}" if number is not None else ""
        super().__init__(
            discord.ui.Button(
                label=label or default_label,
                emoji=emoji,
                style=discord.ButtonStyle.secondary,
                custom_id=f"gen:{action}:{generation_id}{suffix}",
                row=row,
            )
        )
        self.action = action
        self.generation_id = generation_id
        self.number = number

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Button[Any], match: re.Match[str], /
    ) -> GenerationButton:
        number = int(match["index"]) if match["index"] else None
        return cls(match["action"], match["generation"], number=number)

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await on_result_button(interaction, self.action, self.generation_id, (self.number or 1) - 1)
        except Exception as exc:
            await show_error(interaction, exc)


class GenerationPick(
    discord.ui.DynamicItem[discord.ui.Select[Any]],
    template=r"gen:pick:(?P<generation>[0-9a-f]{16})",
):
    """A grid's menu "Animate / Edit / To 3D image k" (persistent); each value is ``<action>:<image number>``."""

    def __init__(self, generation_id: str, options: list[discord.SelectOption], *, row: int | None = None) -> None:
        super().__init__(
            discord.ui.Select(
                placeholder="Animate, edit or turn one image into 3D…",
                options=options,
                custom_id=f"gen:pick:{generation_id}",
                row=row,
            )
        )
        self.generation_id = generation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Select[Any], match: re.Match[str], /
    ) -> GenerationPick:
        return cls(match["generation"], list(item.options))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        try:
            action, number = parse_pick(self.item.values[0] if self.item.values else "")
            await on_result_button(interaction, action, self.generation_id, number - 1)
        except Exception as exc:
            await show_error(interaction, exc)


def parse_pick(value: str) -> tuple[str, int]:
    """A menu value ``animate:3`` as (action, image number); anything else (a forged value) is refused."""
    match = re.fullmatch(r"(?P<action>animate|model3d|edit):(?P<number>[1-9])", value)
    if match is None:
        raise InvalidInput("Pick one of the menu's entries.")
    return match["action"], int(match["number"])


class PromptModal(discord.ui.Modal):
    """Asks for an edit prompt, then hands it to ``on_prompt``."""

    prompt: discord.ui.TextInput[PromptModal] = discord.ui.TextInput(
        label="What should change?", style=discord.TextStyle.paragraph, max_length=2000, custom_id="prompt"
    )

    def __init__(self, on_prompt: Any, *, custom_id: str) -> None:
        super().__init__(title="Edit image", custom_id=custom_id, timeout=600)
        self._on_prompt = on_prompt

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        try:
            await self._on_prompt(interaction, self.prompt.value)
        except Exception as exc:
            await show_error(interaction, exc)


class Images(commands.Cog):
    """Image generation and editing."""

    def __init__(self, bot: HyperealBot) -> None:
        self.bot = bot
        self.edit_menu = app_commands.ContextMenu(name="Edit image", callback=self.edit_from_message)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(GenerationButton, GenerationPick)
        self.bot.tree.add_command(self.edit_menu)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(GenerationButton, GenerationPick)
        self.bot.tree.remove_command(self.edit_menu.name, type=self.edit_menu.type)

    # ── commands ─────────────────────────────────────────────────────────────

    @app_commands.command(name="image")
    @app_commands.guild_only()
    @app_commands.describe(
        prompt="What to draw",
        model="Image model (default: the server's)",
        aspect_ratio="Shape of the image, e.g. 16:9",
        count=f"How many images (1–{MAX_COUNT})",
    )
    async def image(
        self,
        interaction: discord.Interaction[HyperealBot],
        prompt: str,
        model: str | None = None,
        aspect_ratio: str | None = None,
        count: app_commands.Range[int, 1, MAX_COUNT] = 1,
    ) -> None:
        """Generate images from a prompt."""
        guild_id = require_guild(interaction)
        services = self.bot.services
        # Left-out options take the member's /settings (option > member > global).
        chosen = await services.member_settings.image_options(
            guild_id, interaction.user.id, model=model, aspect_ratio=aspect_ratio
        )
        plan = services.images.plan_generate(prompt, model=chosen.model, aspect_ratio=chosen.aspect_ratio, count=count)
        await start_images(interaction, plan, key=f"image:{interaction.id}")

    @image.autocomplete("model")
    async def _image_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        return [
            app_commands.Choice(name=c.label, value=c.value) for c in self.bot.services.catalog.search(current, "image")
        ]

    @image.autocomplete("aspect_ratio")
    async def _aspect_ratios(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        model = getattr(interaction.namespace, "model", None)
        ratios = self.bot.services.images.aspect_ratios(model)
        return [app_commands.Choice(name=r, value=r) for r in ratios if current in r][:25]

    @app_commands.command(name="edit")
    @app_commands.guild_only()
    @app_commands.describe(
        image="The image to edit",
        prompt="What should change",
        model="Edit model (default: the server's)",
        image2="A reference image",
        image3="Another reference image",
        image4="Another reference image",
    )
    async def edit(
        self,
        interaction: discord.Interaction[HyperealBot],
        image: discord.Attachment,
        prompt: str,
        model: str | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
    ) -> None:
        """Edit an image with a prompt (extra images are references)."""
        require_guild(interaction)
        images = [input_image(a) for a in (image, image2, image3, image4) if a is not None]
        plan = self.bot.services.images.plan_edit(prompt, images, model=model)
        await self.bot.services.attachments.images(images)  # contents and Discord URLs, before reserving
        await start_images(interaction, plan, key=f"edit:{interaction.id}")

    @edit.autocomplete("model")
    async def _edit_models(self, interaction: discord.Interaction[HyperealBot], current: str) -> list[Any]:
        choices = self.bot.services.catalog.search(current, "image_edit")
        return [app_commands.Choice(name=c.label, value=c.value) for c in choices]

    async def edit_from_message(self, interaction: discord.Interaction[HyperealBot], message: discord.Message) -> None:
        """Message menu ▸ Apps ▸ Edit image: edit the message's first image."""
        require_guild(interaction)
        source = message_image(message)
        # Checked before the modal opens: a file that will be refused is refused before the member types.
        await self.bot.services.attachments.image(source)

        async def on_prompt(submitted: discord.Interaction[HyperealBot], prompt: str) -> None:
            plan = self.bot.services.images.plan_edit(prompt, [source])
            await start_images(submitted, plan, key=f"edit:{submitted.id}")

        await interaction.response.send_modal(PromptModal(on_prompt, custom_id=f"edit-modal:{interaction.id}"))


class ImagePoster(InteractionMember):
    """Posts an image result (embeds with the persistent buttons) wherever the member can still see it."""

    async def deliver(self, plan: ImagePlan, outcome: ImageOutcome) -> PostedResult | None:
        if outcome.grid is not None:
            return await self._deliver_grid(plan, outcome)
        interaction = self.interaction
        names = [f"image-{n}{Path(r.filename).suffix or '.png'}" for n, r in enumerate(outcome.files, 1)]
        embeds = []
        for name in names:
            embed = discord.Embed(colour=EMBED_COLOUR)
            embed.set_image(url=f"attachment://{name}")
            embeds.append(embed)
        head = embeds[0]
        head.title = ("✏️ " if plan.kind == "image_edit" else "🎨 ") + plan.prompt[:240]
        head.set_author(name=interaction.user.display_name)
        embeds[-1].set_footer(text=_footer(plan, outcome))
        catalog = interaction.client.services.catalog
        # Several images stacked (their grid could not be composed) still get a button per image.
        count = len(outcome.files)
        view = (
            result_buttons(catalog, outcome.generation_id)
            if count == 1
            else grid_buttons(catalog, outcome.generation_id, count)
        )

        def build() -> dict[str, Any]:
            files = [discord.File(r.path, filename=name) for r, name in zip(outcome.files, names, strict=True)]
            return {"embeds": embeds, "files": files, "view": view}

        # Public results say who asked what (the mention does not ping: the poster sends no allowed mentions).
        head_line = f"<@{interaction.user.id}>" if self.ephemeral else question_line(interaction.user.id, plan.prompt)
        message = await self.send(head_line, build)
        if message is None:
            return None
        return PostedResult(message.id, tuple(a.url for a in message.attachments))

    async def _deliver_grid(self, plan: ImagePlan, outcome: ImageOutcome) -> PostedResult | None:
        """One message: the grid as the embed's image, the cost line, U/V buttons and the per-image menu."""
        interaction = self.interaction
        grid = outcome.grid
        assert grid is not None
        embed = discord.Embed(colour=EMBED_COLOUR, title="🎨 " + plan.prompt[:240], description=GRID_HINT)
        embed.set_image(url="attachment://grid.png")
        embed.set_author(name=interaction.user.display_name)
        embed.set_footer(text=_footer(plan, outcome))
        view = grid_buttons(interaction.client.services.catalog, outcome.generation_id, len(outcome.files))

        def build() -> dict[str, Any]:
            return {"embeds": [embed], "files": [discord.File(grid.path, filename="grid.png")], "view": view}

        head_line = f"<@{interaction.user.id}>" if self.ephemeral else question_line(interaction.user.id, plan.prompt)
        message = await self.send(head_line, build)
        if message is None:
            return None
        # The message holds the grid, not the originals: no attachment URLs are recorded, so the buttons
        # act on Hypereal's outputs, image by image.
        return PostedResult(message.id)


def _footer(plan: ImagePlan, outcome: ImageOutcome) -> str:
    """The cost line, and how many of the parallel images failed (those were not charged)."""
    footer = outcome.charge.cost_line()
    if outcome.failures:
        footer += f" · {len(outcome.failures)} of {plan.count} failed and were not charged"
    return footer


def _job_prices(catalog: Catalog) -> tuple[str, str]:
    """What Animate and To 3D cost with their default models, as their buttons and menu entries show it."""
    return catalog.default("video_i2v").price_label(), catalog.default("model3d").price_label()


async def start_images(interaction: discord.Interaction[HyperealBot], plan: ImagePlan, *, key: str) -> None:
    """The paid request, through ``bot/`` once: policy, confirmation, reservation, Hypereal, the post, the charge."""
    await interaction.client.services.images.generate(requester_of(interaction), plan, key, ImagePoster(interaction))


def result_buttons(catalog: Catalog, generation_id: str) -> discord.ui.View:
    """Reroll, Edit, Animate (with its price) and To 3D (with its price), persistent across restarts."""
    view = discord.ui.View(timeout=None)
    view.add_item(GenerationButton("reroll", generation_id))
    view.add_item(GenerationButton("edit", generation_id))
    animate_price, model3d_price = _job_prices(catalog)
    view.add_item(GenerationButton("animate", generation_id, label=f"Animate ({animate_price})"))
    view.add_item(GenerationButton("model3d", generation_id, label=f"To 3D ({model3d_price})"))
    return view


def grid_buttons(catalog: Catalog, generation_id: str, count: int) -> discord.ui.View:
    """A grid's controls, within Discord's 5 rows of 5: U1–Un and Reroll, V1–Vn, the per-image menu."""
    view = discord.ui.View(timeout=None)
    for number in range(1, count + 1):
        view.add_item(GenerationButton("u", generation_id, number=number, row=0))
    view.add_item(GenerationButton("reroll", generation_id, row=0))
    for number in range(1, count + 1):
        view.add_item(GenerationButton("v", generation_id, number=number, row=1))
    animate_price, model3d_price = _job_prices(catalog)
    options = []
    for number in range(1, count + 1):
        options += [
            discord.SelectOption(
                label=f"Animate image {number} ({animate_price})", value=f"animate:{number}", emoji="🎬"
            ),
            discord.SelectOption(label=f"Edit image {number}", value=f"edit:{number}", emoji="✏️"),
            discord.SelectOption(
                label=f"To 3D image {number} ({model3d_price})", value=f"model3d:{number}", emoji="🧊"
            ),
        ]
    view.add_item(GenerationPick(generation_id, options, row=2))
    return view


def original_buttons(catalog: Catalog, generation_id: str, number: int) -> discord.ui.View:
    """Under an image posted full size from a grid (U<k>): Vary, Edit, Animate and To 3D, for that image."""
    view = discord.ui.View(timeout=None)
    view.add_item(GenerationButton("v", generation_id, number=number, label="Vary"))
    view.add_item(GenerationButton("edit", generation_id, number=number))
    animate_price, model3d_price = _job_prices(catalog)
    view.add_item(GenerationButton("animate", generation_id, number=number, label=f"Animate ({animate_price})"))
    view.add_item(GenerationButton("model3d", generation_id, number=number, label=f"To 3D ({model3d_price})"))
    return view


async def post_original(interaction: discord.Interaction[HyperealBot], generation: Generation, index: int) -> None:
    """U<k>: image ``index`` (0-based) full size, as a reply to the grid; nothing is charged."""
    services = interaction.client.services
    services.attachments.check_result_url(services.images.original_url(generation, index))
    poster = InteractionMember(interaction)
    await poster.acknowledge()  # the download can take longer than Discord's 3 s
    guild = interaction.guild
    file = await services.images.original(generation, index, max_bytes=guild.filesize_limit if guild else None)
    try:
        number = index + 1
        name = f"image-{number}{Path(file.filename).suffix or '.png'}"
        embed = discord.Embed(colour=EMBED_COLOUR)
        if generation.prompt:
            embed.title = "🎨 " + generation.prompt[:240]
        embed.set_image(url=f"attachment://{name}")
        embed.set_footer(
            text=f"Image {number} of {generation.image_count} · {generation.model} · no charge (paid with the grid)"
        )
        view = original_buttons(services.catalog, generation.id, number)

        def build() -> dict[str, Any]:
            return {"embeds": [embed], "files": [discord.File(file.path, filename=name)], "view": view}

        head = (
            question_line(generation.user_id, generation.prompt)
            if generation.prompt
            else f"-# <@{generation.user_id}>'s image {number}"
        )
        await poster.send(head, build)
    finally:
        file.remove()


async def on_result_button(
    interaction: discord.Interaction[HyperealBot], action: str, generation_id: str, index: int = 0
) -> None:
    """Reroll, U/V, Edit, Animate or To 3D on a stored generation; ``index`` (0-based) picks the image."""
    services = interaction.client.services
    generation = await services.images.generation(generation_id)
    if generation is None:
        await interaction.response.send_message("This result is no longer available.", ephemeral=True)
        return
    shared = (await services.guild_settings.get(interaction.guild_id or 0)).shared_buttons
    if interaction.user.id != generation.user_id and not shared:
        await interaction.response.send_message(
            f"These buttons belong to <@{generation.user_id}>. Use /image to make your own.",
            ephemeral=True,
            allowed_mentions=NO_MENTIONS,
        )
        return
    if action == "reroll":
        await start_images(interaction, services.images.reroll_plan(generation), key=f"reroll:{interaction.id}")
        return
    if index:  # image 1 is every result's own; another number comes from a grid (or a forged custom_id)
        services.images.check_image_number(generation, index)
    if action == "u":
        await post_original(interaction, generation, index)
        return
    if action == "v":
        plan = services.images.variation_plan(generation, index)
        for reference in plan.source_urls:
            services.attachments.check_result_url(reference)
        await start_images(interaction, plan, key=f"vary:{interaction.id}")
        return
    source_url = generation.image_url_at(index)
    if source_url is None:
        await interaction.response.send_message("This result has no image to start from.", ephemeral=True)
        return
    services.attachments.check_result_url(source_url)
    if action == "edit":
        source = InputImage(url=source_url, content_type="image/png", size=0)

        async def on_prompt(submitted: discord.Interaction[HyperealBot], prompt: str) -> None:
            plan = services.images.plan_edit(prompt, [source])
            await start_images(submitted, plan, key=f"edit:{submitted.id}")

        await interaction.response.send_modal(PromptModal(on_prompt, custom_id=f"edit-modal:{interaction.id}"))
        return
    jobs = services.jobs
    plan = jobs.plan_animate(source_url, generation.prompt) if action == "animate" else jobs.plan_model3d(source_url)
    await start_job(interaction, plan)


def message_image(message: discord.Message) -> InputImage:
    """The first image of a message: an attachment, else an embed's image as Discord's media proxy serves it.

    An embed names any address its author chose; only its ``proxy_url`` (Discord's copy) may go on to
    Hypereal, so an embed image without one is refused.
    """
    attachment = next((a for a in message.attachments if (a.content_type or "").startswith("image/")), None)
    if attachment is not None:
        return input_image(attachment)
    embedded = [e.image for e in message.embeds if e.image.url or e.image.proxy_url]
    if not embedded:
        raise InvalidInput("That message has no image to edit.")
    if not embedded[0].proxy_url:
        raise InvalidInput(
            "That message's image is not hosted by Discord, so the bot will not send it on. "
            "Save the image and use /edit with the file."
        )
    return InputImage(url=embedded[0].proxy_url, content_type=None, size=0, filename="the message's image")


async def setup(bot: HyperealBot) -> None:
    """Extension entry point."""
    await bot.add_cog(Images(bot))
