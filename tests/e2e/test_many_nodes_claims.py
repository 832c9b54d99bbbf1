"""Three server processes on one PostgreSQL catalog and one S3 bucket (moto) share their background
work through the catalog: the idle reaper, append folds, the scheduler and the run queue each claim
what they do there, so exactly one node does each thing.

The nodes run with short intervals (reaper, folds, scheduler) so that all three look for the same
work many times while a test lasts; each test then reads the three nodes' logs to count who did it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_append_rows import append
from tests.e2e.test_connector_schedules import MINUTELY, set_clock, settle
from tests.support.connector_streams import config, history, new_stream, wait_for
from tests.support.nodes import running_nodes
from tests.support.s3 import MotoServer
from tests.support.server import RunningServer
from tests.support.sources import FileServer, Served

IDLE_SECONDS = 2
FOLD_ROWS = 40
SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "node"}]}


@pytest.fixture(scope="module")
def clock(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clock") / "now"
    set_clock(path, "2026-03-01T10:00:30+00:00")
    return path


@pytest.fixture(scope="module")
def nodes(
    moto: MotoServer, clock: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[RunningServer]]:
    env = {
        "DATAGROVE_EXECUTION_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
        "DATAGROVE_REAPER_INTERVAL_SECONDS": "0.2",
        "DATAGROVE_APPEND_FOLD_ROWS": str(FOLD_ROWS),
        "DATAGROVE_APPEND_FOLD_SECONDS": "0.5",
        "DATAGROVE_APPEND_FOLD_INTERVAL_SECONDS": "0.1",
        "DATAGROVE_SCHEDULER_CLOCK_FILE": str(clock),
        "DATAGROVE_SCHEDULER_INTERVAL_SECONDS": "0.1",
        "DATAGROVE_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1",
        "DATAGROVE_CONNECTOR_HEARTBEAT_SECONDS": "2",  # taken for dead after 8 s: slow under load is not dead
    }
    with running_nodes(moto, tmp_path_factory, name="claims", env=env) as started:
        yield started


@pytest.fixture(scope="module")
def web() -> Iterator[FileServer]:
    served = FileServer()
    served.files["/tick.csv"] = Served(b"n\n1\n2\n")
    # About three seconds to read: longer than the nodes' idle timeout.
    served.files["/slow.csv"] = Served(b"n\n" + b"".join(b"%d\n" % i for i in range(60_000)), trickle=0.6)
    yield served
    served.close()


def events(node: RunningServer, event: str) -> list[dict[str, Any]]:
    """The node's log lines (JSON objects) for ``event``."""
    found = []
    for line in node.log_path.read_text().splitlines():
        if f'"event":"{event}"' in line:
            found.append(json.loads(line))
    return found


def everywhere(nodes: list[RunningServer], event: str, **fields: Any) -> list[dict[str, Any]]:
    """The log lines for ``event`` with ``fields`` of every node, each with the node's index."""
    return [
        {**entry, "node": index}
        for index, node in enumerate(nodes)
        for entry in events(node, event)
        if all(entry.get(key) == value for key, value in fields.items())
    ]


def test_idle_executions_are_reaped_each_by_exactly_one_node(nodes: list[RunningServer], unique: str):
    one, two, three = nodes
    executions = []  # several at once, so that the nodes' reaper rounds overlap
    with one.client() as client, two.client() as other:
        for index in range(6):
            created = client.post(
                "/v1/streams", json={"dataSet": {"name": f"idle {unique} {index}", "schema": SCHEMA}}
            )
            sid = created.json()["id"]
            eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
            assert (
                other.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=b"1,two\n").status_code == 200
            )
            executions.append((sid, eid))
    deadline = time.monotonic() + 30
    with three.client() as client:
        for sid, eid in executions:
            while (state := client.get(f"/v1/streams/{sid}/executions/{eid}").json())[
                "currentState"
            ] != "ABORTED":
                assert time.monotonic() < deadline, state
                time.sleep(0.2)
            assert "idle" in state["errorMessage"]

    # Each node reports the executions it aborted itself at the end of its round, so the reports add
    # up to the aborts (a node that counted every idle execution it saw would report more).
    def reported() -> int:
        return sum(e["aborted"] for e in everywhere(nodes, "reaped idle executions"))

    while reported() < len(executions):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1)  # five more reaper rounds on every node
    for _, eid in executions:
        aborted = everywhere(nodes, "execution aborted", execution=eid)
        assert len(aborted) == 1, aborted
    idle_aborts = [e for e in everywhere(nodes, "execution aborted") if "idle" in e["reason"]]
    assert reported() == len(idle_aborts) == len(executions)


