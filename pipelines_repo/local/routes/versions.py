"""Dataset versions: `/v1/dataset_snapshot` (Braintrust's snapshot objects), restore with a preview,
and this plane's own `/local/dataset/{id}/versions` history listing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..store import BadInput
from .common import json_body, object_body, run, store_of


async def snapshot_create(request: Request) -> Response:
    body = object_body(await json_body(request), "dataset_snapshot")
    for key in ("dataset_id", "name", "xact_id"):
        if not body.get(key):
            raise BadInput(f"dataset_snapshot needs `{key}` (see CreateDatasetSnapshot in Braintrust's API)")
    snapshot, existing = await run(
        request, store_of(request).create_snapshot, body["dataset_id"], body["name"], body["xact_id"], body.get("description")
    )
    return JSONResponse(snapshot, headers={"x-bt-found-existing": "true"} if existing else None)


async def snapshot_list(request: Request) -> Response:
    return JSONResponse({"objects": await run(request, store_of(request).list_snapshots, request.query_params.get("dataset_id"))})


async def snapshot_get(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).get_snapshot, request.path_params["id"]))


async def snapshot_patch(request: Request) -> Response:
    body = object_body(await json_body(request), "dataset_snapshot patch")
    return JSONResponse(await run(request, store_of(request).patch_snapshot, request.path_params["id"], body))


async def snapshot_delete(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).delete_snapshot, request.path_params["id"]))


def _version_of(body: dict) -> str:
    version = body.get("version")
    if version is None:
        raise BadInput("restore needs `version`: the xact id to restore the dataset to")
    return str(version)


async def restore_preview(request: Request) -> Response:
    body = object_body(await json_body(request), "restore")
    return JSONResponse(await run(request, store_of(request).restore_preview, request.path_params["id"], _version_of(body)))


async def restore(request: Request) -> Response:
    body = object_body(await json_body(request), "restore")
    return JSONResponse(await run(request, store_of(request).restore, request.path_params["id"], _version_of(body)))


async def history(request: Request) -> Response:
    """Not part of Braintrust's API: every version of a dataset with its counts."""
    return JSONResponse({"versions": await run(request, store_of(request).history, request.path_params["id"])})


ROUTES = [
    Route("/v1/dataset_snapshot", snapshot_create, methods=["POST"]),
    Route("/v1/dataset_snapshot", snapshot_list, methods=["GET"]),
    Route("/v1/dataset_snapshot/{id}", snapshot_get, methods=["GET"]),
    Route("/v1/dataset_snapshot/{id}", snapshot_patch, methods=["PATCH"]),
    Route("/v1/dataset_snapshot/{id}", snapshot_delete, methods=["DELETE"]),
    Route("/v1/dataset/{id}/restore/preview", restore_preview, methods=["POST"]),
    Route("/v1/dataset/{id}/restore", restore, methods=["POST"]),
    Route("/local/dataset/{id}/versions", history, methods=["GET"]),
]
