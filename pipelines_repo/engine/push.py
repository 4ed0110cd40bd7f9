"""Push: write dataset rows to the target dataset, streaming, concurrently, resumably.

Public API (used by the CLI and by the Dagster assets alike)::

    resolve_target(client, target: TargetSpec, *, default_org=None) -> ResolvedTarget
    push_rows(client, rows: Iterable[dict], target: TargetSpec | ResolvedTarget, *,
              default_org=None, batch_rows=1000, batch_bytes=3 MiB, max_workers=4,
              on_progress=None) -> PushResult
    push_file(client, input_path, target: TargetSpec | ResolvedTarget, *, root="bt-sync",
              force=False, default_org=None, batch_rows=1000, batch_bytes=3 MiB, max_workers=4,
              on_progress=None, on_commit=None) -> PushResult
    push_files(client, input_paths, target, *, ..., repush_completed=False) -> PushFilesResult
    latest_dataset_version(client, dataset_id) -> str | None

One behaviour for both bt paths (fixing bt limitation 5, docs/BT_COMPAT.md §7):

- **Target**: project by id (verified, one GET) or by name (get-or-create, one POST); the org
  defaults to the source org like bt (``default_org``). Dataset get-or-create by name *with*
  ``description`` and ``metadata``; a UUID-like dataset name that matches no dataset id is an
  error (bt). On real Braintrust, an org other than the client's is an error naming the fix.
- **Rows**: validated by :class:`engine.rows.RowPreparer` (only ``id, input, expected, metadata,
  tags, origin``; duplicate ids in one push are an error naming the id; id-less rows get
  deterministic ids), sent through ``client.insert_rows`` (``/logs3``) as full-replace rows with
  ``dataset_id`` and no ``_is_merge``: re-pushing a window replaces rows, never duplicates them.
  Zero rows is not an error: nothing is sent and ``rows_pushed`` is 0.
- **Batches**: at most ``batch_rows`` (<= 1000) rows and ``batch_bytes`` of row JSON; up to
  ``max_workers`` uploads in flight (each retried by the client), committed in input order.
- **Version**: after the push, one ``/btql`` query for the dataset's max ``_xact_id``.

``push_file`` adds a checkpoint so an interrupted push resumes (bt's ``sync push`` state, keyed by
*content*, fixing bt limitation 6, docs/BT_COMPAT.md §7): ``<root>/dataset_<dataset id>/<key[:12]>/`` holds
``spec.json`` (what the key covers: the input's sha256 and the dataset), ``state.json``
(``line_offset`` / ``items_done`` of the last fully committed batch, ``batches_done``,
``bytes_sent``, ``status``; replaced atomically via a temp file + ``os.replace`` after every
commit) and ``manifest.json`` (on completion). The file is validated in full before anything is
uploaded (an invalid row uploads nothing); resuming skips committed rows; a completed checkpoint
for the same content is a no-op (``status="already_completed"``) unless ``force``.

``push_files`` is the same for several files into one dataset (a Dagster backfill's partitions):
their rows share batches, in file order, and each batch's commit advances the checkpoint of every
file it carried rows of, so 365 small windows cost a few uploads and one version query, and an
interrupted backfill push resumes each window where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..client import BraintrustClient, NotFoundError
from ..client.http import MAX_PAGE_SIZE
from .artifacts import DEFAULT_ROOT, sanitize_segment
from .btql import QueryCounter, dataset_from, max_xact
from .delta import ChangeCounts, ChangeFilter
from .errors import PipelineError
from .jsonl import (
    JsonlError,
    canonical_json,
    compact_json,
    read_json,
    read_jsonl_numbered,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from .policy import PushPolicy
from .pushstate import PipelinePushState
from .quarantine import RowCheck, Screened, enforce_max_invalid, screen_file
from .rows import RowPreparer, RowValidationError, row_json_bytes
from .spec import TargetSpec

__all__ = [
    "DEFAULT_PUSH_WORKERS",
    "PushCheckpoint",
    "PushFilesResult",
    "PushInputError",
    "PushPolicy",
    "PushResult",
    "ResolvedTarget",
    "TargetError",
    "checkpoint_dir",
    "latest_dataset_version",
    "push_file",
    "push_files",
    "push_rows",
    "resolve_target",
]

DEFAULT_BATCH_ROWS = 1000
DEFAULT_BATCH_BYTES = 3 * 1024 * 1024
DEFAULT_PUSH_WORKERS = 4
CHECKPOINT_SCHEMA_VERSION = 1
DATASET_VERSION_QUERY_SOURCE = "bt_dagster_dataset_version"

_UUID_LIKE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


class TargetError(PipelineError, ValueError):
    """The target project/dataset cannot be used (names the cause and the fix)."""


class PushInputError(PipelineError, ValueError):
    """The push input file is missing or not valid JSONL."""


def check_org(client: BraintrustClient, org_name: str | None, what: str) -> None:
    """On real Braintrust, ``org_name`` must be the client's org (one client = one org login)."""
    if not org_name or client.plane == "local":
        return
    current = client.org_name
    if current and current != org_name:
        raise TargetError(
            f"{what} is in organization {org_name!r} but this client is logged in to {current!r}. "
            f"Fix: set BRAINTRUST_ORG_NAME={org_name} (or pass the matching --source-org/--target-org)."
        )


