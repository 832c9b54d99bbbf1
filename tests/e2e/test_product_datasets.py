"""Creating and deleting datasets through the product API, as real clients do (product-api.md §3.3, §3.5)."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.test_sharing import DS, Person, new_dataset, new_person, share
from tests.support.server import RunningServer

V2 = "/api/data/v2/datasources"
COLUMNS = [{"type": "STRING", "name": "Friend"}, {"type": "LONG", "name": "Attending", "upsertKey": False}]


@pytest.fixture
def editor(server: RunningServer) -> Person:
    return new_person(server, role="Editor")


def test_a_v2_create_answers_the_new_id_under_data_source(server: RunningServer, editor: Person):
    name = "hello world " + uuid.uuid4().hex[:6]
    body = {"userDefinedType": "api", "dataSourceName": name, "schema": {"columns": COLUMNS}}  # domolibrary's
    with editor.client(server) as client:
        response = client.post(V2, json=body)
        assert response.status_code == 200, response.text
        created = response.json()["dataSource"]
        dataset_id = created["dataSourceId"]
        fetched = client.get(f"{DS}/{dataset_id}").json()
        owners = client.get(f"{DS}/{dataset_id}/permissions").json()["list"]
        stream = client.get(f"/api/data/v1/streams/{fetched['streamId']}")
    assert created["dataSourceName"] == name and created["dataSourceDescription"] == ""
    assert created["responsibleUserId"] == editor.id
    assert created["created"] > 1_600_000_000_000 and created["lastUpdated"] >= created["created"]
    assert {"displayType", "dataProviderType", "userDefinedType"} <= created.keys()
    assert fetched["name"] == name and fetched["columnCount"] == 2 and fetched["rowCount"] == 0
    assert owners == [{"type": "USER", "id": str(editor.id), "accessLevel": "OWNER", "name": editor.name}]
    assert stream.status_code == 200  # it has its stream, like any dataset


def test_a_v2_create_takes_description_under_either_name_and_ignores_other_keys(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        first = client.post(
            V2,
            json={
                "dataSourceName": "a",
                "description": "plain",
                "dataProviderType": "api",
                "schema": {"columns": [{"name": "x", "type": "DOUBLE"}]},
                "tags": ["ignored"],
            },
        )
        second = client.post(V2, json={"dataSourceName": "b", "dataSourceDescription": "prefixed"})
        assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
        described = client.get(f"{DS}/{first.json()['dataSource']['dataSourceId']}").json()
    assert described["description"] == "plain"
    assert second.json()["dataSource"]["dataSourceDescription"] == "prefixed"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"schema": {"columns": COLUMNS}}, "dataSourceName"),
        ({"dataSourceName": "  "}, "dataSourceName"),
        ({"dataSourceName": 7}, "dataSourceName"),
        ({"dataSourceName": "x", "dataSourceDescription": 5}, "dataSourceDescription"),
        ({"dataSourceName": "x", "schema": {"columns": "name"}}, "schema"),
        ({"dataSourceName": "x", "schema": {"columns": [{"name": "a", "type": "TEXTY"}]}}, "TEXTY"),
        ({"dataSourceName": "x", "schema": {"columns": [{"type": "LONG"}]}}, "schema column 0"),
    ],
)
def test_a_bad_v2_create_is_400_naming_the_field(
    server: RunningServer, editor: Person, body: dict, named: str
):
    with editor.client(server) as client:
        before = len(client.get("/v1/datasets", params={"limit": 50}).json())
        response = client.post(V2, json=body)
        after = len(client.get("/v1/datasets", params={"limit": 50}).json())
    assert response.status_code == 400
    assert named in response.json()["message"]
    assert after == before  # nothing was created


def test_a_participant_may_not_create_a_dataset_through_v2(server: RunningServer):
    participant = new_person(server)
    with participant.client(server) as client:
        assert client.post(V2, json={"dataSourceName": "nope"}).status_code == 403


@pytest.mark.parametrize("query", ["?deleteMethod=hard", "?deleteMethod=SOFT", ""])
def test_deleting_a_datasource_answers_an_empty_object_and_it_is_gone(
    server: RunningServer, editor: Person, query: str
):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        response = client.delete(f"{DS}/{dataset_id}{query}")
        assert response.status_code == 200, response.text
        assert response.json() == {}
        assert client.get(f"{DS}/{dataset_id}").status_code == 404
        assert client.delete(f"{DS}/{dataset_id}{query}").status_code == 404


def test_a_delete_with_a_json_body_is_accepted(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        response = client.request("DELETE", f"{DS}/{dataset_id}", params={"deleteMethod": "hard"}, json={})
    assert response.status_code == 200, response.text


def test_deleting_needs_co_owner_and_a_known_delete_method(server: RunningServer, editor: Person):
    sharer = new_person(server)
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        assert share(
            client, dataset_id, {"type": "USER", "id": sharer.id, "accessLevel": "CAN_SHARE"}
        ).is_success
        bad = client.delete(f"{DS}/{dataset_id}", params={"deleteMethod": "shred"})
        assert bad.status_code == 400 and "deleteMethod" in bad.json()["message"]
    with sharer.client(server) as theirs:
        assert theirs.delete(f"{DS}/{dataset_id}").status_code == 403
    with editor.client(server) as client:
        assert client.get(f"{DS}/{dataset_id}").status_code == 200  # still there
