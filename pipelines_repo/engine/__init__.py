"""The pipeline engine: pull -> transform -> push, streaming, with no Dagster imports.

The engine imports only ``pipelines_repo.client`` from the rest of the package; the CLI
(``cli/``) and the Dagster assets (``orchestration/``) call the same functions. Import them from
their modules (this package re-exports nothing); signatures are in each module's docstring.

Contracts:

- ``engine.loader.load_pipeline_file(path)`` / ``discover_pipelines(directory)`` /
  ``select_pipeline(specs, name)``: pipeline files written for bt -> ``engine.spec.PipelineSpec``;
  ``load_declarations`` / ``discover_declarations`` add the files' other declarations
  (``engine.declarations``, e.g. ``DatasetFile``). ``.ts/.tsx/.js/.jsx`` files go to
  ``engine.node_loader.load_node_file`` (a Node runner per file, ``pipelines_repo/node``).
- ``engine.pull.pull_refs(client, source, window=..., limit=..., root_span_ids=..., page_size=...)``:
  streaming ``engine.items.TransformItem`` (bt's ref + the span payload, or the trace's spans)
  with ``PullStats``.
- ``engine.transform.transform_items(spec, items, ...)``: streaming rows in input order, error
  policy ``fail|skip`` (``errors.jsonl``), ``TransformStats``.
- ``engine.push.push_rows(client, rows, target, ...)`` and ``push_file(...)`` (checkpointed,
  keyed by content): ``PushResult`` with the dataset version; ``push_files(...)`` pushes many
  files (a range of partitions) in shared batches, one checkpoint per file.
- ``engine.run.run_pipeline(...)`` (bt's ``run``), ``run_partitions(...)`` and
  ``pull_partitions(...)`` (one discovery sweep split into partition windows;
  ``orchestration.staging`` writes one bt-sync directory per partition from it).
- ``engine.stages.pull_stage`` / ``transform_stage`` / ``push_stage``: bt's staged commands,
  with bt's artifact layout (``engine.artifacts``) written through ``engine.jsonl``.
- ``engine.btql``: the ``/btql`` query builders, counted paging (``btql_pages``) and
  ``max_xact(client, from_)``; ``engine.changes.scan_changes(...)``: rows changed after an
  ``_xact_id`` (the late-data sensor).
- ``engine.progress.Progress``: what the runs report progress to.
- ``engine.errors.PipelineError``: the base of every engine error (``cause``, ``path``, ``fix``).
"""
