"""What each operation of Domo's public API (``/oauth/token``, ``/health``, ``/v1/...``) takes and gives.

Keyed by method and path as the routes declare them (``api/public_v1``, ``api/health.py``); the
trailing-slash twins the SDKs use are the same operations and are not listed again.
"""

from __future__ import annotations

from datagrove.api.openapi import examples as ex
from datagrove.api.openapi import shapes_v1 as v1
from datagrove.api.openapi.shapes_common import Health
from datagrove.api.openapi.spec import (
    BOOLEAN_TEXT,
    CSV,
    FORM,
    GZIP,
    INTEGER,
    PAGE,
    Body,
    Content,
    Op,
    Param,
    Reply,
    json_body,
    no_content,
    ok,
)

CSV_TEXT = {"type": "string", "description": "CSV rows, no header, in the dataset's column order."}
GZIP_BYTES = {"type": "string", "contentMediaType": "application/gzip", "description": "gzip of such CSV."}
CSV_BODY = Body(
    (Content(CSV_TEXT, ex.CSV_ROWS, CSV), Content(GZIP_BYTES, None, GZIP)),
    "CSV without a header (RFC 4180 quoting), plain or gzip-compressed: send gzip as "
    "`Content-Type: application/gzip`, or as `text/csv` with `Content-Encoding: gzip`.",
)
CONTENT_ENCODING = Param(
    "Content-Encoding",
    "gzip: the CSV body is gzip-compressed.",
    {"type": "string", "enum": ["gzip", "identity"]},
    where="header",
)
VERSION = Param("version", "A version id (GET .../versions): read that version instead of the current data.")
ENGINE = Param(
    "engine",
    "Where the query runs: local (the DuckDB sandbox) or distributed (Daft on the Ray cluster named by "
    "DATAGROVE_DISTRIBUTED_RAY_ADDRESS; a 400 without one). Unset: the server chooses "
    "(docs/distributed-queries.md). Also accepted in the JSON body.",
    {"type": "string", "enum": ["local", "distributed"]},
)
SORT = Param(
    "sort", "name, lastTouched, lastUpdated, ... (a leading - sorts descending); unknown ones are ignored."
)
TOKEN_ERRORS = (400,)
UPLOAD_ERRORS = (400, 403, 404, 409, 410, 413, 507)  # 507: the server's disk is full

_token_params = (
    Param("grant_type", "Only client_credentials.", {"type": "string", "enum": ["client_credentials"]}),
    Param("scope", "Space-separated scopes; default: every scope the client has.", example="data user"),
)

