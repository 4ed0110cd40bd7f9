"""``DatasetFile(...)``: a dataset kept in sync with a file that lives next to the pipelines.

    DatasetFile(name="support-faq", path="data/faq.csv",
                target={"project_name": "Customer Support", "dataset_name": "Support FAQ"},
                mapping={"columns": {"question": "input", "answer": "expected"}},   # or "faq.map.yaml"
                format="auto", mode="upsert", max_invalid_rows=0,
                schema={"input": {"type": "string", "enforce": True}})              # or "faq.schema.json"

A file in the pipelines folder calls it at module level; the loader collects the declarations
(``engine.declarations``) next to the pipelines. Everything is checked now, offline: the data
file exists and its format is known, the mapping and the schemas parse. Relative paths (data,
map and schema files) resolve against the declaring file. A bad argument raises
:class:`~pipelines_repo.engine.declarations.DeclarationError` naming the cause and the fix.

``export={"path": ..., "format": "jsonl"|"parquet"}`` adds ``<name>/dataset_export``: after each
upload, the dataset at its new version is exported to ``<path>/version=<xact_id>/`` with a manifest.

``code_version`` is sha256 over the data file's bytes and the declaration (target, mapping,
format, mode, limit, schemas), so editing either marks the dataset out of date.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..engine.declarations import DeclarationError, declaring_file, register
from ..engine.jsonl import sha256_file
from ..engine.spec import TargetSpec, format_validation_error
from .errors import DatasetError
from .mapping import ColumnMapping
from .readers import FORMATS, detect_format
from .schema import SCHEMA_FIELDS, DatasetSchemas
from .upload import UploadOptions

__all__ = ["DatasetFile", "DatasetFileSpec"]

Mode = Literal["upsert", "mirror"]


class DatasetFileSpec(BaseModel):
    """A validated ``DatasetFile`` declaration (paths absolute)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    path: Path
    target: TargetSpec
    mapping: ColumnMapping
    fmt: str = "auto"
    mode: Mode = "upsert"
    max_invalid_rows: int = 0
    schemas: dict[str, dict[str, Any]] | None = None
    file: Path | None = None  # the declaring file
    code_version: str
    export: dict[str, str] | None = None  # {"path": folder or URL, "format": jsonl|parquet}: adds <name>/dataset_export

    def file_sha256(self) -> str:
        return sha256_file(self.path)

    def upload_options(self, quarantine_path: Path | None = None) -> UploadOptions:
        return UploadOptions(
            fmt=self.fmt, mapping=self.mapping, mode=self.mode, max_invalid=self.max_invalid_rows,
            quarantine_path=quarantine_path,
        )


def _fail(cause: str, fix: str, declared_in: Path | None) -> DeclarationError:
    return DeclarationError(cause, path=declared_in, fix=fix)


def _resolve(value: str | Path, base: Path | None) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and base is not None:
        path = base.parent / path
    return path.resolve()


def _mapping(value: Any, base: Path | None, label: str) -> ColumnMapping:
    try:
        if value is None:
            return ColumnMapping()
        if isinstance(value, (str, Path)):
            path = _resolve(value, base)
            if not path.is_file():
                raise _fail(f"{label}: map file {path} not found", "fix mapping= (a path relative to this file, or a dict)", base)
            return ColumnMapping.load(path)
        if isinstance(value, Mapping):
            return ColumnMapping.parse_mapping(dict(value), f"{label} mapping")
    except DatasetError as exc:
        raise _fail(f"{label}: {exc.where}: {exc.cause}", exc.fix or "fix mapping=", base) from None
    raise _fail(f"{label}: mapping must be a dict or a map file path (got {type(value).__name__})",
                "pass mapping={'columns': {...}} or mapping='name.map.yaml'", base)


def _schemas(value: Any, base: Path | None, label: str) -> dict[str, dict[str, Any]] | None:
    if value is None:
        return None
    if isinstance(value, (str, Path)):
        path = _resolve(value, base)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise _fail(f"{label}: cannot read schema file {path} ({exc.strerror})", "fix schema= (a path relative to this file, or a dict)", base) from None
        except ValueError as exc:
            raise _fail(f"{label}: schema file {path} is not JSON ({exc})", "fix the JSON", base) from None
    fix = f"pass schema={{field: JSON Schema}} with fields among {', '.join(SCHEMA_FIELDS)}"
    if not isinstance(value, Mapping) or not all(isinstance(s, Mapping) for s in value.values()):
        raise _fail(f"{label}: schema must map a field to a JSON Schema object", fix, base)
    unknown = [field for field in value if field not in SCHEMA_FIELDS]
    if unknown:
        raise _fail(f"{label}: schema names unknown field(s) {', '.join(map(repr, unknown))}", fix, base)
    try:
        DatasetSchemas(value)
    except DatasetError as exc:
        raise _fail(f"{label}: {exc.where}: {exc.cause}", "fix the JSON Schema", base) from None
    return {field: dict(schema) for field, schema in value.items()}


