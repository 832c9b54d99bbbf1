"""Example values the operation descriptions share, in the shapes the routes answer."""

from __future__ import annotations

from typing import Any

DATASET_ID = "7d3c5e8a-2f41-4b7e-9c61-0a5d2b8e4f13"
SCHEMA: dict[str, Any] = {"columns": [{"type": "STRING", "name": "city"}, {"type": "LONG", "name": "sales"}]}

DATASET: dict[str, Any] = {
    "id": DATASET_ID,
    "name": "Sales",
    "description": "Daily sales by city",
    "rows": 2,
    "columns": 2,
    "schema": SCHEMA,
    "owner": {"id": 1, "name": "Admin"},
    "createdAt": "2026-12-01T09:30:00Z",
    "updatedAt": "2026-12-01T09:31:12Z",
    "pdpEnabled": False,
    "policies": [],
    "dataCurrentAt": "2026-12-01T09:31:12Z",
}

STREAM: dict[str, Any] = {
    "id": 12,
    "dataSet": DATASET,
    "updateMethod": "APPEND",
    "createdAt": "2026-12-01T09:30:00Z",
    "modifiedAt": "2026-12-01T09:30:00Z",
}

EXECUTION: dict[str, Any] = {
    "id": 3,
    "startedAt": "2026-12-01T09:31:00Z",
    "currentState": "ACTIVE",
    "createdAt": "2026-12-01T09:31:00Z",
    "modifiedAt": "2026-12-01T09:31:00Z",
    "updateMethod": "APPEND",
    "rows": 0,
    "bytes": 0,
}

CSV_ROWS = "Berlin,120\nLisbon,75\n"

COLUMNAR_RESULT: dict[str, Any] = {
    "datasource": DATASET_ID,
    "columns": ["city", "sales"],
    "metadata": [
        {"type": "STRING", "dataSourceId": DATASET_ID, "maxLength": -1, "minLength": -1, "periodIndex": 0},
        {"type": "LONG", "dataSourceId": DATASET_ID, "maxLength": -1, "minLength": -1, "periodIndex": 0},
    ],
    "rows": [["Berlin", 120], ["Lisbon", 75]],
    "numRows": 2,
    "numColumns": 2,
}

USER: dict[str, Any] = {
    "id": 2,
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "role": "Editor",
    "roleId": 3,
    "createdAt": "2026-12-01T09:00:00Z",
    "updatedAt": "2026-12-01T09:00:00Z",
    "groups": [{"id": 5, "name": "Analysts"}],
}

GROUP: dict[str, Any] = {
    "id": 5,
    "name": "Analysts",
    "active": True,
    "default": False,
    "creatorId": 1,
    "memberCount": 3,
}

POLICY: dict[str, Any] = {
    "id": 4,
    "type": "user",
    "name": "Berlin only",
    "filters": [{"column": "city", "values": ["Berlin"], "operator": "EQUALS", "not": False}],
    "users": [2],
    "virtualUsers": [],
    "groups": [],
}

ACCOUNT: dict[str, Any] = {
    "id": "8",
    "name": "Warehouse replica",
    "valid": True,
    "type": {"id": "postgresql", "properties": {"host": "********", "password": "********"}},
}

VERSION: dict[str, Any] = {
    "version": "6043108120497316412",
    "createdAt": "2026-12-01T09:31:12.417Z",
    "operation": "append",
    "rowsAdded": 2,
    "rowsRemoved": 0,
    "rows": 2,
    "current": True,
    "madeBy": {"kind": "execution", "id": 3, "userId": 1},
}

AUDIT_ENTRY: dict[str, Any] = {
    "userName": "Admin",
    "userId": 1,
    "userType": "USER",
    "actorId": 1,
    "actorType": "USER",
    "objectName": "Sales",
    "objectId": DATASET_ID,
    "objectType": "DATASET",
    "additionalComment": "",
    "time": 1764581472417,
    "eventText": "Created DataSet",
    "device": "API",
    "browserDetails": "",
    "ipAddress": "127.0.0.1",
}

TOKEN_GRANT: dict[str, Any] = {
    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
    "token_type": "bearer",
    "expires_in": 3600,
    "scope": "data user",
    "customer": "datagrove",
    "env": "prod",
    "userId": 1,
    "role": "Admin",
    "jti": "f1c2d3e4",
}

DATASOURCE: dict[str, Any] = {
    "id": DATASET_ID,
    "displayType": "api",
    "dataProviderType": "api",
    "type": "API",
    "name": "Sales",
    "description": "Daily sales by city",
    "owner": {"id": "1", "name": "Admin", "type": "USER", "group": False},
    "status": "active",
    "created": 1764581400000,
    "lastTouched": 1764581472000,
    "lastUpdated": 1764581472000,
    "rowCount": 2,
    "columnCount": 2,
    "cardInfo": {"cardCount": 0, "cardViewCount": 0},
    "properties": {"rows": 2, "columns": 2, "formulas": {"formulas": {}}},
    "state": "SUCCESS",
    "validConfiguration": True,
    "validAccount": True,
    "streamId": 12,
    "transportType": "API",
    "permissions": "READ_WRITE_DELETE_SHARE_ADMIN",
    "currentUserFullAccess": True,
    "details": {"rows": 2, "columns": 2},
}

PERMISSIONS: dict[str, Any] = {
    "list": [
        {"type": "USER", "id": "1", "accessLevel": "OWNER", "name": "Admin"},
        {"type": "GROUP", "id": "5", "accessLevel": "CAN_VIEW", "name": "Analysts"},
    ],
    "totalUserCount": 1,
    "totalGroupCount": 1,
}

PRODUCT_EXECUTION: dict[str, Any] = {
    "streamId": 12,
    "executionId": 3,
    "toe": None,
    "startedAt": 1764581460,
    "endedAt": None,
    "updateMethod": "REPLACE",
    "index": True,
    "retryCount": 0,
    "currentState": "ACTIVE",
    "runType": "MANUAL",
    "createdAt": 1764581460,
    "modifiedAt": 1764581460,
    "removed": False,
    "rowsInserted": 0,
    "bytesInserted": 0,
    "startedBy": "1",
    "errors": [],
}

PRODUCT_STREAM: dict[str, Any] = {
    "id": 12,
    "userId": 1,
    "name": "Sales",
    "displayName": "Sales",
    "type": "API",
    "dataProviderType": "api",
    "valid": True,
    "status": "active",
}

TOKEN_RECORD: dict[str, Any] = {
    "id": 9,
    "name": "nightly loader",
    "ownerId": 1,
    "expires": None,
    "created": 1764581400000,
}

DATA_SOURCE_V2: dict[str, Any] = {
    "dataSourceId": DATASET_ID,
    "dataSourceName": "Sales",
    "dataSourceDescription": "",
    "dataSourceType": "API",
    "displayType": "api",
    "dataProviderType": "api",
    "userDefinedType": "api",
    "responsibleUserId": 1,
    "created": 1764581400000,
    "lastModified": 1764581400000,
    "lastTouched": 1764581400000,
    "lastUpdated": 1764581400000,
    "rowCount": 0,
    "columnCount": 2,
    "cardCount": 0,
    "cloudId": "domo",
    "hidden": False,
    "tags": "[]",
    "properties": {"formulas": {"formulas": {}}},
}
