"""The image grid: layout per count, order of the cells, the caps on its inputs and its size."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot import grid
from bot.grid import GridError, compose_grid

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]


def _png(colour: tuple[int, int, int], size: tuple[int, int] = (64, 64), mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, colour).save(out, format="PNG")
    return out.getvalue()


def _centre_of(image: Image.Image, column: int, row: int, cell: tuple[int, int]) -> tuple[int, ...]:
    x = grid.GAP + column * (cell[0] + grid.GAP) + cell[0] // 2
    y = grid.GAP + row * (cell[1] + grid.GAP) + cell[1] // 2
    return image.getpixel((x, y))  # type: ignore[return-value]


@pytest.mark.parametrize(("count", "columns", "rows"), [(2, 2, 1), (3, 3, 1), (4, 2, 2)])
def test_layout_and_order_follow_the_buttons(count: int, columns: int, rows: int) -> None:
    data = compose_grid([_png(c) for c in COLOURS[:count]])
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    gap = grid.GAP
    assert image.size == (columns * 64 + (columns + 1) * gap, rows * 64 + (rows + 1) * gap)
    for index, colour in enumerate(COLOURS[:count]):  # left to right, top to bottom: U1, U2, U3, U4
        assert _centre_of(image, index % columns, index // columns, (64, 64)) == colour
    assert image.getpixel((0, 0)) == grid.BACKGROUND  # the gaps


def test_large_images_are_scaled_to_the_cell_and_keep_their_proportions() -> None:
    data = compose_grid([_png(c, (2000, 1000)) for c in COLOURS], cell_max=400)
    image = Image.open(io.BytesIO(data))
    assert image.size == (2 * 400 + 3 * grid.GAP, 2 * 200 + 3 * grid.GAP)
    assert _centre_of(image, 1, 1, (400, 200)) == COLOURS[3]


def test_odd_proportions_are_fitted_inside_the_cell_and_transparency_flattened() -> None:
    tall = _png((0, 0, 255), (32, 64))
    clear = _png((255, 0, 0, 0), (64, 64), mode="RGBA")
    image = Image.open(io.BytesIO(compose_grid([_png((255, 0, 0)), tall, clear])))
    # The tall image fills the middle of its cell; its sides show the background.
    assert _centre_of(image, 1, 0, (64, 64)) == (0, 0, 255)
    assert image.getpixel((grid.GAP + 64 + grid.GAP + 2, grid.GAP + 32)) == grid.BACKGROUND
    assert _centre_of(image, 2, 0, (64, 64)) == grid.BACKGROUND


@pytest.mark.parametrize("count", [0, 1, 5])
def test_only_two_to_four_images_make_a_grid(count: int) -> None:
    with pytest.raises(GridError, match="2 to 4"):
        compose_grid([_png((0, 0, 0))] * count)


def test_bad_or_oversized_inputs_are_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(GridError, match="image 2 is not an image"):
        compose_grid([_png((0, 0, 0)), b"not a png"])
    monkeypatch.setattr(grid, "MAX_INPUT_BYTES", 100)
    with pytest.raises(GridError, match="over the grid's 100-byte cap"):
        compose_grid([_png((0, 0, 0)), os.urandom(101)])


def test_too_many_pixels_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grid, "MAX_INPUT_PIXELS", 64 * 64 - 1)
    with pytest.raises(GridError, match="over the grid's pixel cap"):
        compose_grid([_png((0, 0, 0)), _png((0, 0, 0))])


def test_a_grid_too_heavy_for_the_limit_is_shrunk_until_it_fits() -> None:
    noise = Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3))  # incompressible, like a photo
    out = io.BytesIO()
    noise.save(out, format="PNG")
    inputs = [out.getvalue()] * 4
    full = compose_grid(inputs, cell_max=600)
    smaller = compose_grid(inputs, cell_max=600, max_bytes=len(full) // 2)
    assert len(smaller) <= len(full) // 2
    assert Image.open(io.BytesIO(smaller)).width < Image.open(io.BytesIO(full)).width
    with pytest.raises(GridError, match="does not fit"):
        compose_grid(inputs, cell_max=600, max_bytes=1000)
