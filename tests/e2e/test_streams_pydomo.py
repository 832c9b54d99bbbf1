"""The Stream API, driven end to end by the unmodified pydomo SDK against a real server."""

from __future__ import annotations

import gzip
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from pydomo.datasets import Column, ColumnType, DataSetRequest, Schema
from pydomo.streams import CreateStreamRequest, UpdateMethod

pytestmark = pytest.mark.s3_storage

FRIENDS = Schema([Column(ColumnType.STRING, "Friend"), Column(ColumnType.LONG, "Age")])


def create_stream(domo, name: str, method: str = UpdateMethod.APPEND) -> dict:
    request = DataSetRequest()
    request.name = name
    request.description = "guests"
    request.schema = FRIENDS
    return domo.streams.create(CreateStreamRequest(request, method))


def rows(domo, dataset_id: str) -> list[list]:
    return domo.datasets.query(dataset_id, "SELECT * FROM table")["rows"]


def test_create_get_list_search_update_delete(domo, unique):
    stream = create_stream(domo, f"euler {unique}")
    assert isinstance(stream["id"], int)
    assert stream["dataSet"]["name"] == f"euler {unique}" and stream["updateMethod"] == "APPEND"
    dataset_id = stream["dataSet"]["id"]
    assert domo.streams.get(stream["id"])["dataSet"]["id"] == dataset_id
    listed, offset = [], 0
    while page := domo.streams.list(500, offset):  # other tests share the server: page through all
        listed += [s["id"] for s in page]
        offset += 500
    assert stream["id"] in listed
    assert [s["id"] for s in domo.streams.search(f"dataSource.id:{dataset_id}")] == [stream["id"]]
    assert [s["id"] for s in domo.streams.search(f"dataSource.name:euler {unique}")] == [stream["id"]]
    owner = stream["dataSet"]["owner"]["id"]
    by_owner = domo.streams.search(f"dataSource.owner.id:{owner}")  # the first page (50) of the owner's
    assert by_owner and {s["dataSet"]["owner"]["id"] for s in by_owner} == {owner}
    updated = domo.streams.update(stream["id"], {"updateMethod": "REPLACE"})
    assert updated["updateMethod"] == "REPLACE"
    domo.streams.delete(stream["id"])
    with pytest.raises(Exception, match="404"):
        domo.streams.get(stream["id"])
    assert domo.datasets.get(dataset_id)["id"] == dataset_id  # the dataset survives


def test_three_parts_uploaded_in_parallel_commit_in_part_order(domo, unique, tmp_path):
    stream = create_stream(domo, f"parallel {unique}")
    execution = domo.streams.create_execution(stream["id"])
    assert execution["currentState"] == "ACTIVE"
    plain = "Pythagoras,70\nTuring,41\n"
    csv_file = tmp_path / "part.csv"
    csv_file.write_text("Boole,49\n")
    gz_file = tmp_path / "part2.csv"
    gz_file.write_text("Euler,76\nGauss,77\n")

    uploads = [
        lambda: domo.streams.upload_part(stream["id"], execution["id"], 0, plain),
        lambda: domo.streams.upload_part(stream["id"], execution["id"], 1, io.BytesIO(csv_file.read_bytes())),
        lambda: domo.streams.upload_gzip_part_from_file(
            stream["id"], execution["id"], 2, str(gz_file), True, 1024
        ),
    ]
    with ThreadPoolExecutor(3) as pool:
        answers = [f.result() for f in [pool.submit(u) for u in uploads]]
    assert {a["id"] for a in answers} == {execution["id"]}
    assert answers[0]["part"]["rows"] == 2 and answers[2]["part"]["rows"] == 2
    assert domo.streams.get_execution(stream["id"], execution["id"])["currentState"] == "ACTIVE"
    assert rows(domo, stream["dataSet"]["id"]) == []  # nothing is visible before the commit

    committed = domo.streams.commit_execution(stream["id"], execution["id"])
    assert committed["currentState"] == "SUCCESS" and committed["rows"] == 5
    assert rows(domo, stream["dataSet"]["id"]) == [
        ["Pythagoras", 70],
        ["Turing", 41],
        ["Boole", 49],
        ["Euler", 76],
        ["Gauss", 77],
    ]
    assert domo.datasets.get(stream["dataSet"]["id"])["rows"] == 5
    # Committing again is a no-op that answers the same.
    assert domo.streams.commit_execution(stream["id"], execution["id"])["currentState"] == "SUCCESS"
    assert len(rows(domo, stream["dataSet"]["id"])) == 5


