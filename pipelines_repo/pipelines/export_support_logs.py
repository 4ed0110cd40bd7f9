"""An export automation: the "Customer Support" logs, one rolled-up row per trace, exported every
hour to a local folder (`make dev` runs it; point export_path at s3://bucket/prefix, gs://... or
az://... and set the cloud's standard environment variables to export to an object store).

Dagster: `support_logs/export` (one partition per hour, by transaction time), the
`export_destination_ok` check and the `support_logs_export` schedule.
"""

from pipelines_repo import ExportAutomation

ExportAutomation(
    name="support-logs",
    project="Customer Support",
    export_definition={"type": "log_traces"},
    export_path="$DAGSTER_HOME/exports/support-logs",  # expanded when the export runs
    format="jsonl",
    interval_seconds=3600,
    batch_size=1000,
    status="active",
    start_from="2026-11-01",
)
