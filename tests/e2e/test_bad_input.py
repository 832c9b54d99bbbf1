"""Bad input gets a clear 4xx JSON error naming the problem, and nothing is half-written."""

from __future__ import annotations

import gzip

import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "name"}, {"type": "LONG", "name": "n"}]}


@pytest.fixture
def client(server: RunningServer):
    with server.client() as client:
        yield client


@pytest.fixture
def dataset(client) -> str:
    dataset_id = client.post("/v1/datasets", json={"name": "bad input", "schema": SCHEMA}).json()["id"]
    assert client.put(f"/v1/datasets/{dataset_id}/data", content=b"keep,1\n").status_code == 204
    return dataset_id


def still_only_the_original_row(client, dataset_id: str) -> None:
    assert client.get(f"/v1/datasets/{dataset_id}/data").text == '"keep",1\n'
    assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 1


@pytest.mark.parametrize(
    ("body", "line", "column", "value"),
    [
        (b"a,1\nb,2\nc,x\n", 3, "n", "x"),
        (b"a,1\nb,2,3\n", 2, None, None),
        (b"a,1\nb,1.5\n", 2, "n", "1.5"),
    ],
)
def test_a_value_that_does_not_fit_names_line_column_and_value(client, dataset, body, line, column, value):
    response = client.put(f"/v1/datasets/{dataset}/data?updateMethod=APPEND", content=body)
    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "invalid_csv"
    assert error["details"]["line"] == line
    if column:
        assert error["details"]["column"] == column and error["details"]["value"] == value
    assert f"line {line}" in error["message"]
    still_only_the_original_row(client, dataset)


@pytest.mark.parametrize(
    "body",
    [
        b'a,1\n"unterminated,2\n',
        b"a,1\n\xff\xfe,2\n",
        b"\x1f\x8b\x08\x00garbage",
        gzip.compress(b"a,1\nb,2\n")[:-6],
    ],
    ids=["bad quoting", "invalid utf-8", "bad gzip", "truncated gzip"],
)
def test_malformed_bodies_are_400_and_leave_the_data_alone(client, dataset, body):
    response = client.put(f"/v1/datasets/{dataset}/data", content=body)
    assert response.status_code == 400, response.text
    assert response.json()["message"]
    still_only_the_original_row(client, dataset)


def test_gzip_bodies_are_accepted_by_header_or_by_magic_bytes(client, dataset):
    compressed = gzip.compress(b"g,7\n")
    assert (
        client.put(
            f"/v1/datasets/{dataset}/data", content=compressed, headers={"Content-Encoding": "gzip"}
        ).status_code
        == 204
    )
    assert (
        client.put(f"/v1/datasets/{dataset}/data?updateMethod=APPEND", content=compressed).status_code == 204
    )
    assert client.get(f"/v1/datasets/{dataset}/data").text == '"g",7\n"g",7\n'


def test_unknown_dataset_is_404_everywhere(client):
    missing = "00000000-0000-0000-0000-000000000000"
    assert client.get(f"/v1/datasets/{missing}").status_code == 404
    assert client.get(f"/v1/datasets/{missing}/data").status_code == 404
    assert client.put(f"/v1/datasets/{missing}/data", content=b"a,1\n").status_code == 404
    assert client.post(f"/v1/datasets/query/execute/{missing}", json={"sql": "SELECT 1"}).status_code == 404
    assert client.delete(f"/v1/datasets/{missing}").status_code == 404


def test_bad_sql_is_400_with_the_parser_message(client, dataset):
    response = client.post(f"/v1/datasets/query/execute/{dataset}", json={"sql": "SELEC * FROM table"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_sql"
    response = client.post(f"/v1/datasets/query/execute/{dataset}", json={"sql": "SELECT nope FROM table"})
    assert response.status_code == 400 and "nope" in response.json()["message"]


def test_bad_json_and_bad_schemas_are_400(client):
    assert (
        client.post(
            "/v1/datasets", content=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    bad_type = {"name": "x", "schema": {"columns": [{"type": "INTEGER", "name": "a"}]}}
    response = client.post("/v1/datasets", json=bad_type)
    assert response.status_code == 400 and "INTEGER" in response.json()["message"]
    duplicate = {
        "name": "x",
        "schema": {"columns": [{"type": "LONG", "name": "a"}, {"type": "LONG", "name": "a"}]},
    }
    assert client.post("/v1/datasets", json=duplicate).status_code == 400


def test_unknown_fields_in_bodies_are_ignored_as_the_java_sdk_needs(client):
    body = {
        "id": 0,
        "name": "java",
        "description": "",
        "rows": 0,
        "owner": {"id": 0, "name": ""},
        "createdAt": "",
        "schema": {"columns": [{"type": "STRING", "name": "a"}]},
    }
    created = client.post("/v1/datasets", json=body)
    assert created.status_code == 201
    updated = client.put(f"/v1/datasets/{created.json()['id']}", json={**created.json(), "name": "java 2"})
    assert updated.status_code == 200 and updated.json()["name"] == "java 2"


def test_an_oversized_json_body_is_413(client):
    response = client.post("/v1/datasets", content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}')
    assert response.status_code == 413


def test_errors_never_show_a_stack_trace(client, dataset):
    response = client.post(f"/v1/datasets/query/execute/{dataset}", json={"sql": "SELECT * FROM table WHERE"})
    assert "Traceback" not in response.text and "/" not in response.json()["message"].split(":")[0]


def test_column_names_differing_only_in_case_are_refused(client):
    schema = {"columns": [{"type": "LONG", "name": "Amount"}, {"type": "LONG", "name": "amount"}]}
    response = client.post("/v1/datasets", json={"name": "case", "schema": schema})
    assert response.status_code == 400 and "amount" in response.json()["message"].lower()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/streams/99999999999999999999",
        "/v1/users/99999999999999999999",
        "/v1/groups/-1",
        "/v1/streams/1/executions/99999999999999999999",
    ],
)
def test_ids_outside_64_bits_are_a_clear_400_and_the_server_carries_on(client, path):
    response = client.get(path)
    assert response.status_code == 400 and response.json()["status"] == 400
    assert client.get("/v1/datasets").status_code == 200
