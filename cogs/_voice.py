"""Posting a Discord voice message, which discord.py 2.7 has no API for.

It goes through discord.py's own HTTP client (``bot.http.request`` with a ``Route``), so rate limits,
retries on 5xx/429 and the bot's session are discord.py's — no second HTTP stack. The request is
the multipart form Discord's clients send: ``payload_json`` with flag 8192 (IS_VOICE_MESSAGE) and
the attachment's ``duration_secs`` and ``waveform``, then the OGG/Opus file as ``files[0]``.
A voice message has no text, embeds or edits: whatever goes with it is posted elsewhere.
"""

from __future__ import annotations

import io
import json
from typing import Any

import discord
from discord.http import HTTPClient, Route

from bot.voice import VoiceClip

IS_VOICE_MESSAGE = 1 << 13
VOICE_FILENAME = "voice-message.ogg"


def is_refusal(exc: discord.HTTPException) -> bool:
    """A voice message this channel will not take (post the audio file instead), not a passing failure.

    Any 4xx: 403/50013 Missing Permissions (Send Voice Messages denied), 400/50173 "Cannot send voice
    messages in this channel", other 40xxx/50xxx refusals, 404 for a channel gone (the file path then
    DMs). 5xx is Discord's trouble and is retried; 429 never gets here (discord.py waits it out).
    """
    return 400 <= exc.status < 500


async def send_voice_message(
    http: HTTPClient,
    channel_id: int,
    clip: VoiceClip,
    *,
    reply_to: int | None = None,
    nonce: str | None = None,
) -> dict[str, Any]:
    """Post ``clip`` as a voice message in ``channel_id``; Discord's message object, or ``HTTPException``."""
    payload: dict[str, Any] = {
        "flags": IS_VOICE_MESSAGE,
        "attachments": [
            {"id": 0, "filename": VOICE_FILENAME, "duration_secs": clip.duration_secs, "waveform": clip.waveform}
        ],
        "allowed_mentions": {"parse": []},
    }
    if reply_to is not None:
        payload["message_reference"] = {
            "message_id": str(reply_to), "channel_id": str(channel_id), "fail_if_not_exists": False,
        }  # fmt: skip
    if nonce is not None:
        # Like channel.send(nonce=…): a post repeated after a crash is deduplicated by Discord.
        payload["nonce"] = nonce
        payload["enforce_nonce"] = True
    file = discord.File(io.BytesIO(clip.ogg), filename=VOICE_FILENAME)
    form = [
        {"name": "payload_json", "value": json.dumps(payload, separators=(",", ":"))},
        {"name": "files[0]", "value": file.fp, "filename": VOICE_FILENAME, "content_type": "audio/ogg"},
    ]
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=channel_id)
    # ``files`` too: discord.py rewinds them before each retry.
    return await http.request(route, files=[file], form=form)
