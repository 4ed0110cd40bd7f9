"""Asset checks on ``<pipeline>/transformed_rows``, evaluated before the push.

All three are *blocking* with ERROR severity: a failed one stops ``dataset_version`` in the same
run, so the dataset is left unchanged.

- ``rows_valid``: the transform produced no invalid dataset row. Two sources: refs the
  transform skipped *because* their rows were invalid (``errors.jsonl`` entries of
  ``RowValidationError`` / ``TransformRowError``, recorded under ``on_error='skip'``), and the
  staged ``transformed.jsonl`` re-validated with the push's own rule (``engine.rows.validate_row``:
  only ``id, input, expected, metadata, tags, origin``, string ids, object metadata, string tags,
  JSON-serializable). So a transform returning bad rows blocks the push even under the error
  rate, and a staged file edited by hand is caught too.
- ``error_rate_ok``: in every partition, skipped refs / candidates <= the pipeline's
  ``max_error_rate`` (with ``on_error='skip'``; under ``'fail'`` the transform raises instead).
- ``unique_row_ids``: no explicit row id appears twice among the run's partitions (two rows with
  one id would overwrite each other in the dataset; the push rejects them).
- ``schema_valid``: the rows failing the target dataset's enforced schemas (the push's own screen,
  ``engine.quarantine``; every error in each partition's ``quarantine.jsonl``) are at most the
  pipeline's ``max_invalid_rows`` (default 0) in the run; at or below it the push writes the valid
  rows, above it the check fails and blocks the push.

A ``DatasetFile``'s ``<name>/dataset_version`` has one blocking check, ``schema_valid``: the rows
quarantined for failing the dataset's enforced schemas are at most ``max_invalid_rows``.

Checks are not partitioned: each evaluation covers the partitions of the run that produced it
and lists them in its metadata.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from ..engine.jsonl import JsonlError, read_jsonl
from ..engine.quarantine import Screened
from ..engine.rows import RowValidationError, TransformRowError, validate_row
from ..engine.spec import PipelineSpec

__all__ = [
    "CHECK_ERROR_RATE",
    "CHECK_ROWS_VALID",
    "CHECK_SCHEMA_VALID",
    "CHECK_UNIQUE_IDS",
    "PartitionRows",
    "RowsReport",
    "build_check_results",
    "build_check_specs",
    "build_schema_check_result",
    "build_schema_check_spec",
    "build_schema_result",
    "inspect_rows",
    "partition_rows",
]

CHECK_ROWS_VALID = "rows_valid"
CHECK_ERROR_RATE = "error_rate_ok"
CHECK_UNIQUE_IDS = "unique_row_ids"
CHECK_SCHEMA_VALID = "schema_valid"
_EXAMPLES = 5
_INVALID_ROW_ERRORS = tuple(f"{cls.__name__}:" for cls in (RowValidationError, TransformRowError))


def build_check_specs(asset_key: dg.AssetKey, spec: PipelineSpec) -> list[dg.AssetCheckSpec]:
    rate = spec.options.max_error_rate
    return [
        dg.AssetCheckSpec(
            CHECK_ROWS_VALID,
            asset=asset_key,
            blocking=True,
            description="Every staged row is a valid Braintrust dataset row; blocks the push otherwise.",
        ),
        dg.AssetCheckSpec(
            CHECK_ERROR_RATE,
            asset=asset_key,
            blocking=True,
            description=(
                f"Skipped refs / candidates stays at or under max_error_rate ({rate:.1%}) in every "
                "partition; blocks the push otherwise (see errors.jsonl)."
            ),
        ),
        dg.AssetCheckSpec(
            CHECK_UNIQUE_IDS,
            asset=asset_key,
            blocking=True,
            description="No row id appears twice in the run's partitions; blocks the push otherwise.",
        ),
        dg.AssetCheckSpec(
            CHECK_SCHEMA_VALID,
            asset=asset_key,
            blocking=True,
            description=(
                "Rows failing the target dataset's enforced schemas stay at or under max_invalid_rows "
                f"({spec.options.max_invalid_rows}); they go to quarantine.jsonl, never to the dataset. "
                "Blocks the push otherwise."
            ),
        ),
    ]


@dataclass
class PartitionRows:
    key: str
    path: Path
    candidates: int
    skipped: int
    errors_path: Path | None = None


@dataclass
class RowsReport:
    """What :func:`inspect_rows` found in the staged ``transformed.jsonl`` files."""

    rows: int = 0
    invalid: int = 0
    invalid_examples: list[str] = field(default_factory=list)
    duplicates: int = 0
    duplicate_examples: list[str] = field(default_factory=list)
    partitions: list[PartitionRows] = field(default_factory=list)


def inspect_rows(partitions: Sequence[PartitionRows]) -> RowsReport:
    """Stream every partition's rows once: validity and explicit-id uniqueness (ids only kept)."""
    report = RowsReport(partitions=list(partitions))
    first_seen: dict[str, str] = {}
    for part in partitions:
        if part.errors_path is not None and part.errors_path.is_file():
            for entry in read_jsonl(part.errors_path):
                error = entry.get("error") if isinstance(entry, dict) else None
                if isinstance(error, str) and error.startswith(_INVALID_ROW_ERRORS):
                    report.invalid += 1
                    if len(report.invalid_examples) < _EXAMPLES:
                        report.invalid_examples.append(f"{part.key} (skipped ref): {error}")
        line = 0
        try:
            for row in read_jsonl(part.path):
                line += 1
                report.rows += 1
                problems = validate_row(row)
                if problems:
                    report.invalid += 1
                    if len(report.invalid_examples) < _EXAMPLES:
                        report.invalid_examples.append(f"{part.key} line {line}: {'; '.join(problems)}")
                    continue
                row_id = row.get("id")
                if isinstance(row_id, str):
                    where = f"{part.key} line {line}"
                    if row_id in first_seen:
                        report.duplicates += 1
                        if len(report.duplicate_examples) < _EXAMPLES:
                            report.duplicate_examples.append(f"id {row_id!r} at {where} (first at {first_seen[row_id]})")
                    else:
                        first_seen[row_id] = where
        except JsonlError as exc:
            report.invalid += 1
            if len(report.invalid_examples) < _EXAMPLES:
                report.invalid_examples.append(f"{part.key}: {exc}")
    return report


