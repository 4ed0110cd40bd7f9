"""``automations test``: write a probe object at the destination, delete it, and name what failed.

    result = probe_destination("s3://bucket/prefix")    # raises StorageError (cause, fix, kind)

Like Braintrust's "Test automation", the probe is ``_bt_export_test/<uuid>`` under the export
path: a put, then a delete (so a delete permission missing is reported instead of leaving litter).
Failures are classified by :func:`errors.storage_error`: ``credentials``, ``missing bucket``,
``unreachable endpoint``, ``configuration`` or ``other``, each with its fix; secrets are redacted.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from .errors import StorageError, redact
from .objects import delete_object, put_bytes, read_bytes
from .sinks import open_sink

__all__ = ["ProbeResult", "probe_destination"]

PROBE_FOLDER = "_bt_export_test"


@dataclass
class ProbeResult:
    url: str
    probe: str
    seconds: float


def probe_destination(url: str) -> ProbeResult:
    started = time.perf_counter()
    sink = open_sink(url)
    name = f"{PROBE_FOLDER}/{uuid.uuid4().hex}"
    put_bytes(sink, name, b"bt-dagster export probe\n")
    if read_bytes(sink, name) is None:
        raise StorageError(redact(sink.join(name)), "the probe object was written but cannot be read back",
                           "check the store's consistency settings and read permission")
    try:
        delete_object(sink, name)
    except StorageError as exc:
        raise StorageError(exc.where, f"the probe was written but could not be deleted ({exc.cause})",
                           "grant delete permission (s3:DeleteObject) on the prefix", kind=exc.kind) from None
    return ProbeResult(url=redact(sink.url), probe=redact(sink.join(name)), seconds=time.perf_counter() - started)
