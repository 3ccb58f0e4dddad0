"""A sandbox Hypereal provider: the same API on loopback, with real small media and no spending."""

from bot.sandbox.faults import Faults
from bot.sandbox.server import RecordedRequest, SandboxJob, SandboxProvider

__all__ = ["Faults", "RecordedRequest", "SandboxJob", "SandboxProvider"]
