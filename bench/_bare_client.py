"""The footprint baseline: a bare discord.py client, default intents and caches, sharded as discord.py does.

    python bench/_bare_client.py API_BASE GATEWAY_URL   (the token in DISCORD_TOKEN)

Prints ``READY <guilds> <shards>`` once every shard is ready, then idles until terminated.
"""

from __future__ import annotations

import asyncio
import os
import sys

import discord
import yarl


async def main(api_base: str, gateway_url: str) -> None:
    """Connect and report READY; the parent reads RSS from /proc, then terminates us."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    # AutoShardedClient with no shard_count takes GET /gateway/bot's count (needed past 2,500 guilds).
    client = discord.AutoShardedClient(intents=discord.Intents.default())

    @client.event
    async def on_ready() -> None:
        print(f"READY {len(client.guilds)} {client.shard_count}", flush=True)

    await client.start(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
