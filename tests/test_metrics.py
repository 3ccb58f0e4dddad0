"""GET /metrics end to end: scraped after a real /image and /video, parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.hypereal.client import endpoint_name
from bot.metrics import Metrics, install_metrics_route
from bot.sandbox import SandboxProvider
from bot.web import HealthProbe, create_web_app
from tests.conftest import RunningBot, bot_settings, run_bot
from tests.fakediscord import FakeDiscord

METRICS_TOKEN = "metrics-token-0123456789abcdef"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
async def metered_bot(fake_discord: FakeDiscord, sandbox: SandboxProvider, tmp_path: Path) -> AsyncIterator[RunningBot]:
    settings = bot_settings(fake_discord, sandbox, tmp_path, metrics_token=METRICS_TOKEN)
    async with run_bot(settings, fake_discord, sandbox) as running:
        yield running


async def _get(bot: RunningBot, token: str | None) -> tuple[int, str, str]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    url = f"http://127.0.0.1:{bot.app.bot.web.port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def _scrape(bot: RunningBot) -> Samples:
    status, content_type, text = await _get(bot, METRICS_TOKEN)
    assert status == 200, text
    assert content_type.startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_move_after_image_and_video_and_carry_no_ids(metered_bot: RunningBot) -> None:
    fake = metered_bot.fake
    before = await _scrape(metered_bot)
    fake.inject(r"^POST /webhooks/\{app\}/\{token\}$", 429, count=1, retry_after=0.05)  # one 429, retried
    image = await fake.response(await fake.invoke("image", prompt="a red fox"))
    await fake.wait_for(lambda: image.latest_files)
    await fake.response(await fake.invoke("video", prompt="a cat surfing"))
    await fake.wait_for(lambda: [m for m in fake.messages() if "is ready" in m.content], timeout=15)

    async def settled() -> Samples:
        while True:
            samples = await _scrape(metered_bot)
            if _value(samples, "jobs", state="delivered") >= 1 and _value(samples, "event_loop_lag_seconds_count"):
                return samples
            await asyncio.sleep(0.1)

    after = await asyncio.wait_for(settled(), timeout=15)

    def moved(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert moved("discord_commands_total", command="image", outcome="ok") == 1
    assert moved("discord_commands_total", command="video", outcome="ok") == 1
    assert moved("hypereal_requests_total", endpoint="images", status="200") == 1
    assert moved("hypereal_requests_total", endpoint="videos", status="202") == 1
    assert moved("hypereal_requests_total", endpoint="job_status", status="200") >= 1
    assert moved("hypereal_request_duration_seconds_count", endpoint="images") == 1
    assert moved("credits_total", action="reserved", category="image") == 4
    assert moved("credits_total", action="settled", category="image") == 4
    assert moved("credits_total", action="reserved", category="video") == 42
    assert moved("credits_total", action="settled", category="video") == 42
    assert moved("credits_total", action="refunded", category="video") == 0
    assert _value(after, "jobs", state="delivered") == 1
    assert _value(after, "jobs", state="pending") == 0
    assert moved("discord_rate_limited_total") == 1
    assert math.isfinite(_value(after, "discord_gateway_latency_seconds"))
    assert _value(after, "event_loop_lag_seconds_count") >= 1

    # No guild, user, channel or job id is ever a label (cardinality and privacy).
    job_ids = {row["id"] for row in await metered_bot.services.db.fetch_all("SELECT id FROM jobs")}
    ids = {str(fake.GUILD_ID), str(fake.MEMBER.id), str(fake.CHANNEL_ID), *job_ids}
    for _name, labels in after:
        for _key, value in labels:
            assert value not in ids
            assert not re.fullmatch(r"\d{15,}", value)


async def test_metrics_need_the_bearer_token(metered_bot: RunningBot) -> None:
    assert (await _get(metered_bot, None))[0] == 401
    assert (await _get(metered_bot, "wrong-token"))[0] == 401
    status, _, body = await _get(metered_bot, METRICS_TOKEN[:-1])
    assert status == 401
    assert METRICS_TOKEN not in body
    assert (await _get(metered_bot, METRICS_TOKEN))[0] == 200


async def test_metrics_are_off_without_a_token(running_bot: RunningBot) -> None:
    status, _, body = await _get(running_bot, "anything")
    assert status == 404
    assert "discord_commands" not in body


async def test_a_refused_command_counts_as_refused(metered_bot: RunningBot) -> None:
    fake = metered_bot.fake
    await fake.response(await fake.invoke("video", prompt="a fox", duration=999))
    samples = await _scrape(metered_bot)
    assert _value(samples, "discord_commands_total", command="video", outcome="refused") == 1
    assert _value(samples, "discord_commands_total", command="video", outcome="ok") == 0


async def test_a_scrape_survives_a_failing_refresher() -> None:
    metrics = Metrics()

    async def broken() -> None:
        raise RuntimeError("database gone")

    metrics.add_refresher(broken)
    metrics.count_command("models", "ok")
    families = {f.name for f in text_string_to_metric_families((await metrics.exposition()).decode())}
    assert "discord_commands" in families


async def test_the_route_installer_adds_nothing_without_a_token() -> None:
    async def ok() -> bool:
        return True

    app = create_web_app(HealthProbe(lambda: True, ok), install_metrics_route(Metrics(), None))
    assert "/metrics" not in {resource.canonical for resource in app.router.resources()}


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/v1/chat", "chat"),
        ("POST", "/v1/images/generate", "images"),
        ("POST", "/v1/videos/generate", "videos"),
        ("POST", "/api/media/generate", "media"),
        ("GET", "/api/v1/jobs/0123456789abcdef", "job_status"),
        ("GET", "/some/poll/url/from/hypereal", "job_status"),
        ("POST", "/v1/unknown", "other"),
    ],
)
def test_hypereal_endpoints_are_bounded_labels(method: str, path: str, expected: str) -> None:
    assert endpoint_name(method, path) == expected
