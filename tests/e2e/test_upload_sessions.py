"""Domo's upload sessions (product-api.md §3.6): open, parts, commit, sent as real clients send them."""

from __future__ import annotations

import gzip
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.test_sharing import DS, Person, new_dataset, new_person, share
from tests.support.server import RunningServer

MISSING_DATASET = "00000000-0000-4000-8000-000000000000"
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def editor(server: RunningServer) -> Person:
    return new_person(server, role="Editor")


def open_upload(client: httpx.Client, dataset_id: str, body: object = None, **params: str) -> int:
    response = client.post(f"{DS}/{dataset_id}/uploads", json=body, params=params)
    assert response.status_code == 200, response.text
    return response.json()["uploadId"]


def put_part(client: httpx.Client, dataset_id: str, upload_id: int, part: int, data: bytes, **headers: str):  # type: ignore[no-untyped-def]
    return client.put(
        f"{DS}/{dataset_id}/uploads/{upload_id}/parts/{part}", content=data, headers={**CSV, **headers}
    )


def commit(client: httpx.Client, dataset_id: str, upload_id: int, body: object = None) -> httpx.Response:
    return client.put(f"{DS}/{dataset_id}/uploads/{upload_id}/commit", json=body)


def rows(client: httpx.Client, dataset_id: str) -> list[list[object]]:
    response = client.post(
        f"/api/query/v1/execute/{dataset_id}?format=columns", json={"sql": "SELECT * FROM table ORDER BY n"}
    )
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def test_the_flow_as_domolibrary_sends_it_replaces_the_data(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "old,100\n")
        before = int(time.time() * 1000)
        opened = client.post(f"{DS}/{dataset_id}/uploads", json={"action": None, "appendId": None})
        assert opened.status_code == 200, opened.text
        session = opened.json()
        assert session["dataSourceId"] == dataset_id
        assert isinstance(session["uploadId"], int) and session["uploadId"]
        assert before - 5000 <= session["requestedAsOf"] <= int(time.time() * 1000) + 5000  # epoch ms
        upload_id = session["uploadId"]
        parts = {
            1: (b"a,1\nb,2\n", {}),
            2: (gzip.compress(b"c,3\n"), {"Content-Encoding": "gzip"}),  # as Domo's R package sends parts
            3: (gzip.compress(b"d,4\ne,5\n"), {}),  # gzip recognised by its magic bytes
            4: (b"f,6\n", {}),
        }
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(
                    lambda n: put_part(client, dataset_id, upload_id, n, parts[n][0], **parts[n][1]), parts
                )
            )
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert answer.json()["uploadStatus"] == "SUCCESS" and answer.json()["uploadMessage"]
        assert [a.json()["rows"] for a in answers] == [2, 1, 2, 1]
        committed = commit(client, dataset_id, upload_id, {"index": False, "action": "REPLACE"})
        assert committed.status_code == 200, committed.text
        sent = sum(len(data) for data, _ in parts.values())
        assert committed.json() == {
            "dataSourceId": dataset_id,
            "uploadId": upload_id,
            "dataTag": None,
            "status": "SUCCESS",
            "size": {"rowCount": 6, "columnCount": 2, "numberOfBytes": sent, "partCount": 4},
            "indexing": {"requested": False},
            "updateMethod": "REPLACE",
        }
        assert rows(client, dataset_id) == [["a", 1], ["b", 2], ["c", 3], ["d", 4], ["e", 5], ["f", 6]]
        datasource = client.get(f"{DS}/{dataset_id}").json()
    assert datasource["details"]["rows"] == datasource["rowCount"] == 6


