"""Braintrust's ``btql_export`` project automations -> an ``ExportAutomation`` declaration file.

    entries = list_project_automations(client, project_id)       # GET /v1/project_automation
    text = render_declarations(project_name, entries)             # Python source, btql_export only

Braintrust's ``credentials`` (an IAM role or a GCP service account to impersonate) are not
carried over: the file records them in a comment, and the export uses the cloud's environment
variables. Other event types (alerts, retention, ...) are skipped and listed in a comment.
"""

from __future__ import annotations

from typing import Any

from ..client import BraintrustClient

__all__ = ["declaration_fields", "list_project_automations", "render_declarations"]


def list_project_automations(client: BraintrustClient, project_id: str) -> list[dict[str, Any]]:
    body = client._get_json("/v1/project_automation", endpoint="project_automation",  # noqa: SLF001 - the client's plumbing
                            params={"project_id": project_id}, what="project automations")
    return list(body.get("objects") or [])


def declaration_fields(project: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The ``ExportAutomation`` keyword arguments for one btql_export automation."""
    config = entry.get("config") or {}
    fields: dict[str, Any] = {
        "name": entry["name"], "project": project, "export_definition": dict(config.get("export_definition") or {}),
        "export_path": config.get("export_path"), "format": config.get("format", "jsonl"),
        "interval_seconds": int(config.get("interval_seconds") or 3600),
        "batch_size": int(config.get("batch_size") or 1000), "status": config.get("status") or "active",
    }
    if entry.get("description"):
        fields["description"] = entry["description"]
    return fields


def _credentials_note(config: dict[str, Any]) -> str:
    creds = config.get("credentials") or {}
    if creds.get("type") == "aws_iam":
        return f"# Braintrust assumed the IAM role {creds.get('role_arn')!r}; here, set AWS_* environment variables."
    if creds.get("type") == "gcp_service_account":
        return f"# Braintrust impersonated {creds.get('service_account_email')!r}; here, set GOOGLE_* environment variables."
    return "# Credentials come from the cloud's standard environment variables."


def render_declarations(project: str, entries: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """(the file's text, the names of the entries skipped because they are not btql_export)."""
    lines = [f'"""Export automations of project {project!r}, imported from Braintrust\'s /v1/project_automation."""',
             "", "from pipelines_repo import ExportAutomation", ""]
    skipped = []
    for entry in entries:
        config = entry.get("config") or {}
        if config.get("event_type") != "btql_export":
            skipped.append(f"{entry.get('name')} ({config.get('event_type')})")
            continue
        lines += ["", _credentials_note(config), "ExportAutomation("]
        lines += [f"    {key}={value!r}," for key, value in declaration_fields(project, entry).items()]
        lines.append(")")
    if skipped:
        lines += ["", f"# Not exports, not imported: {', '.join(skipped)}"]
    return "\n".join(lines) + "\n", skipped
