"""The OpenAPI 3.1 document: FastAPI's view of the routes with the operation descriptions laid over it.

FastAPI derives the paths, methods and path parameters (with their bounds, e.g. ``PathId``) from
the routes themselves; everything a route cannot declare (query parameters read from the request,
bodies, replies, errors, security) comes from ``operations_v1`` and ``operations_product``. An
operation of the routes that is not described keeps FastAPI's bare entry and is listed by
``undescribed``, which a test keeps empty.
"""

from __future__ import annotations

import warnings
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from datagrove import __version__
from datagrove.api.openapi.operations_ops import OPS_OPERATIONS
from datagrove.api.openapi.operations_product import PRODUCT_OPERATIONS
from datagrove.api.openapi.operations_v1 import V1_OPERATIONS
from datagrove.api.openapi.shapes_common import ERROR_EXAMPLES, Error
from datagrove.api.openapi.spec import Content, Op

OPERATIONS: dict[tuple[str, str], Op] = {**V1_OPERATIONS, **PRODUCT_OPERATIONS, **OPS_OPERATIONS}

DESCRIPTION = """\
Datagrove speaks two API families over the same data:

* **Domo's public API**: `POST /oauth/token` (client credentials) and `/v1/...` (DataSets, Streams,
  Users, Groups, PDP policies, Accounts, the activity log, and versions, a Datagrove addition).
* **Domo's product API**: `/api/...` (datasources, sharing, SQL queries, streams and their
  executions, upload sessions, developer tokens), authenticated with `X-DOMO-Developer-Token`.

Every operation but `/oauth/token` and `/health` needs a credential: `Authorization: bearer <token>`
(a token from `/oauth/token`) or `X-DOMO-Developer-Token: <token>`; either works on both families.

Every error is a JSON object `{status, statusReason, code, message, toe}` (schema `Error`), `toe`
being the request's trace id. Bodies are read leniently, the way Domo's clients send them: unknown
keys are ignored, and paths are also served with a trailing slash where Domo's SDKs use one.
"""

SECURITY_SCHEMES = {
    "oauth2": {
        "type": "oauth2",
        "description": "Client credentials at /oauth/token; send the token as `Authorization: bearer`.",
        "flows": {
            "clientCredentials": {
                "tokenUrl": "/oauth/token",
                "scopes": {
                    "data": "DataSets, Streams, queries, versions, policies",
                    "user": "Users, groups and one's own developer tokens",
                    "audit": "The activity log",
                    "account": "Accounts (connector credentials)",
                    "dashboard": "Accepted (no dashboards in Datagrove)",
                    "workflow": "Accepted (no workflows in Datagrove)",
                    "buzz": "Accepted (no Buzz in Datagrove)",
                },
            }
        },
    },
    "bearer": {"type": "http", "scheme": "bearer", "description": "A token from /oauth/token."},
    "developerToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-DOMO-Developer-Token",
        "description": "A developer token (DDCI...), from POST /api/data/v1/accesstokens or the CLI.",
    },
    "clientBasic": {"type": "http", "scheme": "basic", "description": "An OAuth client's id and secret."},
}
TOKEN_SECURITY: list[dict[str, list[str]]] = [{"oauth2": []}, {"bearer": []}, {"developerToken": []}]

PATH_PARAMETERS = {
    "dataset_id": "The dataset's id (a UUID).",
    "stream_id": "The stream's id.",
    "execution_id": "The execution's id (in the product API's upload routes: the upload id).",
    "upload_id": "The upload session's id (from POST .../uploads).",
    "part_id": "The part's number; parts may be sent in any order and in parallel.",
    "user_id": "The user's id.",
    "group_id": "The group's id.",
    "policy_id": "The PDP policy's id.",
    "version_id": "A version id (from GET /v1/datasets/{dataset_id}/versions).",
    "id": "The account's id.",
    "token_id": "The developer token's id.",
    "kind": "USER or GROUP.",
    "principal_id": "The user's or group's id.",
}


