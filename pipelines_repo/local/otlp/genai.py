"""The OpenTelemetry GenAI semantic conventions (`gen_ai.*` attributes and events) to Braintrust fields.

Braintrust reads: messages and prompts/completions as `input`/`output` (a nonempty list from
message events wins over attributes), request parameters as `metadata` (the model without its
provider prefix), usage as token `metrics`, and the operation or tool name as the span type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .spans import OtlpEvent
from .values import MISSING, deep_merge, parse_json, take_prefixed, unflatten

_INPUT_EVENTS = {"gen_ai.user.message": "user", "gen_ai.system.message": "system", "gen_ai.tool.message": "tool"}
_OUTPUT_EVENTS = {"gen_ai.choice": "assistant", "gen_ai.assistant.message": "assistant"}
# GenAI operation names that are model calls (`llm`) or tool calls (`tool`).
_OPERATION_TYPES = {"chat": "llm", "text_completion": "llm", "generate_content": "llm", "execute_tool": "tool"}
_USAGE_NAMES = {
    "prompt_tokens": "prompt_tokens", "input_tokens": "prompt_tokens",
    "completion_tokens": "completion_tokens", "output_tokens": "completion_tokens", "total_tokens": "tokens",
}


@dataclass
class GenAiFields:
    input: Any = MISSING
    output: Any = MISSING
    metadata: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    type: str | None = None
    unparsed: dict[str, Any] = field(default_factory=dict)  # JSON attributes that did not parse


def _json_or_value(attrs: dict[str, Any], key: str, out: GenAiFields) -> Any:
    """A JSON-string attribute parsed; a non-string value as is; an invalid JSON string kept aside."""
    value = attrs.pop(key, MISSING)
    if value is MISSING or not isinstance(value, str):
        return value
    parsed = parse_json(value)
    if parsed is MISSING:
        out.unparsed[key] = value
    return parsed


def _messages(attrs: dict[str, Any], out: GenAiFields, messages_key: str, stem: str) -> Any:
    """`gen_ai.<x>.messages` > `<stem>_json` > `<stem>` (a string) > flattened `<stem>.N.*`."""
    candidates = [_json_or_value(attrs, messages_key, out), _json_or_value(attrs, f"{stem}_json", out)]
    plain = attrs.pop(stem, MISSING)
    flat = take_prefixed(attrs, f"{stem}.")
    candidates += [plain, unflatten(flat) if flat else MISSING]
    return next((c for c in candidates if c is not MISSING), MISSING)


def _event_message(event: OtlpEvent, role: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": role}
    for key, value in event.attributes.items():
        if key.startswith("gen_ai.") or key.startswith("event."):
            continue  # the event's own bookkeeping (gen_ai.system, event.name)
        parsed = parse_json(value) if isinstance(value, str) and value[:1] in "[{" else MISSING
        message[key] = value if parsed is MISSING else parsed
    return message


def _usage(attrs: dict[str, Any], out: GenAiFields) -> dict[str, Any]:
    metrics: dict[str, Any] = {}
    whole = _json_or_value(attrs, "gen_ai.usage", out)
    items = dict(whole) if isinstance(whole, dict) else {}
    items.update(take_prefixed(attrs, "gen_ai.usage."))
    for name, value in items.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics[_USAGE_NAMES.get(name, name)] = value
    if "tokens" not in metrics and ("prompt_tokens" in metrics or "completion_tokens" in metrics):
        metrics["tokens"] = metrics.get("prompt_tokens", 0) + metrics.get("completion_tokens", 0)
    return metrics


def _request_metadata(attrs: dict[str, Any], out: GenAiFields) -> dict[str, Any]:
    whole = _json_or_value(attrs, "gen_ai.request", out)
    flat = take_prefixed(attrs, "gen_ai.request.")
    metadata = deep_merge(whole if isinstance(whole, dict) else {}, unflatten(flat) if flat else {})
    if not isinstance(metadata, dict):
        return {}
    model = metadata.get("model")
    if isinstance(model, str) and "/" in model:
        metadata["model"] = model.split("/", 1)[1]  # `openai/gpt-4o` -> `gpt-4o`
    return metadata


def _tools(attrs: dict[str, Any], out: GenAiFields) -> list[dict[str, Any]]:
    names: list[Any] = []
    agent_tools = _json_or_value(attrs, "gen_ai.agent.tools", out)
    if isinstance(agent_tools, list):
        names += agent_tools
    tool_name = attrs.pop("gen_ai.tool.name", None)
    if tool_name:
        names.append(tool_name)
        out.type = "tool"
    return [
        t if isinstance(t, dict) else {"type": "function", "function": {"name": str(t)}} for t in names
    ]


def take_genai(attrs: dict[str, Any], events: list[OtlpEvent]) -> GenAiFields:
    """Take the `gen_ai.*` attributes Braintrust maps off `attrs`; read message events."""
    out = GenAiFields()
    out.input = _messages(attrs, out, "gen_ai.input.messages", "gen_ai.prompt")
    out.output = _messages(attrs, out, "gen_ai.output.messages", "gen_ai.completion")
    input_events = [_event_message(e, _INPUT_EVENTS[e.name]) for e in events if e.name in _INPUT_EVENTS]
    output_events = [_event_message(e, _OUTPUT_EVENTS[e.name]) for e in events if e.name in _OUTPUT_EVENTS]
    if input_events:
        out.input = input_events
    if output_events:
        out.output = output_events
    out.metadata = _request_metadata(attrs, out)
    tools = _tools(attrs, out)
    if tools:
        out.metadata["tools"] = tools
    out.metrics = _usage(attrs, out)
    operation = attrs.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in _OPERATION_TYPES:
        attrs.pop("gen_ai.operation.name")  # an unknown operation stays in metadata
        out.type = out.type or _OPERATION_TYPES[operation]
    return out
