"""Three server processes on one PostgreSQL catalog and one S3 bucket (moto) serve any request:
parts uploaded to different nodes commit on a third, commits from two nodes at once both land, and
a node killed mid-upload costs only that part's retry on another node."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.nodes import running_nodes
from tests.support.s3 import MotoServer
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "node"}]}
ROWS = 5000


def rows(start: int, node: str, count: int = ROWS) -> bytes:
    return "".join(f"{n},{node}\n" for n in range(start, start + count)).encode()


@pytest.fixture(scope="module")
def nodes(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningServer]]:
    with running_nodes(moto, tmp_path_factory, name="node") as started:
        yield started


def count(node: RunningServer, dataset_id: str) -> list:
    with node.client() as client:
        answer = client.post(
            f"/v1/datasets/query/execute/{dataset_id}",
            json={"sql": "SELECT COUNT(*), COUNT(DISTINCT n), SUM(n) FROM table"},
        )
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0]


def new_stream(node: RunningServer, name: str) -> tuple[int, str]:
    with node.client() as client:
        stream = client.post(
            "/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}, "updateMethod": "APPEND"}
        ).json()
    return stream["id"], stream["dataSet"]["id"]


def test_parts_uploaded_to_two_nodes_commit_on_a_third_and_every_node_reads_them(nodes, unique):
    one, two, three = nodes
    sid, dataset_id = new_stream(one, f"nodes {unique}")
    with one.client() as client:
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
    for part, node in enumerate([one, two, one, two]):
        with node.client() as client:
            answer = client.put(
                f"/v1/streams/{sid}/executions/{eid}/part/{part}", content=rows(part * ROWS, "x")
            )
            assert answer.status_code == 200, answer.text
    with three.client() as client:
        committed = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
    assert committed.json()["currentState"] == "SUCCESS", committed.text
    total = 4 * ROWS
    for node in nodes:
        assert count(node, dataset_id) == [total, total, sum(range(total))]


def test_an_oauth_token_issued_by_one_node_is_accepted_by_the_others(nodes):
    token = nodes[0].oauth_token("data")
    for node in nodes[1:]:
        answer = httpx.get(f"{node.base_url}/v1/datasets", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text


def test_two_nodes_committing_to_one_dataset_at_once_both_land(nodes, unique):
    one, two, three = nodes
    sid, dataset_id = new_stream(one, f"race {unique}")
    with one.client() as client:
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        for part in range(3):
            client.put(f"/v1/streams/{sid}/executions/{eid}/part/{part}", content=rows(part * ROWS, "one"))

    def commit() -> int:
        with one.client() as client:
            return client.put(f"/v1/streams/{sid}/executions/{eid}/commit").status_code

    def import_on(node: RunningServer, start: int) -> int:
        with node.client() as client:
            return client.put(
                f"/v1/datasets/{dataset_id}/data?updateMethod=APPEND", content=rows(start, "import")
            ).status_code

    with ThreadPoolExecutor(3) as pool:
        futures = [
            pool.submit(commit),
            pool.submit(import_on, two, 100_000),
            pool.submit(import_on, three, 200_000),
        ]
        assert [f.result() for f in futures] == [200, 204, 204]
    total = 5 * ROWS
    expected_sum = (
        sum(range(3 * ROWS)) + sum(range(100_000, 100_000 + ROWS)) + sum(range(200_000, 200_000 + ROWS))
    )
    for node in nodes:
        assert count(node, dataset_id) == [total, total, expected_sum]


def test_a_node_killed_mid_upload_costs_only_a_retry_of_that_part_on_another_node(nodes, unique):
    one, two, three = nodes
    sid, dataset_id = new_stream(one, f"kill {unique}")
    with one.client() as client:
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{eid}/part/0", content=rows(0, "one"))
    body = rows(ROWS, "retried")
    sent = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for offset in range(0, len(body), 4096):
            if offset >= len(body) // 2:
                sent.set()
                time.sleep(0.05)
            yield body[offset : offset + 4096]

    def upload_to_two() -> None:
        try:
            with two.client() as client:
                client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=slow_body())
        except httpx.HTTPError:
            pass  # the node died under it, as the test intends

    uploader = threading.Thread(target=upload_to_two)
    uploader.start()
    assert sent.wait(30)
    two.kill()
    uploader.join(60)
    try:
        with three.client() as client:  # the client retries the part on another node
            answer = client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=body)
            assert answer.status_code == 200, answer.text
            committed = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
            assert committed.json()["currentState"] == "SUCCESS", committed.text
        for node in (one, three):
            assert count(node, dataset_id) == [2 * ROWS, 2 * ROWS, sum(range(2 * ROWS))]
    finally:
        two.start()  # the module's other tests keep three nodes
    assert count(two, dataset_id) == [2 * ROWS, 2 * ROWS, sum(range(2 * ROWS))]
