"""Deterministic, realistic demo logs for a customer-support LLM app.

Each trace is a root `task` span (the support request) with `llm` children (classify, respond) and
sometimes a `tool` child (order lookup). Roots carry metadata (flagged, model, user_id, thumbs_up),
scores (user_rating, correctness), tags, and some get a reviewer comment. The same seed and day
give the same logs; timestamps are spread over the `days` before today's UTC midnight.

Rows are written over HTTP through `/logs3`, exactly as the Braintrust SDK writes them. With
`otel_traces`, a few more traces arrive as OTLP payloads through `/otel/v1/traces`
(`local.seed_otel`), counted apart so the `/logs3` counts stay what `generate_demo_logs` yields.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import httpx

TOPICS = [
    ("refund", "I was charged twice for order {order}. Can I get a refund?", "I've refunded the duplicate charge on order {order}; it shows up in 3-5 business days."),
    ("shipping", "Where is my package? Order {order} hasn't arrived.", "Order {order} is in transit and should arrive by {day}."),
    ("password", "I can't log in, the password reset email never came.", "I've re-sent the reset link to your address on file; check the spam folder too."),
    ("billing", "Why did my subscription price go up this month?", "Your plan moved to annual pricing on the 1st; I've applied a one-time credit."),
    ("product", "Does the Pro plan include the API?", "Yes, the Pro plan includes API access with 10,000 requests per day."),
    ("cancel", "Please cancel my account, I'm moving to another tool.", "Your account is set to cancel at the end of the billing period."),
    ("bug", "The export button does nothing on Safari.", "Thanks! That's a known Safari issue; a fix ships this week. Chrome works meanwhile."),
]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet"]
TIERS = ["free", "pro", "enterprise"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
COMMENTS = ["Answer is correct but too terse.", "Wrong order number quoted.", "Great answer, add to golden set.", "Escalate: policy question."]


@dataclass(frozen=True)
class SeedResult:
    project_id: str
    project_name: str
    traces: int
    spans: int
    comments: int
    otel_traces: int = 0  # sent through /otel/v1/traces, not counted in `traces`/`spans`
    otel_spans: int = 0


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def generate_demo_logs(
    project_id: str,
    *,
    days: int = 30,
    spans_per_day: int = 200,
    seed: int = 7,
    end: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield logs3 rows (spans, then comment rows) in time order, deterministic for a seed and day."""
    if days <= 0 or spans_per_day <= 0:
        raise ValueError("days and spans_per_day must be positive")
    end = end or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    rng = random.Random(seed)
    route = {"project_id": project_id, "log_id": "g"}
    for day in range(days):
        day_start = (start + timedelta(days=day)).timestamp()
        emitted = 0
        # Spread traces evenly over the day, with jitter, until the day's span budget is spent.
        while emitted < spans_per_day:
            budget = spans_per_day - emitted
            t0 = day_start + (emitted / spans_per_day) * 86400 + rng.random() * 60
            spans, comment = _trace(rng, t0, route, budget)
            emitted += len(spans)
            yield from spans
            if comment is not None:
                yield comment


