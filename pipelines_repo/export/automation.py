"""``ExportAutomation(...)``: a periodic export declared next to the pipelines, in Braintrust's
``btql_export`` terms (``/v1/project_automation`` config), plus dataset sources and ``start_from``.

    ExportAutomation(name="support-logs", project="Customer Support",
                     export_definition={"type": "log_traces"},        # log_spans | btql_query | dataset
                     export_path="s3://bucket/prefix",                 # or gs://, az://, file://, a folder
                     format="jsonl", interval_seconds=3600, batch_size=1000, status="active",
                     start_from="2026-01-01")

``export_definition``: ``{"type": "log_traces"}`` (one rolled-up row per trace), ``{"type":
"log_spans"}``, ``{"type": "btql_query", "btql_query": "..."}`` (BTQL pipe text; the window's
``_xact_id`` range is ANDed into its ``filter:`` clause, or SQL with a ``{xact_filter}``
placeholder), or ``{"type": "dataset", "dataset_name": "..."}`` (the dataset's rows changed in
each window). Credentials never appear here: the object store's client reads the cloud's standard
environment variables. ``export_path`` may use ``$VARS`` (``$DAGSTER_HOME``); they are expanded
when the export runs. Everything is validated at load, offline; a bad argument raises
:class:`~pipelines_repo.engine.declarations.DeclarationError` naming the cause and the fix.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..engine.declarations import DeclarationError, declaring_file, register
from ..engine.spec import format_validation_error
from .sinks import SCHEMES
from .sources import PIPE_CLAUSE

__all__ = ["DEFINITION_TYPES", "ExportAutomation", "ExportAutomationSpec", "expand_path", "inject_xact_filter"]

DEFINITION_TYPES = ("log_traces", "log_spans", "btql_query", "dataset")
MAX_INTERVAL = 2_592_000  # Braintrust's maximum: 30 days


class ExportDefinition(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["log_traces", "log_spans", "btql_query", "dataset"]
    btql_query: str | None = None
    dataset_name: str | None = None

    @model_validator(mode="after")
    def _fields_for_type(self) -> ExportDefinition:
        if self.type == "btql_query":
            if not (self.btql_query or "").strip():
                raise ValueError("type 'btql_query' needs btql_query='select: * | from: project_logs(...) ...'")
            text = self.btql_query or ""
            if not PIPE_CLAUSE.match(text) and "{xact_filter}" not in text:
                raise ValueError("a SQL btql_query needs a {xact_filter} placeholder in its WHERE clause "
                                 "(or write BTQL pipe syntax, whose filter: clause gets the window)")
        if self.type == "dataset" and not (self.dataset_name or "").strip():
            raise ValueError("type 'dataset' needs dataset_name='...'")
        return self


class ExportAutomationSpec(BaseModel):
    """A validated ``ExportAutomation`` declaration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    project: str = Field(min_length=1)
    export_definition: ExportDefinition
    export_path: str = Field(min_length=1)
    format: Literal["jsonl", "parquet"] = "jsonl"
    interval_seconds: int = Field(default=3600, ge=1, le=MAX_INTERVAL)
    batch_size: int = Field(default=1000, ge=1, le=100_000)
    status: Literal["active", "paused"] = "active"
    start_from: date | None = None
    description: str | None = None
    rows_per_file: int = Field(default=100_000, ge=1)
    lag_minutes: int = Field(default=10, ge=0, le=59)
    file: Path | None = None  # the declaring file

    @field_validator("export_path")
    @classmethod
    def _path(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme and scheme not in SCHEMES:
            raise ValueError(f"unsupported URL scheme {scheme!r}: use a folder or s3://, gs://, az://, file://")
        if scheme and scheme != "file" and not value.split("://", 1)[1].strip("/"):
            raise ValueError("the URL names no bucket: write e.g. s3://bucket/prefix")
        if re.search(r"(?i)(secret|password|sig=|signature=|x-amz-credential)", value):
            raise ValueError("export_path must not carry credentials: set the cloud's environment variables")
        return value.rstrip("/") if len(value) > 1 else value

    # -- derived ----------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.export_definition.type

    @property
    def hourly(self) -> bool:
        """Windows are hourly for ``interval_seconds <= 3600``, daily otherwise."""
        return self.interval_seconds <= 3600

    @property
    def first_window(self) -> datetime:
        """``start_from`` (midnight UTC), else January 1 of the current year."""
        start = self.start_from or date(datetime.now(UTC).year, 1, 1)
        return datetime(start.year, start.month, start.day, tzinfo=UTC)

    def definition(self) -> dict[str, Any]:
        """What the manifest records about the export (no paths with variables expanded, no secrets)."""
        return {"name": self.name, "project": self.project, "export_definition": self.export_definition.model_dump(exclude_none=True),
                "format": self.format, "interval_seconds": self.interval_seconds, "batch_size": self.batch_size}

    @property
    def code_version(self) -> str:
        text = json.dumps({**self.definition(), "export_path": self.export_path}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def resolved_path(self) -> str:
        return expand_path(self.export_path, self.file)


def expand_path(path: str, declared_in: Path | None = None) -> str:
    """``$VARS`` expanded (``$DAGSTER_HOME`` defaults like the settings); a relative folder resolves
    against the declaring file."""
    if "$DAGSTER_HOME" in path or "${DAGSTER_HOME}" in path:
        from ..settings import dagster_home

        path = path.replace("${DAGSTER_HOME}", os.fspath(dagster_home())).replace("$DAGSTER_HOME", os.fspath(dagster_home()))
    path = os.path.expandvars(path)
    if "://" not in path:
        folder = Path(path).expanduser()
        if not folder.is_absolute() and declared_in is not None:
            folder = declared_in.parent / folder
        return os.fspath(folder)
    return path


def _split_pipes(text: str) -> list[str]:
    """BTQL pipe text split on ``|`` outside quotes and parentheses."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def inject_xact_filter(query: str, filter_sql: str) -> str:
    """``query`` restricted to a window: the ``{xact_filter}`` placeholder replaced, else the
    window ANDed into the BTQL ``filter:`` clause (one added when there is none)."""
    if "{xact_filter}" in query:
        return query.replace("{xact_filter}", f"({filter_sql})")
    clauses = _split_pipes(query.strip().rstrip(";"))
    for i, clause in enumerate(clauses):
        head, sep, body = clause.partition(":")
        if head.strip().lower() == "filter" and sep:
            clauses[i] = f" filter: ({filter_sql}) and ({body.strip()}) "
            return "|".join(clauses).strip()
    return "|".join([*clauses, f" filter: {filter_sql}"]).strip()


def build_spec(declared_in: Path | None = None, **fields: Any) -> ExportAutomationSpec:
    label = f"ExportAutomation {fields.get('name')!r}" if fields.get("name") else "ExportAutomation()"
    if "credentials" in fields:
        raise DeclarationError(f"{label}: credentials do not belong in the file", path=declared_in,
                               fix="drop credentials=; set AWS_* / GOOGLE_* / AZURE_* environment variables instead")
    try:
        return ExportAutomationSpec.model_validate({**{k: v for k, v in fields.items() if v is not None}, "file": declared_in})
    except ValidationError as err:
        raise DeclarationError(f"{label}: {format_validation_error(err, 'ExportAutomation')}", path=declared_in,
                               fix="see the ExportAutomation fields (Braintrust's btql_export config)") from None


def ExportAutomation(  # noqa: N802 - a declaration, named like DatasetFile
    name: str,
    *,
    project: str,
    export_definition: dict[str, Any],
    export_path: str,
    format: str = "jsonl",  # noqa: A002 - Braintrust's field name
    interval_seconds: int = 3600,
    batch_size: int = 1000,
    status: str = "active",
    start_from: str | date | None = None,
    description: str | None = None,
    rows_per_file: int = 100_000,
    lag_minutes: int = 10,
    **unknown: Any,
) -> ExportAutomationSpec:
    """Declare an export automation (see the module doc); registers it for the loader."""
    spec = build_spec(
        declaring_file(2), name=name, project=project, export_definition=export_definition, export_path=export_path,
        format=format, interval_seconds=interval_seconds, batch_size=batch_size, status=status, start_from=start_from,
        description=description, rows_per_file=rows_per_file, lag_minutes=lag_minutes, **unknown,
    )
    register(spec)
    return spec
