"""The client room: a small, explicit httpx client for Braintrust's REST API.

    from pipelines_repo.client import BraintrustClient
    from pipelines_repo.settings import ApiSettings

    with BraintrustClient(ApiSettings.from_env()) as client:
        project = client.ensure_project("support-bot")
"""

from .errors import (
    AuthError,
    BadRequestError,
    BraintrustError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    ServerError,
    TransportError,
)
from .http import LOCAL_BASE_URL, MAX_PAGE_SIZE, BraintrustClient, ClientStats
from .retry import RetryPolicy

__all__ = [
    "LOCAL_BASE_URL",
    "MAX_PAGE_SIZE",
    "AuthError",
    "BadRequestError",
    "BraintrustClient",
    "BraintrustError",
    "ClientStats",
    "NotFoundError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RetryPolicy",
    "ServerError",
    "TransportError",
]
