"""Regressions for what the API fuzzing (test_openapi_fuzz.py) found, each as its own behaviour."""

from __future__ import annotations

import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "city"}, {"type": "LONG", "name": "sales"}]}


def dataset_with_rows(server: RunningServer, name: str) -> tuple[str, int]:
    with server.client() as http:
        stream = http.post("/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}}).json()
        dataset_id = stream["dataSet"]["id"]
        http.put(f"/v1/datasets/{dataset_id}/data", content="Berlin,120\nLisbon,75\n").raise_for_status()
    return dataset_id, stream["id"]


@pytest.mark.parametrize("api", ["v1 dataset PUT", "product stream PUT"])
def test_removing_every_column_of_a_dataset_with_rows_is_a_400_that_changes_nothing(server, unique, api):
    dataset_id, stream_id = dataset_with_rows(server, unique)
    with server.client() as http:
        if api == "v1 dataset PUT":
            response = http.put(f"/v1/datasets/{dataset_id}", json={"schema": {"columns": []}})
        else:
            response = http.put(
                f"/api/data/v1/streams/{stream_id}", json={"schemaDefinition": {"columns": []}}
            )
        assert response.status_code == 400, response.text
        assert "at least one column" in response.json()["message"]
        after = http.get(f"/v1/datasets/{dataset_id}").json()
        assert (after["schema"], after["rows"]) == (SCHEMA, 2)


def test_an_empty_dataset_may_still_drop_its_columns(server, unique):
    with server.client() as http:
        created = http.post("/v1/datasets", json={"name": unique, "schema": SCHEMA}).json()
        response = http.put(f"/v1/datasets/{created['id']}", json={"schema": {"columns": []}})
        assert response.status_code == 200, response.text
        assert response.json()["schema"] == {"columns": []}


BEYOND_64_BITS = str(10**23)
LISTS = [
    "/v1/datasets",
    "/v1/streams",
    "/v1/users",
    "/v1/groups",
    "/v1/accounts",
    "/v1/audit",
    "/api/data/v1/streams",
    "/api/data/v1/accounts",
]


@pytest.mark.parametrize("path", LISTS)
def test_an_offset_beyond_64_bits_is_past_the_end(server, path):
    with server.client() as http:
        response = http.get(path, params={"offset": BEYOND_64_BITS, "limit": BEYOND_64_BITS})
    assert (response.status_code, response.json()) == (200, [])


def test_an_owner_id_beyond_64_bits_in_a_stream_search_is_a_400(server):
    with server.client() as http:
        response = http.get("/v1/streams/search", params={"q": f"dataSource.owner.id:{BEYOND_64_BITS}"})
    assert response.status_code == 400
    assert "user id" in response.json()["message"]


def test_ids_written_with_non_ascii_digits_are_refused_cleanly(server, unique):
    """``'²'.isdigit()`` is true but ``int('²')`` fails: such ids are not numbers, and no 500."""
    dataset_id, _ = dataset_with_rows(server, unique)
    with server.client() as http:
        account = http.post("/v1/accounts", json={"name": unique, "type": {"id": "postgresql"}}).json()
        calls = [
            ("GET", "/v1/accounts/²", None, 404),
            ("GET", "/api/data/v1/accounts/²", None, 404),
            ("GET", "/api/data/v2/accounts/share/²", None, 404),
            ("GET", "/v1/audit?user=²", None, 400),
            ("GET", "/v1/streams/search?q=dataSource.owner.id:²", None, 400),
            ("DELETE", "/api/data/v1/accesstokens/²", None, 404),
            ("DELETE", f"/api/data/v3/datasources/{dataset_id}/permissions/USER/²", None, 404),
            ("GET", f"/v1/datasets/{dataset_id}/policies/²", None, 404),
            ("POST", f"/v1/datasets/{dataset_id}/policies", {"name": "p", "users": ["²"]}, 400),
            ("PUT", f"/api/data/v3/datasources/{dataset_id}/permissions", {"type": "USER", "id": "²"}, 400),
            ("POST", f"/v1/accounts/{account['id']}/shares", {"user": {"id": "²"}}, 400),
            ("POST", "/api/data/v1/accesstokens", {"name": "t", "ownerId": "²"}, 400),
        ]
        for method, path, body, status in calls:
            response = http.request(method, path, json=body)
            assert response.status_code == status, (method, path, response.text)
            assert response.json()["code"] in ("bad_request", "not_found"), (method, path)


@pytest.mark.parametrize("method", ["APPEND", "REPLACE"])
@pytest.mark.parametrize("encoding", [None, "gzip"])
def test_an_empty_import_into_a_dataset_without_columns_is_a_204(server, unique, method, encoding):
    headers = {"Content-Encoding": encoding} if encoding else {}
    with server.client() as http:
        created = http.post("/v1/datasets", json={"name": unique}).json()
        response = http.put(
            f"/v1/datasets/{created['id']}/data",
            params={"updateMethod": method},
            headers=headers,
            content=b"",
        )
        assert response.status_code == 204, response.text
        assert http.get(f"/v1/datasets/{created['id']}").json()["rows"] == 0