def _lines(items: Sequence[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "(none)"


def build_check_results(report: RowsReport, spec: PipelineSpec) -> list[dg.AssetCheckResult]:
    partitions = [p.key for p in report.partitions]
    scope: dict[str, Any] = {
        "partitions": f"{partitions[0]} .. {partitions[-1]} ({len(partitions)})" if partitions else "(none)",
        "rows": report.rows,
    }
    results = [
        dg.AssetCheckResult(
            check_name=CHECK_ROWS_VALID,
            passed=report.invalid == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "All rows are valid dataset rows."
                if report.invalid == 0
                else f"{report.invalid} invalid row(s); the push is blocked. Fix the transform's output."
            ),
            metadata={**scope, "invalid_rows": report.invalid, "examples": dg.MetadataValue.md(_lines(report.invalid_examples))},
        ),
        dg.AssetCheckResult(
            check_name=CHECK_UNIQUE_IDS,
            passed=report.duplicates == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                "Row ids are unique."
                if report.duplicates == 0
                else f"{report.duplicates} duplicate row id(s); the push is blocked. Give each row a distinct "
                "'id' (or omit 'id' to use the source span id)."
            ),
            metadata={**scope, "duplicate_ids": report.duplicates, "examples": dg.MetadataValue.md(_lines(report.duplicate_examples))},
        ),
    ]
    limit = spec.options.max_error_rate
    over: list[str] = []
    worst = 0.0
    skipped = candidates = 0
    errors_files: list[str] = []
    for part in report.partitions:
        skipped += part.skipped
        candidates += part.candidates
        rate = part.skipped / part.candidates if part.candidates else 0.0
        worst = max(worst, rate)
        if rate > limit:
            over.append(f"{part.key}: {part.skipped}/{part.candidates} ({rate:.1%})")
            if part.errors_path is not None:
                errors_files.append(os.fspath(part.errors_path))
    meta: dict[str, Any] = {
        **scope,
        "candidates": candidates,
        "skipped": skipped,
        "worst_error_rate": float(worst),
        "max_error_rate": float(limit),
        "over_limit": dg.MetadataValue.md(_lines(over)),
    }
    if errors_files:
        meta["errors_jsonl"] = dg.MetadataValue.path(errors_files[0])
    results.append(
        dg.AssetCheckResult(
            check_name=CHECK_ERROR_RATE,
            passed=not over,
            severity=dg.AssetCheckSeverity.ERROR,
            description=(
                f"Error rate at most {worst:.1%} (limit {limit:.1%})."
                if not over
                else f"{len(over)} partition(s) over max_error_rate {limit:.1%}; the push is blocked. "
                "See errors.jsonl, fix the transform or raise max_error_rate."
            ),
            metadata=meta,
        )
    )
    return results