V1_OPERATIONS: dict[tuple[str, str], Op] = {
    ("GET", "/health"): Op(
        "Liveness and readiness",
        "Health",
        "health",
        ok(Health, {"status": "ok"}, "The server answers and its catalog is reachable."),
        auth="none",
        errors=(),
    ),
    ("POST", "/oauth/token"): Op(
        "Get an access token (client credentials)",
        "OAuth",
        "oauthTokenPost",
        ok(v1.TokenGrant, ex.TOKEN_GRANT),
        "HTTP Basic with the client's id and secret; parameters in a form body or the query string.",
        params=_token_params,
        body=Body(
            (Content(v1.TokenForm, {"grant_type": "client_credentials", "scope": "data user"}, FORM),),
            required=False,
        ),
        errors=TOKEN_ERRORS,
        auth="client",
    ),
    ("GET", "/oauth/token"): Op(
        "Get an access token (client credentials, query form)",
        "OAuth",
        "oauthTokenGet",
        ok(v1.TokenGrant, ex.TOKEN_GRANT),
        "As the Node SDK asks: `GET /oauth/token?grant_type=client_credentials&scope=data%20user`.",
        params=_token_params,
        errors=TOKEN_ERRORS,
        auth="client",
    ),
    # --- datasets ---------------------------------------------------------------------------------
    ("POST", "/v1/datasets"): Op(
        "Create a dataset",
        "DataSets",
        "createDataset",
        ok(v1.Dataset, ex.DATASET, "Created.", status=201),
        body=json_body(
            v1.DatasetCreate, {"name": "Sales", "description": "Daily sales by city", "schema": ex.SCHEMA}
        ),
        errors=(400, 403, 413),
    ),
    ("GET", "/v1/datasets"): Op(
        "List datasets",
        "DataSets",
        "listDatasets",
        ok(list[v1.Dataset], [ex.DATASET]),
        "The datasets the caller can see (at most 50 a page).",
        params=(*PAGE, SORT, Param("nameLike", "Only datasets whose name contains this.")),
        errors=(400, 403),
    ),
    ("GET", "/v1/datasets/{dataset_id}"): Op(
        "Get a dataset", "DataSets", "getDataset", ok(v1.Dataset, ex.DATASET)
    ),
    ("PUT", "/v1/datasets/{dataset_id}"): Op(
        "Update a dataset",
        "DataSets",
        "updateDataset",
        ok(v1.Dataset, ex.DATASET),
        "Changes the fields given: name, description, schema (rows kept), owner, pdpEnabled.",
        body=json_body(v1.DatasetUpdate, {"name": "Sales (EU)"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("DELETE", "/v1/datasets/{dataset_id}"): Op(
        "Delete a dataset", "DataSets", "deleteDataset", no_content(), errors=(403, 404, 409)
    ),
    ("PUT", "/v1/datasets/{dataset_id}/data"): Op(
        "Import data (CSV)",
        "DataSets",
        "importDatasetData",
        no_content("Imported."),
        "Replaces the data (or appends with `updateMethod=APPEND`) in one commit.",
        params=(
            Param(
                "updateMethod",
                "APPEND or REPLACE (default; any other value is REPLACE).",
                {"type": "string", "enum": ["APPEND", "REPLACE"]},
            ),
            CONTENT_ENCODING,
        ),
        body=CSV_BODY,
        errors=UPLOAD_ERRORS,
    ),
    ("GET", "/v1/datasets/{dataset_id}/data"): Op(
        "Export data (CSV)",
        "DataSets",
        "exportDatasetData",
        (Reply(200, "The rows as CSV, streamed.", (Content(CSV_TEXT, "city,sales\nBerlin,120\n", CSV),)),),
        params=(
            Param("includeHeader", "true: a header line first.", BOOLEAN_TEXT, example="true"),
            Param("fileName", "Sent back as Content-Disposition: attachment."),
            VERSION,
        ),
        errors=(400, 403, 404, 410),
    ),
    ("POST", "/v1/datasets/query/execute/{dataset_id}"): Op(
        "Query a dataset (SQL)",
        "DataSets",
        "queryDataset",
        ok(v1.ColumnarResult, ex.COLUMNAR_RESULT, "The answer, column-wise; streamed when large."),
        "Row-level (PDP) policies apply. The table is named `table`.",
        params=(VERSION, ENGINE),
        body=json_body(v1.QueryRequest, {"sql": "SELECT city, sales FROM table ORDER BY sales DESC"}),
        errors=(400, 403, 404, 410, 413),
    ),
    ("GET", "/v1/datasets/{dataset_id}/versions"): Op(
        "List a dataset's versions",
        "Versions",
        "listDatasetVersions",
        ok(list[v1.Version], [ex.VERSION]),
        "Newest first (at most 500 a page). A Datagrove addition.",
        params=PAGE,
    ),
    ("POST", "/v1/datasets/{dataset_id}/versions/{version_id}/restore"): Op(
        "Restore a version",
        "Versions",
        "restoreDatasetVersion",
        ok(v1.Dataset, ex.DATASET, "The dataset, with that version's data current again."),
        errors=(400, 403, 404, 409, 410),
    ),
    # --- policies ---------------------------------------------------------------------------------
    ("POST", "/v1/datasets/{dataset_id}/policies"): Op(
        "Create a PDP policy",
        "PDP policies",
        "createPolicy",
        ok(v1.Policy, ex.POLICY, "Created.", status=201),
        body=json_body(v1.PolicyWrite, {k: v for k, v in ex.POLICY.items() if k != "id"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("GET", "/v1/datasets/{dataset_id}/policies"): Op(
        "List PDP policies",
        "PDP policies",
        "listPolicies",
        ok(list[v1.Policy], [ex.POLICY]),
        params=PAGE,
    ),
    ("GET", "/v1/datasets/{dataset_id}/policies/{policy_id}"): Op(
        "Get a PDP policy", "PDP policies", "getPolicy", ok(v1.Policy, ex.POLICY)
    ),
    ("PUT", "/v1/datasets/{dataset_id}/policies/{policy_id}"): Op(
        "Update a PDP policy",
        "PDP policies",
        "updatePolicy",
        ok(v1.Policy, ex.POLICY),
        "Changes the fields given.",
        body=json_body(v1.PolicyWrite, {"name": "Berlin and Lisbon"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("DELETE", "/v1/datasets/{dataset_id}/policies/{policy_id}"): Op(
        "Delete a PDP policy", "PDP policies", "deletePolicy", no_content()
    ),
    # --- streams ----------------------------------------------------------------------------------
    ("POST", "/v1/streams"): Op(
        "Create a stream (and its dataset)",
        "Streams",
        "createStream",
        (
            Reply(
                201,
                "Created.",
                (Content(v1.Stream, ex.STREAM),),
                headers={"Location": "The stream's absolute URL."},
            ),
        ),
        body=json_body(
            v1.StreamCreate, {"dataSet": {"name": "Sales", "schema": ex.SCHEMA}, "updateMethod": "APPEND"}
        ),
        errors=(400, 403, 413),
    ),
    ("GET", "/v1/streams"): Op(
        "List streams",
        "Streams",
        "listStreams",
        ok(list[v1.Stream], [ex.STREAM]),
        params=(*PAGE, SORT),
        errors=(400, 403),
    ),
    ("GET", "/v1/streams/search"): Op(
        "Search streams",
        "Streams",
        "searchStreams",
        ok(list[v1.Stream], [ex.STREAM]),
        params=(
            Param(
                "q",
                "dataSource.id:<id>, dataSource.name:<name> or dataSource.owner.id:<id>.",
                required=True,
                example=f"dataSource.id:{ex.DATASET_ID}",
            ),
            *PAGE,
        ),
        errors=(400, 403),
    ),
    ("GET", "/v1/streams/{stream_id}"): Op(
        "Get a stream",
        "Streams",
        "getStream",
        ok(v1.Stream | v1.StreamTombstone, ex.STREAM, "The stream (or, its dataset deleted, a tombstone)."),
    ),
    ("PATCH", "/v1/streams/{stream_id}"): Op(
        "Update a stream",
        "Streams",
        "updateStream",
        ok(v1.Stream, ex.STREAM),
        "Only updateMethod is applied (Java sends its whole StreamRequest).",
        body=json_body(v1.StreamUpdate, {"updateMethod": "REPLACE"}, required=False),
        errors=(400, 403, 404, 410, 413),
    ),
    ("DELETE", "/v1/streams/{stream_id}"): Op(
        "Delete a stream (and its dataset)", "Streams", "deleteStream", no_content(), errors=(403, 404, 409)
    ),
    ("POST", "/v1/streams/{stream_id}/executions"): Op(
        "Start an execution",
        "Streams",
        "createExecution",
        ok(v1.Execution, ex.EXECUTION, "Started (ACTIVE)."),
        "Opens an ACTIVE execution; any other active execution of the stream is aborted.",
        body=json_body(v1.ExecutionCreate, {}, required=False),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    ("GET", "/v1/streams/{stream_id}/executions"): Op(
        "List executions", "Streams", "listExecutions", ok(list[v1.Execution], [ex.EXECUTION]), params=PAGE
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/abort"): Op(
        "Abort the current execution",
        "Streams",
        "abortCurrentExecution",
        no_content("Aborted (or there was none)."),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    ("GET", "/v1/streams/{stream_id}/executions/{execution_id}"): Op(
        "Get an execution", "Streams", "getExecution", ok(v1.Execution, ex.EXECUTION)
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/{execution_id}/part/{part_id}"): Op(
        "Upload a part (CSV)",
        "Streams",
        "uploadPart",
        ok(v1.Execution, {**ex.EXECUTION, "part": {"id": 1, "rows": 2, "bytes": 22, "checksum": "9a0364b9"}}),
        "Parts may be sent in parallel and in any order; a part sent again replaces it.",
        params=(CONTENT_ENCODING,),
        body=CSV_BODY,
        errors=UPLOAD_ERRORS,
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/{execution_id}/commit"): Op(
        "Commit an execution",
        "Streams",
        "commitExecution",
        ok(v1.Execution, {**ex.EXECUTION, "currentState": "SUCCESS", "rows": 2, "bytes": 22}),
        "All its parts become visible at once, exactly once (a retried commit answers the same).",
        errors=(400, 403, 404, 409, 410, 413, 507),
    ),
    ("PUT", "/v1/streams/{stream_id}/executions/{execution_id}/abort"): Op(
        "Abort an execution",
        "Streams",
        "abortExecution",
        ok(v1.Execution, {**ex.EXECUTION, "currentState": "ABORTED"}),
        errors=(400, 403, 404, 409, 410, 413),
    ),
    # --- users and groups -------------------------------------------------------------------------
    ("POST", "/v1/users"): Op(
        "Create a user",
        "Users",
        "createUser",
        ok(v1.User, ex.USER, "Created.", status=201),
        body=json_body(v1.UserWrite, {"name": "Ada Lovelace", "email": "ada@example.com", "role": "Editor"}),
        errors=(400, 403, 409, 413),
    ),
    ("GET", "/v1/users"): Op(
        "List users", "Users", "listUsers", ok(list[v1.User], [ex.USER]), params=PAGE, errors=(400, 403)
    ),
    ("GET", "/v1/users/{user_id}"): Op("Get a user", "Users", "getUser", ok(v1.User, ex.USER)),
    ("PUT", "/v1/users/{user_id}"): Op(
        "Update a user",
        "Users",
        "updateUser",
        ok(v1.User, ex.USER),
        "Changes the fields given.",
        body=json_body(v1.UserWrite, {"role": "Privileged"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("DELETE", "/v1/users/{user_id}"): Op(
        "Delete a user", "Users", "deleteUser", no_content(), errors=(400, 403, 404, 409)
    ),
    ("POST", "/v1/groups"): Op(
        "Create a group",
        "Groups",
        "createGroup",
        ok(v1.Group, ex.GROUP, "Created.", status=201),
        body=json_body(v1.GroupWrite, {"name": "Analysts", "active": True}),
        errors=(400, 403, 409, 413),
    ),
    ("GET", "/v1/groups"): Op(
        "List groups", "Groups", "listGroups", ok(list[v1.Group], [ex.GROUP]), params=PAGE, errors=(400, 403)
    ),
    ("GET", "/v1/groups/{group_id}"): Op("Get a group", "Groups", "getGroup", ok(v1.Group, ex.GROUP)),
    ("PUT", "/v1/groups/{group_id}"): Op(
        "Update a group",
        "Groups",
        "updateGroup",
        ok(v1.Group, ex.GROUP),
        body=json_body(v1.GroupWrite, {"name": "Analysts (EU)"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("DELETE", "/v1/groups/{group_id}"): Op("Delete a group", "Groups", "deleteGroup", no_content()),
    ("GET", "/v1/groups/{group_id}/users"): Op(
        "List a group's members",
        "Groups",
        "listGroupMembers",
        ok(list[int], [2, 3], "The members' user ids."),
        "Every member (up to 500) when no limit is given.",
        params=PAGE,
    ),
    ("PUT", "/v1/groups/{group_id}/users/{user_id}"): Op(
        "Add a member", "Groups", "addGroupMember", no_content(), errors=(400, 403, 404, 409, 413)
    ),
    ("DELETE", "/v1/groups/{group_id}/users/{user_id}"): Op(
        "Remove a member", "Groups", "removeGroupMember", no_content()
    ),
    # --- accounts ---------------------------------------------------------------------------------
    ("POST", "/v1/accounts"): Op(
        "Create an account",
        "Accounts",
        "createAccount",
        ok(v1.Account, ex.ACCOUNT, "Created; credentials shown masked.", status=201),
        "Credentials in type.properties (or a top-level properties or credentials object) are sealed.",
        body=json_body(
            v1.AccountWrite,
            {
                "name": "Warehouse replica",
                "type": {"id": "postgresql", "properties": {"host": "db.internal", "password": "s3cret"}},
            },
        ),
        errors=(400, 403, 409, 413),
    ),
    ("GET", "/v1/accounts"): Op(
        "List accounts",
        "Accounts",
        "listAccounts",
        ok(list[v1.Account], [ex.ACCOUNT]),
        params=(*PAGE, SORT),
        errors=(400, 403),
    ),
    ("GET", "/v1/accounts/{id}"): Op("Get an account", "Accounts", "getAccount", ok(v1.Account, ex.ACCOUNT)),
    ("PATCH", "/v1/accounts/{id}"): Op(
        "Update an account",
        "Accounts",
        "updateAccount",
        ok(v1.Account, ex.ACCOUNT, "Updated (202, as pydomo expects).", status=202),
        "Merges: a property sent back as ******** keeps its value, null removes it.",
        body=json_body(v1.AccountWrite, {"name": "Replica (read-only)"}),
        errors=(400, 403, 404, 409, 413),
    ),
    ("DELETE", "/v1/accounts/{id}"): Op(
        "Delete an account", "Accounts", "deleteAccount", no_content(), errors=(403, 404, 409)
    ),
    ("POST", "/v1/accounts/{id}/shares"): Op(
        "Share an account",
        "Accounts",
        "shareAccount",
        ok(v1.Account, ex.ACCOUNT),
        body=json_body(v1.AccountShare, {"user": {"id": 2}, "accessLevel": "CAN_VIEW"}),
        errors=(400, 403, 404, 409, 413),
    ),
    # --- activity log -----------------------------------------------------------------------------
    ("GET", "/v1/audit"): Op(
        "Read the activity log",
        "Activity log",
        "listAudit",
        ok(list[v1.AuditEntry], [ex.AUDIT_ENTRY]),
        "Newest first; admins only (OAuth scope audit).",
        params=(
            Param("start", "From this time (epoch milliseconds, inclusive).", INTEGER),
            Param("end", "Until this time (epoch milliseconds, inclusive).", INTEGER),
            Param("user", "Only this user's entries (a user id).", INTEGER),
            *PAGE,
        ),
        errors=(400, 403),
    ),
}
