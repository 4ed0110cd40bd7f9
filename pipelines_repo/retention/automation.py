"""``apply="braintrust"``: Braintrust's own retention automation, created or updated per project.

    sync_policy(client, policy, force=False) -> [AutomationSync]   one per covered project

The automation is named after the policy, with ``config = {event_type: "retention", object_type,
retention_days}`` (``/v1/project_automation``). What we last wrote is kept in its description
(``... Last written: {json}``), so a later run can tell our change from someone else's:

- none yet -> ``created``;
- the server's config equals the declaration -> ``unchanged``;
- the server's config is what we last wrote but the declaration changed -> ``updated`` (PATCH);
- the server's config differs from what we last wrote -> ``drift``: someone changed it in
  Braintrust; reported and left alone unless ``force`` (then overwritten: ``updated``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..client import BraintrustClient
from .apply import resolve_projects
from .spec import RetentionPolicySpec

__all__ = ["AutomationSync", "sync_policy"]

_MARK = "Last written: "
_FIELDS = ("event_type", "object_type", "retention_days")


@dataclass
class AutomationSync:
    project_id: str
    project_name: str
    action: str  # created | updated | unchanged | drift
    automation_id: str | None
    declared: dict[str, Any]
    server: dict[str, Any] | None
    last_written: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _norm(config: Any) -> tuple:
    config = config if isinstance(config, dict) else {}
    days = config.get("retention_days")
    return (config.get("event_type"), config.get("object_type"), float(days) if isinstance(days, (int, float)) else days)


def _description(policy: RetentionPolicySpec, config: dict[str, Any]) -> str:
    return f"Managed by bt-dagster (RetentionPolicy {policy.name!r}). {_MARK}{json.dumps(config, sort_keys=True)}"


def _last_written(description: Any) -> dict[str, Any] | None:
    if not isinstance(description, str) or _MARK not in description:
        return None
    try:
        value = json.loads(description.rsplit(_MARK, 1)[1])
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _sync_one(client: BraintrustClient, policy: RetentionPolicySpec, project: dict[str, Any], force: bool) -> AutomationSync:
    pid, pname = project["id"], project.get("name") or project["id"]
    declared = policy.braintrust_config()
    found = client.list_project_automations(project_id=pid, name=policy.name)
    if not found:
        made = client.create_project_automation(pid, policy.name, declared, _description(policy, declared))
        return AutomationSync(pid, pname, "created", made.get("id"), declared, made.get("config"), declared)
    current = found[0]
    server = current.get("config") if isinstance(current.get("config"), dict) else None
    last = _last_written(current.get("description"))
    server_fields = {k: (server or {}).get(k) for k in _FIELDS}
    if last is not None and _norm(server) != _norm(last) and not force:
        return AutomationSync(pid, pname, "drift", current.get("id"), declared, server_fields, last)
    if _norm(server) == _norm(declared):
        return AutomationSync(pid, pname, "unchanged", current.get("id"), declared, server_fields, last)
    config = {**(server or {}), **declared}
    patched = client.patch_project_automation(current["id"], {"config": config, "description": _description(policy, declared)})
    return AutomationSync(pid, pname, "updated", current.get("id"), declared, (patched or {}).get("config"), declared)


def sync_policy(client: BraintrustClient, policy: RetentionPolicySpec, *, force: bool = False) -> list[AutomationSync]:
    """Create or update the policy's automation in each covered project (see the module doc)."""
    return [_sync_one(client, policy, project, force) for project in resolve_projects(client, policy)]
