"""One grid picture from 2–4 images: what ``/image count:N`` posts instead of N stacked embeds.

A pure function, bytes in and PNG bytes out, so it is tested without Discord or the network; the
image service runs it off the event loop (``asyncio.to_thread``): decoding four large PNGs takes a
noticeable fraction of a second. Layout: 2 images side by side (1×2), 3 in a row (1×3), 4 as 2×2,
read left to right, top to bottom — the order of the U1–U4 / V1–V4 buttons.

Inputs are capped before any pixel is decoded (bytes per image, pixels per image), and the grid is
shrunk until its PNG fits ``max_bytes`` (Discord's default upload limit is 10 MiB).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

LAYOUTS = {2: (2, 1), 3: (3, 1), 4: (2, 2)}  # images → (columns, rows)
MAX_INPUT_BYTES = 40 * 1024 * 1024  # one image; a 4k PNG is ~20 MB
MAX_INPUT_PIXELS = 64_000_000  # below Pillow's decompression-bomb warning, as for attachments
CELL_MAX = 768  # longest side of one cell: a 2×2 grid is at most ~1.5k px, sharp enough, small enough
GAP = 8
BACKGROUND = (43, 45, 49)  # Discord's dark theme, so the gaps read as borders
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
MIN_CELL = 96  # below this the grid is not worth posting


class GridError(ValueError):
    """The images cannot be composed (too large, not images, too many pixels); the caller falls back."""


def layout(count: int) -> tuple[int, int]:
    """(columns, rows) for ``count`` images; ``GridError`` outside 2–4."""
    try:
        return LAYOUTS[count]
    except KeyError:
        raise GridError(f"a grid takes 2 to 4 images, not {count}") from None


def compose_grid(
    images: Sequence[bytes],
    *,
    cell_max: int = CELL_MAX,
    gap: int = GAP,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> bytes:
    """The images as one PNG grid (see the module docstring for the layout and the caps).

    Every cell has the first image's proportions (a set shares its aspect ratio); an image of other
    proportions is fitted inside its cell, centred. Images are never enlarged past their own size.
    """
    from PIL import Image, ImageOps  # on first use: start-up stays small (see bench/footprint.py)

    columns, rows = layout(len(images))
    decoded = [_open(data, n) for n, data in enumerate(images, 1)]
    try:
        first_w, first_h = decoded[0].size
        scale = min(1.0, cell_max / max(first_w, first_h))
        cell = (max(1, round(first_w * scale)), max(1, round(first_h * scale)))
        while True:
            canvas = Image.new("RGB", (columns * cell[0] + (columns + 1) * gap, rows * cell[1] + (rows + 1) * gap),
                               BACKGROUND)  # fmt: skip
            for index, image in enumerate(decoded):
                fitted = ImageOps.contain(_rgb(image), cell, Image.Resampling.LANCZOS)
                column, row = index % columns, index // columns
                x = gap + column * (cell[0] + gap) + (cell[0] - fitted.width) // 2
                y = gap + row * (cell[1] + gap) + (cell[1] - fitted.height) // 2
                canvas.paste(fitted, (x, y))
            out = io.BytesIO()
            canvas.save(out, format="PNG")
            if out.tell() <= max_bytes:
                return out.getvalue()
            # Too heavy to upload: shrink the cells (photographic PNGs scale with their area).
            cell = (round(cell[0] * 0.7), round(cell[1] * 0.7))
            if min(cell) < MIN_CELL:
                raise GridError(f"the grid does not fit in {max_bytes} bytes")
    finally:
        for image in decoded:
            image.close()


def _open(data: bytes, number: int) -> PILImage:
    """Open one input (header only), refusing oversized files and decompression bombs before decoding."""
    from PIL import Image

    if len(data) > MAX_INPUT_BYTES:
        raise GridError(f"image {number} is {len(data)} bytes, over the grid's {MAX_INPUT_BYTES}-byte cap")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise GridError(f"image {number} has too many pixels") from None
    except Exception as exc:
        raise GridError(f"image {number} is not an image Pillow can read ({type(exc).__name__})") from None
    width, height = image.size
    if width * height > MAX_INPUT_PIXELS or not width or not height:
        image.close()
        raise GridError(f"image {number} is {width}×{height}, over the grid's pixel cap")
    try:
        image.load()
    except Exception as exc:
        image.close()
        raise GridError(f"image {number} is damaged ({type(exc).__name__})") from None
    return image


def _rgb(image: PILImage) -> PILImage:
    """The image as RGB, transparency flattened onto the grid's background."""
    from PIL import Image

    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, BACKGROUND)
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")
