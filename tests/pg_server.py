"""A real, throwaway PostgreSQL server for the tests: initdb in a temporary folder, a loopback port.

Postgres refuses to run as root, so under root the server runs as ``nobody`` (``runuser``) in a
folder it owns. ``.ci/run`` installs Debian's ``postgresql`` where it is missing; without it (or
without a way to drop root) the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port

DB_NAME = "dagster"
SUPERUSER = "postgres"


def find_bin_dir() -> Path | None:
    """The folder holding initdb/pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").is_file():
            return Path(candidate)
    return None


@dataclass
class PostgresServer:
    bin_dir: Path
    folder: Path
    port: int
    as_user: list[str]  # the command prefix that drops root ([] when not root)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, db: str = DB_NAME) -> str:
        # psycopg2 explicitly: with SQLAlchemy 2.1 a bare postgresql:// selects psycopg 3, and
        # dagster-postgres's NOTIFY statement fails there.
        return f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{self.port}/{db}"

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*self.as_user, os.fspath(self.bin_dir / tool), *args]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        self._run("initdb", "-D", os.fspath(self.data), "-A", "trust", "-U", SUPERUSER, "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.folder}"
            # A test server: durability is not the point, speed is.
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", os.fspath(self.data), "-l", os.fspath(self.folder / "server.log"), "-o", options, "-w", "start")
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, DB_NAME)

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", os.fspath(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _drop_root_prefix(folder: Path) -> list[str] | str:
    """The prefix running a command as ``nobody`` (owning ``folder``), or why that is impossible."""
    if os.geteuid() != 0:
        return []
    runuser = shutil.which("runuser")
    if runuser is None:
        return "running as root and runuser is missing: PostgreSQL refuses to run as root"
    os.chown(folder, *_nobody())
    return [runuser, "-u", "nobody", "--"]


def _nobody() -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def start_server() -> PostgresServer | str:
    """A started server, or the reason there can be none on this machine."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return "PostgreSQL (initdb) not found: apt-get install postgresql (.ci/run does)"
    # Not under pytest's tmp folders: they are private to root, and the server may run as nobody.
    folder = Path(tempfile.mkdtemp(prefix="bt-dagster-pg-"))
    prefix = _drop_root_prefix(folder)
    if isinstance(prefix, str):
        shutil.rmtree(folder, ignore_errors=True)
        return prefix
    server = PostgresServer(bin_dir, folder, free_port(), prefix)
    try:
        server.start()
    except subprocess.CalledProcessError as exc:
        log = folder / "server.log"
        detail = (exc.stderr or "") + (log.read_text() if log.is_file() else "")
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {detail}") from exc
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    server = start_server()
    if isinstance(server, str):
        pytest.skip(server)
    try:
        yield server
    finally:
        server.stop()
