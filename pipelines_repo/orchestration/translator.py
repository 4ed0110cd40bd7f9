"""Spec -> Dagster names: asset keys, groups, descriptions and metadata (dagster-dlt/sling style).

One pipeline compiles to::

    braintrust/<project>/logs                      external, shared by every pipeline reading it
      -> <pipeline>/pulled_refs -> <pipeline>/transformed_rows -> <pipeline>/dataset_version
      -> braintrust/<project>/datasets/<dataset>   external, deps = every pipeline feeding it

A ``DatasetFile`` declaration compiles to::

    files/<name>                                   external: the data file (observed by its sensor)
      -> <name>/dataset_version                    the upload, unpartitioned
      -> braintrust/<project>/datasets/<dataset>   external, shared like a pipeline's target

Key components are Braintrust names made safe for Dagster (:func:`sanitize_name`): lower case,
every run of characters outside ``[a-z0-9_]`` becomes one ``_`` (``"Customer Support"`` ->
``customer_support``, ``"support-cases"`` -> ``support_cases``). Two different names can map to
one component; the compiler detects that and names both pipelines (a ``PipelineCompileError``,
reported like a broken file: see ``compiler.py``).

Subclass :class:`BraintrustTranslator` and override ``get_*`` to change keys, groups, tags or
descriptions; the compiler calls nothing else.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

import dagster as dg

from ..datasets.declaration import DatasetFileSpec
from ..engine.spec import PipelineSpec

__all__ = [
    "KIND",
    "STAGES",
    "BraintrustTranslator",
    "ExternalName",
    "Stage",
    "sanitize_name",
]

Stage = Literal["pulled_refs", "transformed_rows", "dataset_version"]
STAGES: tuple[Stage, ...] = ("pulled_refs", "transformed_rows", "dataset_version")
KIND = "braintrust"

_UNSAFE = re.compile(r"[^a-z0-9_]+")

# Metadata keys under which the compiled specs carry what the assets need at run time.
META_PIPELINE = "braintrust/pipeline"
META_FILE = "braintrust/pipeline_file"
FILES_GROUP = "dataset_files"


def sanitize_name(name: str) -> str:
    """A Braintrust name as one Dagster key component / op-name fragment (``[a-z0-9_]+``)."""
    text = _UNSAFE.sub("_", name.strip().lower()).strip("_")
    if not text:
        text = "_"
    if text[0].isdigit():
        text = f"_{text}"
    return text


def _project_label(project_name: str | None, project_id: str | None) -> str:
    return project_name or project_id or "unnamed_project"


@dataclass(frozen=True)
class ExternalName:
    """An external Braintrust object and the Braintrust names it stands for (collision checks)."""

    key: dg.AssetKey
    label: str  # e.g. "project 'Customer Support'"


_STAGE_TEXT = {
    "pulled_refs": (
        "Refs (and span payloads) of the source spans in each time window, from one discovery "
        "sweep per run; staged as bt-sync `pulled.jsonl` + `pulled.spans.jsonl`."
    ),
    "transformed_rows": (
        "Dataset rows from the pipeline's transform for each window; staged as bt-sync "
        "`transformed.jsonl` (+ `errors.jsonl` for skipped refs). Checked before the push."
    ),
    "dataset_version": (
        "The window's rows upserted into the target dataset (deterministic ids: a re-run "
        "replaces, never duplicates). Value: the dataset version (max `_xact_id`) after the push."
    ),
}


class BraintrustTranslator:
    """Decides keys, groups, descriptions, tags and metadata for compiled pipelines."""

    # -- names ----------------------------------------------------------------------------
    def get_pipeline_prefix(self, spec: PipelineSpec) -> str:
        """First key component of the pipeline's assets (also its group and op/job names)."""
        return sanitize_name(spec.name)

    def get_group_name(self, spec: PipelineSpec) -> str:
        return self.get_pipeline_prefix(spec)

    def get_asset_key(self, spec: PipelineSpec, stage: Stage) -> dg.AssetKey:
        return dg.AssetKey([self.get_pipeline_prefix(spec), stage])

    def get_source(self, spec: PipelineSpec) -> ExternalName:
        src = spec.source
        label = _project_label(src.project_name, src.project_id)
        return ExternalName(
            dg.AssetKey(["braintrust", sanitize_name(label), "logs"]),
            f"project {label!r}" + (f" (org {src.org_name!r})" if src.org_name else ""),
        )

    def get_target(self, spec: PipelineSpec) -> ExternalName:
        tgt = spec.target
        project = _project_label(tgt.project_name, tgt.project_id)
        return ExternalName(
            dg.AssetKey(["braintrust", sanitize_name(project), "datasets", sanitize_name(tgt.dataset_name)]),
            f"dataset {tgt.dataset_name!r} in project {project!r}"
            + (f" (org {tgt.org_name!r})" if tgt.org_name else ""),
        )

    def get_job_name(self, spec: PipelineSpec) -> str:
        return f"{self.get_pipeline_prefix(spec)}_job"

    def get_schedule_name(self, spec: PipelineSpec) -> str:
        return f"{self.get_pipeline_prefix(spec)}_nightly"

    def get_sensor_name(self, spec: PipelineSpec) -> str:
        return f"{self.get_pipeline_prefix(spec)}_late_data"

    # -- descriptions and metadata ----------------------------------------------------------
    def get_pipeline_metadata(self, spec: PipelineSpec) -> dict[str, Any]:
        src, tgt, opts = spec.source, spec.target, spec.options
        meta: dict[str, Any] = {
            META_PIPELINE: spec.name,
            "source_project": _project_label(src.project_name, src.project_id),
            "source_filter": src.filter or "(none: every span)",
            "scope": src.scope,
            "target": f"{_project_label(tgt.project_name, tgt.project_id)} / {tgt.dataset_name}",
            "partitions": f"{opts.partitions} from {opts.start_date.isoformat()} ({opts.timezone})",
            "on_error": opts.on_error,
            "max_error_rate": float(opts.max_error_rate),
            "lookback_days": int(opts.lookback_days),
        }
        if spec.file is not None:
            meta[META_FILE] = dg.MetadataValue.path(os.fspath(spec.file))
        return meta

    def get_tags(self, spec: PipelineSpec, stage: Stage) -> dict[str, str]:
        return {"braintrust/scope": spec.source.scope}

    def get_description(self, spec: PipelineSpec, stage: Stage) -> str:
        src, tgt = spec.source, spec.target
        where = f"project {_project_label(src.project_name, src.project_id)!r}"
        what = f"filter `{src.filter}`" if src.filter else "no filter (every span)"
        file = f" Declared in `{spec.file}`." if spec.file is not None else ""
        return (
            f"Pipeline `{spec.name}` ({src.scope} scope): {where}, {what} -> dataset "
            f"{tgt.dataset_name!r}.{file}\n\n{_STAGE_TEXT[stage]}"
        )

    def get_asset_spec(self, spec: PipelineSpec, stage: Stage, *, partitions_def: dg.PartitionsDefinition) -> dg.AssetSpec:
        """The spec of one stage asset (the compiler adds deps and checks)."""
        return dg.AssetSpec(
            key=self.get_asset_key(spec, stage),
            description=self.get_description(spec, stage),
            group_name=self.get_group_name(spec),
            code_version=spec.code_version,
            kinds={KIND},
            tags=self.get_tags(spec, stage),
            metadata=self.get_pipeline_metadata(spec),
            partitions_def=partitions_def,
        )

    def get_source_spec(self, specs: list[PipelineSpec]) -> dg.AssetSpec:
        """The external source-logs asset shared by ``specs`` (all read one project)."""
        first = specs[0]
        src = first.source
        names = ", ".join(f"`{s.name}`" for s in specs)
        return dg.AssetSpec(
            key=self.get_source(first).key,
            description=(
                f"Logs (spans and traces) of Braintrust project "
                f"{_project_label(src.project_name, src.project_id)!r}; external, written by the "
                f"application. Read by {names}. The late-data sensors record an observation per "
                "window in which spans were added or changed."
            ),
            group_name="braintrust_sources",
            kinds={KIND},
            metadata={
                "project": _project_label(src.project_name, src.project_id),
                "read_by": ", ".join(s.name for s in specs),
            },
        )

    def get_target_spec(self, specs: list[PipelineSpec]) -> dg.AssetSpec:
        """The external dataset asset fed by ``specs`` (deps: each one's ``dataset_version``)."""
        first = specs[0]
        tgt = first.target
        names = ", ".join(f"`{s.name}`" for s in specs)
        return dg.AssetSpec(
            key=self.get_target(first).key,
            deps=[self.get_asset_key(s, "dataset_version") for s in specs],
            description=(
                f"Braintrust dataset {tgt.dataset_name!r}; external. Rows upserted by {names}."
            ),
            group_name="braintrust_datasets",
            kinds={KIND},
            metadata={"dataset": tgt.dataset_name, "written_by": ", ".join(s.name for s in specs)},
        )

    # -- dataset files (DatasetFile declarations) -------------------------------------------
    def get_file_prefix(self, spec: DatasetFileSpec) -> str:
        """First key component of the file's dataset asset, its group and its op/sensor names."""
        return sanitize_name(spec.name)

    def get_file_asset_key(self, spec: DatasetFileSpec) -> dg.AssetKey:
        return dg.AssetKey([self.get_file_prefix(spec), "dataset_version"])

    def get_file_source_key(self, spec: DatasetFileSpec) -> dg.AssetKey:
        return dg.AssetKey(["files", self.get_file_prefix(spec)])

    def get_file_sensor_name(self, spec: DatasetFileSpec) -> str:
        return f"{self.get_file_prefix(spec)}_file_changed"

    def get_file_metadata(self, spec: DatasetFileSpec) -> dict[str, Any]:
        tgt = spec.target
        meta: dict[str, Any] = {
            META_PIPELINE: spec.name,
            "data_file": dg.MetadataValue.path(os.fspath(spec.path)),
            "target": f"{_project_label(tgt.project_name, tgt.project_id)} / {tgt.dataset_name}",
            "mode": spec.mode,
            "format": spec.fmt,
            "max_invalid_rows": spec.max_invalid_rows,
            "schema_fields": ", ".join(sorted(spec.schemas or {})) or "(none)",
        }
        if spec.file is not None:
            meta[META_FILE] = dg.MetadataValue.path(os.fspath(spec.file))
        return meta

    def get_file_asset_spec(self, spec: DatasetFileSpec) -> dg.AssetSpec:
        tgt = spec.target
        file = f" Declared in `{spec.file}`." if spec.file is not None else ""
        return dg.AssetSpec(
            key=self.get_file_asset_key(spec),
            deps=[self.get_file_source_key(spec)],
            description=(
                f"Dataset file `{spec.name}`: `{spec.path}` uploaded into dataset {tgt.dataset_name!r} "
                f"({spec.mode}; ids from the mapping or the input, so an unchanged file writes nothing).{file}"
            ),
            group_name=self.get_file_prefix(spec),
            code_version=spec.code_version,
            kinds={KIND},
            tags={"braintrust/source": "file"},
            metadata=self.get_file_metadata(spec),
        )

    def get_file_source_spec(self, spec: DatasetFileSpec) -> dg.AssetSpec:
        return dg.AssetSpec(
            key=self.get_file_source_key(spec),
            description=(
                f"The data file `{spec.path}` of dataset file `{spec.name}`; external, edited by hand. "
                f"The `{self.get_file_sensor_name(spec)}` sensor records an observation when its content changes."
            ),
            group_name=FILES_GROUP,
            metadata={"path": dg.MetadataValue.path(os.fspath(spec.path)), "format": spec.fmt},
        )
