"""Dataset object routes: `/v1/dataset` create-or-get, list, get, patch, delete, summarize.

The dataset's rows are served by `routes.logs`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..store import ORG_NAME, BadInput
from .common import json_body, list_args, object_body, run, store_of


async def dataset_create(request: Request) -> Response:
    body = object_body(await json_body(request), "dataset")
    if not body.get("project_id"):
        raise BadInput("project_id is required to create a dataset: create or look up the project first")
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadInput("dataset metadata must be a JSON object")
    result = await run(
        request, store_of(request).create_dataset,
        body["project_id"], body.get("name"), body.get("description"), metadata, body.get("tags"),
    )
    return JSONResponse(result)


async def dataset_list(request: Request) -> Response:
    q = request.query_params
    objects = await run(
        request, store_of(request).list_objects, "dataset", name=q.get("dataset_name"), project_id=q.get("project_id"),
        project_name=q.get("project_name"), **list_args(request),
    )
    return JSONResponse({"objects": objects})


async def dataset_get(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).get_object, "dataset", request.path_params["id"]))


async def dataset_patch(request: Request) -> Response:
    body = object_body(await json_body(request), "dataset patch")
    return JSONResponse(await run(request, store_of(request).patch_dataset, request.path_params["id"], body))


async def dataset_delete(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).delete_dataset, request.path_params["id"]))


async def dataset_summarize(request: Request) -> Response:
    store = store_of(request)
    dataset = await run(request, store.get_object, "dataset", request.path_params["id"])
    project = await run(request, store.get_object, "project", dataset["project_id"])
    base = str(request.base_url).rstrip("/")
    project_url = f"{base}/app/{ORG_NAME}/p/{project['name']}"
    result: dict[str, Any] = {
        "project_name": project["name"], "dataset_name": dataset["name"],
        "project_url": project_url, "dataset_url": f"{project_url}/datasets/{dataset['name']}",
    }
    if request.query_params.get("summarize_data", "true").lower() != "false":
        result["data_summary"] = {"total_records": await run(request, store.count_rows, "dataset", dataset["id"])}
    return JSONResponse(result)


ROUTES = [
    Route("/v1/dataset", dataset_create, methods=["POST"]),
    Route("/v1/dataset", dataset_list, methods=["GET"]),
    Route("/v1/dataset/{id}", dataset_get, methods=["GET"]),
    Route("/v1/dataset/{id}", dataset_patch, methods=["PATCH"]),
    Route("/v1/dataset/{id}", dataset_delete, methods=["DELETE"]),
    Route("/v1/dataset/{id}/summarize", dataset_summarize, methods=["GET"]),
]
