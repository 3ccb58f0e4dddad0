"""Log set-up: secrets scrubbed, voice notices dropped."""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import logging
import os
import signal
import socket
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.invite import invite_url
from bot.logs import JsonFormatter, ReconnectNotice, SecretScrubber, VoiceNoticeFilter
from bot.redact import Redactor
from bot.startup import unreachable_reason
from tests.fakediscord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent


def _record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("x", logging.WARNING, __file__, 1, message, args, None)


def test_a_secret_reaching_a_log_line_is_redacted() -> None:
    scrubber = SecretScrubber(["ck_secret_value"])
    record = _record("calling with key=%s", "ck_secret_value")
    assert scrubber.filter(record)
    assert record.getMessage() == "calling with key=[redacted]"


def test_an_exception_carrying_a_secret_is_redacted() -> None:
    scrubber = SecretScrubber(["tok-123456"])
    try:
        raise RuntimeError("bad token tok-123456")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    scrubber.filter(record)
    assert record.exc_info is None
    assert "tok-123456" not in (record.exc_text or "")
    assert "[redacted]" in (record.exc_text or "")


@pytest.mark.parametrize(
    ("message", "kept"),
    [("PyNaCl is not installed, voice will NOT be supported", False), ("logging in using static token", True)],
)
def test_voice_notices_are_dropped(message: str, kept: bool) -> None:
    assert VoiceNoticeFilter().filter(_record(message)) is kept


@pytest.mark.parametrize(
    "line",
    [
        "POST https://discord.com/api/v10/webhooks/900000000000000001/aW50ZXJhY3Rpb246MTIzNDU2Nzg5 returned 200",
        "PATCH /api/v10/webhooks/9/itoken-123456789/messages/@original has returned 404",
        "POST /api/v10/interactions/123/itoken-123456789/callback?with_response=1 with {} has returned 204",
        "webhook at https://bot.example/hypereal/webhook/Zm9vYmFyYmF6cXV4cXV1eA was refused",
        'INTERACTION_CREATE {"id": "1", "token": "itoken-abcdefgh", "type": 2}',
    ],
)
def test_interaction_and_webhook_tokens_are_redacted(line: str) -> None:
    record = _record("%s", line)
    SecretScrubber([]).filter(record)
    message = record.getMessage()
    assert "[redacted]" in message
    for secret in ("aW50ZXJhY3Rpb246MTIzNDU2Nzg5", "itoken-123456789", "Zm9vYmFyYmF6cXV4cXV1eA", "itoken-abcdefgh"):
        assert secret not in message


def test_text_for_members_is_redacted_stripped_and_capped() -> None:
    redact = Redactor(["ck_live_SECRETKEY"])
    text = redact.for_members("Hypereal said: bad key ck_live_SECRETKEY\x07\x1b[31m" + "x" * 5000, limit=200)
    assert "ck_live_SECRETKEY" not in text
    assert "\x07" not in text
    assert "\x1b" not in text
    assert len(text) == 200
    assert text.endswith("…")


def _formatted(formatter: logging.Formatter, record: logging.LogRecord, secrets: list[str]) -> str:
    SecretScrubber(secrets).filter(record)
    return formatter.format(record)


def test_json_lines_carry_time_level_logger_message_and_the_fields_as_keys() -> None:
    record = logging.LogRecord(
        "bot.hypereal.client", logging.INFO, __file__, 1,
        "hypereal request method=%s path=%s status=%s ms=%d", ("POST", "/v1/chat", 200, 12), None,
    )  # fmt: skip
    line = _formatted(JsonFormatter(), record, [])
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bot.hypereal.client"
    assert entry["message"] == "hypereal request method=POST path=/v1/chat status=200 ms=12"
    assert (entry["method"], entry["path"], entry["status"], entry["ms"]) == ("POST", "/v1/chat", "200", "12")
    assert dt.datetime.fromisoformat(entry["time"]).tzinfo is not None


