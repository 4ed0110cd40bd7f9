"""Upload a file into a dataset: read -> map -> id -> validate (schemas) -> stage -> compare -> push.

    upload_file(client, path, target, options=UploadOptions(...), confirm_delete=None, on_progress=None) -> UploadResult

1. Stage: every record is mapped (:mod:`.mapping`), given its id (the mapped ``id``, else one derived
   from its input, :mod:`.ids`), checked as a dataset row and against the dataset's enforced schemas.
   A malformed file or cell raises before anything is written; rows failing a schema go to the
   quarantine file with every error. Rows sharing an id collapse to the last one.
2. Above ``max_invalid`` quarantined rows nothing is written (:class:`SchemaInvalidError`).
3. Compare: the staged rows are looked up in the dataset by id, 1000 per query; only new and changed
   rows are sent, so an unchanged file creates no dataset version. ``mode="mirror"`` also deletes the
   dataset's rows whose ids the file lacks, after ``confirm_delete(count)`` agrees.
4. Push: through the engine's push path (batches, retries, checkpoint); the dataset is created only
   now, so a bad file never leaves an empty dataset behind.
"""

from __future__ import annotations

import os
import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..client import BraintrustClient, NotFoundError
from ..engine.jsonl import JsonlWriter
from ..engine.policy import PushPolicy
from ..engine.push import ResolvedTarget, push_rows, resolve_target
from ..engine.rows import validate_row
from ..engine.spec import TargetSpec
from .errors import DatasetError, DatasetFileError, SchemaInvalidError
from .ids import content_digest, input_id
from .mapping import ColumnMapping, RecordMapper
from .readers import read_records
from .reads import iter_rows, rows_by_id
from .schema import DatasetSchemas
from .staging import StagedRows

__all__ = ["UploadOptions", "UploadResult", "find_dataset", "upload_file", "write_rows"]

# These rows were validated, deduplicated and compared with the dataset here (or are deletes):
# the push sends them as they are, with no second lookup or validation.
PREPARED = PushPolicy(compare=False, trusted=True)
LOOKUPS_IN_FLIGHT = 4

Mode = Literal["upsert", "mirror"]
COMPARE_BATCH = 1000


@dataclass
class UploadOptions:
    fmt: str = "auto"
    mapping: ColumnMapping = field(default_factory=ColumnMapping)
    mode: Mode = "upsert"
    on_duplicate: Literal["last", "error"] = "last"
    dry_run: bool = False
    max_invalid: int = 0
    quarantine_path: Path | None = None  # default: <input>.quarantine.jsonl beside the input file
    sample_rows: int = 3
    # Schemas to enforce on top of the dataset's stored ones (a declaration's, before they are stored).
    schemas: dict[str, dict[str, Any]] | None = None


@dataclass
class UploadResult:
    rows: int = 0
    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    quarantine_path: str | None = None
    dataset_id: str | None = None
    dataset_name: str | None = None
    project_name: str | None = None
    dataset_version: str | None = None
    dry_run: bool = False
    mapping: dict[str, str] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[str, int], None]  # (stage: "read" | "compare" | "push", rows so far)


def find_dataset(client: BraintrustClient, target: TargetSpec) -> tuple[dict | None, dict | None]:
    """(project, dataset) by the target's names or ids, without creating either."""
    project = None
    if target.project_id:
        try:
            project = client.get_project_by_id(target.project_id)
        except NotFoundError:
            return None, None
    elif target.project_name:
        project = client.get_project(name=target.project_name)
    if project is None:
        return None, None
    return project, client.find_dataset(project["id"], target.dataset_name)


def default_quarantine_path(path: Path) -> Path:
    return path.with_name(path.name + ".quarantine.jsonl")


def _stage(
    rows: Iterable[tuple[str, dict[str, Any]]],
    where: str,
    schemas: DatasetSchemas,
    staged: StagedRows,
    quarantine: JsonlWriter,
    result: UploadResult,
    on_progress: ProgressFn | None,
) -> None:
    for place, row in rows:
        result.read += 1
        if "id" not in row:
            row["id"] = input_id(row)
        problems = validate_row(row)
        if problems:
            raise DatasetFileError(
                f"{where}: {place}", "; ".join(problems),
                "fix the file or the mapping (--input/--expected/--metadata/--tags/--ignore or --map)",
            )
        errors = schemas.errors(row)
        if errors:
            result.quarantined += 1
            quarantine.write({"where": place, "id": row["id"], "errors": [e.to_dict() for e in errors], "row": row})
        else:
            staged.add(row, place)
        if on_progress is not None and result.read % 1000 == 0:
            on_progress("read", result.read)
    staged.finish()


def _lookups(
    client: BraintrustClient, dataset_id: str | None, staged: StagedRows
) -> Iterator[tuple[list[tuple[str, dict[str, Any], bytes]], dict[str, dict[str, Any]]]]:
    """Staged batches with the dataset's current rows for their ids, a few lookups in flight."""
    if dataset_id is None:  # a new dataset has no rows to look up
        for batch in staged.batches(COMPARE_BATCH):
            yield batch, {}
        return
    with ThreadPoolExecutor(max_workers=LOOKUPS_IN_FLIGHT, thread_name_prefix="bt-lookup") as pool:
        pending: deque = deque()
        for batch in staged.batches(COMPARE_BATCH):
            pending.append((batch, pool.submit(rows_by_id, client, dataset_id, [row_id for row_id, _, _ in batch])))
            if len(pending) >= LOOKUPS_IN_FLIGHT:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