@dataclass(frozen=True)
class ResolvedTarget:
    project_id: str
    project_name: str
    dataset_id: str
    dataset_name: str
    org_name: str | None = None
    # the dataset's metadata when resolved (its ``__schemas`` build the push's row check)
    metadata: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("metadata")
        return data


def resolve_target(
    client: BraintrustClient, target: TargetSpec | ResolvedTarget, *, default_org: str | None = None
) -> ResolvedTarget:
    """Project get-or-create, then dataset get-or-create with description and metadata."""
    if isinstance(target, ResolvedTarget):
        return target
    target = target.with_default_org(default_org)
    check_org(client, target.org_name, f"target dataset {target.dataset_name!r}")
    org = target.org_name or client.org_name
    if target.project_id:
        try:
            project = client.get_project_by_id(target.project_id)
        except NotFoundError:
            raise TargetError(
                f"target project id {target.project_id!r} not found in organization {org!r}. "
                "Fix: check target.project_id / --target-project-id, or use --target-project <name>."
            ) from None
    elif target.project_name:
        project = client.ensure_project(target.project_name)
    else:
        raise TargetError(
            f"the pipeline target names no project for dataset {target.dataset_name!r}. "
            "Fix: set target={'project_name': ..., 'dataset_name': ...} or pass --target-project."
        )
    project_id = project["id"]
    project_name = project.get("name") or target.project_name or project_id
    name = target.dataset_name
    if _UUID_LIKE.match(name):
        existing = client.find_dataset(project_id, name)
        if existing is None:
            try:
                existing = client.get_dataset(name)
            except NotFoundError:
                existing = None
            if existing is not None and existing.get("project_id") not in (None, project_id):
                existing = None
        if existing is None:
            raise TargetError(
                f"target dataset {name!r} looks like a dataset id but no dataset in project {project_name!r} "
                "has that id or name. Fix: pass the dataset's name (it is created if missing) or an existing id."
            )
        dataset = existing
    else:
        dataset = client.ensure_dataset(project_id, name, description=target.description, metadata=target.metadata)
    return ResolvedTarget(
        project_id=project_id,
        project_name=project_name,
        dataset_id=dataset["id"],
        dataset_name=dataset.get("name") or name,
        org_name=org,
        metadata=dataset.get("metadata") if isinstance(dataset.get("metadata"), dict) else None,
    )


def latest_dataset_version(client: BraintrustClient, dataset_id: str) -> str | None:
    """The dataset's max ``_xact_id`` as text (one ``/btql`` query), or None for an empty dataset."""
    version = max_xact(client, dataset_from(dataset_id), query_source=DATASET_VERSION_QUERY_SOURCE)
    return str(version) if version is not None else None