def partition_rows(key: str, path: Path, stats: Mapping[str, Any], errors_path: Path | None) -> PartitionRows:
    return PartitionRows(
        key=key,
        path=path,
        candidates=int(stats.get("candidates") or 0),
        skipped=int(stats.get("skipped") or 0),
        errors_path=errors_path if int(stats.get("skipped") or 0) else None,
    )


def build_schema_check_spec(asset_key: dg.AssetKey, max_invalid: int) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        CHECK_SCHEMA_VALID,
        asset=asset_key,
        blocking=True,
        description=(
            f"At most {max_invalid} row(s) of the file fail the dataset's enforced schemas (max_invalid_rows); "
            "above that the upload writes nothing and fails."
        ),
    )


def _schema_result(
    quarantined: int, max_invalid: int, quarantine_path: str | None, *, enforced: bool, allowed: str, blocked: str,
    metadata: dict[str, Any] | None = None,
) -> dg.AssetCheckResult:
    """``schema_valid``: at most ``max_invalid`` rows failed the target's enforced schemas.
    ``allowed`` / ``blocked`` say what happens to the valid rows at or above the limit."""
    passed = quarantined <= max_invalid
    if not quarantined:
        text = "Every row conforms to the dataset's enforced schemas." if enforced else "The dataset enforces no schema."
    elif passed:
        text = f"{quarantined} row(s) quarantined (max_invalid_rows {max_invalid}); {allowed}."
    else:
        text = (
            f"{quarantined} row(s) fail the dataset's enforced schemas (max_invalid_rows {max_invalid}); {blocked}. "
            f"See {quarantine_path}; fix those rows or the schema, or raise max_invalid_rows."
        )
    meta: dict[str, Any] = {"quarantined": quarantined, "max_invalid_rows": max_invalid, "enforced": enforced, **(metadata or {})}
    if quarantine_path and quarantined:
        meta["quarantine_path"] = dg.MetadataValue.path(quarantine_path)
    return dg.AssetCheckResult(
        check_name=CHECK_SCHEMA_VALID, passed=passed, severity=dg.AssetCheckSeverity.ERROR, description=text, metadata=meta,
    )


def build_schema_check_result(
    *, rows: int | None, quarantined: int, max_invalid: int, quarantine_path: str | None
) -> dg.AssetCheckResult:
    """A ``DatasetFile`` upload's ``schema_valid``."""
    return _schema_result(
        quarantined, max_invalid, quarantine_path, enforced=True, allowed="the valid rows were written",
        blocked="nothing was written", metadata={"rows": rows} if rows is not None else None,
    )


def build_schema_result(screens: Sequence[tuple[str, Screened]] | None, spec: PipelineSpec) -> dg.AssetCheckResult:
    """A pipeline's ``schema_valid`` from the push's screen of each partition (``None``: nothing enforced)."""
    screens = list(screens or [])
    files = [os.fspath(s.quarantine_path) for _, s in screens if s.count]
    per_partition = dg.MetadataValue.md(_lines([f"{key}: {s.count}" for key, s in screens if s.count]))
    return _schema_result(
        sum(s.count for _, s in screens), spec.options.max_invalid_rows, files[0] if files else None,
        enforced=bool(screens), allowed="the valid rows will be pushed", blocked="the push is blocked",
        metadata={"per_partition": per_partition},
    )

