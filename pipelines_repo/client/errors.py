"""Errors raised by the Braintrust client.

Every error names the endpoint (``"POST /btql"``), the HTTP status (when there was one) and the
cause, and where the fix is obvious, the fix. The API key never appears in any message or repr:
server text is redacted before it is put into a message.
"""

from __future__ import annotations

import json

import httpx

_MAX_SERVER_TEXT = 2000


class BraintrustError(Exception):
    """Base class. ``endpoint`` is ``"<METHOD> <path>"``; ``status`` is the HTTP status or None."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str | None = None,
        status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.status = status
        self.server_message = server_message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, status={self.status!r}, message={self.message!r})"


class AuthError(BraintrustError):
    """401/403, or a login that found no usable organization."""


class NotFoundError(BraintrustError):
    """404: the named object does not exist (or is not visible to this key)."""


class BadRequestError(BraintrustError):
    """400: the server rejected the request; ``server_message`` holds its reason (e.g. a filter error)."""


class PayloadTooLargeError(BraintrustError):
    """413: the request body is larger than the server accepts."""


class RateLimitError(BraintrustError):
    """429 after the retry policy gave up. ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(BraintrustError):
    """5xx after the retry policy gave up."""


class TransportError(BraintrustError):
    """The server could not be reached, or did not answer in time (network error or timeout)."""


AUTH_FIX = (
    "Fix: set BRAINTRUST_API_KEY to a valid key for this organization (and BRAINTRUST_ORG_NAME if the key "
    "belongs to several), or unset BRAINTRUST_API_KEY to use the local data plane."
)


def redact(text: str, secret: str | None) -> str:
    """Remove ``secret`` from ``text`` (servers sometimes echo what they were sent)."""
    if secret and text:
        text = text.replace(secret, "***")
    return text


def server_message(response: httpx.Response) -> str:
    """The server's reason: ``message`` (or ``error``) from a JSON body, else the text, shortened."""
    try:
        text = response.text
    except Exception:  # undecodable body
        return f"<{len(response.content)} bytes>"
    text = text.strip()
    if not text:
        return response.reason_phrase or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:_MAX_SERVER_TEXT]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"][:_MAX_SERVER_TEXT]
    return text[:_MAX_SERVER_TEXT]


def error_from_response(
    response: httpx.Response,
    endpoint: str,
    *,
    what: str | None = None,
    api_key: str | None = None,
    retry_after: float | None = None,
    note: str | None = None,
) -> BraintrustError:
    """Map a failed response to the matching error class with a message naming endpoint and cause.

    ``what`` names the object the request was about (``"dataset 'abc'"``), used for 404s.
    ``note`` is appended (e.g. how many attempts were made).
    """
    status = response.status_code
    reason = redact(server_message(response), api_key)
    suffix = f" ({note})" if note else ""
    kwargs = {"endpoint": endpoint, "status": status, "server_message": reason}
    if status in (401, 403):
        cause = (
            "the Braintrust API key is wrong or expired"
            if status == 401
            else "the Braintrust API key lacks access to this organization or object"
        )
        return AuthError(f"{endpoint} failed with {status}: {cause}. {AUTH_FIX} Server said: {reason}", **kwargs)
    if status == 404:
        subject = what or "the requested object"
        return NotFoundError(f"{subject} not found: {endpoint} returned 404 ({reason})", **kwargs)
    if status == 400:
        return BadRequestError(f"{endpoint} rejected the request (400): {reason}", **kwargs)
    if status == 413:
        return PayloadTooLargeError(f"{endpoint} rejected the request body as too large (413): {reason}", **kwargs)
    if status == 429:
        hint = f"; server asked to retry after {retry_after:g} s" if retry_after is not None else ""
        return RateLimitError(
            f"{endpoint} was rate limited (429){hint}{suffix}: {reason}", retry_after=retry_after, **kwargs
        )
    if status >= 500:
        return ServerError(f"{endpoint} failed with a server error ({status}){suffix}: {reason}", **kwargs)
    return BraintrustError(f"{endpoint} failed with {status}{suffix}: {reason}", **kwargs)
