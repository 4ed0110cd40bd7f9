"""Shared fixtures: a served local data plane on a loopback port, isolated homes, a Dagster instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from helpers import REPO

# The SDK flushes queued logs at interpreter exit, retrying for minutes against servers the tests
# have already stopped. Tests flush explicitly before they assert, so skip that flush. (Set before
# the SDK is imported; pyproject disables the SDK's own pytest plugin, which would import it first.)
os.environ.setdefault("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServedPlane:
    url: str
    api_key: str
    db: Path
    process: subprocess.Popen

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {self.api_key}"}, timeout=60)


def start_plane(db: Path, *, api_key: str = "test-key", faults: str | None = None, env: dict | None = None,
                extra_args: list[str] | None = None) -> ServedPlane:
    port = free_port()
    cmd = [sys.executable, "-m", "pipelines_repo.cli.main", "local", "serve", "--port", str(port), "--db", str(db), "--api-key", api_key]
    if faults:
        cmd += ["--faults", faults]
    cmd += extra_args or []
    process = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local plane exited: {process.stderr.read().decode()}")
        try:
            if httpx.get(f"{url}/version", headers={"Authorization": f"Bearer {api_key}"}, timeout=1).status_code == 200:
                return ServedPlane(url, api_key, db, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("local plane did not start within 30 s")


def stop_plane(plane: ServedPlane) -> None:
    import braintrust
    from braintrust.logger import _internal_reset_global_state

    braintrust.flush()  # nothing the SDK queued may be left for a stopped server
    # The SDK's process-wide state (login, background logger) points at this plane; the next
    # test module starts another plane on another port, so start the SDK afresh too.
    _internal_reset_global_state()
    plane.process.terminate()
    try:
        plane.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        plane.process.kill()


@pytest.fixture(scope="module")
def served_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPlane]:
    plane = start_plane(tmp_path_factory.mktemp("plane") / "plane.db")
    try:
        yield plane
    finally:
        stop_plane(plane)


def use_as_braintrust(plane: ServedPlane, monkeypatch: pytest.MonkeyPatch, cwd: Path) -> Path:
    """Point the CLI at the served plane exactly as at real Braintrust (key + app URL); run in ``cwd``."""
    monkeypatch.setenv("BRAINTRUST_API_KEY", plane.api_key)
    monkeypatch.setenv("BRAINTRUST_APP_URL", plane.url)
    monkeypatch.delenv("BRAINTRUST_API_URL", raising=False)
    monkeypatch.delenv("BRAINTRUST_ORG_NAME", raising=False)
    monkeypatch.chdir(cwd)
    return cwd


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $DAGSTER_HOME and local database; no real Braintrust key."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.delenv("BRAINTRUST_API_KEY", raising=False)
    monkeypatch.delenv("BT_LOCAL_DB", raising=False)
    return home


@pytest.fixture
def instance(isolated_home: Path):
    """A temporary Dagster instance in the isolated home."""
    import dagster as dg

    with dg.instance_for_test(temp_dir=str(isolated_home)) as inst:
        yield inst
