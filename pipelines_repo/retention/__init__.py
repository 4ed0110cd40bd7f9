"""Retention: policies declared next to the pipelines, preview, the guard, apply, archive, resolve.

    from pipelines_repo import RetentionPolicy
    RetentionPolicy(name="logs-30d", project="Customer Support", object_type="project_logs", retention_days=30)

No Dagster imports (docs/ARCHITECTURE.md): ``spec`` (the declaration), ``plan`` (cutoff and the
expired days), ``guard`` (which days every reader harvested), ``archive`` (export before delete,
resolve a span from the archive), ``apply`` (delete day by day, then purge on the local plane),
``automation`` (``apply="braintrust"``: Braintrust's own retention automation). The Dagster wiring
is ``orchestration/retention.py``; the commands ``cli/retention.py``.
"""
