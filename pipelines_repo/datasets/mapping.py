"""Column mapping: a file's records -> dataset rows, as in Braintrust's upload dialog.

    spec = ColumnMapping.from_options(input=[...], expected=[...], metadata=[...], tags=[...], ignore=[...])
    spec = ColumnMapping.load(Path("map.yaml"))          # columns, parse rules, constant metadata, id field
    mapper = RecordMapper(spec)
    row = mapper.map(record)                              # {"id"?, "input"?, "expected"?, "metadata"?, "tags"?, "origin"?}
    mapper.check_columns_seen(path)                       # a column the mapping names never appeared -> MappingError

Rules (README "Datasets"):
- Defaults: columns named ``id``, ``input``, ``expected``, ``metadata``, ``tags``, ``origin`` map to
  themselves; the fields Braintrust sets itself (``_xact_id``, ``created``, ``dataset_id``, ...) are
  ignored, so an exported dataset uploads again unchanged; every other column goes to ``input``.
- A category given exactly one column holds that column's value; several columns make an object
  keyed by column name; metadata is always an object. Dotted headers (``input.question``) and dotted
  targets (``metadata.run_output``) build nested objects.
- CSV cells: a cell holding a JSON object or array is parsed; other cells stay strings unless the
  column declares ``parse: number|bool|json|string``; empty cells are left out. A tags cell is a JSON
  array or comma-separated.

The YAML map file::

    columns:
      question: input                        # or {to: input}
      answer: expected
      score: {to: metadata, parse: number}
      model_answer: {to: metadata.run_output}
      labels: tags
      notes: ignore
    metadata: {source: golden-v2}            # constant metadata on every row (a row's own keys win)
    id_field: case_id                        # like --id-field
    tag_delimiter: ","
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import MappingError
from .readers import Record

__all__ = ["CATEGORIES", "BRAINTRUST_SET_FIELDS", "ColumnMapping", "ColumnRule", "RecordMapper", "ResolvedColumn"]

CATEGORIES = ("id", "input", "expected", "metadata", "tags", "origin", "ignore")
_SELF_MAPPED = ("id", "input", "expected", "metadata", "tags", "origin")
# Set by Braintrust on every row it stores or returns; never user content.
BRAINTRUST_SET_FIELDS = frozenset({
    "_xact_id", "created", "dataset_id", "project_id", "experiment_id", "org_id", "log_id", "span_id",
    "root_span_id", "span_parents", "_pagination_key", "is_root", "_object_delete", "_is_merge",
    "_merge_paths", "comments", "audit_data", "facets", "classifications", "_audit_source", "_audit_metadata",
})
Parse = Literal["auto", "string", "number", "bool", "json"]
_TRUE = {"true", "yes", "y", "1", "t"}
_FALSE = {"false", "no", "n", "0", "f"}


class ColumnRule(BaseModel):
    """Where one column goes (``to``: a category, optionally with a dotted path) and how its cells parse."""

    model_config = ConfigDict(extra="forbid")
    to: str
    parse: Parse = "auto"

    @field_validator("to")
    @classmethod
    def _known_category(cls, value: str) -> str:
        head = value.split(".", 1)[0]
        if head not in CATEGORIES or (head in ("id", "tags", "ignore") and "." in value):
            raise ValueError(f"unknown target {value!r}; use one of {', '.join(CATEGORIES)} (input/expected/metadata/origin may take a dotted path)")
        return value


class ColumnMapping(BaseModel):
    """The whole mapping: explicit column rules, constant metadata, the id field, the tag delimiter."""

    model_config = ConfigDict(extra="forbid")
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    id_field: str | None = None
    tag_delimiter: str = ","

    @field_validator("columns", mode="before")
    @classmethod
    def _short_rules(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(col): {"to": rule} if isinstance(rule, str) else rule for col, rule in value.items()}
        return value

    @classmethod
    def load(cls, path: Path) -> ColumnMapping:
        import yaml  # PyYAML comes with Dagster

        where = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise MappingError(where, f"cannot read the map file ({exc.strerror})", "check the --map path") from None
        except yaml.YAMLError as exc:
            raise MappingError(where, f"invalid YAML ({exc})", "fix the map file's YAML syntax") from None
        return cls.parse_mapping(data, where)

    @classmethod
    def parse_mapping(cls, data: Any, where: str = "mapping") -> ColumnMapping:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
            raise MappingError(where, f"invalid mapping ({problems})", "see the README's Datasets section for the map file's keys") from None

    @classmethod
    def from_options(
        cls,
        *,
        base: ColumnMapping | None = None,
        id_field: str | None = None,
        **categories: Iterable[str] | None,
    ) -> ColumnMapping:
        """``--input A B --expected C ...`` on top of an optional map file (flags win)."""
        spec = base.model_copy(deep=True) if base else cls()
        for category, columns in categories.items():
            for column in columns or ():
                spec.columns[column] = ColumnRule(to=category, parse=spec.columns.get(column, ColumnRule(to=category)).parse)
        if id_field:
            spec.id_field = id_field
        return spec

    def describe(self, header: Iterable[str]) -> dict[str, str]:
        """The resolved target of each column (``--dry-run`` prints it)."""
        resolved = _resolve(self, tuple(header))
        return {col: r.describe() for col, r in resolved.items()}


@dataclass(frozen=True)
class ResolvedColumn:
    category: str
    path: tuple[str, ...]
    parse: Parse = "auto"

    def describe(self) -> str:
        target = ".".join((self.category, *self.path))
        return target if self.parse == "auto" else f"{target} ({self.parse})"


def _resolve(spec: ColumnMapping, header: tuple[str, ...]) -> dict[str, ResolvedColumn]:
    """Each column's category and path, given every column of the record."""
    targets: dict[str, tuple[str, tuple[str, ...], Parse]] = {}
    for column in header:
        rule = spec.columns.get(column)
        if rule is not None:
            head, _, rest = rule.to.partition(".")
            targets[column] = (head, tuple(rest.split(".")) if rest else (), rule.parse)
        elif spec.id_field and column == spec.id_field:
            targets[column] = ("id", (), "auto")
        elif column in _SELF_MAPPED:
            targets[column] = (column, (), "auto")
        elif column in BRAINTRUST_SET_FIELDS:
            targets[column] = ("ignore", (), "auto")
        elif "." in column and column.split(".", 1)[0] in ("input", "expected", "metadata", "origin"):
            head, rest = column.split(".", 1)
            targets[column] = (head, tuple(rest.split(".")), "auto")
        else:
            targets[column] = ("input", (), "auto")
    # A category with several whole-value columns becomes an object keyed by column name; metadata
    # is always an object, so a lone metadata column other than `metadata` itself is keyed too.
    whole: dict[str, list[str]] = {}
    for column, (category, path, _) in targets.items():
        if not path and category not in ("ignore", "id", "tags"):
            whole.setdefault(category, []).append(column)
    resolved: dict[str, ResolvedColumn] = {}
    for column, (category, path, parse) in targets.items():
        if not path and category in whole:
            shared = len(whole[category]) > 1 or any(
                c != column and targets[c][0] == category for c in targets
            )
            if shared or (category == "metadata" and column != "metadata"):
                path = (column,)
        resolved[column] = ResolvedColumn(category, path, parse)
    return resolved