def _trace(rng: random.Random, t0: float, route: dict[str, Any], budget: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    topic, question_t, answer_t = rng.choice(TOPICS)
    order = f"A-{rng.randint(10000, 99999)}"
    question = question_t.format(order=order)
    answer = answer_t.format(order=order, day=rng.choice(WEEKDAYS))
    model = rng.choice(MODELS)
    root_span_id = "%032x" % rng.getrandbits(128)
    root_row_id = _uuid(rng)
    root_span = "%016x" % rng.getrandbits(64)
    duration = 0.8 + rng.random() * 4
    flagged = rng.random() < 0.12
    thumbs = rng.random()
    metadata: dict[str, Any] = {
        "flagged": flagged, "model": model, "user_id": f"user-{rng.randint(1, 400):04d}",
        "customer_tier": rng.choice(TIERS), "topic": topic,
    }
    if thumbs < 0.3:
        metadata["thumbs_up"] = True
    elif thumbs < 0.45:
        metadata["thumbs_up"] = False
    scores: dict[str, Any] = {}
    if rng.random() < 0.6:
        scores["user_rating"] = round(rng.random(), 2)
    if rng.random() < 0.5:
        scores["correctness"] = round(rng.random(), 2)
    tags = [t for t, p in (("annotated", 0.15), (topic, 0.5), ("escalated", 0.05)) if rng.random() < p]
    root = {
        "id": root_row_id, "span_id": root_span, "root_span_id": root_span_id, "span_parents": None,
        "created": _iso(t0), "input": {"question": question, "customer_tier": metadata["customer_tier"]},
        "output": {"answer": answer}, "metadata": metadata, "scores": scores, "tags": tags or None,
        "span_attributes": {"name": "support_request", "type": "task"},
        "metrics": {"start": t0, "end": t0 + duration}, **route,
    }
    spans = [root]
    children = [("classify", "llm"), ("lookup_order", "tool"), ("respond", "llm")]
    if topic not in ("refund", "shipping") or budget < 4:
        children = [c for c in children if c[1] != "tool"]
    offset = 0.05
    for name, span_type in children[: max(0, budget - 1)]:
        start = t0 + offset
        length = duration * (0.2 + rng.random() * 0.2)
        offset += length
        child: dict[str, Any] = {
            "id": _uuid(rng), "span_id": "%016x" % rng.getrandbits(64), "root_span_id": root_span_id,
            "span_parents": [root_span], "created": _iso(start),
            "span_attributes": {"name": name, "type": span_type}, "metrics": {"start": start, "end": start + length}, **route,
        }
        if span_type == "llm":
            prompt = rng.randint(80, 900)
            completion = rng.randint(10, 300)
            child["input"] = [
                {"role": "system", "content": f"You are a support agent. Task: {name}."},
                {"role": "user", "content": question},
            ]
            child["output"] = {"role": "assistant", "content": topic if name == "classify" else answer}
            child["metadata"] = {"model": model, "temperature": 0.2}
            child["metrics"].update({"prompt_tokens": prompt, "completion_tokens": completion, "tokens": prompt + completion})
        else:
            child["input"] = {"order_id": order}
            child["output"] = {"status": rng.choice(["shipped", "delivered", "refunded", "processing"])}
        spans.append(child)
    comment = None
    if rng.random() < 0.06:
        comment = {
            "id": _uuid(rng), "created": _iso(t0 + duration + 3600), "origin": {"id": root_row_id},
            "comment": {"text": rng.choice(COMMENTS)}, "_audit_source": "app", **route,
        }
    return spans, comment


def seed_demo_logs(
    http: httpx.Client,
    project_name: str,
    *,
    days: int = 30,
    spans_per_day: int = 200,
    seed: int = 7,
    batch_rows: int = 1000,
    end: datetime | None = None,
    otel_traces: int = 0,
) -> SeedResult:
    """Create the project (if needed) and write the demo logs through /v1/project and /logs3,
    then `otel_traces` OTel traces through /otel/v1/traces (over the last seeded day)."""
    response = http.post("/v1/project", json={"name": project_name})
    response.raise_for_status()
    project_id = response.json()["id"]
    traces = spans = comments = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            http.post("/logs3", json={"rows": batch, "api_version": 2}).raise_for_status()
            batch.clear()

    for row in generate_demo_logs(project_id, days=days, spans_per_day=spans_per_day, seed=seed, end=end):
        if "comment" in row:
            comments += 1
        else:
            spans += 1
            traces += row.get("span_parents") is None
        batch.append(row)
        if len(batch) >= batch_rows:
            flush()
    flush()
    otel_spans = 0
    if otel_traces > 0:
        from .seed_otel import seed_otel_traces

        last = end or datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        otel_spans = seed_otel_traces(http, project_name, traces=otel_traces, seed=seed, end=last)
    return SeedResult(project_id, project_name, traces, spans, comments, otel_traces if otel_traces > 0 else 0, otel_spans)
