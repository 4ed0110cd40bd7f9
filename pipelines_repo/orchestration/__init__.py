"""The Dagster compiler: pipeline specs -> partitioned assets, checks, schedules, sensors.

One module per concern, data flowing spec -> translator -> assets -> resource (dagster-dlt style):

    translator.py   names: asset keys, groups, descriptions, metadata (sanitized Braintrust names)
    partitions.py   pipeline options -> TimeWindowPartitionsDefinition; keys <-> engine windows
    resource.py     BraintrustResource (ConfigurableResource over the engine's client)
    staging.py      per-partition bt-sync files over the engine stages (pull sweep, transform, push)
    assets.py       the three assets of a pipeline (single-run backfills, pool braintrust_api)
    checks.py       blocking checks on transformed_rows before the push
    automation.py   job, schedule, late-data sensor
    compiler.py     discover + compile + bind -> Definitions; the broken-file policy
    sqlite_storage.py  the instance storage dagster_home/dagster.yaml selects (Dagster's SQLite,
                    engines and connections kept open between events)

``definitions.py`` at the repository root is ``defs = build_definitions()``.
"""

from .compiler import (
    PipelineCompileError,
    PipelineDefinitionsError,
    build_definitions,
    compile_pipelines,
    default_pipelines_dir,
)
from .resource import BraintrustResource
from .translator import BraintrustTranslator, sanitize_name

__all__ = [
    "BraintrustResource",
    "BraintrustTranslator",
    "PipelineCompileError",
    "PipelineDefinitionsError",
    "build_definitions",
    "compile_pipelines",
    "default_pipelines_dir",
    "sanitize_name",
]
