"""``/openapi.json``: an OpenAPI 3.1 document generated from a service's :class:`ApiRoute` declarations and
the shared pydantic models, so routes added later appear without further work."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.routing import BaseRoute

from threadline_shared.routes import ApiRoute

_PATH_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")
REF_TEMPLATE = "#/components/schemas/{model}"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code", "message"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}


def _models(routes: Iterable[ApiRoute]) -> list[type[BaseModel]]:
    seen: dict[str, type[BaseModel]] = {}
    for route in routes:
        candidates = [route.doc.request, *route.doc.responses.values()]
        for model in candidates:
            if model is not None:
                seen.setdefault(model.__name__, model)
    return list(seen.values())


def openapi_document(service: str, version: str, routes: Iterable[BaseRoute]) -> dict[str, Any]:
    api_routes = [route for route in routes if isinstance(route, ApiRoute)]
    models = _models(api_routes)
    _, definitions = models_json_schema([(m, "serialization") for m in models], ref_template=REF_TEMPLATE)
    schemas: dict[str, Any] = dict(definitions.get("$defs", {}))
    # Request models are documented in their validation form.
    request_models = [r.doc.request for r in api_routes if r.doc.request is not None]
    if request_models:
        _, request_defs = models_json_schema(
            [(m, "validation") for m in request_models], ref_template=REF_TEMPLATE
        )
        for name, schema in request_defs.get("$defs", {}).items():
            schemas.setdefault(name, schema)
    schemas["Problem"] = PROBLEM_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for route in api_routes:
        item = paths.setdefault(_PATH_PARAM.sub(r"{\1}", route.path), {})
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            item[method.lower()] = _operation(route, method)
    return {
        "openapi": "3.1.0",
        "info": {"title": f"Threadline {service}", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "SESSION_ID"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def _operation(route: ApiRoute, method: str) -> dict[str, Any]:
    doc = route.doc
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(route.path)
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": dict(schema)}
        for name, schema in doc.query.items()
    ]
    responses: dict[str, Any] = {}
    for status, model in doc.responses.items():
        response: dict[str, Any] = {"description": "success"}
        if model is not None:
            response["content"] = {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}
            }
        responses[str(status)] = response
    responses["default"] = {
        "description": "problem",
        "content": {"application/problem+json": {"schema": {"$ref": REF_TEMPLATE.format(model="Problem")}}},
    }
    operation: dict[str, Any] = {
        "summary": doc.summary,
        "operationId": f"{route.name}_{method.lower()}",
        "responses": responses,
    }
    if doc.tags:
        operation["tags"] = list(doc.tags)
    if parameters:
        operation["parameters"] = parameters
    if doc.request is not None:
        operation["requestBody"] = {
            "required": False,
            "content": {
                "application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=doc.request.__name__)}}
            },
        }
    if doc.auth:
        operation["security"] = [{"session": []}, {"bearer": []}]
    return operation
