"""Test support: fault injection for resilience tests (`--faults`), a fraction of data requests fail or stall."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any, Callable

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import Response

from .routes.common import error


@dataclass(frozen=True)
class Faults:
    """Fault injection for resilience tests: a fraction of data requests fail or stall."""

    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 0.5
    retry_after: float = 0.05
    seed: int = 0

    @classmethod
    def parse(cls, text: str) -> "Faults":
        """`429=0.1,500=0.05,slow=0.1,slow_seconds=0.3,seed=7` -> Faults."""
        names = {"429": "rate_429", "500": "rate_500", "slow": "rate_slow"}
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, _, value = part.partition("=")
            values[names.get(key.strip(), key.strip())] = float(value)
        fields = set(cls.__dataclass_fields__)
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"unknown fault setting(s) {sorted(unknown)}: use 429=, 500=, slow=, slow_seconds=, retry_after=, seed=")
        if "seed" in values:
            values["seed"] = int(values["seed"])
        return cls(**values)  # type: ignore[arg-type]


class FaultMiddleware(BaseHTTPMiddleware):
    """Applies `Faults` to data routes (`/v1/...`, `/btql`, `/logs3`), from a seeded random sequence."""

    def __init__(self, app: Any, faults: Faults):
        super().__init__(app)
        self.faults = faults
        self.random = random.Random(faults.seed)

    async def dispatch(self, request: Request, call_next: Callable) -> Response:
        path = request.url.path
        if not (path.startswith("/v1/") or path in ("/btql", "/logs3")):
            return await call_next(request)
        roll = self.random.random()
        f = self.faults
        if roll < f.rate_429:
            return error(429, "too many requests (injected fault): retry after the Retry-After delay",
                         headers={"Retry-After": str(f.retry_after)})
        if roll < f.rate_429 + f.rate_slow:
            await asyncio.sleep(f.slow_seconds)
        response = await call_next(request)
        # A 500 after the work is done: the client cannot tell whether the write landed.
        if self.random.random() < f.rate_500:
            return error(500, "internal error (injected fault): retry the request")
        return response
