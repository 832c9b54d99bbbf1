"""The Iceberg REST catalog under ``/iceberg`` (read-only): engines that speak the protocol (Spark,
Trino, PyIceberg, DuckDB, Daft) find and read every dataset the caller may view as an Iceberg
table, with Datagrove's own tokens and permissions. Thin adapters over ``services/table_catalog``;
docs/iceberg-rest.md describes the choices."""

from __future__ import annotations

from datagrove.api.iceberg_rest.reads import router as reads_router
from datagrove.api.iceberg_rest.tokens import router as tokens_router
from datagrove.api.iceberg_rest.writes import router as writes_router

# Each under /iceberg, included by the app one by one (a router inside a router is invisible to
# the route listings the permission matrix and the API description tests walk).
ROUTERS = (tokens_router, reads_router, writes_router)
