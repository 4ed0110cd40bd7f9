"""Pipeline files -> one ``dagster.Definitions`` (offline: no network call while loading).

``build_definitions()`` discovers every pipeline file in ``$PIPELINES_DIR`` (default
``pipelines_repo/pipelines/``) with the engine loader and compiles each pipeline into three
partitioned assets, a job, a schedule and a late-data sensor (``assets.py``, ``automation.py``),
plus the shared external assets ``braintrust/<project>/logs`` and
``braintrust/<project>/datasets/<dataset>`` (deduplicated; a dataset fed by several pipelines
depends on each one's ``dataset_version``). ``DatasetFile(...)`` declarations in the same files
compile to ``<name>/dataset_version`` over the external ``files/<name>``, with a ``schema_valid``
check and a file-change sensor (``dataset_files.py``). ``ExportAutomation(...)`` declarations
compile to ``<name>/export`` (partitioned by export window) with an ``export_destination_ok`` check,
a job and the ``<name>_export`` schedule (``exports.py``). The ``braintrust`` resource is bound once, here.

**Broken pipelines: load the rest and report the broken one.** A file that fails to load (syntax
error, import error, exception at import, invalid source/target/options, a name already used by
another file), or a pipeline whose names collide with another's after sanitizing (asset keys /
op names), does not take the code location down. Instead, for each problem:

- an error is logged (``pipelines_repo.orchestration`` logger, level ERROR) naming the file,
  the cause and the fix;
- a non-materializable asset ``_errors/<file stem>`` in group ``_errors`` shows up in the UI,
  its description naming the file, the cause and the fix;
- the sensor ``broken_pipeline_files`` (RUNNING) fails every tick with the same messages, so the
  Automation page shows it red until the file is fixed.

Set ``BT_DAGSTER_STRICT=1`` (e.g. in CI) to raise :class:`PipelineDefinitionsError` instead,
failing the load with every file and cause.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)

from ..engine.errors import PipelineError
from ..datasets.declaration import DatasetFileSpec
from ..export.automation import ExportAutomationSpec
from ..engine.loader import PipelineLoadError, discover_declarations
from ..engine.spec import PipelineSpec
from .assets import build_pipeline_assets
from .automation import build_job, build_late_data_sensor, build_schedule
from .dataset_exports import build_dataset_export_asset
from .dataset_files import build_dataset_file_asset, build_file_sensor
from .exports import build_export_asset, build_export_check, build_export_schedule, export_partitions_def, export_prefix, export_source_key
from .evals import compile_evals
from .partitions import partitions_def_for
from .retention import build_retention, retention_prefix
from ..retention.spec import RetentionPolicySpec
from .resource import BraintrustResource, resource_from_env
from .translator import BraintrustTranslator, sanitize_name

__all__ = [
    "BROKEN_FILES_SENSOR",
    "ERRORS_GROUP",
    "STRICT_ENV",
    "CompiledPipelines",
    "PipelineCompileError",
    "PipelineDefinitionsError",
    "build_definitions",
    "compile_pipelines",
    "default_pipelines_dir",
]

log = logging.getLogger("pipelines_repo.orchestration")

PIPELINES_DIR_ENV = "PIPELINES_DIR"
STRICT_ENV = "BT_DAGSTER_STRICT"
ERRORS_GROUP = "_errors"
BROKEN_FILES_SENSOR = "broken_pipeline_files"


class PipelineCompileError(PipelineError, ValueError):
    """A pipeline loaded but cannot be compiled next to the others (names collide)."""


class PipelineDefinitionsError(PipelineError, RuntimeError):
    """Strict mode: some pipeline files are broken (the message lists each file and cause)."""


#: A broken file or pipeline: a :class:`PipelineLoadError` or a :class:`PipelineCompileError`.
Problem = PipelineError


def default_pipelines_dir() -> Path:
    value = os.environ.get(PIPELINES_DIR_ENV, "").strip()
    if value:
        return Path(value).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "pipelines"


@dataclass
class CompiledPipelines:
    specs: list[PipelineSpec] = field(default_factory=list)
    files: list[DatasetFileSpec] = field(default_factory=list)
    exports: list[ExportAutomationSpec] = field(default_factory=list)
    policies: list[RetentionPolicySpec] = field(default_factory=list)
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = field(default_factory=list)
    checks: list[dg.AssetChecksDefinition] = field(default_factory=list)
    jobs: list[UnresolvedAssetJobDefinition] = field(default_factory=list)
    schedules: list[dg.ScheduleDefinition] = field(default_factory=list)
    sensors: list[dg.SensorDefinition] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def _check_names(specs: Sequence[PipelineSpec], translator: BraintrustTranslator) -> tuple[list[PipelineSpec], list[PipelineCompileError]]:
    """Drop (and report) pipelines whose prefix or external keys collide with an earlier one's."""
    kept: list[PipelineSpec] = []
    problems: list[PipelineCompileError] = []
    prefixes: dict[str, PipelineSpec] = {}
    externals: dict[dg.AssetKey, tuple[str, PipelineSpec]] = {}
    for spec in specs:
        prefix = translator.get_pipeline_prefix(spec)
        other = prefixes.get(prefix)
        if other is not None:
            problems.append(
                PipelineCompileError(
                    f"pipeline {spec.name!r} and pipeline {other.name!r} (in {other.file}) both compile to the "
                    f"Dagster name {prefix!r} (asset keys {prefix}/..., ops {prefix}__...), so {spec.name!r} was not loaded.",
                    path=spec.file,
                    fix="Rename one of the two pipelines (names differing only in case or punctuation collide).",
                )
            )
            continue
        clash = None
        for ext in (translator.get_source(spec), translator.get_target(spec)):
            seen = externals.get(ext.key)
            if seen is not None and seen[0] != ext.label:
                clash = (ext, seen)
                break
        if clash is not None:
            ext, (label, owner) = clash
            problems.append(
                PipelineCompileError(
                    f"pipeline {spec.name!r} uses {ext.label} and pipeline {owner.name!r} (in {owner.file}) uses "
                    f"{label}; both map to the asset key {ext.key.to_user_string()!r}, so {spec.name!r} was not loaded.",
                    path=spec.file,
                    fix="Rename one of the Braintrust projects/datasets (names differing only in case or punctuation collide).",
                )
            )
            continue
        prefixes[prefix] = spec
        for ext in (translator.get_source(spec), translator.get_target(spec)):
            externals.setdefault(ext.key, (ext.label, spec))
        kept.append(spec)
    return kept, problems


