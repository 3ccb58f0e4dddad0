"""The GLB preview renderer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.preview import PreviewFailed, render_glb_preview
from bot.sandbox import media


def test_a_glb_renders_to_a_png_with_the_model_in_it(tmp_path: Path) -> None:
    path = tmp_path / "cube.glb"
    path.write_bytes(media.render_glb())
    picture = Image.open(io.BytesIO(render_glb_preview(path, size_px=256))).convert("RGB")
    assert picture.size == (256, 256)
    centre = picture.getpixel((128, 128))
    corner = picture.getpixel((2, 2))
    assert centre != corner  # the mesh is drawn over the background
    assert centre[2] > centre[0]  # in the preview's blue


def test_a_broken_file_is_a_clear_failure(tmp_path: Path) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(b"glTF not really")
    with pytest.raises(PreviewFailed, match="could not read the 3D model"):
        render_glb_preview(path)
