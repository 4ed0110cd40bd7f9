"""`EvalSpec`: one evaluator registered by an eval file, and the dataset its `data` reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.declarations import DeclarationError

OPTION_NAMES = ("max_regression",)


@dataclass(frozen=True)
class EvalDataset:
    """The dataset an evaluator reads: `init_dataset(project, name)` (or by project id / dataset id)."""

    project_name: str | None
    dataset_name: str | None
    project_id: str | None = None
    dataset_id: str | None = None


@dataclass(frozen=True)
class EvalSpec:
    """An evaluator of an eval file; `name` is the SDK's eval name (its project name, plus
    ` [experiment_name=...]` when one is set), the prefix of `<name>/experiment`."""

    name: str
    project_name: str
    file: Path
    dataset: EvalDataset | None
    experiment_name: str | None = None
    max_regression: float | None = None  # a score falling more than this fails `no_score_regression`
    file_digest: str = ""
    evaluator: Any = field(default=None, compare=False, repr=False)  # the SDK's `Evaluator` (the run uses it)


def parse_options(raw: object, eval_name: str) -> dict[str, object]:
    """A file's module-level `dagster = {...}` (one dict for every eval, or keyed by eval name)."""
    if not isinstance(raw, dict):
        return {}
    if eval_name in raw and isinstance(raw[eval_name], dict):
        raw = raw[eval_name]
    elif any(isinstance(v, dict) for v in raw.values()):
        return {}
    options = {k: v for k, v in raw.items() if k in OPTION_NAMES}
    value = options.get("max_regression")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
        raise DeclarationError(f"eval {eval_name!r}: max_regression must be a number in [0, 1], got {value!r}",
                               fix="set dagster = {'max_regression': 0.05} (a score may fall 5 points), or leave it out")
    return options