def _check_file_names(
    files: Sequence[DatasetFileSpec], pipelines: Sequence[PipelineSpec], translator: BraintrustTranslator
) -> tuple[list[DatasetFileSpec], list[PipelineCompileError]]:
    """Drop (and report) dataset files whose prefix, or target key, collides with a pipeline's or
    an earlier file's."""
    owners: dict[str, str] = {translator.get_pipeline_prefix(p): f"pipeline {p.name!r} (in {p.file})" for p in pipelines}
    targets = {translator.get_target(p).key: translator.get_target(p).label for p in pipelines}
    kept: list[DatasetFileSpec] = []
    problems: list[PipelineCompileError] = []
    for spec in files:
        prefix = translator.get_file_prefix(spec)
        target = translator.get_target(spec)  # type: ignore[arg-type] - reads only .target
        if prefix in owners:
            cause = f"dataset file {spec.name!r} and {owners[prefix]} both compile to the Dagster name {prefix!r}"
        elif targets.get(target.key, target.label) != target.label:
            cause = f"dataset file {spec.name!r} writes {target.label}, which maps to the key of {targets[target.key]}"
        else:
            owners[prefix] = f"dataset file {spec.name!r} (in {spec.file})"
            targets[target.key] = target.label
            kept.append(spec)
            continue
        problems.append(
            PipelineCompileError(
                f"{cause}, so {spec.name!r} was not loaded.", path=spec.file,
                fix="Rename one of them (names differing only in case or punctuation collide).",
            )
        )
    return kept, problems


