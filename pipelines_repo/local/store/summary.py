"""An experiment's summary as Braintrust's `/v1/experiment/{id}/summarize` computes it (docs/BT_COMPAT.md §A.12).

Pure functions over an experiment's stored rows. Scores live on scorer spans, so everything is
grouped by trace (`root_span_id`): a trace's score is the mean of the non-null `scores[k]` over
its spans, and an experiment's score the mean over the traces that have it. Cases of two
experiments match on the canonical JSON of their root span's `input`. The SDK turns each entry
into `ScoreSummary(**v)` / `MetricSummary(**v)`, so entries hold exactly the allowed keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Token metrics are summed over a trace's spans; duration is the root span's.
TOKEN_METRICS = ("prompt_tokens", "completion_tokens", "tokens")


@dataclass
class Case:
    """One trace: its root input key, per-score means and per-metric values."""

    key: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def cases(rows: list[tuple[str, bool, dict[str, Any]]]) -> list[Case]:
    """`(root_span_id, is_root, data)` rows -> one `Case` per trace."""
    traces: dict[str, list[tuple[bool, dict[str, Any]]]] = {}
    for root, is_root, data in rows:
        traces.setdefault(root, []).append((is_root, data))
    out = []
    for spans in traces.values():
        case, sums = Case(), {}
        for is_root, data in spans:
            for name, value in (data.get("scores") or {}).items():
                if (number := _number(value)) is not None:
                    sums.setdefault(name, []).append(number)
            metrics = data.get("metrics") or {}
            for name in TOKEN_METRICS:
                if (number := _number(metrics.get(name))) is not None:
                    case.metrics[name] = case.metrics.get(name, 0.0) + number
            if is_root:
                case.key = json.dumps(data.get("input"), sort_keys=True, separators=(",", ":"))
                start, end = _number(metrics.get("start")), _number(metrics.get("end"))
                if start is not None and end is not None:
                    case.metrics["duration"] = end - start
        case.scores = {name: sum(v) / len(v) for name, v in sums.items()}
        out.append(case)
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _by_key(found: list[Case], part: str, name: str) -> dict[str, float]:
    """Per matched case (root input), the mean value of one score or metric."""
    grouped: dict[str, list[float]] = {}
    for case in found:
        value = getattr(case, part).get(name)
        if case.key is not None and value is not None:
            grouped.setdefault(case.key, []).append(value)
    return {key: _mean(values) for key, values in grouped.items()}


def _compare(current: list[Case], base: list[Case] | None, part: str, name: str, lower_is_better: bool) -> dict[str, Any]:
    if base is None:
        return {"improvements": 0, "regressions": 0}
    ours, theirs = _by_key(current, part, name), _by_key(base, part, name)
    up = sum(1 for k, v in ours.items() if k in theirs and v > theirs[k])
    down = sum(1 for k, v in ours.items() if k in theirs and v < theirs[k])
    result: dict[str, Any] = {"improvements": down if lower_is_better else up, "regressions": up if lower_is_better else down}
    base_values = [getattr(c, part)[name] for c in base if name in getattr(c, part)]
    if base_values:
        ours_values = [getattr(c, part)[name] for c in current if name in getattr(c, part)]
        result["diff"] = _mean(ours_values) - _mean(base_values)
    return result


def summarize_cases(current: list[Case], base: list[Case] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(scores, metrics) entries of the summarize response; `base` None means no comparison."""
    scores: dict[str, Any] = {}
    for name in sorted({n for c in current for n in c.scores}):
        values = [c.scores[name] for c in current if name in c.scores]
        entry = {"name": name, "score": _mean(values), **_compare(current, base, "scores", name, False)}
        if "diff" in entry:
            entry["diff"] = max(-1.0, min(1.0, entry["diff"]))
        scores[name] = entry
    metrics: dict[str, Any] = {}
    for name in ("duration", *TOKEN_METRICS):
        values = [c.metrics[name] for c in current if name in c.metrics]
        if not values:
            continue
        unit = "s" if name == "duration" else "tok"
        metrics[name] = {"name": name, "metric": _mean(values), "unit": unit, **_compare(current, base, "metrics", name, True)}
    return scores, metrics
