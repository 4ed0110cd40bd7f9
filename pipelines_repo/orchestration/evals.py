"""Eval files -> `<eval>/experiment` assets, their `no_score_regression` check and a dataset sensor.

**Asset** `<eval>/experiment` (unpartitioned, pool `braintrust_api`, downstream of the external
`braintrust/<project>/datasets/<dataset>` its `data` reads): resolves the dataset version (the
triggering run's `braintrust/dataset_version` tag, else the dataset's head), runs the evaluator
pinned to it through the SDK (`evals.run.run_eval`, a subprocess) with the previous
materialization's experiment as the base, and records the experiment (name, id, URL), each score
and metric as a number (`score/<name>`: the UI plots it over materializations, i.e. dataset
versions), the diff and improvements/regressions against the previous version's experiment.

**Check** `no_score_regression` (only with the file's `dagster = {"max_regression": x}`): fails
when a score fell by more than `x` against the previous experiment.

**Sensor** `<eval>_on_new_dataset_version` (RUNNING): requests the asset whenever one of the
dataset's producers (a pipeline's or a `DatasetFile`'s `dataset_version`) is materialized, tagged
with the version that materialization reports.
"""

# No `from __future__ import annotations`: Dagster reads the real annotations of the decorated
# functions' parameters.

import logging
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import dagster as dg

from ..engine.push import latest_dataset_version
from ..evals import loading as _eval_loading  # noqa: F401 - registers the loader's eval-safe file hook
from ..evals.run import EvalRun, run_eval
from ..evals.spec import EvalSpec
from .assets import POOL
from .automation import SENSOR_INTERVAL_SECONDS
from .resource import BraintrustResource
from .translator import KIND, sanitize_name

__all__ = ["CHECK_NAME", "VERSION_TAG", "build_eval_asset", "build_eval_sensor", "compile_evals", "dataset_key"]

log = logging.getLogger("pipelines_repo.orchestration")

CHECK_NAME = "no_score_regression"
VERSION_TAG = "braintrust/dataset_version"
GROUP = "evals"


def experiment_key(spec: EvalSpec) -> dg.AssetKey:
    return dg.AssetKey([sanitize_name(spec.name), "experiment"])


def dataset_key(spec: EvalSpec) -> dg.AssetKey:
    """The dataset asset the eval reads: the key a pipeline or `DatasetFile` targeting it feeds."""
    assert spec.dataset is not None
    project = spec.dataset.project_name or spec.dataset.project_id or "unnamed_project"
    return dg.AssetKey(["braintrust", sanitize_name(project), "datasets", sanitize_name(spec.dataset.dataset_name or "logs")])


def _last(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(key)
    materialization = event.asset_materialization if event is not None else None
    if materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}


def _metadata(run: EvalRun, url: str | None, previous: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "experiment_name": run.experiment_name, "experiment_id": run.experiment_id,
        "dataset_version": run.dataset_version, "project": run.project_name,
        "compared_to": run.comparison_experiment_name or "(none)",
        "previous_dataset_version": previous.get("dataset_version") or "(none)",
        "cases": run.cases, "errors": run.errors, "comparison_status": run.comparison_status,
    }
    if url:
        meta["experiment_url"] = dg.MetadataValue.url(url)
    lines = ["| name | value | diff | improvements | regressions |", "|---|---|---|---|---|"]
    for kind, entries, field in (("score", run.scores, "score"), ("metric", run.metrics, "metric")):
        for name, entry in entries.items():
            meta[f"{kind}/{name}"] = float(entry[field])
            if entry.get("diff") is not None:
                meta[f"{kind}_diff/{name}"] = float(entry["diff"])
            meta[f"improvements/{name}"] = int(entry["improvements"])
            meta[f"regressions/{name}"] = int(entry["regressions"])
            diff = "" if entry.get("diff") is None else f"{entry['diff']:+.4f}"
            lines.append(f"| {name} | {entry[field]:.4f} | {diff} | {entry['improvements']} | {entry['regressions']} |")
    meta["summary"] = dg.MetadataValue.md("\n".join(lines))
    return meta


def _check(key: dg.AssetKey, run: EvalRun, max_regression: float) -> dg.AssetCheckResult:
    fallen = {name: e["diff"] for name, e in run.scores.items() if e.get("diff") is not None and e["diff"] < -max_regression}
    return dg.AssetCheckResult(
        asset_key=key, check_name=CHECK_NAME, passed=not fallen, severity=dg.AssetCheckSeverity.ERROR,
        description=("scores fell by more than %.4f: %s" % (max_regression, ", ".join(f"{n} {d:+.4f}" for n, d in fallen.items())))
        if fallen else f"no score fell by more than {max_regression:.4f}",
        metadata={"max_regression": max_regression, "compared_to": run.comparison_experiment_name or "(none)",
                  **{f"diff/{n}": float(e["diff"]) for n, e in run.scores.items() if e.get("diff") is not None}},
    )


