"""A picture and the figures of a GLB model: Discord cannot show 3D, so 3D results carry both.

trimesh reads the glTF binary (every mesh of the scene, merged); matplotlib's headless Agg
renderer draws the triangles with simple lighting from three angles side by side (front,
three-quarter, top). Big meshes are thinned to a face budget for drawing; the figures (triangles,
vertices, file size, bounding box) are the whole model's.

The work runs in a child process (``python -m bot.preview IN.glb OUT.png``): numpy and matplotlib
can hold the GIL for long stretches, which a thread would not stop from stalling the event loop,
and a child can be killed when it runs past its time cap. The child answers the figures on a first
JSON line as soon as the model is read, and ``{"drawn": true}`` once the PNG is written, so a
drawing killed at its cap still leaves the figures to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bot.errors import BotError

MAX_FACES = 20_000  # drawn per panel: a preview stays around a second whatever the model's size
MAX_FILE_BYTES = 100 * 1024 * 1024  # larger models are delivered without a preview
TIME_CAP_SECONDS = 30.0
LIGHT = (0.4, -0.5, 0.75)
BACKGROUND = "#2b2d31"  # Discord's dark theme, so the preview sits in the chat without a frame
VIEWS = (("front", 0.0, -90.0), ("three-quarter", 20.0, -60.0), ("top", 90.0, -90.0))  # (label, elevation, azimuth)


class PreviewFailed(BotError):
    """The model could not be read or drawn (the GLB is still delivered, without a picture)."""


@dataclass(frozen=True)
class ModelFigures:
    """What a member wants to know about a 3D model before opening it."""

    triangles: int
    vertices: int
    file_bytes: int
    size: tuple[float, float, float]  # bounding box, x × y × z in the model's units (glTF: metres)

    def text(self) -> str:
        """'▲ 12,345 triangles · 6,200 vertices · 1.2 MB · 1.00 × 0.80 × 0.45'."""
        size = " × ".join(f"{value:.2f}" for value in self.size)
        return f"▲ {self.triangles:,} triangles · {self.vertices:,} vertices · {_bytes(self.file_bytes)} · {size}"


@dataclass(frozen=True)
class ModelPreview:
    """The picture (PNG; None when drawing it ran past its time cap) and the figures of one model."""

    png: bytes | None
    figures: ModelFigures


def _bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MB"
    return f"{max(1, round(count / 1024))} KB"


def render_glb_preview(
    path: Path, *, size_px: int = 512, on_figures: Callable[[ModelFigures], None] | None = None
) -> ModelPreview:
    """The three-angle PNG and the figures of the GLB at ``path``, or ``PreviewFailed``. CPU-bound.

    ``on_figures`` hears the figures as soon as the model is read, before the (slower) drawing.
    Called in the child process by :func:`preview_in_child`; usable directly where blocking is fine.
    """
    # Imported here: numpy, trimesh and matplotlib cost start-up time and memory, and 3D results are rare.
    import numpy as np
    import trimesh
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no pyplot state, no display needed
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    file_bytes = path.stat().st_size
    if file_bytes > MAX_FILE_BYTES:
        raise PreviewFailed(f"the 3D model is too large to preview ({_bytes(file_bytes)})")
    try:
        mesh = trimesh.load(path, file_type="glb", force="mesh")
    except Exception as exc:  # trimesh raises many kinds for a broken file
        raise PreviewFailed(f"could not read the 3D model ({type(exc).__name__})") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise PreviewFailed("the 3D model has no surface to draw")
    vertices = np.asarray(mesh.vertices, dtype=float)
    faces = np.asarray(mesh.faces)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    extent = high - low
    figures = ModelFigures(
        triangles=len(faces),
        vertices=len(vertices),
        file_bytes=file_bytes,
        size=(float(extent[0]), float(extent[1]), float(extent[2])),
    )
    if on_figures is not None:
        on_figures(figures)
    if len(faces) > MAX_FACES:
        faces = faces[np.linspace(0, len(faces) - 1, MAX_FACES).astype(int)]
    # glTF is Y-up; matplotlib's 3D axes are Z-up.
    drawn = vertices[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    triangles = drawn[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    light = np.array(LIGHT)
    shade = 0.35 + 0.65 * np.clip(np.abs(normals @ (light / np.linalg.norm(light))), 0.0, 1.0)
    colours = np.column_stack([0.45 * shade, 0.62 * shade, 0.85 * shade, np.ones_like(shade)])
    d_low, d_high = drawn.min(axis=0), drawn.max(axis=0)
    centre, radius = (d_low + d_high) / 2, max(float((d_high - d_low).max()) / 2, 1e-9)

    figure = Figure(figsize=(3 * size_px / 100, size_px / 100), dpi=100, facecolor=BACKGROUND)
    for number, (label, elevation, azimuth) in enumerate(VIEWS, 1):
        axes = figure.add_subplot(1, len(VIEWS), number, projection="3d")
        axes.add_collection3d(Poly3DCollection(triangles, facecolors=colours, edgecolors="none"))
        for setter, middle in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), centre, strict=True):
            setter(middle - radius, middle + radius)
        axes.set_box_aspect((1, 1, 1))
        axes.view_init(elev=elevation, azim=azimuth)
        axes.set_axis_off()
        axes.set_facecolor(BACKGROUND)
        axes.set_title(label, color="#b5bac1", fontsize=9)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=BACKGROUND)
    return ModelPreview(buffer.getvalue(), figures)


def _figures(answer: dict[str, Any]) -> ModelFigures:
    raw = answer["figures"]
    return ModelFigures(
        triangles=int(raw["triangles"]),
        vertices=int(raw["vertices"]),
        file_bytes=int(raw["file_bytes"]),
        size=(float(raw["size"][0]), float(raw["size"][1]), float(raw["size"][2])),
    )


CHILD = ("-m", "bot.preview")  # what the child runs (the tests stand in a slow drawer)


async def preview_in_child(
    path: Path, *, time_cap: float = TIME_CAP_SECONDS, child: Sequence[str] = CHILD
) -> ModelPreview:
    """:func:`render_glb_preview` in a child process, killed after ``time_cap`` seconds.

    The event loop only waits on a pipe meanwhile, so a 200k-triangle model cannot stall it. A drawing
    killed at the cap still gives the figures (without a picture); a model that could not even be read
    by then, or at all, is ``PreviewFailed``.
    """
    out = path.with_name(path.name + ".preview.png")
    process = await asyncio.create_subprocess_exec(
        sys.executable, *child, str(path), str(out),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert process.stdout is not None
    figures: ModelFigures | None = None
    drawn = False
    try:
        async with asyncio.timeout(time_cap):
            while line := await process.stdout.readline():
                answer = json.loads(line)
                if "error" in answer:
                    raise PreviewFailed(str(answer["error"]))
                if "figures" in answer:
                    figures = _figures(answer)
                drawn = drawn or answer.get("drawn") is True
        png = out.read_bytes() if drawn else None
    except TimeoutError:
        if figures is None:
            raise PreviewFailed(f"drawing the 3D model took longer than {time_cap:.0f} s") from None
        png = None  # read in time, drawn too slowly: the figures alone
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise PreviewFailed("the 3D preview could not be drawn") from exc
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()
        out.unlink(missing_ok=True)
    if figures is None:
        raise PreviewFailed("the 3D preview could not be drawn")
    return ModelPreview(png, figures)


def main(argv: list[str]) -> int:
    """Child process: render ``argv[0]`` (GLB) to ``argv[1]`` (PNG); JSON lines: the figures, then drawn."""
    source, target = Path(argv[0]), Path(argv[1])

    def tell(figures: ModelFigures) -> None:
        print(json.dumps({"figures": asdict(figures)}), flush=True)

    try:
        preview = render_glb_preview(source, on_figures=tell)
    except PreviewFailed as exc:
        print(json.dumps({"error": exc.user_message}), flush=True)
        return 0
    assert preview.png is not None
    target.write_bytes(preview.png)
    print(json.dumps({"drawn": True}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
