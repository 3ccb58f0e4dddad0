"""Small real files for attachments: the bot reads their first bytes, so they must be what they claim."""

from __future__ import annotations

import io

from PIL import Image


def png(width: int = 8, height: int = 8) -> bytes:
    """A real PNG of this size (Pillow can read its header)."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


PNG = png()
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 400  # ID3 tag, then an MPEG frame
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