def build(app: FastAPI) -> dict[str, Any]:
    """The whole document for ``app``'s routes."""
    with warnings.catch_warnings():
        # FastAPI names /oauth/token's GET and POST alike; both names are replaced below.
        warnings.filterwarnings("ignore", message="Duplicate Operation ID")
        base = get_openapi(
            title="Datagrove API",
            version=__version__,
            openapi_version="3.1.0",
            description=DESCRIPTION,
            routes=app.routes,
        )
    schemas = _Schemas([*OPERATIONS.values()])
    paths: dict[str, dict[str, Any]] = {}
    for path, item in base.get("paths", {}).items():
        for method, generated in item.items():
            op = OPERATIONS.get((method.upper(), path))
            paths.setdefault(path, {})[method] = (
                generated if op is None else _operation(op, generated.get("parameters", []), schemas)
            )
    return {
        "openapi": "3.1.0",
        "info": base["info"],
        "servers": [{"url": "/", "description": "This server"}],
        "tags": _tags(),
        "paths": paths,
        "components": {
            "schemas": schemas.definitions,
            "responses": _error_responses(),
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def undescribed(document: dict[str, Any]) -> list[str]:
    """``METHOD path`` of each operation in ``document`` that no description covers."""
    return [
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if (method.upper(), path) not in OPERATIONS
    ]


def _operation(op: Op, path_parameters: list[dict[str, Any]], schemas: _Schemas) -> dict[str, Any]:
    parameters = [
        {**p, "description": PATH_PARAMETERS.get(p["name"], p.get("description", ""))}
        for p in path_parameters
        if p.get("in") == "path"
    ]
    for param in op.params:
        entry: dict[str, Any] = {
            "name": param.name,
            "in": param.where,
            "required": param.required,
            "description": param.description,
            "schema": param.schema,
        }
        if param.example is not None:
            entry["example"] = param.example
        parameters.append(entry)
    body: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.operation_id,
        "tags": [op.tag],
    }
    if op.description:
        body["description"] = op.description
    if parameters:
        body["parameters"] = parameters
    if op.body is not None:
        request: dict[str, Any] = {
            "required": op.body.required,
            "content": {c.media_type: schemas.media(c) for c in op.body.content},
        }
        if op.body.description:
            request["description"] = op.body.description
        body["requestBody"] = request
    responses: dict[str, Any] = {}
    for reply in op.replies:
        response: dict[str, Any] = {"description": reply.description}
        if reply.content:
            response["content"] = {c.media_type: schemas.media(c) for c in reply.content}
        if reply.headers:
            response["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in reply.headers.items()
            }
        responses[str(reply.status)] = response
    # Any request can be malformed (400), and any but the open ones can lack a credential (401) or
    # come from an address refused for its failed authentications (429, docs/operations-limits.md).
    errors = sorted({*op.errors, *((400, 401, 429) if op.auth != "none" else ())})
    for status in errors:
        responses[str(status)] = {"$ref": f"#/components/responses/Error{status}"}
    body["responses"] = responses
    body["security"] = {"token": TOKEN_SECURITY, "client": [{"clientBasic": []}], "none": []}[op.auth]
    return body


def _tags() -> list[dict[str, str]]:
    seen: dict[str, None] = {}
    for op in OPERATIONS.values():
        seen.setdefault(op.tag)
    return [{"name": tag} for tag in seen]


def _error_responses() -> dict[str, Any]:
    from http import HTTPStatus

    responses = {}
    for status, example in ERROR_EXAMPLES.items():
        phrase = HTTPStatus(status).phrase
        responses[f"Error{status}"] = {
            "description": f"{phrase}: the error envelope.",
            "headers": _error_headers(status),
            "content": {
                "application/json": {
                    "schema": {"$ref": "#/components/schemas/Error"},
                    "example": {
                        "status": status,
                        "statusReason": phrase,
                        **example,
                        "toe": "5F0C2A9B1D3E4F60",
                    },
                }
            },
        }
    return responses


def _error_headers(status: int) -> dict[str, Any]:
    if status == 401:
        return {"WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Bearer realm="datagrove"'}}
    if status == 429:
        return {
            "Retry-After": {
                "schema": {"type": "integer", "minimum": 1},
                "description": "Seconds to wait before trying again (also details.retryAfterSeconds).",
            }
        }
    return {}


class _Schemas:
    """The JSON schemas of every pydantic type the descriptions name, generated together so that
    shared models become one ``components/schemas`` entry each."""

    def __init__(self, operations: list[Op]) -> None:
        types: dict[int, Any] = {id(Error): Error}
        for op in operations:
            for content in _contents(op):
                if not isinstance(content.schema, dict):
                    types.setdefault(id(content.schema), content.schema)
        generator = GenerateJsonSchema(ref_template="#/components/schemas/{model}")
        generated, definitions = generator.generate_definitions(
            [(key, "validation", TypeAdapter(t).core_schema) for key, t in types.items()]
        )
        self._by_type = {key: generated[(key, "validation")] for key in types}
        self.definitions: dict[str, Any] = dict(sorted(definitions.items()))

    def media(self, content: Content) -> dict[str, Any]:
        schema = content.schema if isinstance(content.schema, dict) else self._by_type[id(content.schema)]
        return {"schema": schema, "example": content.example}


def _contents(op: Op) -> list[Content]:
    found = [c for reply in op.replies for c in reply.content]
    if op.body is not None:
        found.extend(op.body.content)
    return found
