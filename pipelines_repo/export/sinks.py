"""Where export files go: a plain local path, or an object store URL (s3://, gs://, az://, file://).

    sink = open_sink("s3://bucket/exports/")            # or "/tmp/out", "file:///tmp/out", "gs://b/p"
    sink.check()                                         # fail fast: bucket, credentials, endpoint
    with sink.open("spans.parquet") as f:                # f.write(bytes); published on close
        f.write(b"...")

Object stores go through obstore, the one client for S3, GCS, Azure and local files. Credentials
and settings come from each cloud's standard environment variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for an
S3-compatible server; ``GOOGLE_*``; ``AZURE_STORAGE_*``); they are never printed.

Publishing: a file is streamed through a multipart upload (parts of ``PART_SIZE``), and an object
store shows the object only when the upload completes, so readers never see half a file; an
aborted export aborts the upload. A plain local path is written to ``<name>.tmp-<uuid>`` and
renamed into place. With ``overwrite=False`` the file is published only if no object has its name:
object stores get a conditional put (``If-None-Match: *``) of a local spool file.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from .errors import ExportOptionsError, StorageError, redact, storage_error

__all__ = ["LocalSink", "ObjectSink", "Sink", "SinkFile", "open_sink"]

PART_SIZE = 16 * 1024 * 1024  # multipart part size: well above S3's 5 MiB minimum, few requests
SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "file")


class SinkFile(Protocol):
    url: str
    bytes_written: int

    def write(self, data: bytes) -> None: ...
    def close(self) -> None: ...  # publish
    def abort(self) -> None: ...


class Sink(Protocol):
    url: str

    def check(self) -> None: ...
    def join(self, name: str) -> str: ...
    def open(self, name: str) -> SinkFile: ...


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class _LocalFile(_Closing):
    def __init__(self, final: Path, overwrite: bool):
        self.url = str(final)
        self._final = final
        self._overwrite = overwrite
        self._tmp = final.with_name(f"{final.name}.tmp-{uuid.uuid4().hex[:8]}")
        self._handle = open(self._tmp, "wb")
        self.bytes_written = 0

    def write(self, data: bytes) -> None:
        self._handle.write(data)
        self.bytes_written += len(data)

    def close(self) -> None:
        self._handle.close()
        if self._overwrite:
            os.replace(self._tmp, self._final)
            return
        try:
            os.link(self._tmp, self._final)  # fails if the name exists: a conditional publish
        except FileExistsError:
            raise StorageError(self.url, "the file already exists", "pass --overwrite or choose another path",
                               kind="exists") from None
        finally:
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        self._handle.close()
        self._tmp.unlink(missing_ok=True)


class LocalSink:
    """A folder on this machine (created if missing)."""

    def __init__(self, folder: str | os.PathLike[str], *, overwrite: bool = True):
        self.folder = Path(folder).expanduser()
        self.url = str(self.folder)
        self.overwrite = overwrite

    def check(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / f".bt-export-probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise storage_error(exc, self.url) from None

    def join(self, name: str) -> str:
        return str(self.folder / name)

    def open(self, name: str) -> _LocalFile:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        return _LocalFile(path, self.overwrite)


class _ObjectFile(_Closing):
    def __init__(self, sink: ObjectSink, key: str):
        import obstore

        self.url = sink.join(key)
        self.bytes_written = 0
        self._sink, self._key = sink, sink.key(key)
        if sink.overwrite:
            self._spool = None
            self._writer = obstore.open_writer(sink.store, self._key, buffer_size=PART_SIZE)
        else:
            self._spool = tempfile.NamedTemporaryFile(prefix="bt-export-", delete=False)
            self._writer = self._spool

    def write(self, data: bytes) -> None:
        try:
            self._writer.write(data)
        except Exception as exc:  # noqa: BLE001 - every store failure becomes a StorageError
            self.abort()
            raise storage_error(exc, self.url) from None
        self.bytes_written += len(data)

    def close(self) -> None:
        import obstore

        try:
            if self._spool is None:
                self._writer.close()
            else:
                self._spool.close()
                obstore.put(self._sink.store, self._key, Path(self._spool.name), mode="create")
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.url) from None
        finally:
            if self._spool is not None:
                Path(self._spool.name).unlink(missing_ok=True)

    def abort(self) -> None:
        try:
            if self._spool is not None:
                self._spool.close()
                Path(self._spool.name).unlink(missing_ok=True)
            else:
                self._writer.abort()
        except Exception:  # noqa: BLE001 - best effort: the export already failed
            pass


class ObjectSink:
    """An obstore store for a URL prefix; object keys are the prefix + the file name."""

    def __init__(self, url: str, *, overwrite: bool = True, store: Any | None = None):
        self.url = url.rstrip("/") + "/"
        self.overwrite = overwrite
        parsed = urlparse(url)
        self.scheme = parsed.scheme
        self.prefix = parsed.path.strip("/") if self.scheme != "file" else ""
        self.store = store if store is not None else _store_for(url)

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def join(self, name: str) -> str:
        return self.url + name

    def check(self) -> None:
        """One listing of the prefix: a missing bucket, bad credentials or endpoint fail here."""
        import obstore

        try:
            obstore.list_with_delimiter(self.store, self.prefix or None)
        except Exception as exc:  # noqa: BLE001
            raise storage_error(exc, self.url) from None

    def open(self, name: str) -> _ObjectFile:
        return _ObjectFile(self, name)


def _store_for(url: str) -> Any:
    from obstore.store import from_url

    parsed = urlparse(url)
    options: dict[str, Any] = {}
    client: dict[str, Any] = {"connect_timeout": "10s"}
    if parsed.scheme in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True  # an S3-compatible server on plain HTTP (e.g. a test server)
    retry = {"max_retries": 3, "retry_timeout": timedelta(seconds=30),
             "backoff": {"init_backoff": timedelta(milliseconds=200), "max_backoff": timedelta(seconds=4), "base": 2}}
    try:
        if parsed.scheme == "file":
            Path(parsed.path).mkdir(parents=True, exist_ok=True)
            return from_url(url.rstrip("/") + "/", mkdir=True)
        bucket_url = f"{parsed.scheme}://{parsed.netloc}"
        return from_url(bucket_url, client_options=client, retry_config=retry, **options)
    except Exception as exc:  # noqa: BLE001 - a bad URL or configuration
        raise storage_error(exc, url) from None


def open_sink(destination: str, *, overwrite: bool = True) -> Sink:
    """A sink for a folder: a plain path or an object-store URL (the files go inside it)."""
    if not destination or not destination.strip():
        raise ExportOptionsError("--out", "is empty", "pass a path or a URL such as s3://bucket/prefix/")
    scheme = urlparse(destination).scheme
    if scheme and len(scheme) > 1:
        if scheme not in SCHEMES:
            raise ExportOptionsError(redact(destination), f"unsupported URL scheme {scheme!r}",
                                     "use a local path or s3://, gs://, az://, file://")
        return ObjectSink(destination, overwrite=overwrite)
    return LocalSink(destination, overwrite=overwrite)
