"""Pipeline option `export={"path", "format"}`: `<name>/dataset_export` writes the dataset at the
version the push produced, with a manifest, after `dataset_version`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pyarrow.parquet as pq

from helpers import write_pipeline
from pipelines_repo.local.seed import seed_demo_logs
from pipelines_repo.local.transport import InProcessTransport
from pipelines_repo.orchestration import build_definitions

PIPELINE = '''
from pipelines_repo import DatasetPipeline

def to_row(id, input, output, metadata):
    return {{"input": input, "expected": output, "metadata": {{"model": metadata.get("model")}}}}

DatasetPipeline(name="exported", source={{"project_name": "Customer Support", "filter": "metadata.flagged = true"}},
                transform=to_row, target={{"project_name": "Customer Support", "dataset_name": "Exported cases"}},
                start_date="{start}", export={{"path": "{out}", "format": "parquet"}})
'''


def test_export_option_writes_the_dataset_at_the_pushed_version(isolated_home: Path, tmp_path: Path, instance) -> None:
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with httpx.Client(transport=InProcessTransport(isolated_home / "braintrust-local.db"), base_url=InProcessTransport.BASE_URL) as http:
        seed_demo_logs(http, "Customer Support", days=3, spans_per_day=80, seed=5, end=end)
    day = (end - timedelta(days=2)).date().isoformat()
    out = tmp_path / "snapshots"
    pipelines = tmp_path / "pipelines"
    write_pipeline(pipelines, "exported.py", PIPELINE.format(start=day, out=out))
    defs = build_definitions(pipelines)
    keys = {k for a in defs.assets if isinstance(a, dg.AssetsDefinition) for k in a.keys}
    assert dg.AssetKey(["exported", "dataset_export"]) in keys
    resources = {"braintrust": defs.resources["braintrust"]}
    pushed = dg.materialize(defs.assets, selection=dg.AssetSelection.groups("exported") - dg.AssetSelection.assets(["exported", "dataset_export"]),
                            partition_key=day, instance=instance, resources=resources)
    version = next(e.materialization for e in pushed.get_asset_materialization_events()
                   if e.materialization.asset_key.path[-1] == "dataset_version").metadata["dataset_version"].value
    exported = dg.materialize(defs.assets, selection=dg.AssetSelection.assets(["exported", "dataset_export"]),
                              instance=instance, resources=resources)
    meta = exported.get_asset_materialization_events()[0].materialization.metadata
    assert meta["dataset_version"].value == version and meta["files"].value == 1
    folder = out / f"version={version}"
    manifest = json.loads((folder / "_manifest.json").read_text())
    table = pq.read_table(folder / "part-00000.parquet")
    assert table.num_rows == meta["rows"].value == sum(f["rows"] for f in manifest["files"]) > 0
    assert (folder / "_SUCCESS").exists()
