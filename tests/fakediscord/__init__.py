"""A fake Discord (REST + gateway) on 127.0.0.1 that the real discord.py client talks to in tests."""

from tests.fakediscord import files
from tests.fakediscord.server import Call, FakeDiscord, Fault, GatewaySession, InteractionHandle, shard_of
from tests.fakediscord.state import MessageRecord, StoredFile, User

__all__ = [
    "Call",
    "FakeDiscord",
    "Fault",
    "GatewaySession",
    "InteractionHandle",
    "MessageRecord",
    "StoredFile",
    "User",
    "files",
    "shard_of",
]