@dataclass
class PushResult:
    """What one push did. ``version`` is the dataset's max ``_xact_id`` after the push;
    ``requests`` counts this push's logical API calls (client retries are in ``client.stats``);
    ``rows_resumed`` are rows a resumed push found already committed; ``status`` is
    ``completed`` or ``already_completed`` (a finished checkpoint for the same content)."""

    dataset_id: str
    dataset_name: str
    project_id: str
    project_name: str
    version: str | None
    rows_pushed: int
    batches: int
    requests: int
    dataset_url: str
    bytes_sent: int = 0
    rows_resumed: int = 0
    status: str = "completed"
    org_name: str | None = None
    checkpoint_dir: str | None = None
    input_path: str | None = None
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    kept_curated: int = 0
    quarantined: int = 0
    quarantine_path: str | None = None
    previous_version: str | None = None  # the version this pipeline's previous push produced

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """bt's push summary keys, plus ours (what ``bt-dagster datasets pipeline push`` prints)."""
        return {
            "status": self.status,
            "spec_dir": self.checkpoint_dir,
            "input_path": self.input_path,
            "object_url": self.dataset_url,
            "rows_uploaded": self.rows_pushed,
            "pages_done": self.batches,
            "bytes_sent": self.bytes_sent,
            "rows_resumed": self.rows_resumed,
            "rows": self.rows_pushed,
            "batches": self.batches,
            "dataset": self.dataset_name,
            "dataset_id": self.dataset_id,
            "dataset_version": self.version,
            "dataset_url": self.dataset_url,
            "target_project": self.project_name,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "kept_curated": self.kept_curated,
            "quarantined": self.quarantined,
            "quarantine_path": self.quarantine_path,
            "previous_version": self.previous_version,
        }


# -- batching and concurrent upload ------------------------------------------------------------


@dataclass
class _Batch:
    """Rows for one upload. A batch may carry rows of several sources (the files of a multi-file
    push); for each, ``ends`` holds ``(items, physical lines)`` consumed through this batch and
    ``counts`` / ``sizes`` its rows and bytes to send in it. After the comparison (``_compared``)
    ``rows`` holds only the rows to send (maybe none: the batch then only advances checkpoints),
    ``changes`` what was decided per source and ``lookups`` the queries it cost."""

    index: int
    rows: list[dict[str, Any]]
    nbytes: int
    ends: dict[int, tuple[int, int]]
    counts: dict[int, int]
    sizes: dict[int, int]
    sources: list[int] = field(default_factory=list)
    row_sizes: list[int] = field(default_factory=list)
    encoded: list[bytes] = field(default_factory=list)  # each row's JSON, encoded once for sizing and sending
    changes: dict[int, ChangeCounts] = field(default_factory=dict)
    lookups: int = 0


def _batches(
    rows: Iterable[tuple[dict[str, Any], int, int, int, bytes | None]], *, max_rows: int, max_bytes: int
) -> Iterator[_Batch]:
    """Group ``(row, source, end_item, end_line, its JSON or None)`` into batches of <= max_rows
    rows and <= max_bytes."""
    batch = _Batch(0, [], 0, {}, {}, {})
    for row, source, item, line, known in rows:
        encoded = known if known is not None else row_json_bytes(row)
        row_size = len(encoded) + 1
        if batch.rows and (len(batch.rows) >= max_rows or batch.nbytes + row_size > max_bytes):
            yield batch
            batch = _Batch(batch.index + 1, [], 0, {}, {}, {})
        batch.rows.append(row)
        batch.encoded.append(encoded)
        batch.sources.append(source)
        batch.row_sizes.append(row_size)
        batch.nbytes += row_size
        batch.ends[source] = (item, line)
        batch.counts[source] = batch.counts.get(source, 0) + 1
        batch.sizes[source] = batch.sizes.get(source, 0) + row_size
    if batch.rows:
        yield batch


def _compared(batches: Iterable[_Batch], differ: ChangeFilter | None) -> Iterator[_Batch]:
    """Each batch with only its new and changed rows (``engine.delta``: one lookup per batch)."""
    for batch in batches:
        if differ is None:
            for source, count in batch.counts.items():
                batch.changes[source] = ChangeCounts(added=count)  # not compared: all sent
            yield batch
            continue
        before = differ.counter.requests
        decisions = differ.decide(batch.rows)
        kept = _Batch(batch.index, [], 0, batch.ends, {}, {}, lookups=differ.counter.requests - before)
        for row, encoded, source, size, decision in zip(
            batch.rows, batch.encoded, batch.sources, batch.row_sizes, decisions, strict=True
        ):
            kept.changes.setdefault(source, ChangeCounts()).count(decision)
            if decision in ("added", "updated"):
                kept.rows.append(row)
                kept.encoded.append(encoded)
                kept.sources.append(source)
                kept.row_sizes.append(size)
                kept.nbytes += size
                kept.counts[source] = kept.counts.get(source, 0) + 1
                kept.sizes[source] = kept.sizes.get(source, 0) + size
        yield kept


