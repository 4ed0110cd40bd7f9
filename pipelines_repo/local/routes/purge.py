"""This plane's own purge route (not part of Braintrust's API, which purges deletes on its side):

    POST /local/project_logs/{id}/purge   {"before": ISO} or {"ids": [...]}
    POST /local/dataset/{id}/purge        same
    POST /local/experiment/{id}/purge     {} : every row of an experiment already deleted (DELETE /v1/experiment/{id})

Removes every stored version of rows already deleted through ``_object_delete`` and shrinks the
file (``local.store.purge``). Answers the counts and the file size before and after.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..store.purge import purge_deleted, purge_experiment
from .common import json_body, object_body, run, store_of


def _endpoint(kind: str):
    async def purge(request: Request) -> Response:
        body = object_body(await json_body(request), "purge")
        result = await run(
            request, purge_deleted, store_of(request), kind, request.path_params["id"],
            before=body.get("before"), ids=body.get("ids"),
        )
        return JSONResponse(result)

    return purge


async def experiment_purge(request: Request) -> Response:
    return JSONResponse(await run(request, purge_experiment, store_of(request), request.path_params["id"]))


ROUTES = [
    Route("/local/project_logs/{id}/purge", _endpoint("project_logs"), methods=["POST"]),
    Route("/local/dataset/{id}/purge", _endpoint("dataset"), methods=["POST"]),
    Route("/local/experiment/{id}/purge", experiment_purge, methods=["POST"]),
]
