"""One trace's spans -> one row, like Braintrust's "Logs (traces)" export.

The row is the root span (``is_root``, else the earliest ``created``) with:

- ``scores``: for each score name, the mean over the trace's spans that have a numeric value for it;
- ``metrics``: the root's metrics, with the token counts (``prompt_tokens``, ``completion_tokens``,
  ``tokens`` and any other ``*_tokens`` key) summed over all spans, ``start`` the earliest start
  and ``end`` the latest end of any span;
- ``span_count``: the number of spans in the trace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["pick_root", "roll_up"]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def pick_root(spans: Sequence[dict[str, Any]]) -> dict[str, Any]:
    for span in spans:
        if span.get("is_root"):
            return span
    return min(spans, key=lambda s: s.get("created") or "~")


def roll_up(spans: Sequence[dict[str, Any]]) -> dict[str, Any]:
    root = pick_root(spans)
    totals: dict[str, list[float]] = {}
    tokens: dict[str, float] = {}
    start = end = None
    for span in spans:
        for name, value in (span.get("scores") or {}).items():
            if _number(value):
                totals.setdefault(name, []).append(value)
        metrics = span.get("metrics") or {}
        for name, value in metrics.items():
            if _number(value) and (name == "tokens" or name.endswith("_tokens")):
                tokens[name] = tokens.get(name, 0) + value
        if _number(metrics.get("start")):
            start = metrics["start"] if start is None else min(start, metrics["start"])
        if _number(metrics.get("end")):
            end = metrics["end"] if end is None else max(end, metrics["end"])
    row = dict(root)
    scores = {name: sum(values) / len(values) for name, values in totals.items()}
    root_scores = root.get("scores") or {}
    row["scores"] = {**{k: v for k, v in root_scores.items() if not _number(v)}, **scores} or root.get("scores")
    metrics = {**(root.get("metrics") or {}), **tokens}
    if start is not None:
        metrics["start"] = start
    if end is not None:
        metrics["end"] = end
    row["metrics"] = metrics or root.get("metrics")
    row["span_count"] = len(spans)
    return row