def _compile_files(files: Sequence[DatasetFileSpec], translator: BraintrustTranslator, out: CompiledPipelines) -> None:
    """Each dataset file's external file asset, upload asset and sensor (a failure is reported)."""
    for spec in files:
        try:
            asset = build_dataset_file_asset(spec, translator)
            sensor = build_file_sensor(spec, translator)
            extra = [build_dataset_export_asset(
                translator.get_file_prefix(spec), translator.get_file_asset_key(spec), spec.target, spec.export,
                name=spec.name, declared_in=spec.file,
            )] if spec.export else []
        except Exception as exc:  # noqa: BLE001 - reported like a broken file
            out.problems.append(
                PipelineCompileError(
                    f"dataset file {spec.name!r} could not be compiled: {type(exc).__name__}: {exc}.",
                    path=spec.file, fix="Check the DatasetFile(...) arguments.",
                )
            )
            continue
        out.files.append(spec)
        out.assets.extend([translator.get_file_source_spec(spec), asset, *extra])
        out.sensors.append(sensor)


def _compile_exports(exports: Sequence[ExportAutomationSpec], out: CompiledPipelines) -> None:
    """Each export automation's asset, check, job and schedule; a name taken by a pipeline or a
    dataset file, or a failure to compile, is reported like a broken file."""
    taken = {key.path[0] for a in out.assets for key in (a.keys if isinstance(a, dg.AssetsDefinition) else [a.key])}
    defined = {key for a in out.assets for key in (a.keys if isinstance(a, dg.AssetsDefinition) else [a.key])}
    for spec in exports:
        prefix = export_prefix(spec)
        if prefix in taken:
            out.problems.append(PipelineCompileError(
                f"export automation {spec.name!r} compiles to the Dagster name {prefix!r}, which another declaration uses, "
                f"so {spec.name!r} was not loaded.", path=spec.file,
                fix="Rename the automation (names differing only in case or punctuation collide)."))
            continue
        try:
            pdef = export_partitions_def(spec)
            asset, check = build_export_asset(spec, pdef), build_export_check(spec)
            job, schedule = build_export_schedule(spec, pdef)
        except Exception as exc:  # noqa: BLE001 - reported like a broken file
            out.problems.append(PipelineCompileError(
                f"export automation {spec.name!r} could not be compiled: {type(exc).__name__}: {exc}.",
                path=spec.file, fix="Check the ExportAutomation(...) arguments."))
            continue
        taken.add(prefix)
        source = export_source_key(spec)
        if source not in defined:  # the logs/dataset asset may already come from a pipeline
            defined.add(source)
            out.assets.append(dg.AssetSpec(key=source, group_name="braintrust_sources" if spec.kind != "dataset" else "braintrust_datasets",
                                           kinds={"braintrust"}, description=f"Braintrust {'dataset' if spec.kind == 'dataset' else 'logs'} "
                                           f"of project {spec.project!r}; external. Exported by `{spec.name}`."))
        out.exports.append(spec)
        out.assets.append(asset)
        out.checks.append(check)
        out.jobs.append(job)
        out.schedules.append(schedule)


