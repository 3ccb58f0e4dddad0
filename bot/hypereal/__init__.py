"""The Hypereal API client: typed requests, answers and errors."""

from bot.hypereal.client import ChatStream, HyperealClient
from bot.hypereal.errors import (
    BadRequest,
    HyperealError,
    InsufficientCredits,
    MalformedResponse,
    NotFound,
    PayloadTooLarge,
    ProviderTimeout,
    RateLimited,
    RedirectRefused,
    ServerError,
    StreamInterrupted,
    Unauthorized,
)
from bot.hypereal.limiter import RequestLimiter
from bot.hypereal.models import (
    ChatMessage,
    ChatResponse,
    ImageResult,
    JobState,
    JobStatus,
    JobSubmission,
    MediaResult,
    TranscriptSegment,
    WebhookPayload,
    normalise_job_state,
)

__all__ = [
    "BadRequest",
    "ChatMessage",
    "ChatResponse",
    "ChatStream",
    "HyperealClient",
    "HyperealError",
    "ImageResult",
    "InsufficientCredits",
    "JobState",
    "JobStatus",
    "JobSubmission",
    "MalformedResponse",
    "MediaResult",
    "NotFound",
    "PayloadTooLarge",
    "ProviderTimeout",
    "RateLimited",
    "RedirectRefused",
    "RequestLimiter",
    "ServerError",
    "StreamInterrupted",
    "TranscriptSegment",
    "Unauthorized",
    "WebhookPayload",
    "normalise_job_state",
]
