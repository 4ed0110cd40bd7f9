"""Dataset rows: bt's transform-result normalization and push-time validation.

Normalization (bt's runner, docs/BT_COMPAT.md §3) -- :func:`normalize_result`:

* ``None`` -> no rows; a ``list`` -> several rows; anything else -> one row (a tuple or
  generator is *not* expanded, and then fails the object check like bt);
* each row must be a dict, else ``Dataset pipeline transform must return an object row.``;
* any ``origin`` the transform set is removed and replaced by the ref's origin (when it has one);
* a row without an ``id`` *key* gets the fallback id: the ref's span ``id`` (span scope) or the
  root span id (trace scope); when the transform returned several rows each id-less row gets
  ``<fallback>:<index>`` (0-based index in the returned list). An explicit ``"id": None`` stays
  ``None`` (Python bt behaviour) and is handled at push time.

Validation (bt ``run``'s ``prepare_records``, applied here to *both* run and push paths) --
:func:`validate_row`, :class:`RowPreparer`, :func:`prepare_rows`: only ``id, input, expected,
metadata (object), tags (list of strings), origin (object)``; ``id`` must be a non-empty string
when present; ids must be unique within one push.

Where bt gives a row with a null/missing id a *random* UUID, we give a *deterministic* one so a
re-push is idempotent: ``uuid5(ROW_ID_NAMESPACE, "origin:<object_type>/<object_id>/<id>#<k>")``
when the row has an origin naming a source row (``k`` counts earlier id-less rows with the same
origin in this push), else ``uuid5(ROW_ID_NAMESPACE, "content:<sha256 of the row's canonical
JSON>#<k>")`` (``k`` counts earlier id-less rows with the same content).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import PipelineError
from .jsonl import canonical_json

__all__ = [
    "NOT_OBJECT_ROW",
    "ROW_ID_NAMESPACE",
    "DuplicateRowIdError",
    "EncodedRow",
    "RowPreparer",
    "RowValidationError",
    "TransformRowError",
    "check_row",
    "iter_batches",
    "normalize_result",
    "prepare_rows",
    "ref_fallback_id",
    "row_json_bytes",
    "validate_row",
]

ALLOWED_ROW_FIELDS = ("id", "input", "expected", "metadata", "tags", "origin")
NOT_OBJECT_ROW = "Dataset pipeline transform must return an object row."
ROW_ID_NAMESPACE = uuid.UUID("5b0f4a5e-7c1d-5d3e-9a43-6f2b1c0d8e71")

_SPAN_FIELDS = {
    "output",
    "scores",
    "metrics",
    "span_attributes",
    "span_id",
    "root_span_id",
    "span_parents",
    "error",
    "context",
    "comments",
    "is_root",
    "log_id",
    "experiment_id",
}
_SYSTEM_FIELDS = {
    "dataset_id",
    "project_id",
    "org_id",
    "created",
    "_is_merge",
    "_merge_paths",
    "_object_delete",
    "_parent_id",
    "_xact_id",
    "_pagination_key",
    "_async_scoring_state",
    "audit_data",
}


class TransformRowError(PipelineError, ValueError):
    """A transform returned something that is not a dataset row (bt's normalization errors)."""


class RowValidationError(PipelineError, ValueError):
    """A row failed dataset validation; ``errors`` lists each problem."""

    def __init__(self, index: int, row_id: Any, errors: list[str]):
        self.index = index
        self.row_id = row_id
        self.errors = errors
        label = f"dataset row {index + 1}" + (f" (id {row_id!r})" if isinstance(row_id, str) else "")
        super().__init__(
            f"dataset pipeline transform produced invalid dataset rows: {label}: " + "; ".join(errors)
        )


class DuplicateRowIdError(RowValidationError):
    """Two rows in one push share an id."""

    def __init__(self, index: int, row_id: str, first_index: int):
        self.first_index = first_index
        super().__init__(
            index,
            row_id,
            [
                f"duplicate dataset row id {row_id!r} (also row {first_index + 1}); ids must be unique in one push. "
                "Give each row a distinct 'id' (a transform returning several rows can omit 'id' to get "
                "'<source id>:<index>')"
            ],
        )


def ref_fallback_id(ref: Mapping[str, Any]) -> str | None:
    """bt's fallback id: the ref's span ``id`` if a non-empty string, else its ``root_span_id``."""
    row_id = ref.get("id")
    if isinstance(row_id, str) and row_id:
        return row_id
    root = ref.get("root_span_id")
    if isinstance(root, str) and root:
        return root
    return None


def normalize_result(result: Any, *, fallback_id: str | None, origin: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """bt's ``normalize_transform_result`` + ``with_pipeline_defaults`` (see module doc)."""
    if result is None:
        rows: list[Any] = []
    elif isinstance(result, list):
        rows = result
    else:
        rows = [result]
    several = len(rows) > 1
    out = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TransformRowError(NOT_OBJECT_ROW)
        normalized = {key: value for key, value in row.items() if key != "origin"}
        if "id" not in normalized and fallback_id:
            normalized["id"] = f"{fallback_id}:{index}" if several else fallback_id
        if isinstance(origin, Mapping):
            normalized["origin"] = dict(origin)
        out.append(normalized)
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class EncodedRow(dict):
    """A checked row that carries its :func:`canonical_json` text (``canonical``), so the push
    that sends it need not encode it again. It is a plain dict otherwise."""

    __slots__ = ("canonical",)

    def __init__(self, row: Mapping[str, Any], canonical: str | None):
        super().__init__(row)
        self.canonical = canonical


def validate_row(row: Any) -> list[str]:
    """Problems with one row as a dataset row (empty when valid). Each names the field and the fix."""
    return check_row(row)[0]


def check_row(row: Any) -> tuple[list[str], str | None]:
    """:func:`validate_row`'s problems, and the row's :func:`canonical_json` text when valid
    (encoding it is how serializability is checked, so the text comes for free)."""
    if not isinstance(row, Mapping):
        return [f"row must be a JSON object (got {_type_name(row)}); return a dict from the transform"], None
    errors: list[str] = []
    for key in row:
        if key in ALLOWED_ROW_FIELDS:
            continue
        if key == "output":
            errors.append(
                "field 'output' is not a dataset field; put the reference answer in 'expected' "
                "(or keep it under 'metadata')"
            )
        elif key in _SPAN_FIELDS:
            errors.append(f"field {key!r} is a log-span field, not a dataset field; drop it or move it under 'metadata'")
        elif key in _SYSTEM_FIELDS:
            errors.append(f"field {key!r} is a system field set by Braintrust; remove it from the transform's rows")
        else:
            errors.append(
                f"unknown field {key!r}; dataset rows take only {', '.join(ALLOWED_ROW_FIELDS)}. "
                "Move it under 'metadata'"
            )
    if "id" in row and row["id"] is not None:
        row_id = row["id"]
        if not isinstance(row_id, str):
            errors.append(
                f"field 'id' must be a string (got {_type_name(row_id)} {row_id!r}); "
                "return a string id, e.g. str(...), or omit 'id' to use the source span id"
            )
        elif not row_id:
            errors.append("field 'id' must not be empty; return a non-empty id or omit 'id' to use the source span id")
    metadata = row.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            errors.append(
                f"field 'metadata' must be an object (got {_type_name(metadata)}); "
                "return a dict, e.g. {'note': value}"
            )
        elif any(not isinstance(key, str) for key in metadata):
            errors.append("field 'metadata' must have string keys; convert its keys with str()")
    tags = row.get("tags")
    if tags is not None:
        if not isinstance(tags, list):
            errors.append(f"field 'tags' must be a list of strings (got {_type_name(tags)}); return e.g. ['tag']")
        else:
            bad = [i for i, tag in enumerate(tags) if not isinstance(tag, str)]
            if bad:
                errors.append(
                    f"field 'tags' must be a list of strings (item {bad[0]} is {_type_name(tags[bad[0]])}); "
                    "convert tags with str()"
                )
    origin = row.get("origin")
    if origin is not None and not isinstance(origin, Mapping):
        errors.append(f"field 'origin' must be an object (got {_type_name(origin)}); omit it to keep the source origin")
    if errors:
        return errors, None
    try:
        return errors, canonical_json(row)
    except (TypeError, ValueError) as exc:
        return [f"row is not JSON-serializable ({exc}); return only str, number, bool, None, list and dict values"], None


def row_json_bytes(row: Any) -> bytes:
    """The row as compact UTF-8 JSON, for payload-size batching (``len(row_json_bytes(row))``)."""
    return canonical_json(row).encode("utf-8")


def _origin_key(origin: Any) -> str | None:
    if not isinstance(origin, Mapping):
        return None
    source_id = origin.get("id")
    if not isinstance(source_id, str) or not source_id:
        return None
    return f"{origin.get('object_type') or ''}/{origin.get('object_id') or ''}/{source_id}"


class RowPreparer:
    """Stateful validator for one push: validates, fills ids, rejects duplicate ids.

    Feed rows in push order. To resume a push at line N, feed the first N rows again (their
    results can be discarded) so duplicate detection and deterministic ids see the same history.
    """

    def __init__(self, *, allow_deletes: bool = False, prevalidated: bool = False) -> None:
        # Tombstones ({"id", "_object_delete": true}) are for dataset management (mirror uploads,
        # row deletes); a pipeline's transform may not return them.
        self.allow_deletes = allow_deletes
        # Rows straight from a validating transform stream: checking them again costs a JSON
        # encode per row and finds nothing; ids and duplicates are still handled here.
        self.prevalidated = prevalidated
        # id -> index of its first row, keyed by a 128-bit digest of the id: a third of the memory
        # of keeping the id strings, with collisions far below one in 10^20 at 10^9 rows.
        self._seen: dict[int, int] = {}
        self._idless: dict[str, int] = {}
        self.count = 0

    def _deterministic_id(self, row: Mapping[str, Any]) -> str:
        key = _origin_key(row.get("origin"))
        if key is not None:
            key = "origin:" + key
        else:
            body = {k: v for k, v in row.items() if k != "id"}
            key = "content:" + hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
        k = self._idless.get(key, 0)
        self._idless[key] = k + 1
        return str(uuid.uuid5(ROW_ID_NAMESPACE, f"{key}#{k}"))

    def prepare(self, row: Any, index: int | None = None) -> dict[str, Any]:
        """The upload-ready row ``{id, input?, expected?, metadata?, tags?, origin?}``.

        ``None``-valued fields are dropped (bt's ``Option`` fields). Raises
        :class:`RowValidationError` / :class:`DuplicateRowIdError`.
        """
        index = self.count if index is None else index
        self.count += 1
        if self.allow_deletes and isinstance(row, Mapping) and row.get("_object_delete") is True:
            return self._tombstone(row, index)
        errors = [] if self.prevalidated else validate_row(row)
        if errors:
            raise RowValidationError(index, row.get("id") if isinstance(row, Mapping) else None, errors)
        row_id = row.get("id")
        if row_id is None:
            row_id = self._deterministic_id(row)
        self._check_duplicate(row_id, index)
        prepared: dict[str, Any] = {"id": row_id}
        for field in ("input", "expected", "metadata", "tags", "origin"):
            value = row.get(field)
            if value is not None:
                prepared[field] = value
        return prepared


    def _tombstone(self, row: Mapping[str, Any], index: int) -> dict[str, Any]:
        row_id = row.get("id")
        extra = sorted(set(row) - {"id", "_object_delete"})
        if not isinstance(row_id, str) or not row_id or extra:
            raise RowValidationError(index, row_id, [
                "a delete row is exactly {'id': <non-empty string>, '_object_delete': true}"
                + (f"; drop {', '.join(extra)}" if extra else "")
            ])
        self._check_duplicate(row_id, index)
        return {"id": row_id, "_object_delete": True}

    def _check_duplicate(self, row_id: str, index: int) -> None:
        digest = int.from_bytes(hashlib.blake2b(row_id.encode("utf-8"), digest_size=16).digest(), "little")
        first = self._seen.setdefault(digest, index)
        if first != index:
            raise DuplicateRowIdError(index, row_id, first)


def prepare_rows(rows: Iterable[Any], *, preparer: RowPreparer | None = None) -> Iterator[dict[str, Any]]:
    """Stream :meth:`RowPreparer.prepare` over ``rows`` (raises on the first invalid row)."""
    preparer = preparer or RowPreparer()
    for row in rows:
        yield preparer.prepare(row)


def iter_batches(rows: Iterable[dict[str, Any]], *, max_rows: int, max_bytes: int) -> Iterator[list[dict[str, Any]]]:
    """Group rows into batches of at most ``max_rows`` rows and ``max_bytes`` of row JSON.

    A single row larger than ``max_bytes`` forms a batch on its own (the uploader decides what to
    do with it, e.g. logs3 overflow).
    """
    if max_rows < 1 or max_bytes < 1:
        raise ValueError("max_rows and max_bytes must be >= 1")
    batch: list[dict[str, Any]] = []
    size = 0
    for row in rows:
        row_size = len(row_json_bytes(row)) + 1
        if batch and (len(batch) >= max_rows or size + row_size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(row)
        size += row_size
    if batch:
        yield batch
