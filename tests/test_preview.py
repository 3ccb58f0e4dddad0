"""The GLB preview: three angles in one picture, the model's figures, and a child process that cannot stall the loop."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from bot.preview import TIME_CAP_SECONDS, ModelFigures, PreviewFailed, preview_in_child, render_glb_preview
from bot.sandbox import media


def _many_triangles(path: Path, count: int) -> None:
    import numpy as np
    import trimesh

    rng = np.random.default_rng(3)
    vertices = rng.uniform(-1.0, 1.0, size=(count * 3, 3))
    faces = np.arange(count * 3).reshape(count, 3)
    path.write_bytes(trimesh.Trimesh(vertices=vertices, faces=faces, process=False).export(file_type="glb"))


def test_a_glb_renders_three_angles_with_the_model_in_each(tmp_path: Path) -> None:
    path = tmp_path / "cube.glb"
    path.write_bytes(media.render_glb())
    preview = render_glb_preview(path, size_px=256)
    picture = Image.open(io.BytesIO(preview.png)).convert("RGB")
    assert picture.size == (768, 256)
    for panel in range(3):  # the mesh is drawn, in the preview's blue, in every third of the picture
        third = picture.crop((panel * 256, 0, panel * 256 + 256, 256))
        red, _green, blue_band = (band.tobytes() for band in third.split())
        blue = sum(1 for r, b in zip(red, blue_band, strict=True) if b > r + 40)
        assert blue > 256 * 256 // 10


def test_the_figures_are_the_models(tmp_path: Path) -> None:
    path = tmp_path / "cube.glb"
    path.write_bytes(media.render_glb())
    figures = render_glb_preview(path, size_px=128).figures
    assert (figures.triangles, figures.vertices, figures.file_bytes) == (12, 8, path.stat().st_size)
    assert figures.size == pytest.approx((1.0, 1.0, 1.0))
    assert (
        figures.text()
        == f"▲ 12 triangles · 8 vertices · {round(path.stat().st_size / 1024) or 1} KB · 1.00 × 1.00 × 1.00"
    )
    assert ModelFigures(12_345, 6_200, 1_258_291, (1.0, 0.8, 0.45)).text() == (
        "▲ 12,345 triangles · 6,200 vertices · 1.2 MB · 1.00 × 0.80 × 0.45"
    )


def test_a_broken_file_is_a_clear_failure(tmp_path: Path) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(b"glTF not really")
    with pytest.raises(PreviewFailed, match="could not read the 3D model"):
        render_glb_preview(path)


async def test_a_broken_file_fails_clearly_in_the_child_too(tmp_path: Path) -> None:
    path = tmp_path / "broken.glb"
    path.write_bytes(b"glTF not really")
    with pytest.raises(PreviewFailed, match="could not read the 3D model"):
        await preview_in_child(path)


def test_the_child_tells_the_figures_before_it_draws(tmp_path: Path) -> None:
    path, out = tmp_path / "model.glb", tmp_path / "model.png"
    path.write_bytes(media.render_glb())
    run = subprocess.run(
        [sys.executable, "-m", "bot.preview", str(path), str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    first, second = (json.loads(line) for line in run.stdout.splitlines())
    assert set(first) == {"figures"}
    assert first["figures"]["triangles"] > 0
    assert second == {"drawn": True}
    assert out.read_bytes().startswith(b"\x89PNG")


async def test_a_drawing_past_its_cap_still_gives_the_figures(tmp_path: Path) -> None:
    """A model read in time but drawn too slowly: the figures without a picture, and the drawer is stopped."""
    path = tmp_path / "model.glb"
    path.write_bytes(media.render_glb())
    figures = {"triangles": 12, "vertices": 8, "file_bytes": 2048, "size": [1.0, 0.5, 0.25]}
    drawer = tmp_path / "slow_drawer.py"  # stands in for `python -m bot.preview` with a drawing that never ends
    drawer.write_text(
        "import json, os, sys, time\n"
        f"print(json.dumps({{'figures': {figures!r}}}), flush=True)\n"
        "open(sys.argv[2] + '.pid', 'w').write(str(os.getpid()))\n"
        "time.sleep(120)\n"
    )
    started = time.monotonic()
    preview = await preview_in_child(path, time_cap=3.0, child=(str(drawer),))
    assert time.monotonic() - started < 20
    assert preview.png is None
    assert preview.figures == ModelFigures(12, 8, 2048, (1.0, 0.5, 0.25))
    assert "12 triangles · 8 vertices · 2 KB" in preview.figures.text()
    pid = int(next(tmp_path.glob("*.pid")).read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped, not left drawing


SCHEDSTAT = Path("/proc/thread-self/schedstat")


def _runqueue_wait() -> float:
    """Seconds this thread has spent runnable but waiting for a CPU (Linux schedstat; 0 where there is none)."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


class Heartbeat:
    """Ticks every 10 ms on the event loop and records how long the loop kept it from ticking.

    A stall is the wall time between ticks less the time the OS kept the thread waiting for a CPU:
    on a busy 2-core test host (four test workers and the drawing child) that wait is other
    processes' doing, not the loop's. Blocking code in this process — a thread holding the GIL, a
    blocking call — counts in full (waiting for the GIL is sleeping, not waiting for a CPU).
    """

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.stalls: list[float] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._task = asyncio.create_task(self._beat())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def _beat(self) -> None:
        last, waited = time.monotonic(), _runqueue_wait()
        while not self._stop.is_set():
            await asyncio.sleep(0.01)
            now, now_waited = time.monotonic(), _runqueue_wait()
            self.gaps.append(now - last)
            self.stalls.append(now - last - (now_waited - waited))
            last, waited = now, now_waited


async def test_the_heartbeat_sees_a_blocked_loop() -> None:
    async with Heartbeat() as heart:
        await asyncio.sleep(0.05)
        time.sleep(0.15)  # noqa: ASYNC251 — the point: the loop is blocked
        await asyncio.sleep(0.05)
    assert max(heart.stalls) >= 0.14


async def test_a_200k_triangle_model_does_not_stall_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "big.glb"
    _many_triangles(path, 200_000)
    async with Heartbeat() as heart:
        started = time.monotonic()
        preview = await preview_in_child(path)
        took = time.monotonic() - started
    assert preview.figures.triangles == 200_000
    assert Image.open(io.BytesIO(preview.png)).size == (1536, 512)
    assert took < TIME_CAP_SECONDS
    assert len(heart.gaps) > 10  # the heartbeat really ran throughout
    assert max(heart.stalls) < 0.1, (
        f"the loop stalled for {max(heart.stalls) * 1000:.0f} ms (largest gap {max(heart.gaps) * 1000:.0f} ms)"
    )


async def test_a_render_past_its_time_cap_is_stopped(tmp_path: Path) -> None:
    path = tmp_path / "big.glb"
    _many_triangles(path, 50_000)
    with pytest.raises(PreviewFailed, match="took longer than"):
        await preview_in_child(path, time_cap=0.05)
    assert not list(tmp_path.glob("*.preview.png"))