def build_eval_asset(spec: EvalSpec) -> dg.AssetsDefinition:
    key = experiment_key(spec)
    checks = [dg.AssetCheckSpec(CHECK_NAME, asset=key, description=f"no score falls more than {spec.max_regression}")] \
        if spec.max_regression is not None else []
    asset_spec = dg.AssetSpec(
        key=key, deps=[dataset_key(spec)], group_name=GROUP, kinds={KIND, "python"}, code_version=spec.file_digest[:16],
        description=f"Experiment of eval {spec.name!r} (`{spec.file.name}`) on dataset "
                    f"{spec.dataset.dataset_name!r}, pinned to the dataset version it runs on.",  # type: ignore[union-attr]
        metadata={"eval_file": dg.MetadataValue.path(str(spec.file)), "eval": spec.name},
    )

    @dg.multi_asset(name=f"{key.path[0]}__experiment", specs=[asset_spec], check_specs=checks, pool=POOL)
    def experiment(context: dg.AssetExecutionContext, braintrust: BraintrustResource) -> Iterator[Any]:
        client = braintrust.get_client()
        ds = spec.dataset
        assert ds is not None
        project = client.get_project(name=ds.project_name, id=ds.project_id)
        found = client.find_dataset(project["id"], ds.dataset_name) if project else None
        if found is None:
            raise dg.Failure(f"{spec.name}: dataset {ds.dataset_name!r} of project {ds.project_name!r} does not exist yet; "
                             "materialize the pipeline or DatasetFile that writes it first", allow_retries=False)
        version = context.run.tags.get(VERSION_TAG) or latest_dataset_version(client, found["id"]) or "0"
        previous = _last(context.instance, key)
        context.log.info(f"{spec.name}: evaluating dataset {ds.dataset_name!r} at version {version} on the {braintrust.plane_description()}")
        run = run_eval(spec, dataset_version=version, base_experiment_id=previous.get("experiment_id"),
                       settings=braintrust.settings(), local_db=braintrust.local_db_path())
        context.log.info(run.output[-2000:])
        org = client.org_name or ""
        url = f"{client.app_url}/app/{quote(org)}/p/{quote(run.project_name)}/experiments/{quote(run.experiment_name)}"
        yield dg.MaterializeResult(asset_key=key, metadata=_metadata(run, url, previous), data_version=dg.DataVersion(run.experiment_id))
        if spec.max_regression is not None:
            yield _check(key, run, spec.max_regression)

    return experiment


def _version_of(metadata: dict[str, Any]) -> str | None:
    for name in ("dataset_version_after_run", "dataset_version"):
        value = metadata.get(name)
        value = getattr(value, "value", value)
        if isinstance(value, str) and value.isdigit():
            return value
    return None


def build_eval_sensor(spec: EvalSpec, producers: Sequence[dg.AssetKey]) -> dg.SensorDefinition:
    """A sensor over the producers' latest materializations; its cursor is the newest storage id seen."""
    key = experiment_key(spec)

    @dg.sensor(
        name=f"{key.path[0]}_on_new_dataset_version", asset_selection=dg.AssetSelection.assets(key),
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS, default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Runs eval {spec.name!r} when a new version of its dataset is materialized.",
    )
    def on_new_dataset_version(context: dg.SensorEvaluationContext) -> Any:
        seen = int(context.cursor or 0)
        records = [r for k in producers for r in context.instance.fetch_materializations(k, limit=1).records]
        newest = max(records, key=lambda r: r.storage_id, default=None)
        if newest is None or newest.storage_id <= seen:
            return dg.SkipReason("no new dataset version since the last tick")
        materialization = newest.event_log_entry.asset_materialization
        version = _version_of(dict(materialization.metadata)) if materialization is not None else None
        tags = {"braintrust/trigger": "new_dataset_version", **({VERSION_TAG: version} if version else {})}
        request = dg.RunRequest(run_key=f"{key.to_user_string()}@{version or newest.storage_id}", asset_selection=[key], tags=tags)
        return dg.SensorResult(run_requests=[request], cursor=str(newest.storage_id))

    return on_new_dataset_version


def compile_evals(declarations: Sequence[Any], compiled: Any, translator: Any) -> None:
    """Add each dataset-backed eval's asset and sensor to `compiled` (a `CompiledPipelines`)."""
    specs = [d for d in declarations if isinstance(d, EvalSpec)]
    existing = {getattr(a, "key", None) for a in compiled.assets}
    producers: dict[dg.AssetKey, list[dg.AssetKey]] = {}
    for p in compiled.specs:
        producers.setdefault(translator.get_target(p).key, []).append(translator.get_asset_key(p, "dataset_version"))
    for f in compiled.files:
        producers.setdefault(translator.get_target(f).key, []).append(translator.get_file_asset_key(f))
    for spec in specs:
        if spec.dataset is None:
            log.info("eval %r (%s) reads no dataset (its data is not init_dataset(...)); not compiled", spec.name, spec.file)
            continue
        target = dataset_key(spec)
        if target not in existing:
            existing.add(target)
            compiled.assets.append(dg.AssetSpec(key=target, group_name="braintrust_datasets", kinds={KIND},
                                                description=f"Braintrust dataset {spec.dataset.dataset_name!r}; external."))
        compiled.assets.append(build_eval_asset(spec))
        if producers.get(target):
            compiled.sensors.append(build_eval_sensor(spec, producers[target]))
