"""Loading eval files: the SDK's lazy registration, and what each evaluator's `data` reads.

Under `braintrust eval`, `Eval(...)` at module level only registers the evaluator (the SDK's
`framework._set_lazy_load(True)` and its `_evals` registry); the loader runs every file the same
way, so loading a file written for `braintrust eval` evaluates nothing and makes no request.
`init_dataset(...)` is lazy too: its arguments are read back from the closure of the Dataset's
lazy metadata, without calling it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..engine.declarations import register_file_hook
from .spec import EvalDataset, EvalSpec, parse_options


@contextmanager
def collect_evals() -> Iterator[dict[str, Any]]:
    """Run a file's module code inside: the dict fills with the evaluators it registered (by eval name)."""
    from braintrust import framework

    found: dict[str, Any] = {}
    saved = framework._evals.copy()  # noqa: SLF001 - the SDK's registry, as `braintrust eval` uses it
    framework._evals.clear()  # noqa: SLF001
    try:
        with framework._set_lazy_load(True):  # noqa: SLF001
            yield found
        found.update({name: inst.evaluator for name, inst in framework._evals.evaluators.items()})  # noqa: SLF001
    finally:
        framework._evals.clear()  # noqa: SLF001
        framework._evals.evaluators.update(saved.evaluators)  # noqa: SLF001
        framework._evals.reporters.update(saved.reporters)  # noqa: SLF001


def dataset_of(data: Any) -> EvalDataset | None:
    """The dataset an evaluator's `data` is (`init_dataset(...)`), or None (a list, a function...)."""
    from braintrust.logger import Dataset

    if not isinstance(data, Dataset):
        return None
    fn = getattr(getattr(data, "_lazy_metadata", None), "callable", None)
    cells = dict(zip(getattr(getattr(fn, "__code__", None), "co_freevars", ()), getattr(fn, "__closure__", None) or ()))
    value = lambda name: _cell(cells.get(name))  # noqa: E731
    return EvalDataset(
        project_name=value("project"), dataset_name=value("name") or "logs",
        project_id=value("project_id"), dataset_id=value("dataset_id"),
    )


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents if cell is not None else None
    except ValueError:  # an empty cell
        return None


def eval_specs(found: dict[str, Any], path: Path, module_globals: dict[str, Any], text: str) -> list[EvalSpec]:
    """The evaluators a file registered, as `EvalSpec`s (options from its module-level `dagster` dict)."""
    digest = hashlib.sha256(text.encode()).hexdigest()
    specs = []
    for name, evaluator in found.items():
        options = parse_options(module_globals.get("dagster"), name)
        specs.append(EvalSpec(
            name=name, project_name=evaluator.project_name, file=path, dataset=dataset_of(evaluator.data),
            experiment_name=evaluator.experiment_name, max_regression=options.get("max_regression"),  # type: ignore[arg-type]
            file_digest=digest, evaluator=evaluator,
        ))
    return specs


@contextmanager
def eval_file_hook() -> Iterator[Callable[[Path, dict[str, Any], str], list[EvalSpec]]]:
    """The loader's file hook (``engine.declarations.register_file_hook``): a file's ``Eval(...)``
    calls register lazily while it runs, and become ``EvalSpec``s after."""
    with collect_evals() as found:
        yield lambda path, module_globals, text: eval_specs(found, path, module_globals, text)


# Importing this module (the CLI and the Dagster compiler do) makes every pipeline-file load eval-safe.
register_file_hook(eval_file_hook)
