"""``<name>/dataset_export``: the dataset a pipeline or a ``DatasetFile`` writes, exported at its
latest version after each write (option ``export={"path": ..., "format": "jsonl"|"parquet"}``).

The dataset at version V goes to ``<path>/version=<V>/part-*.<ext>`` with a manifest and
``_SUCCESS`` (``export.snapshot``): the folder is named by the version, so a re-run of the same
version overwrites the same keys.
"""

# No `from __future__ import annotations`: Dagster reads the asset function's annotations at definition time.
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from ..engine.spec import TargetSpec
from .assets import POOL
from .resource import BraintrustResource

__all__ = ["build_dataset_export_asset"]


def build_dataset_export_asset(
    prefix: str, upstream: dg.AssetKey, target: TargetSpec, option: Mapping[str, str], *, name: str, declared_in: Path | None,
) -> dg.AssetsDefinition:
    """``<prefix>/dataset_export`` downstream of ``upstream`` (the asset that writes the dataset)."""
    from ..datasets.upload import find_dataset
    from ..engine.push import latest_dataset_version
    from ..export.automation import expand_path
    from ..export.errors import redact
    from ..export.snapshot import export_dataset_version

    @dg.asset(key=[prefix, "dataset_export"], deps=[upstream], group_name=prefix, kinds={"braintrust"}, pool=POOL,
              description=f"Dataset {target.dataset_name!r} at its latest version, exported to `{option['path']}` "
                          f"({option['format']}) under `version=<xact_id>/`, with a manifest and `_SUCCESS`.")
    def dataset_export(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> dg.MaterializeResult:
        client = braintrust.get_client()
        found = find_dataset(client, target)[1]  # by the target's project name or id
        if found is None:
            raise dg.Failure(f"{name}: dataset {target.dataset_name!r} does not exist yet; materialize {upstream.to_user_string()} first")
        version = latest_dataset_version(client, found["id"]) or "0"
        done = export_dataset_version(client, found["id"], str(version), expand_path(option["path"], declared_in),
                                      fmt=option["format"], name=name)
        return dg.MaterializeResult(metadata={
            "dagster/row_count": done.rows, "rows": done.rows, "files": done.files, "bytes": done.bytes,
            "dataset_version": str(version), "manifest": redact(done.manifest_url), "folder": done.folder,
        })

    return dataset_export
