"""`x-bt-parent` (and a span's `braintrust.parent` attribute): which object a trace is logged to.

Braintrust accepts `project_id:<id>`, `project_name:<name>`, `experiment_id:<id>` and span slugs
from `span.export()`. The local plane logs to projects only: a project named by name is created
when missing (as the SDK's project registration does), a project id must exist (404, as `/logs3`
answers), and experiments and span slugs are refused with a 400 that says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..store import LocalStore
from .spans import OtlpError

HEADER = "x-bt-parent"


@dataclass(frozen=True)
class Parent:
    kind: str  # "project_id" | "project_name"
    value: str


def parse_parent(text: str) -> Parent:
    """Parse a parent value (400 when it is malformed or names an object the plane lacks)."""
    kind, sep, value = text.strip().partition(":")
    value = value.strip()
    if sep and kind == "experiment_id":
        raise OtlpError(
            "x-bt-parent experiment_id: the local plane ingests OTLP traces into project logs, no experiments; "
            "log the trace to a project with project_id:<id> or project_name:<name>"
        )
    if sep and kind in ("project_id", "project_name") and value:
        return Parent(kind, value)
    raise OtlpError(
        f"x-bt-parent {text!r} is not supported: use project_id:<id> or project_name:<name> "
        "(experiments and span slugs from span.export() are not served by the local plane)"
    )


class ParentResolver:
    """Parent values to project ids, each resolved once per request."""

    def __init__(self, store: LocalStore, header: str | None):
        self.store = store
        self.default = parse_parent(header) if header and header.strip() else None
        self._ids: dict[Parent, str] = {}

    def project_id(self, attribute: object) -> str:
        """The project for a span: its `braintrust.parent` attribute, else the header's parent."""
        if isinstance(attribute, str) and attribute.strip():
            parent = parse_parent(attribute)
        elif self.default is not None:
            parent = self.default
        else:
            raise OtlpError(
                f"no parent: send the {HEADER} header (project_id:<id> or project_name:<name>), "
                "or set the braintrust.parent attribute on every span"
            )
        if parent not in self._ids:
            if parent.kind == "project_name":
                self._ids[parent] = self.store.create_project(parent.value)["id"]
            else:
                self._ids[parent] = self.store.get_object("project", parent.value)["id"]  # NotFound: 404
        return self._ids[parent]
