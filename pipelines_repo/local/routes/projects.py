"""Project routes: `/v1/project` create-or-get, list, get."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .common import json_body, list_args, object_body, run, store_of


async def project_create(request: Request) -> Response:
    body = object_body(await json_body(request), "project")
    return JSONResponse(await run(request, store_of(request).create_project, body.get("name"), body.get("description")))


async def project_list(request: Request) -> Response:
    args = list_args(request)
    store = store_of(request)
    objects = await run(request, store.list_objects, "project", name=request.query_params.get("project_name"), **args)
    return JSONResponse({"objects": objects})


async def project_get(request: Request) -> Response:
    return JSONResponse(await run(request, store_of(request).get_object, "project", request.path_params["id"]))


ROUTES = [
    Route("/v1/project", project_create, methods=["POST"]),
    Route("/v1/project", project_list, methods=["GET"]),
    Route("/v1/project/{id}", project_get, methods=["GET"]),
]
