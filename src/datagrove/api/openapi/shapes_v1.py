"""Shapes of Domo's public API (``/oauth/token``, ``/v1/...``) as Datagrove renders them.

Documentation only (see ``spec.py``). Each mirrors a renderer: ``api/render.py`` (datasets,
streams, executions, query answers) and the route modules of ``api/public_v1``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from datagrove.api.openapi.shapes_common import Schema

Nullable = Any  # a value of the column's type, or null


# --- requests -------------------------------------------------------------------------------------


class DatasetCreate(BaseModel):
    name: str = Field(description="The dataset's name.")
    description: str | None = None
    schema_: Schema | None = Field(None, alias="schema", description="The columns; none: an empty schema.")


class DatasetUpdate(BaseModel):
    """Every field optional; ``owner.id`` 0 (Java's default) means unchanged."""

    name: str | None = None
    description: str | None = None
    schema_: Schema | None = Field(None, alias="schema", description="A new schema (the rows are kept).")
    owner: dict[str, int] | None = Field(None, description='{"id": <user id>}: a new owner.')
    pdpEnabled: bool | None = None


class QueryRequest(BaseModel):
    sql: str = Field(description="MySQL-flavoured SQL; the dataset is the table named `table`.")
    version: str | None = Field(None, description="A version id (GET .../versions): read that version.")
    engine: Literal["local", "distributed"] | None = Field(
        None, description="Where the query runs (as the engine URL parameter); unset: the server chooses."
    )


class StreamDataSet(BaseModel):
    name: str
    description: str | None = None
    schema_: Schema | None = Field(None, alias="schema")


class StreamCreate(BaseModel):
    dataSet: StreamDataSet
    updateMethod: Literal["APPEND", "REPLACE"] | None = Field(None, description="Default APPEND.")


class StreamUpdate(BaseModel):
    updateMethod: Literal["APPEND", "REPLACE"] | None = None


class ExecutionCreate(BaseModel):
    updateMethod: Literal["APPEND", "REPLACE"] | None = Field(
        None, description="Overrides the stream's update method for this execution."
    )


class UserWrite(BaseModel):
    name: str | None = Field(None, description="Required on create.")
    email: str | None = Field(None, description="Required on create; unique.")
    role: Literal["Admin", "Privileged", "Editor", "Participant"] | None = Field(
        None, description="Default Participant."
    )
    roleId: Literal[1, 2, 3, 4] | None = Field(None, description="Domo's role id, in place of role.")
    password: str | None = Field(
        None,
        description="Write-only (beyond Domo): the password for signing in to the web interface, "
        "stored as an Argon2 hash and never returned; null removes it.",
        json_schema_extra={"writeOnly": True},
    )


class GroupWrite(BaseModel):
    name: str | None = Field(None, description="Required on create.")
    active: bool | None = None
    default: bool | None = None


class PolicyFilter(BaseModel):
    column: str
    values: list[str] = []
    operator: Literal[
        "EQUALS",
        "NOT_EQUALS",
        "GREATER_THAN",
        "LESS_THAN",
        "GREATER_THAN_EQUAL",
        "LESS_THAN_EQUAL",
        "BETWEEN",
        "LIKE",
        "BEGINS_WITH",
    ]
    not_: bool = Field(False, alias="not")


class PolicyWrite(BaseModel):
    """On PUT every field is optional and only those given change."""

    name: str | None = None
    type: Literal["user", "system", "open"] | None = None
    filters: list[PolicyFilter] | None = None
    users: list[int] | None = None
    virtualUsers: list[str] | None = None
    groups: list[int] | None = None


class AccountType(BaseModel):
    id: str = Field(description="The account type, e.g. postgresql.")
    properties: dict[str, str] | None = Field(None, description="The credentials; never shown back.")


class AccountWrite(BaseModel):
    name: str | None = Field(None, description="Required on create.")
    type: AccountType | None = Field(None, description="Required on create.")
    valid: bool | None = None


class Principal(BaseModel):
    id: int


class AccountShare(BaseModel):
    user: Principal | None = None
    group: Principal | None = None
    accessLevel: Literal["CAN_VIEW", "CAN_EDIT"] | None = None


class TokenForm(BaseModel):
    grant_type: Literal["client_credentials"] = "client_credentials"
    scope: str | None = Field(None, description="Space-separated scopes (data, user, audit, account, ...).")


# --- answers --------------------------------------------------------------------------------------


class TokenGrant(BaseModel):
    access_token: str
    token_type: Literal["bearer"]
    expires_in: int = Field(description="Seconds.")
    scope: str
    customer: str
    env: str
    userId: int
    role: str
    jti: str


class Owner(BaseModel):
    id: int
    name: str


class Dataset(BaseModel):
    id: str
    name: str
    description: str
    rows: int
    columns: int
    schema_: Schema | None = Field(None, alias="schema", description="Left out of lists.")
    owner: Owner
    createdAt: datetime
    updatedAt: datetime
    pdpEnabled: bool
    policies: list[Any]
    dataCurrentAt: datetime | None = Field(None, description="When data was last imported; absent before.")


class Stream(BaseModel):
    id: int
    dataSet: Dataset
    updateMethod: Literal["APPEND", "REPLACE"]
    createdAt: datetime
    modifiedAt: datetime


class DeletedDataSet(BaseModel):
    id: str
    name: str
    description: str


class StreamTombstone(BaseModel):
    """A stream whose dataset was deleted."""

    id: int
    dataSet: DeletedDataSet
    updateMethod: Literal["APPEND", "REPLACE"]
    createdAt: datetime
    modifiedAt: datetime
    deleted: Literal[True]


class PartReceipt(BaseModel):
    id: int
    rows: int
    bytes: int
    checksum: str | None


class Execution(BaseModel):
    id: int
    startedAt: datetime
    currentState: Literal["ACTIVE", "COMMITTING", "SUCCESS", "ERROR", "ABORTED"]
    createdAt: datetime
    modifiedAt: datetime
    updateMethod: Literal["APPEND", "REPLACE"]
    rows: int
    bytes: int
    endedAt: datetime | None = None
    errorMessage: str | None = None
    part: PartReceipt | None = Field(None, description="After a part upload: that part.")


class ColumnMetadata(BaseModel):
    type: str
    dataSourceId: str
    maxLength: int
    minLength: int
    periodIndex: int


class ColumnarResult(BaseModel):
    """A query's answer column-wise: ``rows`` are arrays in ``columns`` order."""

    datasource: str
    columns: list[str]
    metadata: list[ColumnMetadata]
    rows: list[list[Nullable]]
    numRows: int
    numColumns: int
    fromcache: bool | None = Field(None, description="Product API only: always false.")


class Version(BaseModel):
    version: str = Field(description="The version id (an Iceberg snapshot id) as a string.")
    createdAt: datetime
    operation: str
    rowsAdded: int | None
    rowsRemoved: int | None
    rows: int | None
    current: bool
    madeBy: dict[str, Any] | None = Field(description="{kind, id, userId}: what made it, when known.")


class PolicyFilterOut(BaseModel):
    column: str
    values: list[str]
    operator: str
    not_: bool = Field(alias="not")


class Policy(BaseModel):
    id: int
    type: Literal["user", "system", "open"]
    name: str
    filters: list[PolicyFilterOut]
    users: list[int]
    virtualUsers: list[str]
    groups: list[int]


class GroupRef(BaseModel):
    id: int
    name: str


class User(BaseModel):
    id: int
    name: str
    email: str
    role: Literal["Admin", "Privileged", "Editor", "Participant"]
    roleId: Literal[1, 2, 3, 4]
    createdAt: datetime
    updatedAt: datetime
    groups: list[GroupRef]


class Group(BaseModel):
    id: int
    name: str
    active: bool
    default: bool
    creatorId: int | None
    memberCount: int


class AccountTypeOut(BaseModel):
    id: str
    properties: dict[str, Literal["********"]]


class Account(BaseModel):
    id: str = Field(description="A number, as a string.")
    name: str
    valid: bool
    type: AccountTypeOut


class AuditEntry(BaseModel):
    userName: str
    userId: int | None
    userType: str
    actorId: int | None
    actorType: str
    objectName: str
    objectId: str
    objectType: str
    additionalComment: str
    time: int = Field(description="Epoch milliseconds.")
    eventText: str
    device: str
    browserDetails: str
    ipAddress: str
