"""Dataset versions: naming one (xact id, snapshot name or ISO time), listing them, diffing two.

    resolve_version(client, dataset_id, text) -> str           # an xact id the API can pin
    list_versions(client, dataset_id) -> list[dict]             # {xact_id, time, added, updated, deleted}
    diff_dataset(client, dataset_id, from_text, to_text) -> DatasetDiff

An ISO time names the dataset as it was at that moment: the largest xact id stamped at or before
it (Braintrust's xact ids carry their second in bits 16-47). Versions come from the local plane's
history route; on Braintrust, whose API has no history listing, the list holds the snapshots and
the head, with counts diffed between consecutive entries.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ..client import BraintrustClient, NotFoundError
from ..engine.push import latest_dataset_version
from ..engine.xact import xact_before, xact_second
from .diff import DatasetDiff, diff_versions
from .errors import DatasetError
from .reads import iter_rows, rows_by_id

__all__ = ["diff_dataset", "list_versions", "resolve_version", "time_of_xact", "xact_at_time"]

_DIGITS = re.compile(r"^\d{1,20}$")


def xact_at_time(moment: datetime) -> int:
    """The largest xact id stamped at or before ``moment``."""
    return xact_before(moment + timedelta(microseconds=1))


def time_of_xact(xact_id: str | int) -> str | None:
    second = xact_second(xact_id)
    return second.strftime("%Y-%m-%dT%H:%M:%SZ") if second else None


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def resolve_version(client: BraintrustClient, dataset_id: str, text: str | None) -> str | None:
    """``None``/``head`` -> the current max xact; digits -> as is; else a snapshot name, else an ISO time."""
    if text is None or text == "head":
        return latest_dataset_version(client, dataset_id)
    text = text.strip()
    if _DIGITS.match(text):
        return text
    for snapshot in client.list_dataset_snapshots(dataset_id):
        if snapshot.get("name") == text:
            return str(snapshot["xact_id"])
    moment = _parse_time(text)
    if moment is not None:
        return str(xact_at_time(moment))
    raise DatasetError(
        f"version {text!r}", "is neither a transaction id, a snapshot name of this dataset nor an ISO time",
        "pass an _xact_id from `datasets versions`, a name from `datasets snapshots list`, or e.g. 2026-11-30T12:00:00Z",
    )


def list_versions(client: BraintrustClient, dataset_id: str) -> list[dict[str, Any]]:
    """Every version, oldest first: ``{xact_id, time, added, updated, deleted}`` (snapshots named)."""
    snapshots = {str(s["xact_id"]): s.get("name") for s in client.list_dataset_snapshots(dataset_id)}
    try:
        versions = client.dataset_history(dataset_id)
    except NotFoundError:  # real Braintrust: no history route; snapshots and the head instead
        versions = _versions_from_snapshots(client, dataset_id, sorted(snapshots, key=int))
    for version in versions:
        version["time"] = time_of_xact(version["xact_id"])
        version["snapshot"] = snapshots.get(str(version["xact_id"]))
    return versions


def _versions_from_snapshots(client: BraintrustClient, dataset_id: str, xacts: list[str]) -> list[dict[str, Any]]:
    head = latest_dataset_version(client, dataset_id)
    if head is not None and head not in xacts:
        xacts.append(head)
    versions, previous = [], None
    for xact in xacts:
        diff = diff_dataset(client, dataset_id, previous, xact) if previous else None
        versions.append({
            "xact_id": xact,
            "added": len(diff.added) if diff else None,
            "updated": len(diff.modified) if diff else None,
            "deleted": len(diff.removed) if diff else None,
        })
        previous = xact
    return versions


def diff_dataset(client: BraintrustClient, dataset_id: str, from_text: str | None, to_text: str | None) -> DatasetDiff:
    """Ids added, removed and modified between two versions, with an RFC 6902 patch per modified row."""
    old = resolve_version(client, dataset_id, from_text)
    new = resolve_version(client, dataset_id, to_text)
    if old is None or new is None:
        raise DatasetError(f"dataset {dataset_id}", "has no version yet", "write rows to it first")

    def fetch(ids: list[str], side: str) -> list[dict[str, Any]]:
        return list(rows_by_id(client, dataset_id, ids, version=old if side == "from" else new).values())

    return diff_versions(
        iter_rows(client, dataset_id, version=old),
        iter_rows(client, dataset_id, version=new),
        from_version=old, to_version=new, fetch_rows=fetch,
    )
