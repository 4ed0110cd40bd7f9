"""Experiment routes: `/v1/experiment` create, list, get, patch, delete, summarize, and the app's base lookup.

The experiment's rows (`/logs3`, insert, fetch, feedback) are served by `routes.logs`. The SDK
reads the summarize answer strictly (docs/BT_COMPAT.md §A.12): it must carry exactly the keys
`ScoreSummary`/`MetricSummary` accept.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..store import ORG_NAME, BadInput, NotFound
from .common import error, json_body, list_args, object_body, run, store_of


async def experiment_create(request: Request) -> Response:
    body = object_body(await json_body(request), "experiment")
    if body.get("metadata") is not None and not isinstance(body["metadata"], dict):
        raise BadInput("experiment metadata must be a JSON object")
    return JSONResponse(await run(request, store_of(request).create_experiment, body))


async def experiment_list(request: Request) -> Response:
    q = request.query_params
    args = list_args(request)
    objects = await run(
        request, store_of(request).list_experiments, name=q.get("experiment_name"), project_id=q.get("project_id"),
        project_name=q.get("project_name"), **args,
    )
    return JSONResponse({"objects": objects})


async def experiment_get(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).get_experiment, request.path_params["id"]))


async def experiment_patch(request: Request) -> Response:
    body = object_body(await json_body(request), "experiment patch")
    return JSONResponse(await run(request, store_of(request).patch_experiment, request.path_params["id"], body))


async def experiment_delete(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).delete_experiment, request.path_params["id"]))


async def experiment_summarize(request: Request) -> Response:
    q = request.query_params
    summary = await run(
        request, store_of(request).summarize_experiment, request.path_params["id"],
        summarize_scores=q.get("summarize_scores", "true").lower() != "false",
        comparison_id=q.get("comparison_experiment_id") or None,
    )
    base = str(request.base_url).rstrip("/")
    project_url = f"{base}/app/{ORG_NAME}/p/{quote(summary['project_name'])}"
    return JSONResponse({
        **summary, "project_url": project_url,
        "experiment_url": f"{project_url}/experiments/{quote(summary['experiment_name'])}",
    })


async def base_experiment_get_id(request: Request) -> Response:
    """`POST /api/base_experiment/get_id {"id"}`: the experiment's default comparison, or 400 when none."""
    body = object_body(await json_body(request), "base_experiment")
    store = store_of(request)
    try:
        experiment = await run(request, store.get_experiment, str(body.get("id")))
    except NotFound:
        return error(400, f"experiment {body.get('id')!r} not found")
    base = await run(request, store.base_experiment, experiment)
    if base is None:
        return error(400, "the experiment has no base experiment")
    return JSONResponse({"base_exp_id": base["id"], "base_exp_name": base["name"]})


ROUTES = [
    Route("/v1/experiment", experiment_create, methods=["POST"]),
    Route("/v1/experiment", experiment_list, methods=["GET"]),
    Route("/v1/experiment/{id}", experiment_get, methods=["GET"]),
    Route("/v1/experiment/{id}", experiment_patch, methods=["PATCH"]),
    Route("/v1/experiment/{id}", experiment_delete, methods=["DELETE"]),
    Route("/v1/experiment/{id}/summarize", experiment_summarize, methods=["GET"]),
    Route("/api/base_experiment/get_id", base_experiment_get_id, methods=["POST"]),
]