def _known_json(row: Any, out: dict[str, Any]) -> bytes | None:
    """``out``'s :func:`row_json_bytes` without encoding it, when ``row`` is a checked row whose
    text it carries and ``out`` is that row plus its ``dataset_id`` (nothing dropped, no id
    filled in): ``dataset_id`` sorts before every dataset field, so the text is spliced in."""
    text = getattr(row, "canonical", None)
    if text is None or len(text) < 3 or len(out) != len(row) + 1 or out.get("id") is not row.get("id"):
        return None
    return ('{"dataset_id":' + canonical_json(out["dataset_id"]) + "," + text[1:]).encode("utf-8")


def _send(client: BraintrustClient, batch: _Batch) -> None:
    if batch.rows:  # a batch of unchanged rows only advances the checkpoints
        client.insert_encoded_rows(batch.encoded, [row["id"] for row in batch.rows])


def _upload(
    client: BraintrustClient,
    batches: Iterable[_Batch],
    *,
    max_workers: int,
    commit: Callable[[_Batch], None],
) -> None:
    """Upload batches with up to ``max_workers`` in flight; ``commit`` them in input order."""
    if max_workers <= 1:
        for batch in batches:
            _send(client, batch)
            commit(batch)
        return
    in_flight: deque[tuple[_Batch, Future[None]]] = deque()
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="bt-push")
    try:
        for batch in batches:
            while len(in_flight) >= max_workers:
                done, future = in_flight.popleft()
                future.result()
                commit(done)
            in_flight.append((batch, pool.submit(_send, client, batch)))
        while in_flight:
            done, future = in_flight.popleft()
            future.result()
            commit(done)
    finally:
        for _, future in in_flight:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _check_batch_limits(batch_rows: int, batch_bytes: int, max_workers: int) -> None:
    if not 1 <= batch_rows <= MAX_PAGE_SIZE:
        raise ValueError(f"batch_rows must be between 1 and {MAX_PAGE_SIZE}")
    if batch_bytes < 1024:
        raise ValueError("batch_bytes must be at least 1024")
    if max_workers < 1:
        raise ValueError("max_workers must be >= 1")


ProgressFn = Callable[[int, int], None]  # (rows committed, batches committed)


@dataclass
class _Tally:
    """What this push committed so far: rows sent, uploads (``batches``), bytes, compare lookups
    and the comparison's decisions."""

    rows: int = 0
    batches: int = 0
    nbytes: int = 0
    lookups: int = 0
    changes: ChangeCounts = field(default_factory=ChangeCounts)

    def add(self, batch: _Batch, source: int | None = None) -> None:
        """Count ``batch`` (only ``source``'s rows and bytes in it, when given)."""
        sent = len(batch.rows) if source is None else batch.counts.get(source, 0)
        self.rows += sent
        self.nbytes += batch.nbytes if source is None else batch.sizes.get(source, 0)
        self.batches += 1 if sent else 0
        self.lookups += batch.lookups
        for key, counts in batch.changes.items():
            if source is None or key == source:
                self.changes.add(counts)


def _resolve_requests(target: TargetSpec | ResolvedTarget) -> int:
    """API calls :func:`resolve_target` made: none for a resolved target, else project + dataset."""
    return 0 if isinstance(target, ResolvedTarget) else 2


def _push_result(
    resolved: ResolvedTarget, tally: _Tally, *, version: str | None, requests: int, dataset_url: str, **extra: Any
) -> PushResult:
    """``requests`` counts the target resolution; uploads, lookups and the version query are added here."""
    return PushResult(
        dataset_id=resolved.dataset_id,
        dataset_name=resolved.dataset_name,
        project_id=resolved.project_id,
        project_name=resolved.project_name,
        version=version,
        rows_pushed=tally.rows,
        batches=tally.batches,
        requests=requests + tally.batches + tally.lookups + 1,
        dataset_url=dataset_url,
        bytes_sent=tally.nbytes,
        org_name=resolved.org_name,
        added=tally.changes.added,
        updated=tally.changes.updated,
        unchanged=tally.changes.unchanged,
        kept_curated=tally.changes.kept,
        **extra,
    )


