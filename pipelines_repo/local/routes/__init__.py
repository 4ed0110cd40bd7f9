"""The local plane's routes, one module per resource; `ROUTES` is the app's route table.

Each endpoint reads the store from `request.app.state.store` (set by `local.app.create_app`).
"""

from __future__ import annotations

from starlette.routing import Route

from . import automations, btql, datasets, experiments, logs, meta, otel, projects, purge, versions

ROUTES: list[Route] = [
    *meta.ROUTES, *projects.ROUTES, *datasets.ROUTES, *versions.ROUTES, *logs.ROUTES, *btql.ROUTES, *otel.ROUTES,
    *automations.ROUTES, *purge.ROUTES, *experiments.ROUTES,
]
