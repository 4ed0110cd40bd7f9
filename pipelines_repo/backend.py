"""Builds the Braintrust client for the configured data plane.

With `BRAINTRUST_API_KEY` set, the client talks to real Braintrust. Without it, it talks to the
embedded local plane through an in-process httpx transport over the SQLite file in
`$DAGSTER_HOME` (or `$BT_LOCAL_DB`). Either way the rest of the code sees the same HTTP API.
"""

from __future__ import annotations

from pathlib import Path

from .client import BraintrustClient
from .settings import ApiSettings, local_db_path


def open_client(
    settings: ApiSettings | None = None, *, local_db: Path | None = None, timeout: float | None = None
) -> BraintrustClient:
    """A client for real Braintrust (key set) or the in-process local plane (no key)."""
    settings = settings or ApiSettings.from_env()
    if settings.plane == "braintrust":
        return BraintrustClient(settings) if timeout is None else BraintrustClient(settings, timeout=timeout)
    from .local.transport import InProcessTransport  # the local plane is only loaded when used

    transport = InProcessTransport(local_db or local_db_path())
    return BraintrustClient(settings, transport=transport, base_url=InProcessTransport.BASE_URL)