class _Session:
    """The policy of one push once its target is resolved: the row check, the comparison and
    the pipeline's push state (saved by :meth:`finish` after a successful push)."""

    def __init__(self, client: BraintrustClient, resolved: ResolvedTarget, policy: PushPolicy, root: Path | None):
        self.policy = policy
        self.check: RowCheck | None = policy.row_check(resolved) if policy.row_check is not None else None
        state_root = policy.state_root or root
        self.state = None
        if policy.pipeline and state_root is not None:
            self.state = PipelinePushState.load(state_root, resolved.dataset_id, policy.pipeline)
        self.differ = None
        if policy.compare:
            self.differ = ChangeFilter(
                client, resolved.dataset_id, on_conflict=policy.on_conflict,
                previous_version=self.state.last_version if self.state else None,
                kept_ids=self.state.kept_ids if self.state else (), counter=QueryCounter(),
            )

    @property
    def previous_version(self) -> str | None:
        return self.state.last_version if self.state else None

    def finish(self, version: str | None, sent: int) -> None:
        if self.state is not None:
            kept = self.differ.newly_kept if self.differ is not None else ()
            self.state.record(version, kept, sent=sent > 0, keep_curated=self.policy.on_conflict == "keep_curated")
            self.state.save()


def push_rows(
    client: BraintrustClient,
    rows: Iterable[Mapping[str, Any]],
    target: TargetSpec | ResolvedTarget,
    *,
    default_org: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_workers: int = DEFAULT_PUSH_WORKERS,
    on_progress: ProgressFn | None = None,
    allow_deletes: bool = False,
    policy: PushPolicy | None = None,
    prevalidated: bool = False,
) -> PushResult:
    """Stream ``rows`` into the target dataset (see the module doc); no checkpoint (a re-run
    of the same rows sends only what changed). An invalid or duplicate row raises
    :class:`engine.rows.RowValidationError` after the batches before it were committed. With a
    row check (``policy.row_check``), the rows are spooled to a file beside
    ``policy.quarantine_path`` first, so above ``max_invalid`` rejected rows nothing is sent."""
    _check_batch_limits(batch_rows, batch_bytes, max_workers)
    policy = policy or PushPolicy()
    resolved = resolve_target(client, target, default_org=default_org)
    dataset_id = resolved.dataset_id
    session = _Session(client, resolved, policy, policy.state_root)
    preparer = RowPreparer(allow_deletes=allow_deletes, prevalidated=prevalidated)
    tally = _Tally()
    spool: _Spool | None = None
    if session.check is not None:
        spool = _Spool.of(rows, session.check, policy, allow_deletes)
        rows = spool.rows()

    def prepared() -> Iterator[tuple[dict[str, Any], int, int, int, bytes | None]]:
        for index, row in enumerate(rows):
            out = dict(row) if policy.trusted else preparer.prepare(row, index)
            out["dataset_id"] = dataset_id
            yield out, 0, index + 1, index + 1, _known_json(row, out)

    def commit(batch: _Batch) -> None:
        tally.add(batch)
        if on_progress is not None:
            on_progress(tally.rows, tally.batches)

    try:
        _upload(
            client,
            _compared(_batches(prepared(), max_rows=batch_rows, max_bytes=batch_bytes), session.differ),
            max_workers=max_workers,
            commit=commit,
        )
    finally:
        if spool is not None:
            spool.close()
    version = latest_dataset_version(client, dataset_id)
    previous = session.previous_version
    session.finish(version, tally.rows)
    return _push_result(
        resolved,
        tally,
        version=version,
        requests=_resolve_requests(target),
        dataset_url=client.dataset_url(resolved.project_name, resolved.dataset_name),
        quarantined=spool.screened.count if spool else 0,
        quarantine_path=os.fspath(spool.screened.quarantine_path) if spool and spool.screened.count else None,
        previous_version=previous,
    )


@dataclass
class _Spool:
    """A streamed push's rows written to disk and screened, so the quarantine limit is known
    before anything is sent (``push_rows`` with a row check)."""

    path: Path
    screened: Screened

    @classmethod
    def of(cls, rows: Iterable[Mapping[str, Any]], check: RowCheck, policy: PushPolicy, allow_deletes: bool) -> _Spool:
        quarantine = policy.quarantine_path or Path(DEFAULT_ROOT) / "quarantine.jsonl"
        path = quarantine.with_name(f".push-spool-{os.getpid()}-{id(rows)}.jsonl")
        path.parent.mkdir(parents=True, exist_ok=True)
        preparer = RowPreparer(allow_deletes=allow_deletes)  # invalid rows fail here, before any upload
        try:
            with open(path, "w", encoding="utf-8") as handle:
                for index, row in enumerate(rows):
                    handle.write(compact_json(preparer.prepare(row, index)) + "\n")
            # the spool is deleted after the push: quarantine names the row's place in the stream
            screened = screen_file(path, check, allow_deletes=allow_deletes, out=quarantine, place="row")
            enforce_max_invalid([screened], policy.max_invalid)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return cls(path, screened)

    def rows(self) -> Iterator[Any]:
        for value, item, _ in _iter_file_rows(self.path):
            if item not in self.screened.items:
                yield value

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