def test_append_adds_and_replace_swaps(domo, unique):
    stream = create_stream(domo, f"methods {unique}")
    for method, body in ((None, "a,1\n"), ("APPEND", "b,2\n")):
        execution = domo.streams.create_execution(stream["id"], method)
        domo.streams.upload_part(stream["id"], execution["id"], 1, body)
        domo.streams.commit_execution(stream["id"], execution["id"])
    assert rows(domo, stream["dataSet"]["id"]) == [["a", 1], ["b", 2]]
    execution = domo.streams.create_execution(stream["id"], "REPLACE")
    domo.streams.upload_part(stream["id"], execution["id"], 7, "c,3\n")
    domo.streams.commit_execution(stream["id"], execution["id"])
    assert rows(domo, stream["dataSet"]["id"]) == [["c", 3]]


def test_a_windows_part_keeps_the_line_breaks_inside_its_cells(domo, unique):
    # pandas on Windows: CRLF after each record, a cell's own "\n" kept, and "\r\n" inside a cell.
    stream = create_stream(domo, f"windows {unique}")
    execution = domo.streams.create_execution(stream["id"])
    body = '"two\nlines",1\r\n"dos\r\nlines",2\r\nplain,3\r\n'
    domo.streams.upload_part(stream["id"], execution["id"], 1, body)
    domo.streams.commit_execution(stream["id"], execution["id"])
    assert rows(domo, stream["dataSet"]["id"]) == [["two\nlines", 1], ["dos\r\nlines", 2], ["plain", 3]]


def test_reuploading_a_part_replaces_it(domo, unique):
    stream = create_stream(domo, f"retry {unique}")
    execution = domo.streams.create_execution(stream["id"])
    domo.streams.upload_part(stream["id"], execution["id"], 1, "first,1\n")
    domo.streams.upload_part(stream["id"], execution["id"], 1, "second,2\n")
    domo.streams.commit_execution(stream["id"], execution["id"])
    assert rows(domo, stream["dataSet"]["id"]) == [["second", 2]]


def test_abort_by_id_and_abort_current(domo, unique):
    stream = create_stream(domo, f"abort {unique}")
    execution = domo.streams.create_execution(stream["id"])
    domo.streams.upload_part(stream["id"], execution["id"], 1, "x,1\n")
    aborted = domo.streams.abort_execution(stream["id"], execution["id"])
    assert aborted["id"] == execution["id"] and aborted["currentState"] == "ABORTED"
    with pytest.raises(Exception, match="409"):
        domo.streams.commit_execution(stream["id"], execution["id"])
    current = domo.streams.create_execution(stream["id"])
    domo.streams.abort_current_execution(stream["id"])
    assert domo.streams.get_execution(stream["id"], current["id"])["currentState"] == "ABORTED"
    assert rows(domo, stream["dataSet"]["id"]) == []
    listed = domo.streams.list_executions(stream["id"], 50, 0)
    assert [e["id"] for e in listed] == [execution["id"], current["id"]]


def test_a_new_execution_aborts_the_active_one(domo, unique):
    stream = create_stream(domo, f"supersede {unique}")
    first = domo.streams.create_execution(stream["id"])
    second = domo.streams.create_execution(stream["id"])
    assert domo.streams.get_execution(stream["id"], first["id"])["currentState"] == "ABORTED"
    assert domo.streams.get_execution(stream["id"], second["id"])["currentState"] == "ACTIVE"


def test_ds_create_ds_update_and_ds_get_with_a_dataframe(domo, unique):
    frame = pd.DataFrame(
        {
            "name": ["Alice", 'Bob "the, builder"', None, "multi\nline"],
            "count": [1, 2, 3, 4],
            "score": [1.5, None, 1e20, -0.25],
            "at": pd.to_datetime(
                ["2024-01-01 10:00:00", "2024-01-02 00:00:00", None, "2024-01-04 23:59:59.123456"],
                format="ISO8601",
            ),
        }
    )
    dataset_id = domo.ds_create(frame, f"frame {unique}")
    back = domo.ds_get(dataset_id)
    assert back["name"].tolist()[:2] == ["Alice", 'Bob "the, builder"'] and pd.isna(back["name"][2])
    assert back["name"][3] == "multi\nline"
    assert back["count"].tolist() == [1, 2, 3, 4]
    assert back["score"][2] == 1e20 and pd.isna(back["score"][1])
    assert back["at"][3] == pd.Timestamp("2024-01-04 23:59:59.123456") and pd.isna(back["at"][2])

    domo.ds_update(dataset_id, frame.head(2))
    assert len(domo.ds_get(dataset_id)) == 2  # ds_create's stream is REPLACE

    wider = frame.head(1).assign(extra=[True])
    domo.ds_update(dataset_id, wider)  # a schema change, then a REPLACE in the new shape
    assert domo.ds_meta(dataset_id)["schema"]["columns"][-1] == {"type": "STRING", "name": "extra"}
    assert domo.ds_get(dataset_id)["extra"].tolist() == ["True"]


def test_a_dataset_made_with_the_dataset_api_has_a_stream_for_ds_update(domo, unique):
    request = DataSetRequest()
    request.name = f"plain {unique}"
    request.schema = Schema([Column(ColumnType.LONG, "n")])
    dataset_id = domo.datasets.create(request)["id"]
    domo.ds_update(dataset_id, pd.DataFrame({"n": [1, 2, 3]}))
    assert domo.ds_query(dataset_id, "SELECT SUM(n) AS s FROM table")["s"].tolist() == [6]


