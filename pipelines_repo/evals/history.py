"""Which experiments used a dataset (their root spans' `origin` points at its rows), and a row's scores in each.

`bt-dagster datasets runs NAME [--row ID]`. Experiments are listed org-wide (an eval's project is
its own, not the dataset's); each is asked, with one `/btql` query of whole traces, for the traces
whose root `origin` names the dataset (and the row). A trace's score is the mean of its spans'.
"""

from __future__ import annotations

from typing import Any

from ..client import BraintrustClient


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _trace_scores(spans: list[dict[str, Any]]) -> dict[str, float]:
    values: dict[str, list[float]] = {}
    for span in spans:
        for name, value in (span.get("scores") or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                values.setdefault(name, []).append(float(value))
    return {name: sum(v) / len(v) for name, v in values.items()}


def dataset_runs(client: BraintrustClient, dataset_id: str, *, row_id: str | None = None) -> list[dict[str, Any]]:
    """One entry per experiment that evaluated the dataset (oldest first): name, id, dataset version,
    the number of its cases from the dataset, and with `row_id` that row's scores (per case)."""
    experiments = client._list_all("/v1/experiment")  # noqa: SLF001 - every page, org-wide
    out = []
    for exp in reversed(experiments):
        if exp.get("dataset_id") not in (None, dataset_id):
            continue  # the SDK records the dataset an experiment evaluated: skip the query for others
        where = f"origin.object_id = {_quote(dataset_id)}" + (f" AND origin.id = {_quote(row_id)}" if row_id else "")
        sql = f"SELECT * FROM experiment({_quote(exp['id'])}, shape => 'traces') WHERE {where} LIMIT 1000"
        spans = client.btql(sql)["data"]
        if not spans:
            continue
        traces: dict[str, list[dict[str, Any]]] = {}
        for span in spans:
            traces.setdefault(span["root_span_id"], []).append(span)
        entry: dict[str, Any] = {
            "experiment": exp["name"], "experiment_id": exp["id"], "created": exp.get("created"),
            "dataset_version": exp.get("dataset_version"), "cases": len(traces),
        }
        if row_id:
            entry["scores"] = [_trace_scores(t) for t in traces.values()]
            roots = [s for t in traces.values() for s in t if s.get("is_root")]
            entry["errors"] = sum(1 for r in roots if r.get("error"))
        out.append(entry)
    return out