# -- checkpointed file push --------------------------------------------------------------------


def _iter_file_rows(path: Path) -> Iterator[tuple[Any, int, int]]:
    """``(value, item number (1-based), physical line number)`` for each non-blank line."""
    try:
        for item, (number, value) in enumerate(read_jsonl_numbered(path), start=1):
            yield value, item, number
    except JsonlError as exc:
        raise PushInputError(str(exc)) from None


@dataclass
class PushCheckpoint:
    """The resumable state of one push (``state.json``)."""

    path: Path
    line_offset: int = 0
    items_done: int = 0
    batches_done: int = 0
    bytes_sent: int = 0
    status: str = "in_progress"
    input_sha256: str = ""
    dataset_id: str = ""
    updated_at: float = field(default_factory=time.time)

    @classmethod
    def load(cls, path: Path) -> PushCheckpoint | None:
        try:
            data = read_json(path)
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None  # a damaged state file means: start over (re-sending is idempotent)
        if not isinstance(data, dict):
            return None
        fields = {k: data[k] for k in ("line_offset", "items_done", "batches_done", "bytes_sent", "status",
                                       "input_sha256", "dataset_id", "updated_at") if k in data}
        return cls(path=path, **fields)

    def save(self) -> None:
        """Atomically replace ``state.json`` (temp file + ``os.replace``)."""
        self.updated_at = time.time()
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        # saved after every batch: atomic, but not fsynced (a lost state re-sends rows, idempotently)
        write_text_atomic(self.path, json.dumps(data, indent=2, sort_keys=True))


def checkpoint_dir(root: str | os.PathLike[str], dataset_id: str, input_sha256: str) -> tuple[Path, dict[str, Any]]:
    """``<root>/dataset_<dataset id>/<sha256(spec)[:12]>`` and the spec it is keyed by."""
    spec = {
        "schemaVersion": CHECKPOINT_SCHEMA_VERSION,
        "kind": "dataset_push",
        "object": f"dataset:{dataset_id}",
        "direction": "push",
        "inputSha256": input_sha256,
    }
    digest = hashlib.sha256(compact_json(spec).encode("utf-8")).hexdigest()
    return Path(root) / f"dataset_{sanitize_segment(dataset_id)}" / digest[:12], spec


@dataclass
class _PendingFile:
    """One input of a multi-file push: its checkpoint and what this push committed for it."""

    path: Path
    input_sha: str
    total: int
    spec_dir: Path
    spec: dict[str, Any]
    state: PushCheckpoint | None
    skip: int = 0
    pushed: bool = False  # part of this push (not skipped as already completed)
    tally: _Tally = field(default_factory=_Tally)
    screened: Screened | None = None  # rows the target's row check rejected (not sent)

    @property
    def done(self) -> bool:
        return self.state is not None and self.state.status == "completed"

    def begin(self, dataset_id: str) -> None:
        """Part of this push: write ``spec.json``, drop the old manifest, mark the state in progress."""
        self.pushed = True
        write_json_atomic(self.spec_dir / "spec.json", {**self.spec, "inputPath": os.fspath(self.path.resolve())})
        try:
            (self.spec_dir / "manifest.json").unlink()
        except FileNotFoundError:
            pass
        if self.state is None:
            self.state = PushCheckpoint(
                path=self.spec_dir / "state.json", input_sha256=self.input_sha, dataset_id=dataset_id
            )
        self.state.status = "in_progress"
        self.state.save()
        self.skip = min(self.state.items_done, self.total)

    def complete(self, version: str | None, url: str) -> None:
        """Every row is committed: the state says so, and ``manifest.json`` records the push."""
        assert self.state is not None
        self.state.items_done = self.total
        self.state.status = "completed"
        self.state.save()
        write_json_atomic(
            self.spec_dir / "manifest.json",
            {
                "schemaVersion": CHECKPOINT_SCHEMA_VERSION,
                "status": "completed",
                "specDir": os.fspath(self.spec_dir),
                "inputPath": os.fspath(self.path),
                "objectUrl": url,
                "rowsUploaded": self.skip + self.tally.rows,
                "batches": self.state.batches_done,
                "bytesSent": self.state.bytes_sent,
                "version": version,
                "completedAt": int(time.time()),
            },
        )


