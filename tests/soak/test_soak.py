"""Long soaks (`make soak`): a two-minute streamed answer under Discord's limits, and many kill -9 rounds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import bot_settings, run_bot
from tests.fakediscord import FakeDiscord
from tests.jobs import test_restart_safety

pytestmark = pytest.mark.soak

WRITE_ROUTES = {
    ("POST", "/webhooks/{app}/{token}"),
    ("POST", "/channels/{channel_id}/messages"),
    ("PATCH", "/webhooks/{app}/{token}/messages/{message_id}"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}"),
}


@pytest.mark.timeout(400)
async def test_three_two_minute_streams_draw_no_429(sandbox: SandboxProvider, tmp_path: Path) -> None:
    async with (
        FakeDiscord(ratelimits=True) as fake,
        run_bot(bot_settings(fake, sandbox, tmp_path, default_allowance=100_000), fake, sandbox),
    ):
        pieces = 2400  # one token every 50 ms for two minutes
        sandbox.faults.chat_chunk_size = 5
        sandbox.faults.chat_reply = "word " * pieces
        sandbox.faults.chat_chunk_delay = 0.05
        for n in range(3):
            await fake.invoke("chat", prompt=f"soak {n}")
        await fake.wait_for(lambda: sum("\n-# " in m.content for m in fake.messages()) >= 3, timeout=360)
        writes = sorted(
            c.time
            for c in fake.calls
            if (c.method, c.route) in WRITE_ROUTES
            and c.status == 200
            and isinstance(c.json, dict)
            and c.json.get("content")
        )
        assert fake.rate_limited == []
        assert max(sum(1 for t in writes if start <= t < start + 5.0) for start in writes) <= 4


@pytest.mark.timeout(1800)
async def test_kill_storm_of_fifty_rounds(
    sandbox: SandboxProvider, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = await test_restart_safety.kill_storm(sandbox, tmp_path, rounds=50, seed=11)
    with capsys.disabled():
        print("\n" + report.table())
    assert report.lost == []
    assert report.duplicated == []
    assert report.submitted_twice == []
    assert report.drift == []
    assert report.held == 0
    assert report.calm_delivered == report.calm == 2