def _compile_policies(policies: Sequence[RetentionPolicySpec], translator: BraintrustTranslator, out: CompiledPipelines) -> None:
    """Each retention policy's asset, job and schedule; a name clashing with a pipeline's or a
    dataset file's Dagster name is reported like a broken file."""
    taken = {translator.get_pipeline_prefix(p) for p in out.specs} | {translator.get_file_prefix(f) for f in out.files}
    for policy in policies:
        prefix = retention_prefix(policy)
        if prefix in taken:
            out.problems.append(PipelineCompileError(
                f"retention policy {policy.name!r} compiles to the Dagster name {prefix!r}, already used, so it was not loaded.",
                path=policy.file, fix="Rename the policy (names differing only in case or punctuation collide).",
            ))
            continue
        taken.add(prefix)
        asset, job, schedule = build_retention(policy, lambda: out.assets)
        out.policies.append(policy)
        out.assets.append(asset)
        out.jobs.append(job)
        out.schedules.append(schedule)


def _error_asset(problem: Problem, taken: set[str]) -> dg.AssetSpec:
    path = problem.path
    stem = sanitize_name(path.stem if path is not None else "pipelines")
    name, n = stem, 2
    while name in taken:
        name, n = f"{stem}_{n}", n + 1
    taken.add(name)
    kind = "could not be compiled" if isinstance(problem, PipelineCompileError) else "failed to load"
    metadata: dict[str, object] = {"error": str(problem), "cause": problem.cause, "fix": problem.fix or ""}
    if path is not None:
        metadata["file"] = dg.MetadataValue.path(os.fspath(path))
    return dg.AssetSpec(
        key=[ERRORS_GROUP, name],
        group_name=ERRORS_GROUP,
        description=f"BROKEN PIPELINE FILE `{path}` {kind}: {problem.cause}\n\nFix: {problem.fix or '-'}",
        metadata=metadata,
        tags={"braintrust/broken": "true"},
    )