@dataclass
class PushFilesResult:
    """A multi-file push: one :class:`PushResult` per input (in input order) and the totals.
    A batch may carry rows of several inputs, so per-input ``batches``/``requests`` count the
    uploads that carried its rows; ``requests`` here counts each API call once."""

    files: list[PushResult]
    version: str | None
    rows_pushed: int
    batches: int
    requests: int
    changes: ChangeCounts = field(default_factory=ChangeCounts)
    quarantined: int = 0
    previous_version: str | None = None


def _validate_file(path: Path, allow_deletes: bool = False) -> tuple[str, int]:
    """Content hash and item count of a push input, every row validated (nothing uploaded)."""
    if not path.is_file():
        raise PushInputError(f"push input {os.fspath(path)!r} not found. Fix: run `transform` first or pass --in <file>.")
    preparer = RowPreparer(allow_deletes=allow_deletes)
    total = 0
    for value, item, line in _iter_file_rows(path):
        try:
            preparer.prepare(value, item - 1)
        except RowValidationError as exc:
            raise _at_line(exc, path, line) from None
        total = item
    return sha256_file(path), total


def push_files(
    client: BraintrustClient,
    input_paths: Iterable[str | os.PathLike[str]],
    target: TargetSpec | ResolvedTarget,
    *,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    force: bool = False,
    repush_completed: bool = False,
    default_org: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_workers: int = DEFAULT_PUSH_WORKERS,
    on_progress: ProgressFn | None = None,
    on_commit: Callable[[PushCheckpoint], None] | None = None,
    allow_deletes: bool = False,
    policy: PushPolicy | None = None,
) -> PushFilesResult:
    """Push several ``transformed.jsonl`` files into one dataset, their rows sharing batches
    (a backfill of 365 small windows is a few uploads, not 365), each file keeping its own
    content-keyed checkpoint (see the module doc).

    Every file is validated before anything is uploaded. A file with a completed checkpoint is
    skipped (``already_completed``) unless ``force`` or ``repush_completed``; ``force`` also
    restarts interrupted pushes, ``repush_completed`` resumes them. One version query ends the
    push. ``on_commit`` is called after each checkpoint save (tests crash there on purpose).
    ``policy`` (default: change-aware, ``overwrite``): see :class:`engine.policy.PushPolicy`; rows
    its row check rejects go to ``quarantine.jsonl`` beside their file and are not sent.
    """
    _check_batch_limits(batch_rows, batch_bytes, max_workers)
    paths = [Path(p) for p in input_paths]
    checked = [_validate_file(path, allow_deletes) for path in paths]  # pass 1, before the target is touched

    resolved = resolve_target(client, target, default_org=default_org)
    dataset_id = resolved.dataset_id
    session = _Session(client, resolved, policy or PushPolicy(), Path(root))
    url = client.dataset_url(resolved.project_name, resolved.dataset_name)
    unique: dict[str, _PendingFile] = {}  # inputs with the same content share one checkpoint: pushed once
    for path, (input_sha, total) in zip(paths, checked, strict=True):
        if input_sha in unique:
            continue
        spec_dir, spec = checkpoint_dir(root, dataset_id, input_sha)
        state = None if force else PushCheckpoint.load(spec_dir / "state.json")
        if state is not None and (state.input_sha256 != input_sha or state.dataset_id != dataset_id):
            state = None
        if state is not None and state.status == "completed" and repush_completed:
            state = None
        unique[input_sha] = _PendingFile(path, input_sha, total, spec_dir, spec, state)
    files = list(unique.values())

    pending = [(source, f) for source, f in enumerate(files) if not f.done]
    if session.check is not None:
        _screen_pending([f for _, f in pending], session.check, session.policy.max_invalid, allow_deletes)
    for _, f in pending:
        f.begin(dataset_id)
    resumed = sum(f.skip for _, f in pending)
    run = _Tally()

    # Pass 2: re-prepare every row (same ids and duplicate checks as pass 1), upload the rest.
    def prepared() -> Iterator[tuple[dict[str, Any], int, int, int, bytes | None]]:
        for source, f in pending:
            preparer = RowPreparer(allow_deletes=allow_deletes)
            for value, item, line in _iter_file_rows(f.path):
                out = preparer.prepare(value, item - 1)
                if item <= f.skip or (f.screened is not None and item in f.screened.items):
                    continue
                out["dataset_id"] = dataset_id
                yield out, source, item, line, None

    def commit(batch: _Batch) -> None:
        run.add(batch)
        for source, (end_item, end_line) in batch.ends.items():
            f = files[source]
            state = f.state
            assert state is not None
            f.tally.add(batch, source)
            state.items_done, state.line_offset = end_item, end_line
            state.batches_done += 1 if batch.counts.get(source) else 0
            state.bytes_sent += batch.sizes.get(source, 0)
            state.save()
            if on_commit is not None:
                on_commit(state)
        if on_progress is not None:
            on_progress(resumed + run.rows, run.batches)

    try:
        _upload(
            client,
            _compared(_batches(prepared(), max_rows=batch_rows, max_bytes=batch_bytes), session.differ),
            max_workers=max_workers,
            commit=commit,
        )
    except BaseException:
        for _, f in pending:
            assert f.state is not None
            f.state.status = "interrupted"
            f.state.save()
        raise
    version = latest_dataset_version(client, dataset_id)
    previous = session.previous_version
    session.finish(version, run.rows)
    for _, f in pending:
        f.complete(version, url)

    resolve_requests = _resolve_requests(target)

    def result(path: Path, input_sha: str) -> PushResult:
        f = unique[input_sha]  # a repeated content reports what its first copy did
        return _push_result(
            resolved,
            f.tally,
            version=version,
            requests=resolve_requests,
            dataset_url=url,
            rows_resumed=f.skip,
            status="completed" if f.pushed else "already_completed",
            checkpoint_dir=os.fspath(f.spec_dir),
            input_path=os.fspath(path),
            quarantined=f.screened.count if f.screened else 0,
            quarantine_path=os.fspath(f.screened.quarantine_path) if f.screened and f.screened.count else None,
            previous_version=previous,
        )

    return PushFilesResult(
        files=[result(path, input_sha) for path, (input_sha, _) in zip(paths, checked, strict=True)],
        version=version,
        rows_pushed=run.rows,
        batches=run.batches,
        requests=resolve_requests + run.batches + run.lookups + 1,
        changes=run.changes,
        quarantined=sum(f.screened.count for _, f in pending if f.screened),
        previous_version=previous,
    )


