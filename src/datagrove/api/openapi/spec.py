"""The vocabulary the operation descriptions are written in: an operation, its parameters, body and
replies.

Most routes read a raw ``Request`` and answer a custom ``Response`` (lenient bodies for Domo's
clients, streamed answers), so FastAPI cannot infer what they take and give. Each operation is
therefore described here, beside the routes rather than inside them, keyed by method and path;
``document.py`` lays these descriptions over the document FastAPI derives from the routes (which
still gives the path parameters and their bounds). Schemas are pydantic types (``shapes_*.py``)
written for documentation only: the routes never validate with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

JSON = "application/json"
CSV = "text/csv"
GZIP = "application/gzip"
FORM = "application/x-www-form-urlencoded"

#: Who may call: a token (OAuth bearer or developer token), nobody in particular, or an OAuth
#: client with HTTP Basic (the token endpoint).
Auth = Literal["token", "none", "client"]


@dataclass(frozen=True)
class Param:
    """A query or header parameter (path parameters come from the routes themselves)."""

    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    where: Literal["query", "header"] = "query"
    required: bool = False
    example: Any = None


@dataclass(frozen=True)
class Content:
    """One media type of a body: its schema (a pydantic type, or a JSON schema as a dict) and example."""

    schema: Any
    example: Any
    media_type: str = JSON


@dataclass(frozen=True)
class Body:
    content: tuple[Content, ...]
    description: str = ""
    required: bool = True


@dataclass(frozen=True)
class Reply:
    """A successful answer. ``content`` empty: no body (204)."""

    status: int
    description: str
    content: tuple[Content, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    operation_id: str
    replies: tuple[Reply, ...]
    description: str = ""
    params: tuple[Param, ...] = ()
    body: Body | None = None
    #: The error statuses this operation can answer, each with the error envelope (401 is added
    #: for every operation that needs a credential).
    errors: tuple[int, ...] = (400, 403, 404)
    auth: Auth = "token"


def json_body(schema: Any, example: Any, description: str = "", *, required: bool = True) -> Body:
    return Body((Content(schema, example),), description, required)


def ok(schema: Any, example: Any, description: str = "OK", *, status: int = 200) -> tuple[Reply, ...]:
    return (Reply(status, description, (Content(schema, example),)),)


def no_content(description: str = "Done; no body.") -> tuple[Reply, ...]:
    return (Reply(204, description),)


INTEGER = {"type": "integer", "minimum": 0}
BOOLEAN_TEXT = {"type": "string", "enum": ["true", "false"]}

LIMIT = Param("limit", "Page size.", INTEGER, example=50)
OFFSET = Param("offset", "Items to skip.", INTEGER, example=0)
PAGE = (LIMIT, OFFSET)
