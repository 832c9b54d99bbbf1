"""Shapes of Domo's product API (``/api/...``) as Datagrove renders them.

Documentation only (see ``spec.py``). Each mirrors a route module of ``api/product``: times of
datasources in epoch milliseconds, of streams and executions in epoch seconds.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from datagrove.api.openapi.shapes_common import Schema

Level = Literal["OWNER", "CO_OWNER", "CAN_SHARE", "CAN_EDIT", "CAN_VIEW"]


# --- requests -------------------------------------------------------------------------------------


class DataSourceCreate(BaseModel):
    dataSourceName: str
    dataSourceDescription: str | None = None
    description: str | None = Field(None, description="In place of dataSourceDescription.")
    schema_: Schema | None = Field(None, alias="schema")
    userDefinedType: str | None = Field(None, description="Accepted, not stored.")
    dataProviderType: str | None = Field(None, description="Accepted, not stored.")


class PermissionWrite(BaseModel):
    type: Literal["USER", "GROUP"]
    id: int = Field(description="The user's or group's id (a numeric string is accepted too).")
    accessLevel: Literal["CO_OWNER", "CAN_SHARE", "CAN_EDIT", "CAN_VIEW", "READ", "WRITE", "NONE"] = Field(
        description="The level to give; NONE removes the principal's grant. READ and WRITE are read "
        "as CAN_VIEW and CAN_EDIT."
    )


class ShareEntry(BaseModel):
    type: Literal["USER", "GROUP"]
    id: int
    accessLevel: Literal["CO_OWNER", "CAN_SHARE", "CAN_EDIT", "CAN_VIEW", "READ", "WRITE"]


class ShareRequest(BaseModel):
    permissions: list[ShareEntry]
    sendEmail: bool | None = Field(None, description="Accepted and ignored (no mail is sent).")
    message: str | None = Field(None, description="Accepted and ignored.")


class ProductQueryRequest(BaseModel):
    sql: str = Field(description="MySQL-flavoured SQL; the dataset is the table named `table`.")
    version: str | int | None = Field(None, description="A version id: read that version.")
    engine: Literal["local", "distributed"] | None = Field(
        None, description="Where the query runs (as the engine URL parameter); unset: the server chooses."
    )


class OneRowAppend(BaseModel):
    values: str = Field(description="One row as delimited text, in the dataset's column order.")
    delimiter: str | None = Field(None, description="One character; default ','.")


class UploadOpen(BaseModel):
    action: Literal["APPEND", "REPLACE"] | None = Field(None, description="null: decided at commit.")
    appendId: str | None = Field(None, description="Accepted and ignored.")
    message: str | None = Field(None, description="Accepted and ignored.")


class UploadCommit(BaseModel):
    action: Literal["APPEND", "REPLACE"] | None = None
    index: bool | None = Field(None, description="Accepted; committed data is queryable at once.")


class StreamSource(BaseModel):
    name: str
    description: str | None = None


class ProductStreamCreate(BaseModel):
    """A push stream; a ``dataProvider.key`` with a transport other than API makes a connector stream."""

    dataSource: StreamSource
    updateMethod: Literal["APPEND", "REPLACE"] | None = Field(None, description="Default REPLACE.")
    schemaDefinition: Schema | None = None
    dataProvider: dict[str, Any] | None = Field(None, description='{"key": "postgresql"}: a connector.')
    transport: dict[str, Any] | None = Field(None, description='{"type": "CONNECTOR"} for a connector.')
    configuration: list[dict[str, Any]] | None = Field(
        None, description="A connector's settings: [{category, name, type, value}]."
    )
    account: dict[str, Any] | None = Field(None, description='{"id": <account id>}: its credentials.')
    advancedScheduleJson: str | None = Field(None, description="A schedule as JSON text.")


class ProductStreamUpdate(BaseModel):
    """A partial Stream; keys other than these are ignored (clients PUT back what they read)."""

    updateMethod: Literal["APPEND", "REPLACE"] | None = None
    schemaDefinition: Schema | None = None
    dataSource: StreamSource | None = None
    configuration: list[dict[str, Any]] | None = None
    account: dict[str, Any] | None = None
    advancedScheduleJson: str | None = None


class ProductExecutionCreate(BaseModel):
    runType: str | None = Field(None, description="Accepted and ignored.")
    action: str | None = Field(None, description="The seed document's form; ignored.")
    updateMethod: Literal["APPEND", "REPLACE"] | None = None


class TokenCreate(BaseModel):
    name: str
    ownerId: int | None = Field(None, description="Default: the caller.")
    expires: int | None = Field(None, description="Epoch milliseconds; null: never.")


# --- answers --------------------------------------------------------------------------------------


class DataSourceOwner(BaseModel):
    id: str
    name: str
    type: Literal["USER"]
    group: bool


class DataSourceV3(BaseModel):
    """The v3 DataSource; ``accessLevel`` and ``schema`` only when their part is asked for."""

    id: str
    name: str
    type: Literal["API"]
    status: Literal["active"] = Field(description="The seed document's value; the real state is `state`.")
    details: dict[str, int] = Field(description="{rows, columns}.")
    properties: dict[str, Any] = Field(description="{rows, columns, formulas}.")
    description: str | None = Field(None, description="Left out when empty.")
    owner: DataSourceOwner
    rowCount: int
    columnCount: int
    created: int | None
    lastTouched: int | None
    lastUpdated: int | None
    state: str
    streamId: int | None = None
    permissions: str = Field(description="The caller's rights, e.g. READ_WRITE_DELETE_SHARE_ADMIN.")
    currentUserFullAccess: bool
    accessLevel: Level | None = None
    schema_: Schema | None = Field(None, alias="schema")


class DataSourceV2(BaseModel):
    dataSourceId: str
    dataSourceName: str
    dataSourceDescription: str
    dataSourceType: str
    rowCount: int
    columnCount: int
    responsibleUserId: int
    created: int | None
    lastModified: int | None
    lastUpdated: int | None


class DataSourceCreated(BaseModel):
    dataSource: DataSourceV2


class PermissionEntry(BaseModel):
    type: Literal["USER", "GROUP"]
    id: str
    accessLevel: Level
    name: str


class PermissionList(BaseModel):
    list: list[PermissionEntry]
    totalUserCount: int
    totalGroupCount: int | None = Field(None, description="Datasets only.")


class ProductExecutionError(BaseModel):
    id: None
    streamId: int
    executionId: int
    category: str
    code: str | None
    message: str
    invalidatesExecution: bool
    parameters: dict[str, Any]


class ProductExecution(BaseModel):
    """Domo's execution object (the seed's ``status: "started"`` beside it when just created)."""

    streamId: int
    executionId: int
    startedAt: int | None
    endedAt: int | None
    updateMethod: Literal["APPEND", "REPLACE"]
    currentState: Literal["ACTIVE", "SUCCESS", "ERROR"]
    runType: str
    createdAt: int | None
    modifiedAt: int | None
    rowsInserted: int
    bytesInserted: int
    startedBy: str | None
    retryCount: int
    errors: list[ProductExecutionError]
    status: Literal["started"] | None = Field(None, description="Only in the answer that starts it.")


class HistoryEntry(BaseModel):
    streamId: int
    executionId: int
    status: Literal["completed", "failed", "running", "aborted"]
    currentState: Literal["ACTIVE", "SUCCESS", "ERROR"]
    rowsInserted: int
    bytesInserted: int
    startedAt: int | None
    endedAt: int | None
    updateMethod: Literal["APPEND", "REPLACE"]
    runType: str
    duration: float | None = Field(None, description="Seconds, once ended.")
    error: str | None = None


class ProductStream(BaseModel):
    """A Stream with the keys ``fields`` asks for: by default the seed's summary (id, userId, name,
    displayName, type, dataProviderType, valid, status); ``fields=all`` the full object."""

    id: int | None = None
    userId: int | None = None
    name: str | None = None
    displayName: str | None = None
    type: str | None = None
    dataProviderType: str | None = None
    valid: bool | None = None
    status: str | None = Field(None, description="active, created or deleted.")
    deleted: bool | None = Field(None, description="True when its dataset was deleted.")
    updateMethod: str | None = None
    dataSource: dict[str, Any] | None = None
    schemaDefinition: dict[str, Any] | None = None
    transport: dict[str, Any] | None = None
    dataProvider: dict[str, Any] | None = None
    configuration: list[dict[str, Any]] | None = None
    lastExecution: ProductExecution | None = None
    currentExecution: ProductExecution | None = None
    currentExecutionState: str | None = None
    createdAt: int | None = None
    modifiedAt: int | None = None


class UploadSession(BaseModel):
    dataSourceId: str
    uploadId: int
    requestedAsOf: int | None


class UploadPart(BaseModel):
    uploadStatus: Literal["SUCCESS"]
    uploadMessage: str
    dataSourceId: str
    uploadId: int
    partId: int
    rows: int
    bytes: int
    checksum: str | None


class UploadSize(BaseModel):
    rowCount: int
    columnCount: int
    numberOfBytes: int
    partCount: int


class UploadCommitted(BaseModel):
    dataSourceId: str
    uploadId: int
    dataTag: None
    status: str
    size: UploadSize
    indexing: dict[str, bool]
    updateMethod: Literal["APPEND", "REPLACE"]


class UploadAborted(BaseModel):
    dataSourceId: str
    uploadId: int
    status: str


class TokenRecord(BaseModel):
    id: int
    name: str
    ownerId: int
    expires: int | None
    created: int | None


class TokenIssued(TokenRecord):
    token: str = Field(description="The token's value, shown this once (only its digest is stored).")


class ProductAccount(BaseModel):
    id: int
    accountId: int
    name: str
    displayName: str
    userId: int
    type: str
    dataProviderType: str
    valid: bool
    createdAt: int | None
    createdBy: int
    modifiedAt: int | None
    modifiedBy: int
    credentialsType: str
    configurations: dict[str, str]
