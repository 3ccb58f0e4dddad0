"""`python -m bot` as a real process against the fake Discord: start-up, a command, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from bot.sandbox import SandboxProvider
from tests.conftest import HYPEREAL_KEY
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
BotProcess = Callable[..., Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def bot_process(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[BotProcess]:
    """Start ``python -m bot`` with the environment pointing at the fakes; killed at the end if still running."""
    started: list[asyncio.subprocess.Process] = []

    async def start(**extra_env: str) -> asyncio.subprocess.Process:
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "DISCORD_TOKEN": fake_discord.token,
            "DISCORD_API_BASE": fake_discord.api_base,
            "DISCORD_GATEWAY_URL": fake_discord.gateway_url,
            "DISCORD_DEV_GUILD_ID": str(fake_discord.GUILD_ID),
            "HYPEREAL_SANDBOX": "1",
            "DATABASE_PATH": str(tmp_path / "bot.sqlite3"),
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": "0",
            "PYTHONFAULTHANDLER": "1",
            **extra_env,
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        started.append(process)
        return process

    yield start
    for process in started:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stopped_log(process: asyncio.subprocess.Process, *, timeout: float) -> str:
    """The process's log once it has exited; if it is still running after ``timeout``, fail with its log.

    A process that hangs gets SIGABRT first: with PYTHONFAULTHANDLER set it prints every thread's stack.
    """
    assert process.stderr is not None
    # Read while waiting: a full stderr pipe would block the process's logging and so its exit.
    reading = asyncio.ensure_future(process.stderr.read())
    try:
        await asyncio.wait_for(process.wait(), timeout=timeout)
    except TimeoutError:
        process.send_signal(signal.SIGABRT)
        try:
            await asyncio.wait_for(process.wait(), timeout=3)
        except TimeoutError:
            process.kill()
            await process.wait()
        pytest.fail(f"still running {timeout} s after SIGTERM; its log:\n{(await reading).decode()[-6000:]}")
    return (await reading).decode()


async def test_process_syncs_answers_models_video_and_stops_on_sigterm(
    fake_discord: FakeDiscord, bot_process: BotProcess
) -> None:
    process = await bot_process()
    await fake_discord.wait_for_commands(timeout=30)
    assert {"models", "help"} <= {c["name"] for c in fake_discord.commands(fake_discord.GUILD_ID)}
    await fake_discord.wait_for_ready(timeout=30)
    ix = await fake_discord.invoke("models", category="video")
    message = await fake_discord.response(ix, timeout=30)
    description = message.embeds[0]["description"]
    assert "`kling-3-0-std-i2v` — 42 credits" in description
    assert "`veo-3-1-i2v` — 72 credits" in description
    started = asyncio.get_running_loop().time()
    process.send_signal(signal.SIGTERM)
    log = await stopped_log(process, timeout=5)
    assert process.returncode == 0, log
    assert asyncio.get_running_loop().time() - started < 5
    assert fake_discord.token not in log
    assert "stopped cleanly" in log


async def test_reroll_works_after_the_process_restarted(fake_discord: FakeDiscord, bot_process: BotProcess) -> None:
    fake = fake_discord
    process = await bot_process()
    await fake.wait_for(lambda: fake.identify_count == 1, timeout=30)
    first = await fake.response(await fake.invoke("image", prompt="a lighthouse"), timeout=30)
    await fake.wait_for(lambda: first.latest_files, timeout=30)
    process.send_signal(signal.SIGTERM)
    log = await stopped_log(process, timeout=10)
    assert process.returncode == 0, log

    await bot_process()
    await fake.wait_for(lambda: fake.identify_count == 2 and fake.connected_sessions == 1, timeout=30)
    reroll = first.custom_ids()[0]
    refused = await fake.response(await fake.click(first, reroll, user=fake.OTHER_MEMBER), timeout=30)
    assert refused.ephemeral
    assert "These buttons belong to" in refused.content
    again = await fake.response(await fake.click(first, reroll, user=fake.MEMBER), timeout=30)
    await fake.wait_for(lambda: again.latest_files, timeout=30)
    assert again.id != first.id
    assert again.embeds[0]["title"] == "🎨 a lighthouse"


async def test_grid_buttons_work_after_the_process_restarted(
    fake_discord: FakeDiscord, sandbox: SandboxProvider, bot_process: BotProcess
) -> None:
    """U1 on a grid posted before a restart: its button is found again by its custom_id alone.

    Hypereal here is the test's sandbox, outside the bot: it outlives the bot process as Hypereal's CDN
    would (a bot's own in-process sandbox would forget its outputs with the process).
    """
    fake = fake_discord
    hypereal = {"HYPEREAL_SANDBOX": "0", "HYPEREAL_API_KEY": HYPEREAL_KEY, "HYPEREAL_BASE_URL": sandbox.base_url,
                "OUTPUT_HOSTS": sandbox.base_url}  # fmt: skip
    process = await bot_process(**hypereal)
    await fake.wait_for(lambda: fake.identify_count == 1, timeout=30)
    grid = await fake.response(await fake.invoke("image", prompt="a lighthouse", count=4), timeout=30)
    await fake.wait_for(lambda: grid.latest_files, timeout=30)
    assert [f.filename for f in grid.latest_files] == ["grid.png"]
    process.send_signal(signal.SIGTERM)
    log = await stopped_log(process, timeout=10)
    assert process.returncode == 0, log

    await bot_process(**hypereal)
    await fake.wait_for(lambda: fake.identify_count == 2 and fake.connected_sessions == 1, timeout=30)
    u1 = grid.custom_ids()[0]
    assert u1.startswith("gen:u:")
    assert u1.endswith(":1")
    posted = await fake.response(await fake.click(grid, u1), timeout=30)
    await fake.wait_for(lambda: posted.latest_files, timeout=30)
    assert posted.id != grid.id
    assert [f.filename for f in posted.latest_files] == ["image-1.png"]
    assert posted.embeds[0]["footer"]["text"].startswith("Image 1 of 4")
    assert len([r for r in sandbox.requests if r.path == "/v1/images/generate"]) == 4  # U1 called nobody
