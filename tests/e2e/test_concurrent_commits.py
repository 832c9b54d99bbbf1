"""Commits that race each other all land, whole and exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.s3_storage

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "who"}]}
PARTS = 6
ROWS = 2000


def rows(start: int, who: str) -> bytes:
    return "".join(f"{start + i},{who}\n" for i in range(ROWS)).encode()


def staged_execution(client, name: str) -> tuple[int, str, int]:
    stream = client.post(
        "/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}, "updateMethod": "APPEND"}
    )
    sid, dataset_id = stream.json()["id"], stream.json()["dataSet"]["id"]
    eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
    for part in range(PARTS):
        response = client.put(
            f"/v1/streams/{sid}/executions/{eid}/part/{part}", content=rows(part * ROWS, name)
        )
        assert response.status_code == 200, response.text
    return sid, dataset_id, eid


def count(client, dataset_id: str, sql: str = "SELECT COUNT(*) FROM table") -> int:
    return client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql}).json()["rows"][0][0]


def test_two_streams_committing_at_once_both_land(server, unique):
    with server.client() as client:
        first = staged_execution(client, f"first {unique}")
        second = staged_execution(client, f"second {unique}")
        with ThreadPoolExecutor(2) as pool:
            answers = list(
                pool.map(
                    lambda s: client.put(f"/v1/streams/{s[0]}/executions/{s[2]}/commit"), (first, second)
                )
            )
        assert [a.json()["currentState"] for a in answers] == ["SUCCESS", "SUCCESS"]
        assert count(client, first[1]) == PARTS * ROWS and count(client, second[1]) == PARTS * ROWS


def test_a_stream_commit_racing_imports_into_the_same_dataset_keeps_every_row_once(server, unique):
    # Both write the same Iceberg table at once: one of them loses the optimistic commit and redoes it.
    with server.client() as client:
        sid, dataset_id, eid = staged_execution(client, f"race {unique}")

        def commit():
            return client.put(f"/v1/streams/{sid}/executions/{eid}/commit").status_code

        def import_rows(index: int):
            body = rows(1_000_000 + index * ROWS, "import")
            return client.put(f"/v1/datasets/{dataset_id}/data?updateMethod=APPEND", content=body).status_code

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(commit)] + [pool.submit(import_rows, i) for i in range(3)]
            statuses = [f.result() for f in futures]
        assert statuses == [200, 204, 204, 204]
        assert count(client, dataset_id) == PARTS * ROWS + 3 * ROWS
        assert count(client, dataset_id, "SELECT COUNT(DISTINCT n) FROM table") == PARTS * ROWS + 3 * ROWS
        assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == PARTS * ROWS + 3 * ROWS