def test_rows_appended_on_three_nodes_are_folded_exactly_once(nodes: list[RunningServer], unique: str):
    with nodes[0].client() as client:
        created = client.post("/v1/datasets", json={"name": f"appends {unique}", "schema": SCHEMA})
        assert created.status_code == 201, created.text
    dataset_id = created.json()["id"]
    total = 300

    def append_on(node_index: int) -> None:
        with nodes[node_index].client() as client:
            for n in range(node_index, total, 3):
                answer = append(client, dataset_id, f"{n},node{node_index}")
                assert answer.status_code == 200, answer.text

    with ThreadPoolExecutor(3) as pool:
        list(pool.map(append_on, range(3)))

    def folded() -> list[dict[str, Any]]:
        return everywhere(nodes, "append buffer folded", dataset=dataset_id)

    deadline = time.monotonic() + 60
    while sum(fold["rows"] for fold in folded()) < total:
        assert time.monotonic() < deadline, folded()
        time.sleep(0.2)
    time.sleep(1)  # ten more fold rounds on every node: none may fold anything again
    folds = folded()
    assert sum(fold["rows"] for fold in folds) == total
    assert len({fold["through"] for fold in folds}) == len(folds)  # each batch of rows folded once
    assert len({fold["node"] for fold in folds}) > 1  # the work was shared, not one node's
    for node in nodes:
        with node.client() as client:
            answer = client.post(
                f"/v1/datasets/query/execute/{dataset_id}",
                json={"sql": "SELECT COUNT(*), COUNT(DISTINCT n), SUM(n) FROM table"},
            )
        assert answer.json()["rows"] == [[total, total, sum(range(total))]], answer.text


def test_a_scheduled_occurrence_runs_once_across_three_nodes(
    nodes: list[RunningServer], clock: Path, web: FileServer
):
    with nodes[0].client() as client:
        stream = new_stream(
            client, "csv", config(url=f"{web.url}/tick.csv"), method="APPEND", schedule=MINUTELY
        )
        set_clock(clock, "2026-03-01T10:01:00+00:00")
        ran = settle(client, stream["id"], 1, quiet=1)
        assert len(ran) == 1 and ran[0]["status"] == "completed", ran
        set_clock(clock, "2026-03-01T10:02:00+00:00")
        ran = settle(client, stream["id"], 2, quiet=1)
        assert len(ran) == 2 and {e["status"] for e in ran} == {"completed"}, ran
    queued = everywhere(nodes, "scheduled run queued", stream=stream["id"])
    assert sorted(q["due"] for q in queued) == ["2026-03-01T10:01:00+00:00", "2026-03-01T10:02:00+00:00"]


def test_run_now_on_three_nodes_at_once_queues_one_run_and_names_it_to_the_others(
    nodes: list[RunningServer], web: FileServer
):
    with nodes[0].client() as client:
        stream = new_stream(client, "csv", config(url=f"{web.url}/slow.csv"))
    sid = stream["id"]
    for _ in range(3):  # a few rounds: each is one chance for the requests to race
        gate = threading.Barrier(6)

        def run_now(node: RunningServer) -> httpx.Response:
            with node.client() as client:
                gate.wait()
                return client.post(f"/api/data/v1/streams/{sid}/executions", json={"action": "Manual"})

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(run_now, nodes * 2))
        started = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code == 409]
        assert len(started) == 1 and len(refused) == 5, [(a.status_code, a.text) for a in answers]
        run_id = started[0].json()["executionId"]
        assert {a.json()["details"]["execution_id"] for a in refused} == {run_id}
        with nodes[1].client() as client:
            aborted = client.put(f"/api/data/v1/streams/{sid}/executions/{run_id}/abort")
            assert aborted.status_code == 200, aborted.text
    with nodes[2].client() as client:
        runs = history(client, sid)
    assert [r["status"] for r in runs] == ["aborted"] * 3, runs


def test_a_connector_run_longer_than_the_idle_timeout_is_not_reaped(
    nodes: list[RunningServer], web: FileServer
):
    with nodes[0].client() as client:
        stream = new_stream(client, "csv", config(url=f"{web.url}/slow.csv"))
        started = client.post(f"/api/data/v1/streams/{stream['id']}/executions", json={"action": "Manual"})
        assert started.status_code == 200, started.text
        ended = wait_for(client, stream["id"], started.json()["executionId"], timeout=60)
    assert ended["currentState"] == "SUCCESS", ended
