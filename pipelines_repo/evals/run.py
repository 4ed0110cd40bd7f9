"""Running one evaluator pinned to a dataset version, in a subprocess (the SDK's state is process-global).

`run_eval` writes a request file, runs `python -m pipelines_repo.evals.worker REQUEST RESULT`
and reads the result. The worker loads the eval file (lazily, as at load), rebuilds the
evaluator's data as `init_dataset(..., version=V)` and calls the SDK's own `Eval(...)` with the
evaluator's task, scorers and settings, comparing with `base_experiment_id` (the previous
version's experiment). On the local plane (no `BRAINTRUST_API_KEY`) the worker serves the
plane's SQLite file on a loopback port for the run, with a one-off key, and points the SDK at it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.errors import PipelineError
from ..settings import REPO_ROOT, ApiSettings, local_db_path
from .spec import EvalSpec


class EvalRunError(PipelineError, RuntimeError):
    """The eval's subprocess failed (the message carries the end of its output)."""


@dataclass
class EvalRun:
    """What an experiment run reports: the SDK's summary (scores and metrics as plain dicts)."""

    experiment_id: str
    experiment_name: str
    experiment_url: str | None
    project_name: str
    dataset_version: str
    comparison_status: str
    comparison_experiment_name: str | None = None
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> score, diff, improvements, regressions
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> metric, unit, diff, ...
    cases: int = 0
    errors: int = 0
    output: str = ""


def run_eval(
    spec: EvalSpec, *, dataset_version: str, base_experiment_id: str | None = None,
    settings: ApiSettings | None = None, local_db: Path | None = None, timeout: float = 3600,
) -> EvalRun:
    """Run `spec` on the dataset as of `dataset_version` against the configured plane."""
    settings = settings or ApiSettings.from_env()
    request = {
        "file": os.fspath(spec.file), "name": spec.name, "dataset_version": str(dataset_version),
        "base_experiment_id": base_experiment_id,
        "local_db": os.fspath(local_db or local_db_path()) if settings.plane == "local" else None,
    }
    env = dict(os.environ)
    if settings.plane == "braintrust":  # the resource's settings win over the environment's
        env.update({k: v for k, v in (("BRAINTRUST_API_KEY", settings.api_key), ("BRAINTRUST_API_URL", settings.api_url),
                                      ("BRAINTRUST_APP_URL", settings.app_url), ("BRAINTRUST_ORG_NAME", settings.org_name)) if v})
    env.setdefault("BRAINTRUST_DISABLE_ATEXIT_FLUSH", "1")  # Eval flushes; nothing is left at exit
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.fspath(REPO_ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryDirectory(prefix="bt-eval-") as tmp:
        req_path, out_path = Path(tmp) / "request.json", Path(tmp) / "result.json"
        req_path.write_text(json.dumps(request))
        proc = subprocess.run(
            [sys.executable, "-m", "pipelines_repo.evals.worker", os.fspath(req_path), os.fspath(out_path)],
            env=env, capture_output=True, text=True, timeout=timeout, cwd=spec.file.parent,
        )
        output = (proc.stdout + proc.stderr)[-4000:]
        if proc.returncode != 0 or not out_path.exists():
            raise EvalRunError(f"eval {spec.name!r} failed (exit {proc.returncode}):\n{output}", path=spec.file,
                               fix="Fix the eval's task or scorers; run it with `braintrust eval` to debug.")
        result = json.loads(out_path.read_text())
    return EvalRun(**result, output=output)
