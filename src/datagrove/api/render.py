"""Domain records as the JSON objects Domo's clients read (see public-api-clients.md §5.12, §10)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from datagrove.api.responses import dumps
from datagrove.domain import Dataset, Execution, Part, User
from datagrove.errors import BadRequest
from datagrove.services.query import QueryAnswer
from datagrove.services.streams import StreamView, Tombstone
from datagrove.tables.types import Column, ColumnType


def timestamp(value: datetime | None) -> str | None:
    return None if value is None else _timestamp(value)


@functools.lru_cache(maxsize=8192)
def _timestamp(value: datetime) -> str:
    # Polled records show the same few times again and again; strftime was a tenth of a poll.
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def schema(columns: tuple[Column, ...] | list[Column]) -> dict[str, Any]:
    # Exactly {"type", "name"} in that order: pydomo compares schemas by json.dumps equality.
    return {"columns": [{"type": c.type.value, "name": c.name} for c in columns]}


def owner(user: User) -> dict[str, Any]:
    return {"id": user.id, "name": user.name}


def dataset(d: Dataset, *, with_schema: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "rows": d.row_count,
        "columns": len(d.columns),
    }
    if with_schema:
        body["schema"] = schema(d.columns)
    body.update(
        {
            "owner": owner(d.owner),
            "createdAt": timestamp(d.created_at),
            "updatedAt": timestamp(d.updated_at),
            "pdpEnabled": d.pdp_enabled,
            "policies": [],
        }
    )
    if d.data_updated_at is not None:
        body["dataCurrentAt"] = timestamp(d.data_updated_at)
    return body


def stream(view: StreamView) -> dict[str, Any]:
    return {
        "id": view.stream.id,
        "dataSet": dataset(view.dataset),
        "updateMethod": view.stream.update_method.value,
        "createdAt": timestamp(view.stream.created_at),
        "modifiedAt": timestamp(view.stream.modified_at),
    }


def tombstone(t: Tombstone) -> dict[str, Any]:
    """The subset the Stream API shows of a stream whose dataset was deleted."""
    return {
        "id": t.stream.id,
        "dataSet": {"id": t.stream.dataset_id, "name": t.dataset.name, "description": t.dataset.description},
        "updateMethod": t.stream.update_method.value,
        "createdAt": timestamp(t.stream.created_at),
        "modifiedAt": timestamp(t.stream.modified_at),
        "deleted": True,
    }


def execution(e: Execution, *, part: Part | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": e.id,
        "startedAt": timestamp(e.created_at),
        "currentState": e.state.value,
        "createdAt": timestamp(e.created_at),
        "modifiedAt": timestamp(e.modified_at),
        "updateMethod": e.update_method.value,
        "rows": e.rows,
        "bytes": e.bytes,
    }
    if e.ended_at is not None:
        body["endedAt"] = timestamp(e.ended_at)
    if e.error:
        body["errorMessage"] = e.error
    if part is not None:
        body["part"] = {"id": part.part, "rows": part.rows, "bytes": part.bytes, "checksum": part.checksum}
    return body


def query_rows_tail() -> bytes:
    """The end of the seed document's query result, a JSON array of row objects (opened by ``[``)."""
    return b"]"


def query_columns_head(answer: QueryAnswer) -> bytes:
    """The column-wise query result (``{datasource, columns, metadata, rows, numRows, numColumns}``,
    what pydomo and the product API's clients read) up to the opening of ``rows``, whose items
    (arrays) follow as they are produced; ``query_columns_tail`` closes it."""
    head = dumps(
        {
            "datasource": answer.dataset_id,
            "columns": answer.columns,
            "metadata": [
                {
                    "type": t,
                    "dataSourceId": answer.dataset_id,
                    "maxLength": -1,
                    "minLength": -1,
                    "periodIndex": 0,
                }
                for t in answer.types
            ],
        }
    )
    return head[:-1] + b',"rows":['


def query_columns_tail(answer: QueryAnswer, *, extra: dict[str, Any] | None = None) -> bytes:
    """The end of the column-wise result, once every row is out: the counts, then ``extra``."""
    return b"]," + dumps({"numRows": answer.rows, "numColumns": len(answer.columns), **(extra or {})})[1:]


def parse_columns(body: Any) -> list[Column]:
    """``{"columns": [{"type", "name"}, ...]}`` (a schema) into columns; clear errors otherwise."""
    if not isinstance(body, dict) or not isinstance(body.get("columns", []), list):
        raise BadRequest("schema must be an object with a 'columns' list")
    columns = []
    for index, item in enumerate(body.get("columns") or []):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest(f"schema column {index} needs a string 'name' and a 'type'")
        columns.append(Column(name=item["name"], type=ColumnType.parse(item.get("type"))))
    return columns
