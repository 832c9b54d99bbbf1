"""Dataset versions (beyond Domo): a bad REPLACE is undone by restoring the version before it, earlier
versions are read through the query and export APIs with the same row-level policies, and a version
that is not there says so (410 for a snapshot id no longer in the history, 404 for anything else)."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid

import httpx

from tests.e2e.test_sharing import DS, new_person, share
from tests.e2e.test_tokens_and_audit import audit
from tests.support.server import RunningServer

SCHEMA = {
    "columns": [
        {"type": "STRING", "name": "region"},
        {"type": "LONG", "name": "amount"},
        {"type": "DATE", "name": "day"},
    ]
}
GOOD = "east,10,2024-01-01\nwest,20,2024-01-02\neast,30,2024-01-03\n"
MORE = "north,40,2024-01-04\n"
BAD = "oops,-1,1970-01-01\n"


def new_dataset(client: httpx.Client) -> str:
    created = client.post("/v1/datasets", json={"name": "versions-" + uuid.uuid4().hex[:8], "schema": SCHEMA})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def put(client: httpx.Client, dataset_id: str, csv_text: str, method: str = "REPLACE") -> None:
    answer = client.put(
        f"/v1/datasets/{dataset_id}/data", params={"updateMethod": method}, content=csv_text.encode()
    )
    assert answer.status_code == 204, answer.text


def versions(client: httpx.Client, dataset_id: str, **params: int) -> list[dict]:
    answer = client.get(f"/v1/datasets/{dataset_id}/versions", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()


def export(client: httpx.Client, dataset_id: str, version: str | None = None) -> bytes:
    params = {"includeHeader": "true", **({"version": version} if version else {})}
    answer = client.get(f"/v1/datasets/{dataset_id}/data", params=params)
    assert answer.status_code == 200, answer.text
    return answer.content


def query(client: httpx.Client, dataset_id: str, sql: str, version: str | None = None) -> list[list]:
    params = {"version": version} if version else {}
    answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", params=params, json={"sql": sql})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def restore(client: httpx.Client, dataset_id: str, version: str) -> httpx.Response:
    return client.post(f"/v1/datasets/{dataset_id}/versions/{version}/restore")


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_bad_replace_is_undone_by_restoring_the_version_before_it(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        put(client, dataset_id, MORE, method="APPEND")
        good = versions(client, dataset_id)[0]
        good_export = export(client, dataset_id)
        put(client, dataset_id, BAD)
        assert query(client, dataset_id, "SELECT region FROM table") == [["oops"]]

        restored = restore(client, dataset_id, good["version"])
        assert restored.status_code == 200, restored.text
        assert restored.json()["id"] == dataset_id and restored.json()["rows"] == 4
        assert checksum(export(client, dataset_id)) == checksum(good_export)
        assert query(client, dataset_id, "SELECT SUM(amount), COUNT(*) FROM `table`") == [[100, 4]]
        assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 4

        # The restore is a new version on top; the bad one stays in the history (it can be undone).
        after = versions(client, dataset_id)
        assert [v["current"] for v in after] == [True, False, False, False]
        newest, bad, *_ = after
        assert newest["version"] not in {v["version"] for v in after[1:]}
        assert newest["madeBy"]["kind"] == "restore" and newest["madeBy"]["id"] == good["version"]
        assert newest["rows"] == 4 and newest["rowsAdded"] == 4 and newest["rowsRemoved"] == 1
        assert after[2]["version"] == good["version"]
        assert checksum(export(client, dataset_id, bad["version"])) != checksum(good_export)


def test_the_history_lists_each_commit_once_newest_first_with_what_made_it(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        put(client, dataset_id, MORE, method="APPEND")
        put(client, dataset_id, BAD)
        me = client.get("/v1/datasets/" + dataset_id).json()["owner"]["id"]
        listed = versions(client, dataset_id)
    # A REPLACE is one version (Iceberg's DELETE + APPEND snapshots of one commit folded together).
    assert [(v["operation"], v["rowsAdded"], v["rowsRemoved"], v["rows"]) for v in listed] == [
        ("replace", 1, 4, 1),
        ("append", 1, 0, 4),
        ("append", 3, 0, 3),
    ]
    assert [v["current"] for v in listed] == [True, False, False]
    assert all(v["madeBy"] == {"kind": "import", "id": None, "userId": me} for v in listed)
    assert all(v["version"].isdigit() and v["createdAt"].endswith("Z") for v in listed)
    assert listed[0]["createdAt"] >= listed[1]["createdAt"] >= listed[2]["createdAt"]
    with server.client() as client:
        assert versions(client, dataset_id, limit=1, offset=1) == [listed[1]]
        assert versions(client, dataset_id, offset=3) == []


def test_an_earlier_version_is_read_through_both_query_apis_and_export(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        first = versions(client, dataset_id)[0]["version"]
        then = export(client, dataset_id)
        put(client, dataset_id, BAD)
        sql = "SELECT region, amount FROM table WHERE amount > 15 ORDER BY amount LIMIT 5"  # MySQL's LIMIT
        assert query(client, dataset_id, sql, first) == [["west", 20], ["east", 30]]
        product = client.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": sql, "version": first})
        assert product.status_code == 200, product.text
        assert product.json() == [{"region": "west", "amount": 20}, {"region": "east", "amount": 30}]
        in_url = client.post(f"/api/query/v1/execute/{dataset_id}?version={first}", json={"sql": sql})
        assert in_url.json() == product.json()
        clash = client.post(
            f"/api/query/v1/execute/{dataset_id}?version=1", json={"sql": sql, "version": first}
        )
        assert clash.status_code == 400
        assert export(client, dataset_id, first) == then
        assert query(client, dataset_id, "SELECT COUNT(*) FROM table") == [[1]]  # the current data


def test_an_earlier_version_has_the_columns_it_had_and_a_restore_across_a_schema_change_is_409(
    server: RunningServer,
):
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        first = versions(client, dataset_id)[0]["version"]
        then = export(client, dataset_id)
        wider = {"columns": [*SCHEMA["columns"], {"type": "STRING", "name": "note"}]}
        changed = client.put(f"/v1/datasets/{dataset_id}", json={"schema": wider})
        assert changed.status_code == 200, changed.text
        latest = versions(client, dataset_id)[0]
        assert latest["madeBy"]["kind"] == "schema" and latest["operation"] == "replace"

        answer = client.post(
            f"/v1/datasets/query/execute/{dataset_id}",
            params={"version": first},
            json={"sql": "SELECT * FROM table"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["columns"] == ["region", "amount", "day"]
        assert answer.json()["numRows"] == 3

        refused = restore(client, dataset_id, first)
        assert refused.status_code == 409, refused.text
        assert "note" in refused.json()["message"] and "schema" in refused.json()["message"]
        # Changing the schema back makes the restore possible.
        assert client.put(f"/v1/datasets/{dataset_id}", json={"schema": SCHEMA}).status_code == 200
        put(client, dataset_id, BAD)
        done = restore(client, dataset_id, first)
        assert done.status_code == 200, done.text
        assert export(client, dataset_id) == then


def test_row_level_policies_apply_to_earlier_versions(server: RunningServer):
    viewer = new_person(server)
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        first = versions(client, dataset_id)[0]["version"]
        put(client, dataset_id, "east,1,2024-02-01\nwest,2,2024-02-02\n")
        share(client, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"})
        policy = {
            "name": "east",
            "type": "user",
            "users": [viewer.id],
            "groups": [],
            "filters": [{"column": "region", "values": ["east"], "operator": "EQUALS", "not": False}],
        }
        assert client.post(f"/v1/datasets/{dataset_id}/policies", json=policy).status_code == 201
        assert client.put(f"/v1/datasets/{dataset_id}", json={"pdpEnabled": True}).status_code == 200
    with viewer.client(server) as as_viewer:
        sql = "SELECT region, amount FROM table ORDER BY amount"
        assert query(as_viewer, dataset_id, sql, first) == [["east", 10], ["east", 30]]
        assert query(as_viewer, dataset_id, sql) == [["east", 1]]
        records = list(csv.reader(io.StringIO(export(as_viewer, dataset_id, first).decode())))
        assert [r[0] for r in records[1:]] == ["east", "east"]
        product = as_viewer.post(
            f"/api/query/v1/execute/{dataset_id}",
            json={"sql": "SELECT COUNT(*) AS n FROM table", "version": first},
        )
        assert product.json() == [{"n": 2}]


def test_a_version_not_in_the_history_is_410_and_one_that_is_no_number_404(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        other = new_dataset(client)
        put(client, other, GOOD)
        elsewhere = versions(client, other)[0]["version"]  # a real snapshot id, of another table
        for version in ("1234567890123", elsewhere):
            for answer in (
                client.post(
                    f"/v1/datasets/query/execute/{dataset_id}",
                    params={"version": version},
                    json={"sql": "SELECT 1"},
                ),
                client.post(
                    f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT 1", "version": version}
                ),
                client.get(f"/v1/datasets/{dataset_id}/data", params={"version": version}),
                restore(client, dataset_id, version),
            ):
                assert answer.status_code == 410, answer.text
                body = answer.json()
                assert body["code"] == "version_gone" and version in body["message"]
                assert body["details"] == {"version": version}
        for garbage in ("abc", "-5", "1.5", "99999999999999999999"):
            assert (
                client.get(f"/v1/datasets/{dataset_id}/data", params={"version": garbage}).status_code == 404
            )
            assert restore(client, dataset_id, garbage).status_code == 404
        assert client.get(f"/v1/datasets/{uuid.uuid4()}/versions").status_code == 404


def test_viewers_may_list_and_read_versions_but_only_co_owners_restore(server: RunningServer):
    viewer, co_owner, stranger = new_person(server), new_person(server), new_person(server)
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        first = versions(client, dataset_id)[0]["version"]
        put(client, dataset_id, BAD)
        share(client, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"})
        share(client, dataset_id, {"type": "USER", "id": co_owner.id, "accessLevel": "CO_OWNER"})
    with viewer.client(server) as as_viewer:
        assert len(versions(as_viewer, dataset_id)) == 2
        assert query(as_viewer, dataset_id, "SELECT COUNT(*) FROM table", first) == [[3]]
        assert restore(as_viewer, dataset_id, first).status_code == 403
    with stranger.client(server) as as_stranger:
        assert as_stranger.get(f"/v1/datasets/{dataset_id}/versions").status_code == 404
        assert restore(as_stranger, dataset_id, first).status_code == 404
        assert (
            as_stranger.get(f"/v1/datasets/{dataset_id}/data", params={"version": first}).status_code == 404
        )
    with co_owner.client(server) as as_co_owner:
        assert restore(as_co_owner, dataset_id, first).status_code == 200
    entries = [e for e in audit(server, user=co_owner.id) if e["objectId"] == dataset_id]
    restored = [e for e in entries if e["eventText"] == "Restored a version of DataSet"]
    assert len(restored) == 1 and first in restored[0]["additionalComment"]
    refused = [e for e in audit(server, user=viewer.id) if e["objectId"] == dataset_id]
    assert not any("Restored" in e["eventText"] for e in refused)  # a 403 never reached the data


def test_a_restore_discards_the_one_row_appends_acknowledged_after_the_version(server: RunningServer):
    with server.client() as client:
        dataset_id = new_dataset(client)
        put(client, dataset_id, GOOD)
        first = versions(client, dataset_id)[0]["version"]
        appended = client.post(f"{DS}/{dataset_id}/uploads", json={"values": "south,5,2024-03-01"})
        assert appended.status_code == 200, appended.text
        assert query(client, dataset_id, "SELECT COUNT(*) FROM table") == [[4]]
        # A version is exactly its snapshot: rows still in the append buffer are the current data's only.
        assert query(client, dataset_id, "SELECT COUNT(*) FROM table", first) == [[3]]
        assert restore(client, dataset_id, first).status_code == 200
        assert query(client, dataset_id, "SELECT COUNT(*) FROM table") == [[3]]
        assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 3
