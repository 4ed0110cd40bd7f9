"""Serve the local data plane over HTTP on a loopback port (uvicorn)."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from typing import Any

import uvicorn

from .app import create_app
from .faults import Faults
from .remote_like import RemoteLike, RemoteLikeMiddleware
from .read_workers import ReadWorkers
from .store import LocalStore

API_KEY_ENV = "BT_LOCAL_API_KEY"


def resolve_api_key(explicit: str | None) -> tuple[str, bool]:
    """The key clients must send: --api-key, else $BT_LOCAL_API_KEY, else a fresh random one.

    Returns the key and whether it was generated (then the caller prints it).
    """
    key = explicit or os.environ.get(API_KEY_ENV)
    if key:
        return key, False
    return "bt-local-" + secrets.token_urlsafe(18), True


def serve(
    db_path: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    api_key: str | None = None,
    faults: Faults | None = None,
    remote_like: RemoteLike | None = None,
    log_level: str = "warning",
    read_workers: int = 1,
) -> None:
    """Run the plane until interrupted. Binds loopback unless `host` says otherwise.
    `read_workers` reader processes answer `/btql` queries (0: the server's own threads)."""
    key, generated = resolve_api_key(api_key)
    store = LocalStore(db_path)  # creates the file and its schema before the readers open it
    readers = ReadWorkers(db_path, read_workers) if read_workers > 0 else None
    app: Any = create_app(store, api_key=key, faults=faults, read_workers=readers)
    if remote_like is not None and remote_like.active:
        app = RemoteLikeMiddleware(app, remote_like)  # outermost, as the network is
    print(f"Braintrust local data plane on http://{host}:{port} (database {db_path})", file=sys.stderr)
    if generated:
        print(f"API key (generated; pass --api-key or set {API_KEY_ENV} to choose one): {key}", file=sys.stderr)
    print(
        f"Point the SDK at it: BRAINTRUST_APP_URL=http://{host}:{port} BRAINTRUST_API_KEY=<key>",
        file=sys.stderr,
        flush=True,
    )
    if remote_like is not None and remote_like.active:
        limit = (f", at most {remote_like.btql_rate_limit} POST /btql in {remote_like.btql_window_s:g} s"
                 if remote_like.btql_rate_limit is not None else "")
        print(f"Remote-like: +{remote_like.latency_ms:g} ms a response (not /local/*){limit}", file=sys.stderr, flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
    finally:
        if readers is not None:
            readers.close()
