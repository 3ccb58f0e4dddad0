"""A PNG preview of a GLB model: Discord cannot show 3D, so 3D results carry a picture of the mesh.

trimesh reads the glTF binary (every mesh of the scene, merged); matplotlib's headless Agg
renderer draws the triangles with simple lighting from a three-quarter view. Big meshes are
thinned to a face budget so a preview stays well under a second.
"""

from __future__ import annotations

import io
from pathlib import Path

from bot.errors import BotError

MAX_FACES = 20_000
LIGHT = (0.4, -0.5, 0.75)
BACKGROUND = "#2b2d31"  # Discord's dark theme, so the preview sits in the chat without a frame


class PreviewFailed(BotError):
    """The model could not be read or drawn (the GLB is still delivered, without a picture)."""


def render_glb_preview(path: Path, *, size_px: int = 512) -> bytes:
    """A PNG of the model in ``path`` (GLB), or ``PreviewFailed``. CPU-bound: call it in a thread."""
    # Imported here: numpy, trimesh and matplotlib cost start-up time and memory, and 3D results are rare.
    import numpy as np
    import trimesh
    from matplotlib.figure import Figure  # a bare Figure draws with Agg: no pyplot state, no display needed
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    light = np.array(LIGHT)
    try:
        mesh = trimesh.load(path, file_type="glb", force="mesh")
    except Exception as exc:  # trimesh raises many kinds for a broken file
        raise PreviewFailed(f"could not read the 3D model ({type(exc).__name__})") from exc
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise PreviewFailed("the 3D model has no surface to draw")
    vertices = np.asarray(mesh.vertices, dtype=float)
    faces = np.asarray(mesh.faces)
    if len(faces) > MAX_FACES:
        faces = faces[np.linspace(0, len(faces) - 1, MAX_FACES).astype(int)]
    # glTF is Y-up; matplotlib's 3D axes are Z-up.
    vertices = vertices[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
    triangles = vertices[faces]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, lengths, out=np.zeros_like(normals), where=lengths > 0)
    shade = 0.35 + 0.65 * np.clip(np.abs(normals @ (light / np.linalg.norm(light))), 0.0, 1.0)
    colours = np.column_stack([0.45 * shade, 0.62 * shade, 0.85 * shade, np.ones_like(shade)])

    figure = Figure(figsize=(size_px / 100, size_px / 100), dpi=100)
    axes = figure.add_subplot(projection="3d")
    axes.add_collection3d(Poly3DCollection(triangles, facecolors=colours, edgecolors="none"))
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre, radius = (low + high) / 2, max(float((high - low).max()) / 2, 1e-9)
    for setter, middle in zip((axes.set_xlim, axes.set_ylim, axes.set_zlim), centre, strict=True):
        setter(middle - radius, middle + radius)
    axes.set_box_aspect((1, 1, 1))
    axes.view_init(elev=20, azim=-60)
    axes.set_axis_off()
    axes.set_facecolor(BACKGROUND)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=BACKGROUND)
    return buffer.getvalue()
