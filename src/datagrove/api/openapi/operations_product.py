"""What each operation of Domo's product API (``/api/...``) takes and gives.

Keyed by method and path as the routes of ``api/product`` declare them.
"""

from __future__ import annotations

from typing import Any

from datagrove.api.openapi import examples as ex
from datagrove.api.openapi import shapes_product as p
from datagrove.api.openapi.operations_v1 import CONTENT_ENCODING, CSV_BODY, ENGINE, UPLOAD_ERRORS, VERSION
from datagrove.api.openapi.shapes_common import EmptyObject
from datagrove.api.openapi.shapes_v1 import ColumnarResult
from datagrove.api.openapi.spec import (
    BOOLEAN_TEXT,
    JSON,
    PAGE,
    Body,
    Content,
    Op,
    Param,
    json_body,
    ok,
)

DATASOURCES = "/api/data/v3/datasources/{dataset_id}"
STREAMS = "/api/data/v1/streams"
FIELDS = Param(
    "fields",
    "Comma-separated Stream keys to answer; `all` for the full object. Default: the seed's summary "
    "(id, userId, name, displayName, type, dataProviderType, valid, status).",
    example="all",
)
ROWS_EXAMPLE = [{"city": "Berlin", "sales": 120}, {"city": "Lisbon", "sales": 75}]
PRODUCT_ACCOUNT = {
    "id": 8,
    "accountId": 8,
    "name": "Warehouse replica",
    "displayName": "Warehouse replica",
    "userId": 1,
    "type": "postgresql",
    "dataProviderType": "postgresql",
    "valid": True,
    "createdAt": 1764581400000,
    "createdBy": 1,
    "modifiedAt": 1764581400000,
    "modifiedBy": 1,
    "credentialsType": "fields",
    "configurations": {"host": "********", "password": "********"},
}

