"""The product API (``/api/...``) as its community clients send and read it (product-api.md)."""

from __future__ import annotations

import gzip
import json
import uuid

import httpx
import pytest

from tests.e2e.test_sharing import DS, Person, new_dataset, new_person
from tests.support.server import RunningServer

STREAMS = "/api/data/v1/streams"
QUERY = "/api/query/v1/execute"
MISSING_DATASET = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def editor(server: RunningServer) -> Person:
    """The caller of most tests: an Editor, so its datasets do not crowd the admin's."""
    return new_person(server, role="Editor")


def query(client: httpx.Client, dataset_id: str, sql: str) -> httpx.Response:
    """The column-wise answer (``?format=columns``), whose ``rows`` the tests here index by position."""
    return client.post(f"{QUERY}/{dataset_id}", params={"format": "columns"}, json={"sql": sql})


def create_stream(client: httpx.Client, **extra: object) -> dict:
    body = {"dataSource": {"name": "stream-" + uuid.uuid4().hex[:8], "description": "from a test"}, **extra}
    response = client.post(STREAMS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


# --- GET /api/data/v3/datasources/{id} -----------------------------------------------------------


def test_a_datasource_has_the_keys_clients_read(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\nb,2\n")
        response = client.get(f"{DS}/{dataset_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["id"] == dataset_id
    assert body["rowCount"] == 2 and body["columnCount"] == 2
    assert body["properties"]["formulas"] == {"formulas": {}}
    assert json.loads(body["tags"]) == []
    assert isinstance(body["owner"]["id"], str) and body["owner"]["type"] == "USER"
    assert body["created"] > 1_600_000_000_000  # epoch milliseconds
    assert body["permissions"] == "READ_WRITE_DELETE_SHARE_ADMIN"
    assert "description" not in body  # empty descriptions are left out, as Domo does


def test_a_datasources_stream_id_resolves(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        stream_id = client.get(f"{DS}/{dataset_id}").json()["streamId"]
        stream = client.get(f"{STREAMS}/{stream_id}", params={"fields": "all"})
    assert stream.status_code == 200
    assert stream.json()["dataSource"]["id"] == dataset_id


def test_a_datasource_carries_the_seed_documents_keys_beside_the_real_ones(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\nb,2\nc,3\n")
        name = client.get(f"/v1/datasets/{dataset_id}").json()["name"]
    # The seed's snippet, as written (host, id and token filled in).
    headers = {"X-DOMO-Developer-Token": editor.token, "Content-Type": "application/json"}
    url = f"{server.base_url}/api/data/v3/datasources/{dataset_id}"
    with httpx.Client() as seed_client:
        response = seed_client.get(url, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["type"], body["status"]) == (dataset_id, name, "API", "active")
    assert body["details"] == {"rows": 3, "columns": 2}
    assert body["properties"] == {"rows": 3, "columns": 2, "formulas": {"formulas": {}}}
    assert (body["rowCount"], body["columnCount"]) == (3, 2)  # the same numbers, for real clients
    assert body["state"] == "SUCCESS"  # the real status


def test_get_metadata_with_requested_parts_adds_the_callers_access(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
    headers = {"X-DOMO-Developer-Token": editor.token, "Content-Type": "application/json"}
    url = f"{server.base_url}/api/data/v3/datasources/{dataset_id}?requestedParts=core,permission"
    with httpx.Client() as seed_client:
        response = seed_client.get(url, headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == dataset_id and body["properties"]["rows"] == 1 and body["properties"]["columns"] == 2
    assert body["accessLevel"] == "OWNER"
    assert body["permissions"] == "READ_WRITE_DELETE_SHARE_ADMIN" and body["currentUserFullAccess"] is True
    assert "schema" not in body


@pytest.mark.parametrize(
    ("params", "added"),
    [
        ({"part": "core,permission,status"}, {"accessLevel"}),
        ([("part", "core"), ("part", "schema")], {"schema"}),
        ({"part": "SCHEMA,Permission"}, {"accessLevel", "schema"}),
        ({"requestedParts": "schema"}, {"schema"}),
        ({"includeAllDetails": "true"}, {"accessLevel", "schema"}),
        ({"includeAllDetails": "false", "part": "core,rowcolcount,cryo,pharos,nonsense"}, set()),
    ],
)
def test_parts_only_ever_add_keys(server: RunningServer, editor: Person, params: object, added: set[str]):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        plain = client.get(f"{DS}/{dataset_id}").json()
        response = client.get(f"{DS}/{dataset_id}", params=params)  # type: ignore[arg-type]
    assert response.status_code == 200
    body = response.json()
    assert body.keys() - plain.keys() == added
    assert {key: body[key] for key in plain} == plain
    if "schema" in added:
        assert body["schema"] == {
            "columns": [{"name": "name", "type": "STRING"}, {"name": "n", "type": "LONG"}]
        }


def test_the_permission_part_says_a_viewers_own_level(server: RunningServer, editor: Person):
    viewer = new_person(server)
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        shared = client.post(
            f"{DS}/{dataset_id}/share",
            json={"permissions": [{"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"}]},
        )
        assert shared.status_code == 200, shared.text
    with viewer.client(server) as theirs:
        body = theirs.get(f"{DS}/{dataset_id}", params={"part": "permission"}).json()
    assert body["accessLevel"] == "CAN_VIEW"
    assert body["permissions"] == "READ" and body["currentUserFullAccess"] is False


def test_an_unknown_datasource_is_404(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        response = client.get(f"{DS}/{MISSING_DATASET}")
    assert response.status_code == 404
    assert response.reason_phrase == "Not Found" and response.json()["status"] == 404


def test_the_product_api_needs_a_credential(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
    for method, path in (
        ("GET", f"{DS}/{dataset_id}"),
        ("GET", f"{DS}/{dataset_id}/permissions"),
        ("POST", f"{QUERY}/{dataset_id}"),
        ("GET", f"{STREAMS}/1"),
        ("POST", STREAMS),
        ("GET", "/api/data/v1/accesstokens"),
    ):
        assert httpx.request(method, server.base_url + path).status_code == 401


def test_the_developer_token_header_name_is_case_insensitive(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
    response = httpx.get(
        f"{server.base_url}{DS}/{dataset_id}", headers={"x-domo-developer-token": editor.token}
    )
    assert response.status_code == 200


# --- POST /api/query/v1/execute/{id} ---------------------------------------------------------------


def test_a_query_answers_columns_and_rows(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\nb,2\nc,3\n")
        response = query(client, dataset_id, "SELECT name, n * 10 AS tens FROM table WHERE n > 1 ORDER BY n")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["datasource"] == dataset_id
    assert body["columns"] == ["name", "tens"]
    assert [m["type"] for m in body["metadata"]] == ["STRING", "LONG"]
    assert body["rows"] == [["b", 20], ["c", 30]]
    assert body["numRows"] == 2 and body["numColumns"] == 2


def test_a_query_ignores_paging_url_parameters_and_honours_offset_in_sql(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\nb,2\n")
        response = client.post(
            f"{QUERY}/{dataset_id}",
            params={"offset": 0, "limit": 100},
            json={"sql": "SELECT * FROM TABLE ORDER BY n limit 100 offset 5"},
        )
    assert response.status_code == 200, response.text
    assert response.json() == []


def test_bad_sql_is_400_and_an_unknown_dataset_404(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        assert query(client, dataset_id, "SELEC nothing").status_code == 400
        assert client.post(f"{QUERY}/{dataset_id}", json={}).status_code == 400
        assert query(client, MISSING_DATASET, "SELECT 1").status_code == 404


# --- POST /api/data/v3/datasources/{id}/uploads ------------------------------------------------------


def test_values_append_one_row(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        response = client.post(f"{DS}/{dataset_id}/uploads", json={"values": "b,2", "delimiter": ","})
        assert response.status_code == 200, response.text
        assert response.json() == {}  # the seed document's empty body
        rows = query(client, dataset_id, "SELECT * FROM table ORDER BY n").json()["rows"]
    assert rows == [["a", 1], ["b", 2]]


def test_values_split_on_the_given_delimiter_and_honour_quotes(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        response = client.post(f"{DS}/{dataset_id}/uploads", json={"values": '"x; y, z";7', "delimiter": ";"})
        assert response.status_code == 200, response.text
        no_delimiter = client.post(f"{DS}/{dataset_id}/uploads", json={"values": '"q,r",8'})
        assert no_delimiter.status_code == 200, no_delimiter.text
        rows = query(client, dataset_id, "SELECT * FROM table ORDER BY n").json()["rows"]
    assert rows == [["x; y, z", 7], ["q,r", 8]]


def test_a_row_that_does_not_fit_the_schema_is_400_and_appends_nothing(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        for body in (
            {"values": "b,not-a-number"},
            {"values": "only-one"},
            {"values": "a,1\nb,2"},
            {"values": "b,2", "delimiter": "||"},
            {"values": ["b", 2]},
        ):
            response = client.post(f"{DS}/{dataset_id}/uploads", json=body)
            assert response.status_code == 400, (body, response.text)
        assert client.get(f"{DS}/{dataset_id}").json()["rowCount"] == 1


def test_appending_to_an_unknown_dataset_is_404(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        assert client.post(f"{DS}/{MISSING_DATASET}/uploads", json={"values": "a,1"}).status_code == 404


# --- /api/data/v1/streams ------------------------------------------------------------------------------


def test_creating_a_connector_stream_makes_a_dataset_named_by_its_data_source(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        stream = create_stream(
            client,
            transport={
                "type": "CONNECTOR",
                "description": "com.datagrove.connector.dataset-sql",
                "version": "1",
            },
            configuration=[
                {
                    "name": "query",
                    "value": "SELECT * FROM `00000000-0000-4000-8000-000000000000`",
                    "type": "string",
                    "category": "METADATA",
                }
            ],
            updateMethod="APPEND",
            dataProvider={"key": "dataset-sql"},
            advancedScheduleJson='{"type": "MANUAL", "timezone": "UTC"}',
        )
        assert stream["updateMethod"] == "APPEND"
        dataset = client.get(f"{DS}/{stream['dataSource']['id']}").json()
    assert dataset["name"] == stream["dataSource"]["name"]
    assert dataset["description"] == "from a test"
    assert dataset["columnCount"] == 0 and dataset["streamId"] == stream["id"]


def test_a_stream_created_with_a_schema_definition_has_those_columns(server: RunningServer, editor: Person):
    columns = [{"name": "X1", "type": "DOUBLE"}, {"name": "X2", "type": "STRING"}]
    with editor.client(server) as client:
        stream = create_stream(client, transport={"type": "API"}, schemaDefinition={"columns": columns})
    assert [(c["name"], c["type"]) for c in stream["schemaDefinition"]["columns"]] == [
        ("X1", "DOUBLE"),
        ("X2", "STRING"),
    ]


def test_a_stream_without_a_data_source_name_is_400(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        assert client.post(STREAMS, json={"transport": {"type": "API"}}).status_code == 400
        assert client.post(STREAMS, json={"dataSource": {"name": " "}}).status_code == 400


def test_a_stream_with_fields_all_has_every_key_clients_index(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        body = client.get(f"{STREAMS}/{stream_id}", params={"fields": "all"}).json()
    assert {"description", "version"} <= body["transport"].keys()
    assert {"key", "name"} <= body["dataProvider"].keys()
    assert body["configuration"] == [] and isinstance(body["advancedScheduleJson"], str)
    assert body["currentExecutionState"] == "IDLE" and body["lastExecution"] is None
    assert body["createdAt"] < 10_000_000_000  # epoch seconds


def test_fields_keeps_only_the_named_keys(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        body = client.get(f"{STREAMS}/{stream_id}", params={"fields": "id,valid"}).json()
    assert body == {"id": stream_id, "valid": True}


def test_an_unknown_or_hidden_stream_is_404(server: RunningServer, editor: Person):
    stranger = new_person(server)
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        assert client.get(f"{STREAMS}/987654321").status_code == 404
        # beyond any BIGINT: refused as a malformed id before it reaches the database
        assert client.get(f"{STREAMS}/99999999999999999999").status_code == 400
        assert client.get(f"{STREAMS}/987654321/history/aggregate").status_code == 404
        assert client.post(f"{STREAMS}/987654321/executions", json={"action": "Manual"}).status_code == 404
    with stranger.client(server) as theirs:
        assert theirs.get(f"{STREAMS}/{stream_id}").status_code == 404
        assert theirs.post(f"{STREAMS}/{stream_id}/executions").status_code == 404


def test_executing_a_stream_opens_an_active_execution(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        for body in ({"action": "Manual"}, {"runType": "MANUAL"}, None):
            response = client.post(f"{STREAMS}/{stream_id}/executions", json=body)
            assert response.status_code == 200, response.text
            execution = response.json()
            assert execution["streamId"] == stream_id and execution["currentState"] == "ACTIVE"
            assert execution["runType"] == "MANUAL" and execution["errors"] == []
        stream = client.get(f"{STREAMS}/{stream_id}", params={"fields": "all"}).json()
    assert stream["currentExecution"]["executionId"] == execution["executionId"]
    assert stream["currentExecutionState"] == "ACTIVE"


def test_the_stream_execution_push_flow_loads_data(server: RunningServer, editor: Person):
    columns = [{"name": "k", "type": "STRING"}, {"name": "v", "type": "LONG"}]
    with editor.client(server) as client:
        stream = create_stream(client, transport={"type": "API"}, schemaDefinition={"columns": columns})
        stream_id, dataset_id = stream["id"], stream["dataSource"]["id"]
        execution_id = client.post(f"{STREAMS}/{stream_id}/executions").json()["executionId"]
        part = client.put(
            f"{STREAMS}/{stream_id}/executions/{execution_id}/part/1",
            content=gzip.compress(b"a,1\nb,2\n"),
            headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
        )
        assert part.status_code == 200, part.text
        committed = client.put(f"{STREAMS}/{stream_id}/executions/{execution_id}/commit")
        assert committed.status_code == 200, committed.text
        assert committed.json()["currentState"] == "SUCCESS" and committed.json()["rowsInserted"] == 2
        assert client.get(f"{STREAMS}/{stream_id}/executions/{execution_id}").json()["endedAt"] is not None
        assert query(client, dataset_id, "SELECT SUM(v) FROM table").json()["rows"] == [[3]]
        body = client.get(f"{STREAMS}/{stream_id}", params={"fields": "all"}).json()
    assert body["lastSuccessfulExecution"]["executionId"] == execution_id
    assert body["dataSource"]["rowCount"] == 2


def test_history_aggregate_lists_executions_newest_first(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        started = client.post(f"{STREAMS}/{stream_id}/executions")
        assert started.status_code == 200 and started.json()["status"] == "started"  # the seed's keys
        first = started.json()["executionId"]
        second = client.post(f"{STREAMS}/{stream_id}/executions").json()["executionId"]
        history = client.get(f"{STREAMS}/{stream_id}/history/aggregate")
        limited = client.get(f"{STREAMS}/{stream_id}/history/aggregate", params={"limit": 1})
    assert history.status_code == 200
    entries = history.json()
    assert [e["executionId"] for e in entries] == [second, first]
    assert entries[0]["currentState"] == "ACTIVE" and entries[0]["status"] == "running"
    assert entries[1]["currentState"] == "ERROR"  # superseded by the second one
    # The seed document's keys (status, then duration or error once it ended) beside Domo's.
    assert entries[1]["status"] == "aborted" and "superseded" in entries[1]["error"]
    assert entries[1]["duration"] >= 0
    assert set(entries[0]) == {
        "streamId",
        "executionId",
        "status",
        "currentState",
        "rowsInserted",
        "bytesInserted",
        "startedAt",
        "endedAt",
        "updateMethod",
        "runType",
        "peakMemoryUsedBytes",
    }
    assert [e["executionId"] for e in limited.json()] == [second]
