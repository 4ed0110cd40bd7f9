"""The eval subprocess: `python -m pipelines_repo.evals.worker REQUEST.json RESULT.json` (see `evals.run`)."""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any


def serve_local(db: str) -> tuple[str, str]:
    """Serve the local plane's file on a loopback port in a daemon thread: (URL, key)."""
    import uvicorn

    from ..local.app import create_app
    from ..local.store import LocalStore

    key = "bt-eval-" + secrets.token_urlsafe(12)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(LocalStore(db), api_key=key), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("the local plane did not start within 30 s")
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", key


def _evaluate(request: dict[str, Any]) -> dict[str, Any]:
    import braintrust

    from ..engine.loader import load_declarations
    from . import loading  # noqa: F401 - the eval-safe file hook, so the file registers its Eval(...) lazily
    from .spec import EvalSpec

    loaded = load_declarations(request["file"])
    spec = next(d for d in loaded.declarations if isinstance(d, EvalSpec) and d.name == request["name"])
    ev, ds = spec.evaluator, spec.dataset
    assert ds is not None
    data = braintrust.init_dataset(project=ds.project_name, name=ds.dataset_name, project_id=ds.project_id,
                                   dataset_id=ds.dataset_id, version=request["dataset_version"])
    base_id = request.get("base_experiment_id") or ev.base_experiment_id
    result = braintrust.Eval(
        ev.project_name, data=data, task=ev.task, scores=ev.scores, classifiers=ev.classifiers,
        experiment_name=ev.experiment_name or f"{ds.dataset_name}-{request['dataset_version']}", trial_count=ev.trial_count, metadata=ev.metadata, tags=ev.tags,
        is_public=ev.is_public, timeout=ev.timeout, max_concurrency=ev.max_concurrency, project_id=ev.project_id,
        base_experiment_id=base_id, base_experiment_name=None if base_id else ev.base_experiment_name,
        error_score_handler=ev.error_score_handler, description=ev.description,
    )
    summary = result.summary
    return {
        "experiment_id": summary.experiment_id, "experiment_name": summary.experiment_name,
        "experiment_url": summary.experiment_url, "project_name": summary.project_name,
        "dataset_version": str(request["dataset_version"]), "comparison_status": summary.comparison.status,
        "comparison_experiment_name": summary.comparison_experiment_name,
        "scores": {k: {"score": v.score, "diff": v.diff, "improvements": v.improvements, "regressions": v.regressions}
                   for k, v in (summary.scores or {}).items()},
        "metrics": {k: {"metric": v.metric, "unit": v.unit, "diff": v.diff, "improvements": v.improvements,
                        "regressions": v.regressions} for k, v in (summary.metrics or {}).items()},
        "cases": len(result.results), "errors": sum(1 for r in result.results if r.error),
    }


def main(argv: list[str]) -> int:
    import os

    request = json.loads(Path(argv[0]).read_text())
    if request.get("local_db"):
        url, key = serve_local(request["local_db"])
        for name in ("BRAINTRUST_API_URL", "BRAINTRUST_ORG_NAME", "BRAINTRUST_APP_PUBLIC_URL"):
            os.environ.pop(name, None)
        os.environ.update(BRAINTRUST_APP_URL=url, BRAINTRUST_API_KEY=key)
    Path(argv[1]).write_text(json.dumps(_evaluate(request)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
