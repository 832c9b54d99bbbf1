"""The catalog's read routes: config, the one namespace, its tables, loading a table."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from datagrove.api.iceberg_rest.errors import PREFIX, IcebergRoute
from datagrove.api.iceberg_rest.security import catalog_actor as current_actor
from datagrove.api.responses import json_response
from datagrove.domain import Actor
from datagrove.services.table_catalog import TableCatalog

router = APIRouter(prefix=PREFIX, route_class=IcebergRoute)

NS = "/v1/namespaces/{namespace}"
# What this catalog serves (the protocol's ``endpoints`` in the config): clients call nothing else.
ENDPOINTS = [
    "GET /v1/{prefix}/namespaces",
    "GET /v1/{prefix}/namespaces/{namespace}",
    "HEAD /v1/{prefix}/namespaces/{namespace}",
    "GET /v1/{prefix}/namespaces/{namespace}/tables",
    "GET /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "HEAD /v1/{prefix}/namespaces/{namespace}/tables/{table}",
    "POST /v1/{prefix}/namespaces/{namespace}/tables/{table}/metrics",
    "GET /v1/{prefix}/namespaces/{namespace}/views",
]


def _tables(request: Request) -> TableCatalog:
    catalog: TableCatalog = request.app.state.services.table_catalog
    return catalog


@router.get("/v1/config")
def get_config(request: Request, actor: Actor = Depends(current_actor)) -> Response:
    _tables(request).namespaces(actor=actor)  # a token without the 'data' scope reads nothing here
    # No prefix and no overrides: a client's uri is all it needs (the ``warehouse`` it names is ignored).
    return json_response({"defaults": {}, "overrides": {}, "endpoints": ENDPOINTS})


@router.get("/v1/namespaces")
def list_namespaces(
    request: Request, parent: str | None = None, actor: Actor = Depends(current_actor)
) -> Response:
    # One level: the namespace has no children.
    names = [] if parent else _tables(request).namespaces(actor=actor)
    return json_response({"namespaces": [[name] for name in names]})


@router.get(NS)
def load_namespace(namespace: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    _tables(request).require_namespace(actor=actor, namespace=namespace)
    return json_response({"namespace": [namespace], "properties": {}})


@router.head(NS)
def namespace_exists(namespace: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    _tables(request).require_namespace(actor=actor, namespace=namespace)
    return Response(status_code=204)


@router.get(NS + "/tables")
def list_tables(namespace: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    names = _tables(request).list_tables(actor=actor, namespace=namespace)
    return json_response({"identifiers": [{"namespace": [namespace], "name": name} for name in names]})


@router.get(NS + "/tables/{table}")
def load_table(
    namespace: str, table: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    loaded = _tables(request).load_table(actor=actor, namespace=namespace, name=table)
    body: dict[str, Any] = {
        "metadata-location": loaded.metadata_location,
        "metadata": loaded.metadata,
        "config": loaded.config,
    }
    if loaded.config:
        # The newer form of the same: credentials for the files under the table's location.
        body["storage-credentials"] = [{"prefix": loaded.metadata["location"], "config": loaded.config}]
    return json_response(body)


@router.head(NS + "/tables/{table}")
def table_exists(
    namespace: str, table: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    _tables(request).require_table(actor=actor, namespace=namespace, name=table)
    return Response(status_code=204)


@router.post(NS + "/tables/{table}/metrics")
def report_metrics(
    namespace: str, table: str, request: Request, actor: Actor = Depends(current_actor)
) -> Response:
    # Engines report scan metrics after reading; accepted and not kept (the query log is Datagrove's own).
    _tables(request).require_namespace(actor=actor, namespace=namespace)
    return Response(status_code=204)


@router.get(NS + "/views")
def list_views(namespace: str, request: Request, actor: Actor = Depends(current_actor)) -> Response:
    _tables(request).require_namespace(actor=actor, namespace=namespace)
    return json_response({"identifiers": []})