class RecordMapper:
    """Maps records to dataset rows; remembers which columns it saw (for unknown-column errors)."""

    def __init__(self, spec: ColumnMapping):
        self.spec = spec
        self._cache: dict[tuple[str, ...], dict[str, ResolvedColumn]] = {}
        self._seen: set[str] = set()
        self._header: tuple[str, ...] | None = None

    def columns_for(self, header: Iterable[str]) -> dict[str, ResolvedColumn]:
        key = tuple(header)
        resolved = self._cache.get(key)
        if resolved is None:
            resolved = self._cache[key] = _resolve(self.spec, key)
            self._seen.update(key)
        return resolved

    @property
    def seen_columns(self) -> list[str]:
        """Every column of every record mapped so far, sorted."""
        return sorted(self._seen)

    def check_columns_seen(self, where: str, header: Iterable[str] | None = None) -> None:
        """Every column the mapping names exists (in ``header``, else in some record seen so far)."""
        seen = set(header) if header is not None else self._seen
        named = list(self.spec.columns)
        if self.spec.id_field and "." not in self.spec.id_field:
            named.append(self.spec.id_field)
        missing = [column for column in named if column not in seen]
        if missing:
            known = ", ".join(sorted(seen)) or "(none)"
            raise MappingError(
                where, f"the mapping names column(s) {', '.join(map(repr, missing))} that the file does not have",
                f"use the file's column names: {known}",
            )

    def map(self, record: Record) -> dict[str, Any]:
        """One dataset row (fields absent when empty). Raises :class:`MappingError` on a bad cell."""
        if record.header is not None and record.header is not self._header:
            self._header = record.header
            self._seen.update(record.header)
        row: dict[str, Any] = {}
        tags: list[str] = []
        # Resolve against every column of the file when known (CSV), so an empty cell never changes
        # the shape of the row ("several columns make an object" must not depend on filled cells).
        for column, target in self.columns_for(record.header or record.values).items():
            if target.category == "ignore" or column not in record.values:
                continue
            value = record.values[column]
            if record.cells_are_text or isinstance(value, str):
                value = self._parse(value, target, column, record)
                if value is None:
                    continue
            if target.category == "tags":
                tags.extend(t for t in self._tags(value, column, record) if t not in tags)
            elif target.category == "id":
                row["id"] = value if isinstance(value, str) else json.dumps(value)
            elif not target.path:
                row[target.category] = value
            else:
                self._put(row, target.category, target.path, value, column, record)
        if self.spec.id_field and "." in self.spec.id_field and self.spec.id_field not in record.values:
            found = _dig(record.values, self.spec.id_field)
            if found is not None:
                row["id"] = found if isinstance(found, str) else json.dumps(found)
        if tags:
            row["tags"] = tags
        if self.spec.metadata:
            metadata = row.get("metadata")
            if metadata is not None and not isinstance(metadata, dict):
                raise MappingError(record.where, "the metadata column is not an object", "map an object-valued column to metadata")
            row["metadata"] = {**self.spec.metadata, **(metadata or {})}
        elif "metadata" in row and not isinstance(row["metadata"], dict):
            raise MappingError(
                f"{record.where}, column 'metadata'", f"metadata must be an object, got {type(row['metadata']).__name__}",
                "write metadata as a JSON object, or map the column to metadata under its own key with --metadata",
            )
        return row

    def _parse(self, value: Any, target: ResolvedColumn, column: str, record: Record) -> Any:
        if not isinstance(value, str):
            return value
        kind = target.parse
        text = value.strip()
        try:
            if kind == "string":
                return value
            if kind == "number":
                if not text:
                    return None
                number = float(text)
                return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number
            if kind == "bool":
                if not text:
                    return None
                lowered = text.lower()
                if lowered in _TRUE or lowered in _FALSE:
                    return lowered in _TRUE
                raise ValueError(f"{value!r} is not a boolean")
            if kind == "json":
                return json.loads(value) if text else None
        except ValueError as exc:
            raise MappingError(
                f"{record.where}, column {column!r}", f"cannot parse {value!r} as {kind} ({exc})",
                f"fix the cell, or change the column's parse rule (now {kind})",
            ) from None
        if record.cells_are_text and text[:1] in ("{", "[") and text[-1:] in ("}", "]"):
            try:
                return json.loads(text)
            except ValueError:
                return value  # prose that merely starts with a bracket stays text
        return value

    def _tags(self, value: Any, column: str, record: Record) -> list[str]:
        if isinstance(value, list):
            items = value
        elif isinstance(value, str):
            items = [part.strip() for part in value.split(self.spec.tag_delimiter)]
        else:
            items = [value]
        bad = [item for item in items if not isinstance(item, (str, int, float)) or isinstance(item, bool)]
        if bad:
            raise MappingError(
                f"{record.where}, column {column!r}", f"tags must be strings, got {bad[0]!r}",
                "write tags as a JSON array of strings or a comma-separated list",
            )
        return [str(item) for item in items if str(item)]

    def _put(self, row: dict[str, Any], category: str, path: tuple[str, ...], value: Any, column: str, record: Record) -> None:
        node = row.setdefault(category, {})
        if not isinstance(node, dict):
            raise MappingError(
                f"{record.where}, column {column!r}", f"{category} already holds a {type(node).__name__} from another column",
                f"map the columns of {category} either whole or by key (e.g. {category}.{path[0]}), not both",
            )
        for key in path[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise MappingError(f"{record.where}, column {column!r}", f"{category}.{key} is not an object", "rename the dotted headers so they nest")
            node = child
        node[path[-1]] = value


def _dig(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for key in dotted.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node
