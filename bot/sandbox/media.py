"""Small real media files for the sandbox's outputs: each opens in the ordinary tools.

PNG/JPEG are drawn with Pillow (showing the prompt), WAV is a sine tone written with the stdlib,
GLB is a hand-built glTF 2.0 cube, and MP4/MP3 are tiny sample files shipped in ``assets/``
(made once with ffmpeg: there is no encoder for them in the standard library).
"""

from __future__ import annotations

import io
import json
import math
import struct
import textwrap
import wave
import zlib
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw

ASSETS = Path(__file__).with_name("assets")

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "glb": "model/gltf-binary",
}

# Pixel sizes per aspect ratio (small: these are test outputs, not art).
_BASE = 256


def image_size(aspect_ratio: str | None, size: str | None = None) -> tuple[int, int]:
    """The output size for an aspect ratio like ``16:9`` or an explicit ``1024x1792`` size (scaled down)."""
    if size and "x" in size:
        width, height = (int(v) for v in size.lower().split("x", 1))
        scale = _BASE / max(width, height)
        return max(16, round(width * scale)), max(16, round(height * scale))
    if aspect_ratio and ":" in aspect_ratio:
        try:
            w, h = (float(v) for v in aspect_ratio.split(":", 1))
        except ValueError:
            return _BASE, _BASE
        if w > 0 and h > 0:
            if w >= h:
                return _BASE, max(16, round(_BASE * h / w))
            return max(16, round(_BASE * w / h)), _BASE
    return _BASE, _BASE


def render_image(prompt: str, *, aspect_ratio: str | None = None, size: str | None = None, fmt: str = "png") -> bytes:
    """A picture of the prompt: coloured by its hash, with the prompt's words drawn on it."""
    width, height = image_size(aspect_ratio, size)
    seed = zlib.crc32(prompt.encode("utf-8"))
    colour = (seed & 0xFF, (seed >> 8) & 0xFF, (seed >> 16) & 0xFF)
    image = Image.new("RGB", (width, height), colour)
    draw = ImageDraw.Draw(image)
    ink = (255, 255, 255) if sum(colour) < 380 else (0, 0, 0)
    lines = textwrap.wrap(prompt, width=max(8, width // 7))[: max(1, height // 12 - 1)]
    draw.multiline_text((6, 6), "\n".join(lines) or "(empty prompt)", fill=ink, spacing=2)
    out = io.BytesIO()
    image.save(out, format="JPEG" if fmt == "jpeg" else "PNG")
    return out.getvalue()


def render_wav(seconds: float = 0.5, frequency: float = 440.0, rate: int = 8000) -> bytes:
    """A mono 16-bit sine tone."""
    frames = int(seconds * rate)
    samples = b"".join(
        struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * n / rate))) for n in range(frames)
    )
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples)
    return out.getvalue()


@cache
def render_glb() -> bytes:
    """A unit cube as a binary glTF 2.0 file (positions + indices, one mesh, one node, one scene)."""
    corners = [(x, y, z) for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)]
    faces = [
        (0, 1, 3, 2),
        (4, 6, 7, 5),
        (0, 4, 5, 1),
        (2, 3, 7, 6),
        (0, 2, 6, 4),
        (1, 5, 7, 3),
    ]
    indices = [i for a, b, c, d in faces for i in (a, b, c, a, c, d)]
    positions = b"".join(struct.pack("<3f", *corner) for corner in corners)
    index_bytes = b"".join(struct.pack("<H", i) for i in indices)
    index_bytes += b"\x00" * (-len(index_bytes) % 4)
    binary = positions + index_bytes
    document = {
        "asset": {"version": "2.0", "generator": "hypereal-bot sandbox"},
        "scene": 0,
        "scenes": [{"nodes": [0]}],
        "nodes": [{"mesh": 0, "name": "cube"}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1}]}],
        "buffers": [{"byteLength": len(binary)}],
        "bufferViews": [
            {"buffer": 0, "byteOffset": 0, "byteLength": len(positions), "target": 34962},
            {"buffer": 0, "byteOffset": len(positions), "byteLength": len(indices) * 2, "target": 34963},
        ],
        "accessors": [
            {
                "bufferView": 0,
                "componentType": 5126,
                "count": len(corners),
                "type": "VEC3",
                "min": [-0.5, -0.5, -0.5],
                "max": [0.5, 0.5, 0.5],
            },
            {"bufferView": 1, "componentType": 5123, "count": len(indices), "type": "SCALAR"},
        ],
    }
    json_chunk = json.dumps(document, separators=(",", ":")).encode("utf-8")
    json_chunk += b" " * (-len(json_chunk) % 4)
    body = struct.pack("<II", len(json_chunk), 0x4E4F534A) + json_chunk
    body += struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<4sII", b"glTF", 2, 12 + len(body)) + body


@cache
def sample_mp4() -> bytes:
    """A one-second 160x90 H.264 clip with a tone."""
    return (ASSETS / "sample.mp4").read_bytes()


@cache
def sample_mp3() -> bytes:
    """A one-second MP3 tone."""
    return (ASSETS / "sample.mp3").read_bytes()