PRODUCT_OPERATIONS: dict[tuple[str, str], Op] = {
    # --- datasources ------------------------------------------------------------------------------
    ("POST", "/api/data/v2/datasources"): Op(
        "Create a dataset (product API)",
        "Datasources",
        "createDataSource",
        ok(p.DataSourceCreated, {"dataSource": ex.DATA_SOURCE_V2}),
        body=json_body(p.DataSourceCreate, {"dataSourceName": "Sales", "schema": ex.SCHEMA}),
        errors=(400, 403, 413),
    ),
    ("GET", DATASOURCES): Op(
        "Get a datasource",
        "Datasources",
        "getDataSource",
        ok(p.DataSourceV3, ex.DATASOURCE),
        "`part=permission` adds accessLevel, `part=schema` adds schema.columns.",
        params=(
            Param("part", "permission and/or schema (repeated or comma-separated).", example="schema"),
            Param("requestedParts", "Same as part."),
            Param("includeAllDetails", "true: every part.", BOOLEAN_TEXT),
        ),
    ),
    ("DELETE", DATASOURCES): Op(
        "Delete a datasource",
        "Datasources",
        "deleteDataSource",
        ok(EmptyObject, {}, "Deleted."),
        "There is no recycle bin: SOFT deletes outright too.",
        params=(
            Param("deleteMethod", "HARD (default) or SOFT.", {"type": "string", "enum": ["HARD", "SOFT"]}),
        ),
        errors=(400, 403, 404, 409, 413),
    ),
    ("GET", DATASOURCES + "/permissions"): Op(
        "List a datasource's access", "Sharing", "listPermissions", ok(p.PermissionList, ex.PERMISSIONS)
    ),
    ("PUT", DATASOURCES + "/permissions"): Op(
        "Set one principal's access",
        "Sharing",
        "setPermission",
        ok(p.PermissionList, ex.PERMISSIONS, "The access list afterwards."),
        "The principal gets exactly that level (up or down); NONE removes its grant.",
        body=json_body(p.PermissionWrite, {"type": "USER", "id": 2, "accessLevel": "CAN_EDIT"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("GET", DATASOURCES + "/permissions/currentUser"): Op(
        "The caller's access level",
        "Sharing",
        "currentUserPermission",
        ok(
            {"type": "string", "enum": ["OWNER", "CO_OWNER", "CAN_SHARE", "CAN_EDIT", "CAN_VIEW"]}, "CAN_VIEW"
        ),
    ),
    ("DELETE", DATASOURCES + "/permissions/{kind}/{principal_id}"): Op(
        "Revoke a principal's access",
        "Sharing",
        "revokePermission",
        ok(EmptyObject, {}, "Revoked."),
        errors=(400, 403, 404, 409, 413),
    ),
    ("POST", DATASOURCES + "/share"): Op(
        "Share a datasource",
        "Sharing",
        "shareDataSource",
        ok(p.PermissionList, ex.PERMISSIONS, "The access list afterwards."),
        body=json_body(
            p.ShareRequest, {"permissions": [{"type": "GROUP", "id": 5, "accessLevel": "CAN_VIEW"}]}
        ),
        errors=(400, 403, 404, 409, 413),
    ),
    # --- upload sessions and the one-row append ---------------------------------------------------
    ("POST", DATASOURCES + "/uploads"): Op(
        "Append one row, or open an upload session",
        "Uploads",
        "openUpload",
        ok(
            p.UploadSession | EmptyObject,
            {"dataSourceId": ex.DATASET_ID, "uploadId": 3, "requestedAsOf": 1764581460000},
            "A session: its upload id. A one-row append: `{}` once the row is durable.",
        ),
        '`{"values", "delimiter"}` appends one row (the seed\'s form); any other body (or none) '
        "opens an upload session, aborting the dataset's other active one.",
        body=Body(
            (Content(p.OneRowAppend | p.UploadOpen, {"values": "Berlin,120", "delimiter": ","}, JSON),),
            required=False,
        ),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    ("PUT", DATASOURCES + "/uploads/{upload_id}/parts/{part_id}"): Op(
        "Upload a part of a session (CSV)",
        "Uploads",
        "uploadSessionPart",
        ok(
            p.UploadPart,
            {
                "uploadStatus": "SUCCESS",
                "uploadMessage": "part 1: 2 rows, 22 bytes",
                "dataSourceId": ex.DATASET_ID,
                "uploadId": 3,
                "partId": 1,
                "rows": 2,
                "bytes": 22,
                "checksum": "9a0364b9",
            },
        ),
        params=(CONTENT_ENCODING,),
        body=CSV_BODY,
        errors=UPLOAD_ERRORS,
    ),
    ("PUT", DATASOURCES + "/uploads/{upload_id}/commit"): Op(
        "Commit an upload session",
        "Uploads",
        "commitUpload",
        ok(
            p.UploadCommitted,
            {
                "dataSourceId": ex.DATASET_ID,
                "uploadId": 3,
                "dataTag": None,
                "status": "SUCCESS",
                "size": {"rowCount": 2, "columnCount": 2, "numberOfBytes": 22, "partCount": 1},
                "indexing": {"requested": True},
                "updateMethod": "APPEND",
            },
        ),
        body=json_body(p.UploadCommit, {"action": "APPEND", "index": True}, required=False),
        errors=(400, 403, 404, 409, 410, 413, 507),
    ),
    ("PUT", DATASOURCES + "/uploads/{upload_id}/abort"): Op(
        "Abort an upload session",
        "Uploads",
        "abortUpload",
        ok(p.UploadAborted, {"dataSourceId": ex.DATASET_ID, "uploadId": 3, "status": "ABORTED"}),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    # --- query ------------------------------------------------------------------------------------
    ("POST", "/api/query/v1/execute/{dataset_id}"): Op(
        "Query a dataset (SQL)",
        "Query",
        "executeQuery",
        ok(
            list[dict[str, Any]] | ColumnarResult,
            ROWS_EXAMPLE,
            "format=rows (default): an array of row objects; format=columns: the column-wise object.",
        ),
        "Row-level (PDP) policies apply; the table is named `table`. Large answers are streamed.",
        params=(
            Param("format", "rows (default) or columns.", {"type": "string", "enum": ["rows", "columns"]}),
            VERSION,
            ENGINE,
        ),
        body=json_body(p.ProductQueryRequest, {"sql": "SELECT city, sales FROM table"}),
        errors=(400, 403, 404, 410, 413),
    ),
    # --- streams ----------------------------------------------------------------------------------
    ("POST", STREAMS): Op(
        "Create a stream (and its dataset)",
        "Product streams",
        "createProductStream",
        ok(p.ProductStream, {"id": 12, "status": "created"}, "Created: the full Stream.", status=201),
        body=json_body(
            p.ProductStreamCreate,
            {"dataSource": {"name": "Sales"}, "updateMethod": "REPLACE", "schemaDefinition": ex.SCHEMA},
        ),
        params=(FIELDS,),
        errors=(400, 403, 404, 409, 413),
    ),
    ("GET", STREAMS): Op(
        "List streams (product API)",
        "Product streams",
        "listProductStreams",
        ok(list[p.ProductStream], [ex.PRODUCT_STREAM]),
        params=(*PAGE, FIELDS),
        errors=(400, 403),
    ),
    ("GET", STREAMS + "/{stream_id}"): Op(
        "Get a stream (product API)",
        "Product streams",
        "getProductStream",
        ok(p.ProductStream, ex.PRODUCT_STREAM),
        params=(FIELDS,),
    ),
    ("PUT", STREAMS + "/{stream_id}"): Op(
        "Update a stream (product API)",
        "Product streams",
        "updateProductStream",
        ok(p.ProductStream, ex.PRODUCT_STREAM, "The full Stream."),
        params=(
            FIELDS,
            Param("changeUpdateMethod", "false: leave updateMethod as it is.", BOOLEAN_TEXT),
        ),
        body=json_body(p.ProductStreamUpdate, {"updateMethod": "APPEND"}, required=False),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    ("GET", STREAMS + "/{stream_id}/history/aggregate"): Op(
        "A stream's execution history",
        "Product streams",
        "streamHistory",
        ok(
            list[p.HistoryEntry],
            [{**ex.PRODUCT_EXECUTION, "status": "completed", "duration": 1.42, "currentState": "SUCCESS"}],
        ),
        "Newest first.",
        params=(Param("limit", "At most this many (default 1000).", {"type": "integer"}),),
    ),
    ("POST", STREAMS + "/{stream_id}/executions"): Op(
        "Run a stream",
        "Product streams",
        "runStream",
        ok(p.ProductExecution, {**ex.PRODUCT_EXECUTION, "status": "started"}),
        "A push stream: opens an ACTIVE execution. A connector stream: queues a run (409 while one is "
        "in progress unless abortRunning=true).",
        params=(Param("abortRunning", "true: abort a connector run in progress first.", BOOLEAN_TEXT),),
        body=json_body(p.ProductExecutionCreate, {"runType": "MANUAL"}, required=False),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    ("GET", STREAMS + "/{stream_id}/executions/{execution_id}"): Op(
        "Get an execution (product API)",
        "Product streams",
        "getProductExecution",
        ok(p.ProductExecution, ex.PRODUCT_EXECUTION),
    ),
    ("PUT", STREAMS + "/{stream_id}/executions/{execution_id}/part/{part_id}"): Op(
        "Upload a part (CSV, product API)",
        "Product streams",
        "uploadProductPart",
        ok(p.ProductExecution, ex.PRODUCT_EXECUTION),
        params=(CONTENT_ENCODING,),
        body=CSV_BODY,
        errors=UPLOAD_ERRORS,
    ),
    ("PUT", STREAMS + "/{stream_id}/executions/{execution_id}/commit"): Op(
        "Commit an execution (product API)",
        "Product streams",
        "commitProductExecution",
        ok(p.ProductExecution, {**ex.PRODUCT_EXECUTION, "currentState": "SUCCESS"}),
        errors=(400, 403, 404, 409, 410, 413, 507),
    ),
    ("PUT", STREAMS + "/{stream_id}/executions/{execution_id}/abort"): Op(
        "Abort an execution (product API)",
        "Product streams",
        "abortProductExecution",
        ok(p.ProductExecution, {**ex.PRODUCT_EXECUTION, "currentState": "ERROR"}),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    # --- developer tokens -------------------------------------------------------------------------
    ("POST", "/api/data/v1/accesstokens"): Op(
        "Create a developer token",
        "Developer tokens",
        "createAccessToken",
        ok(
            p.TokenIssued,
            {**ex.TOKEN_RECORD, "token": "DDCI3f9c..."},
            "The record and, this once, the value.",
        ),
        body=json_body(p.TokenCreate, {"name": "nightly loader", "expires": None}),
        errors=(400, 403, 404, 413),
    ),
    ("GET", "/api/data/v1/accesstokens"): Op(
        "List developer tokens",
        "Developer tokens",
        "listAccessTokens",
        ok(list[p.TokenRecord], [ex.TOKEN_RECORD], "Every token for admins, one's own otherwise; no values."),
        errors=(403,),
    ),
    ("DELETE", "/api/data/v1/accesstokens/{token_id}"): Op(
        "Revoke a developer token",
        "Developer tokens",
        "revokeAccessToken",
        ok(EmptyObject, {}, "Revoked: the next request with it is 401."),
    ),
    # --- accounts ---------------------------------------------------------------------------------
    ("GET", "/api/data/v1/accounts"): Op(
        "List accounts (product API)",
        "Accounts",
        "listProductAccounts",
        ok(list[p.ProductAccount], [PRODUCT_ACCOUNT]),
        params=(*PAGE, Param("sort", "As for /v1/accounts.")),
        errors=(400, 403),
    ),
    ("GET", "/api/data/v1/accounts/{id}"): Op(
        "Get an account (product API)", "Accounts", "getProductAccount", ok(p.ProductAccount, PRODUCT_ACCOUNT)
    ),
    ("GET", "/api/data/v2/accounts/share/{id}"): Op(
        "An account's access list",
        "Accounts",
        "accountAccess",
        ok(p.PermissionList, {"list": ex.PERMISSIONS["list"][:1], "totalUserCount": 1}),
    ),
}
