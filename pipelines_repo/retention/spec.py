"""``RetentionPolicy(...)``: how long a project's logs (its datasets' rows, its experiments) are kept.

    RetentionPolicy(name="logs-30d", project="Customer Support",   # or "*": every project, new ones too
                    object_type="project_logs",                     # or "dataset" (rows; the dataset stays),
                                                                    # or "experiment" (whole, by creation time)
                    retention_days=30,                              # Braintrust's fields
                    guard=True,                                     # hold back days not harvested yet
                    archive={"path": "archive/", "format": "jsonl"},  # export before deleting
                    apply="delete")                                 # or "braintrust" (its automation)

A file in the pipelines folder calls it at module level; the loader collects it like a
``DatasetFile``. Checked now, offline: name, object type, ``retention_days`` (an integer >= 0),
archive path and format, apply mode. Whether ``project`` exists can only be known at run time:
a run for an unknown project fails naming it. A relative archive path resolves against the
declaring file; URLs (``s3://``, ``gs://``, ``az://``, ``file://``) are kept as written.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from ..engine.declarations import DeclarationError, declaring_file, register

__all__ = ["ALL_PROJECTS", "ArchiveSpec", "RetentionPolicy", "RetentionPolicySpec", "build_policy"]

ALL_PROJECTS = "*"
OBJECT_TYPES = ("project_logs", "dataset", "experiment")
APPLY_MODES = ("delete", "braintrust")
ARCHIVE_FORMATS = ("jsonl", "json", "csv", "parquet")
ObjectType = Literal["project_logs", "dataset", "experiment"]
ApplyMode = Literal["delete", "braintrust"]


class ArchiveSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    path: str  # an absolute folder, or an object-store URL
    format: str = "jsonl"

    @property
    def is_local(self) -> bool:
        return "://" not in self.path or self.path.startswith("file://")

    def local_root(self) -> Path:
        return Path(self.path.removeprefix("file://"))


class RetentionPolicySpec(BaseModel):
    """A validated ``RetentionPolicy`` declaration."""

    model_config = ConfigDict(frozen=True)

    name: str
    project: str
    object_type: ObjectType = "project_logs"
    retention_days: int
    guard: bool = True
    archive: ArchiveSpec | None = None
    apply: ApplyMode = "delete"
    file: Path | None = None

    @property
    def all_projects(self) -> bool:
        return self.project == ALL_PROJECTS

    def braintrust_config(self) -> dict[str, Any]:
        """The ``config`` of Braintrust's retention automation."""
        return {"event_type": "retention", "object_type": self.object_type, "retention_days": self.retention_days}


def _fail(cause: str, fix: str, declared_in: Path | None) -> DeclarationError:
    return DeclarationError(cause, path=declared_in, fix=fix)


def _archive(value: Any, label: str, base: Path | None) -> ArchiveSpec | None:
    if value is None:
        return None
    fix = "pass archive={'path': 'archive/', 'format': 'jsonl'} (format: " + ", ".join(ARCHIVE_FORMATS) + ")"
    if not isinstance(value, Mapping) or not isinstance(value.get("path"), (str, Path)) or not str(value["path"]).strip():
        raise _fail(f"{label}: archive must be a dict with a non-empty 'path'", fix, base)
    unknown = sorted(set(value) - {"path", "format"})
    if unknown:
        raise _fail(f"{label}: unknown archive option(s) {', '.join(map(repr, unknown))}", fix, base)
    fmt = value.get("format", "jsonl")
    if fmt not in ARCHIVE_FORMATS:
        raise _fail(f"{label}: unknown archive format {fmt!r}", fix, base)
    path = str(value["path"]).strip()
    if "://" not in path:
        resolved = Path(path).expanduser()
        if not resolved.is_absolute() and base is not None:
            resolved = base.parent / resolved
        path = str(resolved.resolve())
    return ArchiveSpec(path=path, format=fmt)


def build_policy(
    name: str, *, project: str, object_type: str = "project_logs", retention_days: int, guard: bool = True,
    archive: Mapping[str, Any] | None = None, apply: str = "delete", declared_in: Path | None = None,
) -> RetentionPolicySpec:
    """Validate one declaration (see the module doc); raises :class:`DeclarationError`."""
    if not isinstance(name, str) or not name.strip():
        raise _fail("RetentionPolicy(): name is required", "pass name='...'", declared_in)
    label = f"RetentionPolicy {name!r}"
    if not isinstance(project, str) or not project.strip():
        raise _fail(f"{label}: project is required", "pass project='<project name>' or project='*' (every project)", declared_in)
    if object_type not in OBJECT_TYPES:
        raise _fail(f"{label}: unknown object_type {object_type!r}", "use object_type='project_logs', 'dataset' or 'experiment'", declared_in)
    if not isinstance(retention_days, int) or isinstance(retention_days, bool) or retention_days < 0:
        raise _fail(f"{label}: retention_days must be an integer >= 0 (got {retention_days!r})", "pass e.g. retention_days=30", declared_in)
    if not isinstance(guard, bool):
        raise _fail(f"{label}: guard must be True or False (got {guard!r})", "pass guard=True", declared_in)
    if apply not in APPLY_MODES:
        raise _fail(f"{label}: unknown apply mode {apply!r}", "use apply='delete' (through the API) or 'braintrust' (its automation)", declared_in)
    spec_archive = _archive(archive, label, declared_in)
    if spec_archive is not None and apply == "braintrust":
        raise _fail(f"{label}: archive needs apply='delete' (with apply='braintrust' Braintrust deletes on its own, unarchived)",
                    "drop archive=, or use apply='delete'", declared_in)
    return RetentionPolicySpec(
        name=name.strip(), project=project.strip(), object_type=object_type, retention_days=retention_days,  # type: ignore[arg-type]
        guard=guard, archive=spec_archive, apply=apply, file=declared_in,  # type: ignore[arg-type]
    )


def RetentionPolicy(  # noqa: N802 - a declaration, named like DatasetPipeline
    name: str,
    *,
    project: str,
    object_type: ObjectType = "project_logs",
    retention_days: int,
    guard: bool = True,
    archive: Mapping[str, Any] | None = None,
    apply: ApplyMode = "delete",
) -> RetentionPolicySpec:
    """Declare a retention policy (see the module doc); registers it for the loader."""
    spec = build_policy(
        name, project=project, object_type=object_type, retention_days=retention_days, guard=guard,
        archive=archive, apply=apply, declared_in=declaring_file(2),
    )
    register(spec)
    return spec
