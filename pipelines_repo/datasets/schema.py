"""Dataset schemas, stored where Braintrust keeps them: ``dataset.metadata.__schemas.{input,expected,metadata}``.

Each schema is a JSON Schema (2020-12) object; ``"enforce": true`` inside it (next to ``type``, as
Braintrust's UI writes it) makes every write path of ours reject rows that do not conform.

    schemas = DatasetSchemas.from_dataset(dataset)          # the dataset object from GET /v1/dataset/{id}
    schemas.errors(row, enforced_only=True) -> list[SchemaViolation]   # every error, not the first
    infer_schemas(rows, fields=("input", "expected", "metadata")) -> dict[field, schema]
    target_row_check(target: ResolvedTarget) -> RowCheck | None   # the pipeline push's injected check

Validation uses ``jsonschema``'s Draft 2020-12 validator, whose ``iter_errors`` reports every error
with its JSON path; inference uses ``genson``, which builds the narrowest schema that accepts every
sample (see pyproject.toml).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .errors import DatasetError

__all__ = ["SCHEMA_FIELDS", "SCHEMA_DIALECT", "DatasetSchemas", "SchemaViolation", "infer_schemas", "target_row_check"]

SCHEMA_FIELDS = ("input", "expected", "metadata")
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_OURS = ("enforce",)  # keys of ours inside a schema, not JSON Schema keywords


@dataclass(frozen=True)
class SchemaViolation:
    """One error of one row: the field, the JSON path inside it, the failing keyword and the message."""

    field: str
    path: str
    keyword: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


class DatasetSchemas:
    """The schemas of one dataset, compiled once."""

    def __init__(self, schemas: Mapping[str, Any] | None):
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        self.raw: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, Any] = {}
        self.enforced: set[str] = set()
        for field, schema in (schemas or {}).items():
            if field not in SCHEMA_FIELDS or not isinstance(schema, Mapping):
                continue
            body = {k: v for k, v in schema.items() if k not in _OURS}
            try:
                Draft202012Validator.check_schema(body)
            except SchemaError as exc:
                raise DatasetError(
                    f"schema of {field}", f"not a valid JSON Schema ({exc.message})",
                    f"fix it with `bt-dagster datasets schema set --field {field} --file S.json`",
                ) from None
            self.raw[field] = dict(schema)
            self._validators[field] = Draft202012Validator(body)
            if schema.get("enforce") is True:
                self.enforced.add(field)

    @classmethod
    def from_dataset(cls, dataset: Mapping[str, Any] | None) -> DatasetSchemas:
        metadata = (dataset or {}).get("metadata") or {}
        return cls(metadata.get("__schemas") if isinstance(metadata, Mapping) else None)

    def __bool__(self) -> bool:
        return bool(self.raw)

    def errors(self, row: Mapping[str, Any], *, enforced_only: bool = True) -> list[SchemaViolation]:
        """Every violation of the row's fields. A field the row does not set is not checked: a
        schema describes the field's value, as Braintrust's form editor uses it."""
        found: list[SchemaViolation] = []
        for field, validator in self._validators.items():
            value = row.get(field)
            if value is None or (enforced_only and field not in self.enforced):
                continue
            for error in validator.iter_errors(value):
                found.append(SchemaViolation(field, error.json_path, str(error.validator), error.message))
        return found


def target_row_check(target: Any) -> Callable[[Mapping[str, Any]], list[dict[str, str]]] | None:
    """The row check a pipeline push injects (``engine.policy.PushPolicy.row_check``): every
    violation of the resolved target's enforced schemas, as dicts; None when nothing is enforced."""
    schemas = DatasetSchemas.from_dataset({"metadata": getattr(target, "metadata", None)})
    if not schemas.enforced:
        return None
    return lambda row: [violation.to_dict() for violation in schemas.errors(row)]


def infer_schemas(rows: Iterable[Mapping[str, Any]], fields: Iterable[str] = SCHEMA_FIELDS) -> dict[str, dict[str, Any]]:
    """The narrowest schema per field that accepts every sampled row's value (fields never set are left out)."""
    from genson import SchemaBuilder

    builders: dict[str, Any] = {}
    for row in rows:
        for field in fields:
            value = row.get(field)
            if value is None:
                continue
            builder = builders.get(field)
            if builder is None:
                builder = builders[field] = SchemaBuilder(schema_uri=SCHEMA_DIALECT)
            builder.add_object(value)
    return {field: builder.to_schema() for field, builder in builders.items()}