def test_json_keeps_ids_as_strings_and_never_overwrites_its_own_keys() -> None:
    line = _formatted(JsonFormatter(), _record("job done job=%s guild=%s level=%s", "ab12", 100000000000000001, 3), [])
    entry = json.loads(line)
    assert entry["guild"] == "100000000000000001"  # a JSON number would lose digits in many shippers
    assert entry["level"] == "WARNING"
    assert entry["field_level"] == "3"


@pytest.mark.parametrize("formatter", [JsonFormatter(), logging.Formatter("%(levelname)s %(message)s")])
def test_secrets_never_reach_either_format(formatter: logging.Formatter) -> None:
    try:
        raise RuntimeError("token tok-SECRET-123 refused")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "key=%s", ("ck_SECRET_456",), sys.exc_info())
    out = _formatted(formatter, record, ["tok-SECRET-123", "ck_SECRET_456"])
    assert "SECRET" not in out
    assert "[redacted]" in out
    if isinstance(formatter, JsonFormatter):
        entry = json.loads(out)
        assert "RuntimeError" in entry["exception"]


def test_a_gateway_reconnect_traceback_becomes_one_line_naming_the_url() -> None:
    error = aiohttp.ClientConnectorError(None, ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"))  # type: ignore[arg-type]
    record = logging.LogRecord(
        "discord.client",
        logging.ERROR,
        __file__,
        1,
        "Attempting a reconnect in %.2fs",
        (1.5,),
        (type(error), error, None),
    )
    assert ReconnectNotice("wss://gateway.discord.gg/").filter(record)
    assert record.exc_info is None
    assert record.levelname == "WARNING"
    assert record.getMessage() == (
        "cannot reach the Discord gateway at wss://gateway.discord.gg/ (the connection failed: connection refused): "
        "trying again with backoff"
    )
    assert "\n" not in logging.Formatter().format(record)


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (aiohttp.ClientConnectorDNSError(None, socket.gaierror(-2, "Name or service not known")),  # type: ignore[arg-type]
         "could not be resolved (DNS)"),
        (aiohttp.ClientConnectorError(None, ConnectionRefusedError(errno.ECONNREFUSED, "x")),  # type: ignore[arg-type]
         "connection refused"),
        (aiohttp.ClientConnectorSSLError(None, ssl.SSLError("wrong version number")), "TLS handshake failed"),  # type: ignore[arg-type]
        (TimeoutError(), "no answer in time"),
    ],
)  # fmt: skip
def test_unreachable_reasons_are_words(error: BaseException, words: str) -> None:
    assert words in unreachable_reason(error)


async def test_log_format_json_makes_every_line_of_a_real_run_a_json_object(
    fake_discord: FakeDiscord, tmp_path: Path
) -> None:
    env = {
        "PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "LOG_FORMAT": "json",
        "DISCORD_TOKEN": fake_discord.token, "DISCORD_API_BASE": fake_discord.api_base,
        "DISCORD_GATEWAY_URL": fake_discord.gateway_url, "DISCORD_DEV_GUILD_ID": str(fake_discord.GUILD_ID),
        "HYPEREAL_SANDBOX": "1", "DATABASE_PATH": str(tmp_path / "bot.sqlite3"), "WEB_HOST": "127.0.0.1",
        "WEB_PORT": "0",
    }  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", env=env, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
    )
    try:
        await fake_discord.wait_for_commands(timeout=30)
        await fake_discord.wait_for_ready(timeout=30)
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    entries = [json.loads(line) for line in stderr.decode().splitlines()]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    synced = next(e for e in entries if e["message"].startswith("synced commands to dev guild"))
    assert synced["guild"] == str(fake_discord.GUILD_ID)
    listening = next(e for e in entries if e["message"].startswith("web server listening"))
    assert listening["host"] == "127.0.0.1"
    assert entries[-1]["message"] == "stopped cleanly"
    invites = [e["message"] for e in entries if e["message"].startswith("invite link: ")]
    assert invites == [f"invite link: {invite_url(fake_discord.APPLICATION_ID)}"]  # logged once, at start-up
    assert fake_discord.token not in stderr.decode()