def test_a_bad_part_names_part_line_column_and_value_and_keeps_the_execution_active(server, unique):
    with server.client() as client:
        stream = client.post(
            "/v1/streams", json={"dataSet": {"name": f"bad {unique}", "schema": FRIENDS_JSON}}
        ).json()
        base = f"/v1/streams/{stream['id']}/executions"
        execution = client.post(base).json()
        response = client.put(f"{base}/{execution['id']}/part/3", content=b"ok,1\nbad,x\n")
        assert response.status_code == 400
        assert "part 3" in response.json()["message"] and "line 2" in response.json()["message"]
        assert response.json()["details"]["column"] == "Age" and response.json()["details"]["value"] == "x"
        assert client.get(f"{base}/{execution['id']}").json()["currentState"] == "ACTIVE"
        refused = client.put(f"{base}/{execution['id']}/commit")
        assert refused.status_code == 409 and "part 3" in refused.json()["message"]
        assert client.put(f"{base}/{execution['id']}/part/3", content=b"fixed,2\n").status_code == 200
        assert client.put(f"{base}/{execution['id']}/commit").json()["currentState"] == "SUCCESS"
        assert client.put(f"{base}/{execution['id']}/part/4", content=b"late,3\n").status_code == 409


FRIENDS_JSON = {"columns": [{"type": "STRING", "name": "Friend"}, {"type": "LONG", "name": "Age"}]}


def test_lenient_bodies_and_trailing_slashes(server, unique):
    with server.client() as client:
        stream = client.post(
            "/v1/streams/", json={"dataSet": {"name": f"lenient {unique}", "schema": FRIENDS_JSON}}
        )
        assert stream.status_code == 201
        sid = stream.json()["id"]
        for body in (None, b"null", b"{}", b'{"updateMethod": null}', b'{"updateMethod": "APPEND"}'):
            created = client.post(
                f"/v1/streams/{sid}/executions", content=body, headers={"Content-Type": "application/json"}
            )
            assert created.status_code == 200, (body, created.text)
        eid = created.json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{eid}/part/0", content=b"a,1\n")
        assert (
            client.put(
                f"/v1/streams/{sid}/executions/{eid}/commit",
                content=b'""',
                headers={"Content-Type": "application/json"},
            ).status_code
            == 200
        )
        assert client.get("/v1/streams/").status_code == 200
        assert (
            client.patch(
                f"/v1/streams/{sid}",
                json={"dataSet": {"name": "", "schema": {"columns": []}}, "updateMethod": "REPLACE"},
            ).json()["dataSet"]["name"]
            == f"lenient {unique}"
        )


def test_node_style_gzip_part_without_content_encoding(server, unique):
    with server.client() as client:
        sid = client.post(
            "/v1/streams", json={"dataSet": {"name": f"node {unique}", "schema": FRIENDS_JSON}}
        ).json()["id"]
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        body = gzip.compress(b"zipped,9\n")
        answer = client.put(
            f"/v1/streams/{sid}/executions/{eid}/part/1",
            content=body,
            headers={"Content-Type": "application/gzip"},
        )
        assert answer.status_code == 200 and answer.json()["part"]["rows"] == 1
        import hashlib

        assert answer.json()["part"]["checksum"] == hashlib.md5(body).hexdigest()
        empty = client.put(f"/v1/streams/{sid}/executions/{eid}/part/2", content=b"")
        assert empty.status_code == 400 and "empty" in empty.json()["message"]
        truncated = client.put(f"/v1/streams/{sid}/executions/{eid}/part/3", content=body[:-4])
        assert truncated.status_code == 400


def test_parts_in_canonical_form_take_the_fast_conversion_and_others_the_strict_one(domo, server, unique):
    stream = create_stream(domo, f"conversions {unique}")
    execution = domo.streams.create_execution(stream["id"])
    parts = {0: "Pythagoras,70\nTuring,41\n", 1: "Hypatia,45\r\n", 2: "\ufeffNoether,53\n"}  # LF, CRLF, BOM
    for number, body in parts.items():
        domo.streams.upload_part(stream["id"], execution["id"], number, body)
    domo.streams.commit_execution(stream["id"], execution["id"])

    staged = [
        json.loads(line)
        for line in server.log_path.read_text().splitlines()
        if '"part staged"' in line and f'"execution":{execution["id"]},' in line
    ]
    assert {entry["part"]: entry["conversion"] for entry in staged} == {
        0: "canonical",
        1: "canonical",
        2: "strict",
    }
    assert sorted(rows(domo, stream["dataSet"]["id"])) == [
        ["Hypatia", 45],
        ["Noether", 53],
        ["Pythagoras", 70],
        ["Turing", 41],
    ]
