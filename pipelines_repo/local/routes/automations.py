"""Project automation routes: `/v1/project_automation` create-or-get (POST), create-or-replace (PUT),
list (filters `project_id`, `project_automation_name`, `ids`, `limit`), and get, patch, delete by id."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import json_body, list_args, object_body, run, store_of


async def automation_create(request: Request) -> Response:
    body = object_body(await json_body(request), "project_automation")
    return JSONResponse(await run(request, store_of(request).create_automation, body))


async def automation_replace(request: Request) -> Response:
    body = object_body(await json_body(request), "project_automation")
    return JSONResponse(await run(request, store_of(request).create_automation, body, replace=True))


async def automation_list(request: Request) -> Response:
    q, args = request.query_params, list_args(request)
    objects = await run(request, store_of(request).list_automations, project_id=q.get("project_id"),
                        name=q.get("project_automation_name"), **args)
    return JSONResponse({"objects": objects})


async def automation_get(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).get_automation, request.path_params["id"]))


async def automation_patch(request: Request) -> Response:
    body = object_body(await json_body(request), "project_automation patch")
    return JSONResponse(await run(request, store_of(request).patch_automation, request.path_params["id"], body))


async def automation_delete(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).delete_automation, request.path_params["id"]))


ROUTES = [
    Route("/v1/project_automation", automation_create, methods=["POST"]),
    Route("/v1/project_automation", automation_replace, methods=["PUT"]),
    Route("/v1/project_automation", automation_list, methods=["GET"]),
    Route("/v1/project_automation/{id}", automation_get, methods=["GET"]),
    Route("/v1/project_automation/{id}", automation_patch, methods=["PATCH"]),
    Route("/v1/project_automation/{id}", automation_delete, methods=["DELETE"]),
]
