"""``/api/data/v1/streams``: the seed document's "Get a Stream Representation" (its default keys, the
``fields`` rules), the stream list and the partial ``PUT`` (product-api.md §2.3)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.e2e.test_sharing import Person, new_person
from tests.support.server import RunningServer

STREAMS = "/api/data/v1/streams"
DEFAULT_KEYS = {"id", "userId", "name", "displayName", "type", "dataProviderType", "valid", "status"}
COLUMNS = [{"name": "k", "type": "STRING"}, {"name": "v", "type": "LONG"}]


@pytest.fixture
def editor(server: RunningServer) -> Person:
    """A fresh Editor: the streams it sees are exactly the ones it made."""
    return new_person(server, role="Editor")


def create_stream(client: httpx.Client, name: str | None = None, **extra: object) -> dict:
    body = {
        "transport": {"type": "API"},
        "dataSource": {"name": name or "stream-" + uuid.uuid4().hex[:8], "description": "first"},
        "schemaDefinition": {"columns": COLUMNS},
        **extra,
    }
    response = client.post(STREAMS, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def load(client: httpx.Client, stream_id: int, csv: bytes) -> None:
    execution = client.post(f"{STREAMS}/{stream_id}/executions").json()["executionId"]
    assert client.put(f"{STREAMS}/{stream_id}/executions/{execution}/part/1", content=csv).status_code == 200
    assert client.put(f"{STREAMS}/{stream_id}/executions/{execution}/commit").status_code == 200


# --- GET /{id} ------------------------------------------------------------------------------------


def test_without_fields_a_stream_answers_exactly_the_documents_default_keys_and_status(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        stream = create_stream(client, name="Sample Stream")
        response = client.get(f"{STREAMS}/{stream['id']}")
    assert response.status_code == 200
    assert response.json() == {
        "id": stream["id"],
        "userId": editor.id,
        "name": "Sample Stream",
        "displayName": "Sample Stream",
        "type": "API",
        "dataProviderType": "api",
        "valid": True,
        "status": "active",
    }


def test_the_documents_python_snippet_runs_as_written(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
    headers = {"X-DOMO-Developer-Token": editor.token, "Content-Type": "application/json"}
    url = f"{server.base_url}/api/data/v1/streams/{stream_id}"
    with httpx.Client() as client:
        response = client.get(url, headers=headers)
        assert response.json()["id"] == stream_id
    assert response.status_code == 200


def test_fields_all_answers_the_full_stream_with_the_default_keys_beside_it(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        stream = create_stream(client)
        body = client.get(f"{STREAMS}/{stream['id']}", params={"fields": "all"}).json()
        mixed = client.get(f"{STREAMS}/{stream['id']}", params={"fields": "id,ALL"}).json()
    assert body.keys() >= DEFAULT_KEYS
    full = {"dataSource", "updateMethod", "transport", "dataProvider", "account", "configuration"}
    full |= {"lastExecution", "schemaDefinition", "scheduleState", "advancedScheduleJson"}
    assert full <= body.keys()
    assert body["dataSource"]["id"] == stream["dataSource"]["id"]
    assert body["userId"] == editor.id and body["status"] == "active"
    assert mixed.keys() == body.keys()


def test_an_explicit_field_list_answers_only_those_keys(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream = create_stream(client)
        body = client.get(
            f"{STREAMS}/{stream['id']}", params={"fields": "id, dataSource,updateMethod,userId"}
        ).json()
    assert body.keys() == {"id", "dataSource", "updateMethod", "userId"}
    assert body["dataSource"]["id"] == stream["dataSource"]["id"] and body["updateMethod"] == "REPLACE"


def test_every_key_of_the_full_stream_may_be_named(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        full = client.get(f"{STREAMS}/{stream_id}", params={"fields": "all"}).json()
        named = client.get(f"{STREAMS}/{stream_id}", params={"fields": ",".join(full)})
    assert named.status_code == 200, named.text
    assert named.json().keys() == full.keys()


def test_an_unknown_field_is_400_listing_the_known_ones(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream_id = create_stream(client)["id"]
        response = client.get(f"{STREAMS}/{stream_id}", params={"fields": "id,nonsense"})
        with_all = client.get(f"{STREAMS}/{stream_id}", params={"fields": "all,nonsense"})
    assert response.status_code == 400 and with_all.status_code == 400
    message = response.json()["message"]
    assert "'nonsense'" in message
    for known in ("all", "userId", "displayName", "dataSource", "lastExecution", "status"):
        assert known in message


def test_creating_with_an_unknown_field_is_400_and_creates_nothing(server: RunningServer, editor: Person):
    name = "never-" + uuid.uuid4().hex[:8]
    with editor.client(server) as client:
        response = client.post(STREAMS, params={"fields": "nonsense"}, json={"dataSource": {"name": name}})
        assert response.status_code == 400
        listed = client.get(STREAMS, params={"limit": 500}).json()
    assert name not in [s["name"] for s in listed]


# --- GET / (list) ---------------------------------------------------------------------------------


def test_the_list_pages_with_limit_and_offset_and_is_empty_past_the_end(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        made = [create_stream(client)["id"] for _ in range(3)]
        first = client.get(STREAMS, params={"limit": 2})
        second = client.get(STREAMS, params={"limit": 2, "offset": 2})
        past = client.get(STREAMS, params={"limit": 2, "offset": 3})
        huge = client.get(STREAMS, params={"limit": 100000})
    assert first.status_code == second.status_code == past.status_code == huge.status_code == 200
    assert [s["id"] for s in first.json() + second.json()] == made
    assert past.json() == []
    assert [s["id"] for s in huge.json()] == made  # clamped to the maximum, never a 400
    assert all(s.keys() == DEFAULT_KEYS for s in first.json())


def test_the_list_shows_50_streams_unless_asked_for_more(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        for _ in range(51):
            create_stream(client)
        assert len(client.get(STREAMS).json()) == 50
        assert len(client.get(STREAMS, params={"limit": 500}).json()) == 51


def test_the_list_follows_the_fields_rules(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream = create_stream(client)
        full = client.get(STREAMS, params={"fields": "all"}).json()
        some = client.get(STREAMS, params={"fields": "id,dataSource"}).json()
        unknown = client.get(STREAMS, params={"fields": "nonsense"})
    assert full[0]["dataSource"]["id"] == stream["dataSource"]["id"] and full[0].keys() >= DEFAULT_KEYS
    assert some == [{"id": stream["id"], "dataSource": full[0]["dataSource"]}]
    assert unknown.status_code == 400 and "nonsense" in unknown.json()["message"]


def test_the_list_shows_only_streams_whose_dataset_the_caller_may_view(server: RunningServer, editor: Person):
    stranger = new_person(server, role="Editor")
    with editor.client(server) as client:
        create_stream(client)
    with stranger.client(server) as theirs:
        assert theirs.get(STREAMS).json() == []


# --- PUT /{id} ------------------------------------------------------------------------------------


def test_put_changes_the_update_method_and_answers_the_full_stream(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream = create_stream(client)
        response = client.put(f"{STREAMS}/{stream['id']}", json={"updateMethod": "APPEND"})
        again = client.get(f"{STREAMS}/{stream['id']}", params={"fields": "updateMethod"}).json()
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["updateMethod"] == "APPEND" and again == {"updateMethod": "APPEND"}
    assert body.keys() >= DEFAULT_KEYS and body["dataSource"]["id"] == stream["dataSource"]["id"]


def test_put_with_change_update_method_false_keeps_the_update_method(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream = create_stream(client)
        response = client.put(
            f"{STREAMS}/{stream['id']}",
            params={"changeUpdateMethod": "false"},
            json={"updateMethod": "APPEND"},
        )
    assert response.status_code == 200 and response.json()["updateMethod"] == "REPLACE"


def test_put_with_a_schema_definition_changes_the_schema_and_keeps_the_rows(
    server: RunningServer, editor: Person
):
    wider = [*COLUMNS, {"name": "note", "type": "STRING"}]
    with editor.client(server) as client:
        stream = create_stream(client)
        load(client, stream["id"], b"a,1\nb,2\n")
        response = client.put(f"{STREAMS}/{stream['id']}", json={"schemaDefinition": {"columns": wider}})
        rows = client.post(
            f"/api/query/v1/execute/{stream['dataSource']['id']}?format=columns",
            json={"sql": "SELECT k, v, note FROM table ORDER BY k"},
        ).json()["rows"]
    assert response.status_code == 200, response.text
    assert [(c["name"], c["type"]) for c in response.json()["schemaDefinition"]["columns"]] == [
        ("k", "STRING"),
        ("v", "LONG"),
        ("note", "STRING"),
    ]
    assert rows == [["a", 1, None], ["b", 2, None]]


def test_put_renames_and_describes_the_dataset_through_its_data_source(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        stream = create_stream(client)
        response = client.put(
            f"{STREAMS}/{stream['id']}", json={"dataSource": {"name": "renamed", "description": "second"}}
        )
        dataset = client.get(f"/v1/datasets/{stream['dataSource']['id']}")
        summary = client.get(f"{STREAMS}/{stream['id']}").json()
    assert response.status_code == 200, response.text
    assert response.json()["dataSource"]["name"] == "renamed"
    assert dataset.json()["name"] == "renamed" and dataset.json()["description"] == "second"
    assert summary["name"] == summary["displayName"] == "renamed"


def test_putting_back_the_whole_object_read_is_200_and_ignores_read_only_keys(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        stream = create_stream(client)
        read = client.get(f"{STREAMS}/{stream['id']}", params={"fields": "all"}).json()
        changed = {**read, "scheduleState": "MANUAL", "id": 1, "valid": False, "userId": 7}
        response = client.put(f"{STREAMS}/{stream['id']}", json=changed)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == stream["id"] and body["valid"] is True and body["userId"] == editor.id
    assert body["schemaDefinition"] == read["schemaDefinition"]
    assert body["dataSource"]["name"] == read["dataSource"]["name"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"updateMethod": "SIDEWAYS"}, "updateMethod"),
        ({"updateMethod": "APPEND", "schemaDefinition": {"columns": "k"}}, "schemaDefinition"),
        ({"updateMethod": "APPEND", "schemaDefinition": {"columns": [{"name": "k"}]}}, "schemaDefinition"),
        ({"updateMethod": "APPEND", "dataSource": {"name": ""}}, "dataSource.name"),
        ({"updateMethod": "APPEND", "dataSource": {"description": 5}}, "dataSource.description"),
        ({"updateMethod": "APPEND", "dataSource": "renamed"}, "dataSource"),
    ],
)
def test_a_bad_value_in_a_put_is_400_naming_the_field_and_changes_nothing(
    server: RunningServer, editor: Person, body: dict, named: str
):
    with editor.client(server) as client:
        stream = create_stream(client)
        response = client.put(f"{STREAMS}/{stream['id']}", json=body)
        after = client.get(f"{STREAMS}/{stream['id']}", params={"fields": "all"}).json()
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]
    assert after["updateMethod"] == "REPLACE" and after["dataSource"]["name"] == stream["dataSource"]["name"]


def test_a_schema_the_dataset_cannot_take_is_400_and_keeps_the_update_method(
    server: RunningServer, editor: Person
):
    duplicate = [{"name": "k", "type": "STRING"}, {"name": "k", "type": "LONG"}]
    with editor.client(server) as client:
        stream = create_stream(client)
        response = client.put(
            f"{STREAMS}/{stream['id']}",
            json={"updateMethod": "APPEND", "schemaDefinition": {"columns": duplicate}},
        )
        after = client.get(f"{STREAMS}/{stream['id']}", params={"fields": "updateMethod"}).json()
    assert response.status_code == 400
    assert after == {"updateMethod": "REPLACE"}


def test_a_put_needs_edit_on_the_dataset(server: RunningServer, editor: Person):
    viewer, stranger = new_person(server), new_person(server)
    with editor.client(server) as client:
        stream = create_stream(client)
        shared = client.post(
            f"/api/data/v3/datasources/{stream['dataSource']['id']}/share",
            json={"permissions": [{"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"}]},
        )
        assert shared.status_code == 200, shared.text
    with viewer.client(server) as theirs:
        assert theirs.put(f"{STREAMS}/{stream['id']}", json={"updateMethod": "APPEND"}).status_code == 403
    with stranger.client(server) as theirs:
        assert theirs.put(f"{STREAMS}/{stream['id']}", json={"updateMethod": "APPEND"}).status_code == 404