def _export_option(value: Any, label: str, base: Path | None) -> dict[str, str] | None:
    if value is None:
        return None
    fix = "pass export={'path': 's3://bucket/prefix' or a folder, 'format': 'jsonl' or 'parquet'}"
    if not isinstance(value, Mapping) or not isinstance(value.get("path"), str) or not value["path"].strip():
        raise _fail(f"{label}: export must be a dict with a path", fix, base)
    unknown = set(value) - {"path", "format"}
    fmt = value.get("format", "jsonl")
    if unknown or fmt not in ("jsonl", "parquet"):
        raise _fail(f"{label}: export takes path and format (jsonl or parquet); got {dict(value)!r}", fix, base)
    return {"path": value["path"].strip(), "format": fmt}


def _code_version(path: Path, declaration: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(sha256_file(path).encode())
    digest.update(b"\0")
    digest.update(json.dumps(declaration, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:12]


def build_spec(
    name: str, *, path: str | Path, target: Mapping[str, Any], mapping: Any = None, format: str = "auto",
    mode: str = "upsert", max_invalid_rows: int = 0, schema: Any = None, declared_in: Path | None = None,
    export: Any = None,
) -> DatasetFileSpec:
    """Validate one declaration (see the module doc); raises :class:`DeclarationError`."""
    if not isinstance(name, str) or not name.strip():
        raise _fail("DatasetFile(): name is required", "pass name='...'", declared_in)
    label = f"DatasetFile {name!r}"
    data = _resolve(path, declared_in)
    if not data.is_file():
        raise _fail(f"{label}: data file {data} not found", "fix path= (relative to the declaring file) or add the file", declared_in)
    if format not in ("auto", *FORMATS):
        raise _fail(f"{label}: unknown format {format!r}", f"use one of auto, {', '.join(FORMATS)}", declared_in)
    try:
        detect_format(data, format)
    except DatasetError as exc:
        raise _fail(f"{label}: {exc.cause}", exc.fix or "pass format=", declared_in) from None
    if mode not in ("upsert", "mirror"):
        raise _fail(f"{label}: unknown mode {mode!r}", "use mode='upsert' (keep rows the file lacks) or 'mirror' (delete them)", declared_in)
    if not isinstance(max_invalid_rows, int) or isinstance(max_invalid_rows, bool) or max_invalid_rows < 0:
        raise _fail(f"{label}: max_invalid_rows must be an integer >= 0 (got {max_invalid_rows!r})", "pass e.g. max_invalid_rows=0", declared_in)
    if not isinstance(target, Mapping):
        raise _fail(f"{label}: target must be a dict", "pass target={'project_name': ..., 'dataset_name': ...}", declared_in)
    try:
        target_spec = TargetSpec.model_validate(dict(target))
    except ValidationError as err:
        raise _fail(f"{label}: {format_validation_error(err, 'target')}", "pass target={'project_name': ..., 'dataset_name': ...}", declared_in) from None
    column_mapping = _mapping(mapping, declared_in, label)
    schemas = _schemas(schema, declared_in, label)
    declaration = {"target": target_spec.model_dump(), "mapping": column_mapping.model_dump(), "format": format,
                   "mode": mode, "max_invalid_rows": max_invalid_rows, "schemas": schemas}
    return DatasetFileSpec(
        name=name.strip(), path=data, target=target_spec, mapping=column_mapping, fmt=format, mode=mode,  # type: ignore[arg-type]
        max_invalid_rows=max_invalid_rows, schemas=schemas, file=declared_in,
        code_version=_code_version(data, declaration), export=_export_option(export, label, declared_in),
    )


def DatasetFile(  # noqa: N802 - a declaration, named like DatasetPipeline
    name: str,
    *,
    path: str | Path,
    target: Mapping[str, Any],
    mapping: Mapping[str, Any] | str | Path | None = None,
    format: str = "auto",  # noqa: A002 - the option's documented name
    mode: Mode = "upsert",
    max_invalid_rows: int = 0,
    schema: Mapping[str, Any] | str | Path | None = None,
    export: Mapping[str, str] | None = None,
) -> DatasetFileSpec:
    """Declare a file-backed dataset (see the module doc); registers it for the loader."""
    spec = build_spec(
        name, path=path, target=target, mapping=mapping, format=format, mode=mode,
        max_invalid_rows=max_invalid_rows, schema=schema, declared_in=declaring_file(2), export=export,
    )
    register(spec)
    return spec
