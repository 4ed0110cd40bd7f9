"""Retry policy: exponential backoff with jitter, ``Retry-After``, and a total time budget.

Defaults follow ``bt``'s uploader (5 attempts, 300 ms doubling, ±20 % jitter, 8 s cap) and the
SDK's retryable statuses {408, 429, 500, 502, 503, 504}. ``sleep``, ``clock``, ``wall_clock`` and
``rng`` are injectable so tests are deterministic and never really sleep.

The policy only decides; the client runs the loop (``BraintrustClient._send``):

    for attempt in 1..max_attempts:
        send
        success or non-retryable            -> return / raise
        delay = policy.delay(attempt, retry_after)
        policy.allows(attempt, started, delay) -> sleep(delay) and retry, else raise
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# Network failures worth another try. Excluded: UnsupportedProtocol, LocalProtocolError, ProxyError
# (configuration problems that a retry cannot fix).
RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request.

    - ``max_attempts``: total tries including the first (1 disables retries).
    - backoff before attempt n+1: ``min(max_delay, base_delay * factor**(n-1)) * (1 ± jitter)``,
      never above ``max_delay``.
    - ``Retry-After`` (seconds or HTTP-date) replaces the backoff when the server sends it.
    - ``budget``: seconds from the first attempt; a retry whose delay would end past it is not made.
    """

    max_attempts: int = 5
    base_delay: float = 0.3
    factor: float = 2.0
    max_delay: float = 8.0
    jitter: float = 0.2
    budget: float | None = 120.0
    retry_statuses: frozenset[int] = RETRYABLE_STATUSES
    rng: random.Random | None = field(default=None, repr=False, compare=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.factor < 1:
            raise ValueError("base_delay and max_delay must be >= 0 and factor >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if self.budget is not None and self.budget <= 0:
            raise ValueError("budget must be positive (or None for no budget)")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)

    def is_retryable_status(self, status: int) -> bool:
        return status in self.retry_statuses

    def is_retryable_exception(self, exc: BaseException) -> bool:
        return isinstance(exc, RETRYABLE_EXCEPTIONS)

    def backoff(self, attempt: int) -> float:
        """Delay after failed attempt number ``attempt`` (1-based), with jitter, capped at max_delay."""
        delay = min(self.max_delay, self.base_delay * self.factor ** max(attempt - 1, 0))
        if self.jitter:
            uniform = self.rng.uniform if self.rng is not None else random.uniform
            delay *= 1.0 + uniform(-self.jitter, self.jitter)
        return max(0.0, min(self.max_delay, delay))

    def parse_retry_after(self, value: str | None) -> float | None:
        """``Retry-After`` as seconds from now: a number of seconds or an HTTP-date. None if absent/bad."""
        if value is None:
            return None
        value = value.strip()
        if not value:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError, IndexError):
                return None
            if when is None:
                return None
            seconds = when.timestamp() - self.wall_clock()
        if seconds != seconds:  # NaN
            return None
        return max(0.0, seconds)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before the next attempt: the server's ``Retry-After`` if given, else backoff."""
        if retry_after is not None:
            return retry_after
        return self.backoff(attempt)

    def allows(self, attempt: int, started: float, delay: float) -> bool:
        """Whether another attempt may follow attempt ``attempt`` after sleeping ``delay``."""
        if attempt >= self.max_attempts:
            return False
        if self.budget is not None and (self.clock() - started) + delay > self.budget:
            return False
        return True