def _changed(
    client: BraintrustClient,
    dataset_id: str | None,
    staged: StagedRows,
    result: UploadResult,
    on_progress: ProgressFn | None,
) -> Iterator[dict[str, Any]]:
    """The staged rows that are new or differ from the dataset's; counts added / updated / unchanged."""
    done = 0
    for batch, current in _lookups(client, dataset_id, staged):
        for row_id, row, digest in batch:
            stored = current.get(row_id)
            if stored is not None and content_digest(stored) == digest:
                result.unchanged += 1
                continue
            if stored is None:
                result.added += 1
            else:
                result.updated += 1
            yield row
        done += len(batch)
        if on_progress is not None:
            on_progress("compare", done)


def _mirror_deletes(client: BraintrustClient, dataset_id: str, staged: StagedRows) -> list[str]:
    """Ids in the dataset that the file does not have."""
    missing: list[str] = []
    page: list[str] = []
    for row in iter_rows(client, dataset_id, fields=("id",)):
        page.append(row["id"])
        if len(page) >= COMPARE_BATCH:
            present = staged.contains(page)
            missing.extend(i for i in page if i not in present)
            page = []
    if page:
        present = staged.contains(page)
        missing.extend(i for i in page if i not in present)
    return missing


def upload_file(
    client: BraintrustClient,
    path: str | os.PathLike[str],
    target: TargetSpec,
    options: UploadOptions | None = None,
    *,
    confirm_delete: Callable[[int], bool] | None = None,
    on_progress: ProgressFn | None = None,
) -> UploadResult:
    """Upload ``path`` into ``target`` (see the module doc)."""
    options = options or UploadOptions()
    path = Path(path)
    mapper = RecordMapper(options.mapping)

    def mapped() -> Iterator[tuple[str, dict[str, Any]]]:
        for record in read_records(path, options.fmt):
            yield record.where, mapper.map(record)
        mapper.check_columns_seen(str(path))

    quarantine = Path(options.quarantine_path or default_quarantine_path(path))
    result = write_rows(client, mapped(), target, options, where=str(path), quarantine_path=quarantine,
                        confirm_delete=confirm_delete, on_progress=on_progress)
    result.mapping = mapper.spec.describe(mapper.seen_columns)
    return result


def write_rows(
    client: BraintrustClient,
    rows: Iterable[tuple[str, dict[str, Any]]],
    target: TargetSpec,
    options: UploadOptions,
    *,
    where: str,
    quarantine_path: Path | None = None,
    confirm_delete: Callable[[int], bool] | None = None,
    on_progress: ProgressFn | None = None,
) -> UploadResult:
    """Stage ``(place, row)`` pairs, then write what changed (the upload path, shared by copy)."""
    result = UploadResult(dry_run=options.dry_run)
    project, dataset = find_dataset(client, target)
    stored = ((dataset or {}).get("metadata") or {}).get("__schemas") or {}
    schemas = DatasetSchemas({**stored, **(options.schemas or {})})
    dataset_id = dataset["id"] if dataset else None
    with StagedRows(on_duplicate=options.on_duplicate) as staged:
        scratch = quarantine_path or staged.path.with_name("quarantine.jsonl")
        quarantine = JsonlWriter(scratch, atomic=True)
        with quarantine:
            _stage(rows, where, schemas, staged, quarantine, result, on_progress)
            if not result.quarantined:
                quarantine.abort()  # no file when nothing was quarantined
        if result.quarantined:
            result.quarantine_path = str(scratch) if quarantine_path else None
        result.rows, result.duplicates = staged.count, staged.duplicates
        result.sample = staged.sample(options.sample_rows)
        if result.quarantined > options.max_invalid:
            raise SchemaInvalidError(where, result.quarantined, options.max_invalid, result.quarantine_path)
        # Mirror deletes are counted and confirmed before anything is written.
        deletes = _mirror_deletes(client, dataset_id, staged) if options.mode == "mirror" and dataset_id else []
        result.deleted = len(deletes)
        if deletes and not options.dry_run and confirm_delete is not None and not confirm_delete(len(deletes)):
            raise DatasetError(
                where, f"mirror would delete {len(deletes)} row(s) and was not confirmed",
                "pass --yes to confirm, or use --mode upsert to keep rows the file lacks",
            )
        changed = _changed(client, dataset_id, staged, result, on_progress)
        if options.dry_run:
            for _ in changed:  # count only
                pass
            _describe_target(result, project, dataset, target)
            return result
        tombstones = ({"id": row_id, "_object_delete": True} for row_id in deletes)
        # Every row was validated above, so writing while comparing cannot half-write a bad file.
        resolved = resolve_target(client, target)
        pushed = push_rows(client, itertools.chain(changed, tombstones), resolved, allow_deletes=True, policy=PREPARED)
        _describe_target(result, None, None, target, resolved)
        result.dataset_version = pushed.version
    return result


def _describe_target(
    result: UploadResult, project: dict | None, dataset: dict | None, target: TargetSpec,
    resolved: ResolvedTarget | None = None,
) -> None:
    if resolved is not None:
        result.dataset_id, result.dataset_name, result.project_name = resolved.dataset_id, resolved.dataset_name, resolved.project_name
        return
    result.dataset_id = dataset["id"] if dataset else None
    result.dataset_name = dataset.get("name") if dataset else target.dataset_name
    result.project_name = (project or {}).get("name") or target.project_name