def _broken_files_sensor(problems: Sequence[Problem]) -> dg.SensorDefinition:
    text = "\n".join(f"- {problem}" for problem in problems)

    @dg.sensor(
        name=BROKEN_FILES_SENSOR,
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Fails while pipeline files are broken:\n{text}",
    )
    def broken_pipeline_files(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        raise PipelineDefinitionsError(f"{len(problems)} pipeline file problem(s):\n{text}")

    return broken_pipeline_files


def compile_pipelines(
    specs: Sequence[PipelineSpec],
    *,
    load_errors: Sequence[PipelineLoadError] = (),
    translator: BraintrustTranslator | None = None,
    files: Sequence[DatasetFileSpec] = (),
    exports: Sequence[ExportAutomationSpec] = (),
    policies: Sequence[RetentionPolicySpec] = (),
) -> CompiledPipelines:
    """Compile loaded pipelines and dataset files (and report ``load_errors``); see the module doc."""
    translator = translator or BraintrustTranslator()
    kept, compile_errors = _check_names(specs, translator)
    kept_files, file_errors = _check_file_names(files, kept, translator)
    out = CompiledPipelines(specs=kept, problems=[*load_errors, *compile_errors, *file_errors])

    # Each pipeline on its own: one that cannot be compiled is reported, the others load.
    built: list[tuple[PipelineSpec, dg.TimeWindowPartitionsDefinition, list[dg.AssetsDefinition]]] = []
    for spec in kept:
        try:
            pdef = partitions_def_for(spec.options)
            built.append((spec, pdef, build_pipeline_assets(spec, translator, pdef)))
        except Exception as exc:  # noqa: BLE001 - reported like a broken file
            out.problems.append(
                PipelineCompileError(
                    f"pipeline {spec.name!r} could not be compiled: {type(exc).__name__}: {exc}.",
                    path=spec.file,
                    fix="Check the pipeline's orchestration options.",
                )
            )
    out.specs = [spec for spec, _, _ in built]
    pdefs = {spec.name: pdef for spec, pdef, _ in built}
    _compile_files(kept_files, translator, out)
    _compile_policies(policies, translator, out)

    by_source: dict[dg.AssetKey, list[PipelineSpec]] = {}
    by_target: dict[dg.AssetKey, list[PipelineSpec | DatasetFileSpec]] = {}
    for spec in out.specs:
        by_source.setdefault(translator.get_source(spec).key, []).append(spec)
    for writer in [*out.specs, *out.files]:
        by_target.setdefault(translator.get_target(writer).key, []).append(writer)  # type: ignore[arg-type]

    # Source logs are partitioned like their readers when they all agree (per-window lineage
    # and observations); otherwise unpartitioned.
    source_partitioned: dict[dg.AssetKey, bool] = {}
    for key, readers in by_source.items():
        first = pdefs[readers[0].name]
        same = all(pdefs[s.name] == first for s in readers)
        source_partitioned[key] = same
        source_spec = translator.get_source_spec(readers)
        out.assets.append(source_spec.replace_attributes(partitions_def=first) if same else source_spec)
    for writers in by_target.values():
        out.assets.append(translator.get_target_spec(writers))  # type: ignore[arg-type]

    for spec, pdef, assets in built:
        out.assets.extend(assets)
        if spec.options.export:
            out.assets.append(build_dataset_export_asset(
                translator.get_pipeline_prefix(spec), translator.get_asset_key(spec, "dataset_version"), spec.target,
                spec.options.export, name=spec.name, declared_in=spec.file,
            ))
        job = build_job(spec, translator)
        out.jobs.append(job)
        out.schedules.append(build_schedule(spec, translator, job))
        out.sensors.append(
            build_late_data_sensor(
                spec, translator, pdef, job, source_partitioned=source_partitioned[translator.get_source(spec).key]
            )
        )

    _compile_exports(exports, out)

    if out.problems:
        taken: set[str] = set()
        out.assets.extend(_error_asset(problem, taken) for problem in out.problems)
        out.sensors.append(_broken_files_sensor(out.problems))
    return out


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def build_definitions(
    pipelines_dir: str | os.PathLike[str] | None = None,
    *,
    strict: bool | None = None,
    translator: BraintrustTranslator | None = None,
    resource: BraintrustResource | None = None,
) -> dg.Definitions:
    """Discover, compile and bind: the ``Definitions`` that ``definitions.py`` exposes."""
    directory = Path(pipelines_dir) if pipelines_dir is not None else default_pipelines_dir()
    found = discover_declarations(directory)
    files = [d for d in found.declarations if isinstance(d, DatasetFileSpec)]
    exports = [d for d in found.declarations if isinstance(d, ExportAutomationSpec)]
    policies = [d for d in found.declarations if isinstance(d, RetentionPolicySpec)]
    compiled = compile_pipelines(found.pipelines, load_errors=found.errors, translator=translator, files=files,
                                 exports=exports, policies=policies)
    compile_evals(found.declarations, compiled, translator or BraintrustTranslator())  # `<eval>/experiment` assets
    if compiled.problems:
        strict = _strict() if strict is None else strict
        lines = "\n".join(f"  - {problem}" for problem in compiled.problems)
        message = f"{len(compiled.problems)} pipeline problem(s) in {directory}:\n{lines}"
        if strict:
            raise PipelineDefinitionsError(message)
        log.error(message + f"\nThe other pipelines were loaded; see the '{ERRORS_GROUP}' asset group.")
    log.info(
        "compiled %d pipeline(s), %d dataset file(s), %d export automation(s) and %d retention policy(ies) from %s: %s",
        len(compiled.specs), len(compiled.files), len(compiled.exports), len(compiled.policies), directory,
        ", ".join(spec.name for spec in [*compiled.specs, *compiled.files, *compiled.exports, *compiled.policies]) or "none",
    )
    return dg.Definitions(
        assets=compiled.assets,
        asset_checks=compiled.checks,
        jobs=compiled.jobs,
        schedules=compiled.schedules,
        sensors=compiled.sensors,
        resources={"braintrust": resource if resource is not None else resource_from_env()},
        # A pipeline's three steps form a chain, so separate step processes buy no parallelism and
        # each would pay ~2 s of imports (dagster + the pipeline files); steps run in the run worker.
        executor=dg.in_process_executor,
    )