def _screen_pending(files: Sequence[_PendingFile], check: RowCheck, max_invalid: int, allow_deletes: bool) -> None:
    """Screen every file to push against the row check; above ``max_invalid`` nothing is sent."""
    for f in files:
        f.screened = screen_file(f.path, check, allow_deletes=allow_deletes)
    enforce_max_invalid([f.screened for f in files if f.screened is not None], max_invalid)


def push_file(
    client: BraintrustClient,
    input_path: str | os.PathLike[str],
    target: TargetSpec | ResolvedTarget,
    *,
    root: str | os.PathLike[str] = DEFAULT_ROOT,
    force: bool = False,
    default_org: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    max_workers: int = DEFAULT_PUSH_WORKERS,
    on_progress: ProgressFn | None = None,
    on_commit: Callable[[PushCheckpoint], None] | None = None,
    allow_deletes: bool = False,
    policy: PushPolicy | None = None,
) -> PushResult:
    """Push one ``transformed.jsonl`` file with a content-keyed checkpoint (:func:`push_files`
    of one file). Raises :class:`PushInputError` for a missing/invalid file and
    :class:`engine.rows.RowValidationError` (naming the line) before any upload."""
    return push_files(
        client, [input_path], target, root=root, force=force, default_org=default_org,
        batch_rows=batch_rows, batch_bytes=batch_bytes, max_workers=max_workers,
        on_progress=on_progress, on_commit=on_commit, allow_deletes=allow_deletes, policy=policy,
    ).files[0]


def _at_line(exc: RowValidationError, path: Path, line: int) -> RowValidationError:
    """The same error, with the file and line prepended to its message."""
    exc.args = (f"{os.fspath(path)} line {line}: {exc}",)
    return exc
