"""Every write route of the protocol, refused: 405 with where to write instead.

Writes keep one path, the Stream API (and imports), with its validation, exactly-once commits and
activity log; a second path through the catalog would bypass all three. The caller must still be
signed in: an anonymous request learns nothing, not even that writes are refused.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends

from datagrove.api.iceberg_rest.errors import PREFIX, IcebergRoute
from datagrove.api.iceberg_rest.security import catalog_actor as current_actor
from datagrove.domain import Actor
from datagrove.errors import MethodNotAllowed

router = APIRouter(prefix=PREFIX, route_class=IcebergRoute)

NS = "/v1/namespaces/{namespace}"
# (method, path, the protocol's operation): the protocol's write operations, all of them.
WRITES = [
    ("POST", "/v1/namespaces", "createNamespace"),
    ("DELETE", NS, "dropNamespace"),
    ("POST", NS + "/properties", "updateProperties"),
    ("POST", NS + "/tables", "createTable"),
    ("POST", NS + "/register", "registerTable"),
    ("POST", NS + "/tables/{table}", "updateTable"),
    ("DELETE", NS + "/tables/{table}", "dropTable"),
    ("POST", NS + "/tables/{table}/unregister", "unregisterTable"),
    ("POST", "/v1/tables/rename", "renameTable"),
    ("POST", "/v1/transactions/commit", "commitTransaction"),
    ("POST", NS + "/views", "createView"),
    ("POST", NS + "/views/{view}", "replaceView"),
    ("DELETE", NS + "/views/{view}", "dropView"),
    ("POST", "/v1/views/rename", "renameView"),
    ("POST", NS + "/register-view", "registerView"),
]

MESSAGE = (
    "this Iceberg catalog is read-only ({operation} refused): create datasets and write their rows "
    "through Datagrove's DataSet and Stream APIs (/v1/datasets, /v1/streams), which validate, "
    "commit exactly once and record the activity log"
)


def _refusal(operation: str) -> Callable[..., None]:
    def refuse(actor: Actor = Depends(current_actor)) -> None:
        raise MethodNotAllowed(MESSAGE.format(operation=operation))

    refuse.__name__ = operation
    return refuse


for _method, _path, _operation in WRITES:
    router.add_api_route(_path, _refusal(_operation), methods=[_method], include_in_schema=False)