def test_an_append_session_adds_rows_and_the_commit_may_send_index_as_a_string(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        upload_id = open_upload(
            client, dataset_id, {"action": "APPEND", "message": "Uploading", "appendId": "latest"}
        )
        assert put_part(client, dataset_id, upload_id, 1, b"b,2\n").status_code == 200
        committed = commit(client, dataset_id, upload_id, {"action": "APPEND", "index": "true"})
        assert committed.status_code == 200, committed.text
        assert committed.json()["indexing"] == {"requested": True}
        assert rows(client, dataset_id) == [["a", 1], ["b", 2]]


def test_the_commits_action_decides_over_the_opening_one(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        upload_id = open_upload(client, dataset_id, {"action": "REPLACE"})
        put_part(client, dataset_id, upload_id, 1, b"b,2\n")
        assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).json()["updateMethod"] == "APPEND"
        assert rows(client, dataset_id) == [["a", 1], ["b", 2]]
        # Without an action at commit, the session's own (given when it was opened) applies.
        upload_id = open_upload(client, dataset_id, {"action": "REPLACE"})
        put_part(client, dataset_id, upload_id, 1, b"c,3\n")
        assert commit(client, dataset_id, upload_id).json()["updateMethod"] == "REPLACE"
        assert rows(client, dataset_id) == [["c", 3]]


@pytest.mark.parametrize("body", [None, {}, {"action": "append"}])
def test_a_session_opens_with_no_body_null_or_lowercase_action(
    server: RunningServer, editor: Person, body: object
):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        if body is None:
            response = client.post(f"{DS}/{dataset_id}/uploads")
        else:
            response = client.post(f"{DS}/{dataset_id}/uploads", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["uploadId"]


def test_partition_parameters_and_a_trailing_slash_are_accepted(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        opened = client.post(
            f"{DS}/{dataset_id}/uploads/",
            params={"restateDataTag": "2024-01"},
            json={"action": None, "appendId": None},
        )
        assert opened.status_code == 200, opened.text
        upload_id = opened.json()["uploadId"]
        assert put_part(client, dataset_id, upload_id, 0, b"a,1\n").status_code == 200  # part 0 is fine too
        committed = commit(
            client,
            dataset_id,
            upload_id,
            {"action": "APPEND", "dataTag": "2024-01", "appendId": "latest", "index": False},
        )
        assert committed.status_code == 200, committed.text
        assert committed.json()["dataTag"] is None  # partitions are not supported: the tag is ignored
        assert rows(client, dataset_id) == [["a", 1]]


def test_a_retried_commit_answers_the_same_and_lands_once(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        upload_id = open_upload(client, dataset_id, {"action": "APPEND"})
        put_part(client, dataset_id, upload_id, 1, b"b,2\n")
        first = commit(client, dataset_id, upload_id, {"action": "APPEND", "index": False})
        again = commit(client, dataset_id, upload_id, {"action": "APPEND", "index": False})
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        assert rows(client, dataset_id) == [["a", 1], ["b", 2]]


def test_a_bad_part_is_400_naming_part_line_column_and_value_and_can_be_sent_again(
    server: RunningServer, editor: Person
):
    with editor.client(server) as client:
        dataset_id = new_dataset(client, "a,1\n")
        upload_id = open_upload(client, dataset_id, {"action": "APPEND"})
        assert put_part(client, dataset_id, upload_id, 1, b"b,2\n").status_code == 200
        bad = put_part(client, dataset_id, upload_id, 2, b"c,3\nd,four\n")
        assert bad.status_code == 400
        message = bad.json()["message"]
        assert "part 2" in message and "line 2" in message and '"n"' in message and "four" in message
        assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).status_code == 409
        assert rows(client, dataset_id) == [["a", 1]]  # nothing appended
        assert put_part(client, dataset_id, upload_id, 2, b"c,3\nd,4\n").status_code == 200
        assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).status_code == 200
        assert rows(client, dataset_id) == [["a", 1], ["b", 2], ["c", 3], ["d", 4]]


def test_a_part_after_commit_and_a_commit_after_abort_are_409(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        upload_id = open_upload(client, dataset_id)
        put_part(client, dataset_id, upload_id, 1, b"a,1\n")
        assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).status_code == 200
        assert put_part(client, dataset_id, upload_id, 2, b"b,2\n").status_code == 409
        aborted_id = open_upload(client, dataset_id)
        put_part(client, dataset_id, aborted_id, 1, b"c,3\n")
        aborted = client.put(f"{DS}/{dataset_id}/uploads/{aborted_id}/abort")
        assert aborted.status_code == 200, aborted.text
        assert aborted.json() == {"dataSourceId": dataset_id, "uploadId": aborted_id, "status": "ABORTED"}
        assert commit(client, dataset_id, aborted_id, {"action": "APPEND"}).status_code == 409
        assert rows(client, dataset_id) == [["a", 1]]


def test_opening_a_session_aborts_the_one_still_open(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        first = open_upload(client, dataset_id)
        second = open_upload(client, dataset_id)
        assert put_part(client, dataset_id, first, 1, b"a,1\n").status_code == 409
        assert put_part(client, dataset_id, second, 1, b"b,2\n").status_code == 200


def test_unknown_and_foreign_upload_ids_are_404(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id, other_id = new_dataset(client), new_dataset(client)
        foreign = open_upload(client, other_id)
        for upload_id in (987654321, foreign):
            assert put_part(client, dataset_id, upload_id, 1, b"a,1\n").status_code == 404
            assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).status_code == 404
            assert client.put(f"{DS}/{dataset_id}/uploads/{upload_id}/abort").status_code == 404
        assert client.post(f"{DS}/{MISSING_DATASET}/uploads", json={"action": "APPEND"}).status_code == 404
        assert put_part(client, MISSING_DATASET, foreign, 1, b"a,1\n").status_code == 404
        assert commit(client, MISSING_DATASET, foreign).status_code == 404
        # The foreign session was not touched.
        assert put_part(client, other_id, foreign, 1, b"z,26\n").status_code == 200
        assert rows(client, dataset_id) == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"action": "UPSERT"}, "UPSERT is not supported"),
        ({"action": "REPAIR"}, "REPAIR"),
        ({"action": "MERGE"}, "action"),
    ],
)
def test_an_unsupported_action_is_400(server: RunningServer, editor: Person, body: dict, named: str):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        response = client.post(f"{DS}/{dataset_id}/uploads", json=body)
    assert response.status_code == 400
    assert named in response.json()["message"]


