"""Bring a declared ``DatasetFile``'s dataset in line with its file: schemas first, then the upload.

    sync_dataset_file(client, spec, quarantine_path=None) -> UploadResult

The declared schemas are enforced on this upload's rows (over the dataset's stored ones), and
stored on the dataset (through :func:`catalog.set_schema`, only the fields that differ) once the
upload succeeded, so a bad file creates nothing, not even an empty dataset. Everything else is
:func:`upload.upload_file`: rows that fail an enforced schema are quarantined, and above
``max_invalid_rows`` nothing is written (:class:`~.errors.SchemaInvalidError`).
"""

from __future__ import annotations

from pathlib import Path

from ..client import BraintrustClient
from ..engine.push import resolve_target
from .catalog import set_schema, show_schemas
from .declaration import DatasetFileSpec
from .upload import UploadResult, upload_file

__all__ = ["apply_schemas", "sync_dataset_file"]


def apply_schemas(client: BraintrustClient, spec: DatasetFileSpec) -> list[str]:
    """Store the declared schemas that differ from the dataset's; the fields written."""
    if not spec.schemas:
        return []
    resolve_target(client, spec.target)  # an empty file's upload may not have created it
    stored = show_schemas(client, spec.target)
    changed = [field for field, schema in spec.schemas.items() if stored.get(field) != schema]
    for field in changed:
        set_schema(client, spec.target, field, spec.schemas[field])
    return changed


def sync_dataset_file(client: BraintrustClient, spec: DatasetFileSpec, quarantine_path: Path | None = None) -> UploadResult:
    options = spec.upload_options(quarantine_path)
    options.schemas = spec.schemas
    result = upload_file(client, spec.path, spec.target, options)
    apply_schemas(client, spec)
    return result
