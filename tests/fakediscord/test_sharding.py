"""The fake Discord shards the way Discord does: IDENTIFY's shard, routing by ``(guild_id >> 22) % count``,
``GET /gateway/bot``'s recommendation, and close code 4011 for a session serving more than 2,500 guilds."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl

from tests.fakediscord import FakeDiscord, shard_of


class Session:
    """A plain gateway client: identifies with a shard, then records every DISPATCH it gets."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.seqs: list[int] = []

    async def identify(self, fake: FakeDiscord, shard: list[int] | None) -> None:
        hello = await self.ws.receive_json(timeout=5)
        assert hello["op"] == 10
        data: dict[str, Any] = {"token": fake.token, "intents": 0, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.ws.send_str(json.dumps({"op": 2, "d": data}))

    async def read_until_ready(self) -> dict[str, Any]:
        """READY's data, after reading it and one GUILD_CREATE per guild it listed."""
        ready = await self.next_event()
        assert ready[0] == "READY"
        for _ in ready[1]["guilds"]:
            assert (await self.next_event())[0] == "GUILD_CREATE"
        return ready[1]

    async def next_event(self, timeout: float = 5.0) -> tuple[str, dict[str, Any]]:
        message = await self.ws.receive(timeout=timeout)
        if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise ConnectionError(f"closed with {self.ws.close_code}")
        payload = json.loads(message.data)
        assert payload["op"] == 0, payload
        self.seqs.append(payload["s"])
        self.events.append((payload["t"], payload["d"]))
        return payload["t"], payload["d"]

    async def drain(self, quiet: float = 0.3) -> list[str]:
        """Event names received until nothing came for ``quiet`` seconds."""
        names = []
        with contextlib.suppress(TimeoutError):
            while True:
                names.append((await self.next_event(timeout=quiet))[0])
        return names


@contextlib.asynccontextmanager
async def sessions(fake: FakeDiscord, *shards: list[int] | None) -> AsyncIterator[list[Session]]:
    """One identified plain websocket session per shard given (None: IDENTIFY without ``shard``)."""
    async with aiohttp.ClientSession() as http:
        opened = []
        try:
            for shard in shards:
                session = Session(await http.ws_connect(fake.gateway_url))
                opened.append(session)
                await session.identify(fake, shard)
            yield opened
        finally:
            for session in opened:
                await session.ws.close()


async def test_filler_guilds_spread_over_the_shards_of_any_count() -> None:
    async with FakeDiscord(extra_guilds=998) as fake:
        assert len(fake.guilds) == 1000
        for count in (2, 3, 5, 10):
            sizes = [len(fake.guilds_on_shard(n, count)) for n in range(count)]
            assert sum(sizes) == 1000
            assert max(sizes) - min(sizes) <= 2, (count, sizes)  # the 2 fixture guilds share one shard
        # Real snowflakes: the timestamp part varies, so created_at does too.
        fillers = [g for g in fake.guilds if g not in (fake.GUILD_ID, fake.OTHER_GUILD_ID)]
        assert len({discord.utils.snowflake_time(g) for g in fillers}) == 998
        assert all(fake.channels[g + 1].guild_id == g for g in fillers)


async def test_each_shard_session_gets_only_its_guilds() -> None:
    async with FakeDiscord(extra_guilds=298) as fake, sessions(fake, [0, 3], [1, 3], [2, 3]) as opened:
        seen: set[int] = set()
        for shard_id, session in enumerate(opened):
            ready = await session.read_until_ready()
            assert ready["shard"] == [shard_id, 3]
            ids = {int(g["id"]) for g in ready["guilds"]}
            assert ids == set(fake.guilds_on_shard(shard_id, 3))
            assert all(shard_of(g, 3) == shard_id for g in ids)
            created = {int(d["id"]) for name, d in session.events if name == "GUILD_CREATE"}
            assert created == ids
            assert session.seqs == list(range(1, len(session.seqs) + 1))  # sequence numbers are per session
            seen |= ids
        assert seen == set(fake.guilds)
        assert fake.shards_connected == [(0, 3), (1, 3), (2, 3)]
        await fake.wait_for_shards(3, timeout=5)
        assert len({s.number for s in fake.identified}) == 3


async def test_gateway_bot_recommends_one_shard_per_thousand_guilds() -> None:
    cases = {2: 1, 1000: 1, 1001: 2, 2500: 3, 10_000: 10}
    async with aiohttp.ClientSession() as http:
        for guilds, shards in cases.items():
            async with FakeDiscord(extra_guilds=guilds - 2, max_concurrency=16) as fake:
                headers = {"Authorization": f"Bot {fake.token}"}
                async with http.get(f"{fake.api_base}/gateway/bot", headers=headers) as response:
                    body = await response.json()
                assert body["shards"] == shards, guilds
                assert body["url"] == fake.gateway_url
                limit = body["session_start_limit"]
                assert limit["max_concurrency"] == 16
                assert limit["total"] == 1000
                assert limit["remaining"] == 1000


async def test_an_unsharded_session_past_2500_guilds_is_closed_with_4011() -> None:
    async with FakeDiscord(extra_guilds=2499) as fake, sessions(fake, None, [0, 1]) as opened:
        assert len(fake.guilds) == 2501
        for session in opened:
            with pytest.raises(ConnectionError, match="4011"):
                await session.next_event()
        assert fake.identify_count == 0
    async with FakeDiscord(extra_guilds=2499) as fake, sessions(fake, [0, 2], [1, 2]) as opened:
        for session in opened:
            assert len((await session.read_until_ready())["guilds"]) <= 2500


async def test_exactly_2500_guilds_may_still_connect_unsharded() -> None:
    async with FakeDiscord(extra_guilds=2498) as fake, sessions(fake, None) as (session,):
        ready = await session.read_until_ready()
        assert len(ready["guilds"]) == 2500
        assert ready["shard"] == [0, 1]


@pytest.mark.parametrize("shard", [[2, 2], [-1, 2], [0, 0]])
async def test_an_invalid_shard_is_closed_with_4010(shard: list[int]) -> None:
    async with FakeDiscord() as fake, sessions(fake, shard) as (session,):
        with pytest.raises(ConnectionError, match="4010"):
            await session.next_event()


async def test_events_go_to_their_guilds_shard_and_dms_to_shard_zero() -> None:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        on_zero, on_one = fake.guild_on_shard(0, 2), fake.guild_on_shard(1, 2)
        headers = {"Authorization": f"Bot {fake.token}"}
        command = [{"name": "ping", "description": "ping", "type": 1, "options": []}]
        await http.put(f"{fake.api_base}/applications/{fake.APPLICATION_ID}/commands", json=command, headers=headers)
        async with http.post(
            f"{fake.api_base}/users/@me/channels", json={"recipient_id": str(fake.MEMBER.id)}, headers=headers
        ) as response:
            dm_channel = int((await response.json())["id"])
        async with sessions(fake, [0, 2], [1, 2]) as (zero, one):
            await zero.read_until_ready()
            await one.read_until_ready()

            await fake.invoke("ping", channel_id=on_one.channels[0].id)
            assert await one.drain() == ["INTERACTION_CREATE"]
            assert await zero.drain() == []
            assert int(one.events[-1][1]["guild_id"]) == on_one.id

            await fake.send_user_message(on_zero.channels[0].id, fake.MEMBER, "hello")
            assert await zero.drain() == ["MESSAGE_CREATE"]
            assert await one.drain() == []

            # DMs carry no guild: only shard 0 gets them (interactions and messages alike).
            await fake.invoke("ping", channel_id=dm_channel)
            await fake.send_user_message(dm_channel, fake.MEMBER, "in a DM")
            assert await zero.drain() == ["INTERACTION_CREATE", "MESSAGE_CREATE"]
            assert await one.drain() == []

            await one.ws.close()
            await fake.wait_for(lambda: fake.shards_connected == [(0, 2)], timeout=5)
            with pytest.raises(RuntimeError, match="no gateway session serves guild"):
                await fake.invoke("ping", channel_id=on_one.channels[0].id)


class QuickShardedClient(discord.AutoShardedClient):
    """discord.py's sharded client, identifying without its 5 s pause between shards (keeps the test short)."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        return None


@contextlib.contextmanager
def discord_pointed_at(fake: FakeDiscord) -> Any:
    """discord.py builds every URL from these class attributes; restore them after the test."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


async def test_discord_py_autosharded_client_takes_the_recommended_count() -> None:
    async with FakeDiscord(extra_guilds=2598) as fake:
        with discord_pointed_at(fake):
            client = QuickShardedClient(intents=discord.Intents.default(), guild_ready_timeout=0.05)
            runner = asyncio.create_task(client.start(fake.token))
            try:
                await asyncio.wait_for(client.wait_until_ready(), timeout=60)
                assert client.shard_count == 3  # ceil(2,600 / 1,000), from GET /gateway/bot
                assert sorted(client.shards) == [0, 1, 2]
                assert len(client.guilds) == 2600
                assert all(guild.shard_id == shard_of(guild.id, 3) for guild in client.guilds)
                assert fake.shards_connected == [(0, 3), (1, 3), (2, 3)]
            finally:
                await client.close()
                await asyncio.wait_for(runner, timeout=15)


async def test_discord_py_unsharded_client_is_refused_past_2500_guilds() -> None:
    async with FakeDiscord(extra_guilds=2499) as fake:
        with discord_pointed_at(fake):
            client = discord.Client(intents=discord.Intents.default())
            try:
                with pytest.raises(discord.ConnectionClosed) as closed:
                    await asyncio.wait_for(client.start(fake.token), timeout=30)
                assert closed.value.code == 4011
            finally:
                await client.close()