def test_a_bad_commit_body_is_400_and_commits_nothing(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        upload_id = open_upload(client, dataset_id)
        put_part(client, dataset_id, upload_id, 1, b"a,1\n")
        for body in ({"action": "APPEND", "index": "maybe"}, {"action": "UPSERT"}):
            response = commit(client, dataset_id, upload_id, body)
            assert response.status_code == 400, response.text
        assert rows(client, dataset_id) == []
        assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).status_code == 200
        assert rows(client, dataset_id) == [["a", 1]]


def test_sessions_need_edit_and_strangers_see_nothing(server: RunningServer, editor: Person):
    viewer, stranger = new_person(server), new_person(server)
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        share(client, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"})
        upload_id = open_upload(client, dataset_id)
    with viewer.client(server) as theirs:
        assert theirs.post(f"{DS}/{dataset_id}/uploads", json={"action": "APPEND"}).status_code == 403
        assert put_part(theirs, dataset_id, upload_id, 1, b"a,1\n").status_code == 403
        assert commit(theirs, dataset_id, upload_id, {"action": "APPEND"}).status_code == 403
    with stranger.client(server) as theirs:
        assert theirs.post(f"{DS}/{dataset_id}/uploads", json={"action": "APPEND"}).status_code == 404
        assert put_part(theirs, dataset_id, upload_id, 1, b"a,1\n").status_code == 404
    with editor.client(server) as client:  # the session is still the editor's to finish
        assert put_part(client, dataset_id, upload_id, 1, b"a,1\n").status_code == 200
        assert commit(client, dataset_id, upload_id, {"action": "APPEND"}).status_code == 200


def test_a_dataset_whose_stream_was_deleted_still_takes_uploads(server: RunningServer, editor: Person):
    with editor.client(server) as client:
        dataset_id = new_dataset(client)
        stream_id = client.get(f"{DS}/{dataset_id}").json()["streamId"]
        assert client.delete(f"/v1/streams/{stream_id}").status_code == 204
        upload_id = open_upload(client, dataset_id, {"action": "APPEND"})
        put_part(client, dataset_id, upload_id, 1, b"a,1\n")
        assert commit(client, dataset_id, upload_id).status_code == 200
        assert rows(client, dataset_id) == [["a", 1]]
