"""Crash safety: SIGKILL the server during a commit or a part upload, restart it, and the dataset
holds the old or the new data in full; a retried commit lands exactly once."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "batch"}]}
PARTS = 60
ROWS_PER_PART = 500


@pytest.fixture(params=["local", "s3"])
def crashable(request, tmp_path):
    """A server of this test's own (killing the shared one would disturb other tests), with its
    tables in its data directory or in a moto bucket (where placing a file is a copy, not a rename)."""
    env = {}
    if request.param == "s3":
        moto = request.getfixturevalue("moto")
        env = moto.env(moto.new_bucket())
    server = RunningServer(data_dir=tmp_path / "data", catalog_url=None, extra_env=env).start()
    yield server
    server.kill()


def count(client: httpx.Client, dataset_id: str) -> int:
    answer = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0][0]


def part_body(part: int) -> bytes:
    start = part * ROWS_PER_PART
    return "".join(f"{start + i},new\n" for i in range(ROWS_PER_PART)).encode()


def prepare(server: RunningServer) -> tuple[str, int, int]:
    """A stream whose dataset holds 1000 'old' rows, and an APPEND execution with 60 staged parts."""
    with server.client() as client:
        stream = client.post("/v1/streams", json={"dataSet": {"name": "crash", "schema": SCHEMA}}).json()
        sid, dataset_id = stream["id"], stream["dataSet"]["id"]
        assert (
            client.put(
                f"/v1/datasets/{dataset_id}/data",
                content=b"".join(f"{i},old\n".encode() for i in range(1000)),
            ).status_code
            == 204
        )
        eid = client.post(f"/v1/streams/{sid}/executions", json={"updateMethod": "APPEND"}).json()["id"]

        def upload(part: int) -> None:
            response = client.put(f"/v1/streams/{sid}/executions/{eid}/part/{part}", content=part_body(part))
            assert response.status_code == 200, response.text

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(upload, range(PARTS)))
    return dataset_id, sid, eid


@pytest.mark.parametrize(
    ("crash_at", "rows_after_crash"),
    # The first commit-files-placed is the initial CSV import of prepare(); the second is the stream commit.
    [("commit-files-placed#2", 1000), ("commit-landed", 1000 + PARTS * ROWS_PER_PART)],
)
@pytest.mark.parametrize("storage", ["local", "s3"])
def test_a_commit_killed_inside_it_leaves_old_or_new_data_and_a_retry_lands_once(
    request, tmp_path, crash_at, rows_after_crash, storage
):
    env = {}
    if storage == "s3":  # placing a staged part is a copy then a delete there, not one rename
        moto = request.getfixturevalue("moto")
        env = moto.env(moto.new_bucket())
    server = RunningServer(data_dir=tmp_path / "data", catalog_url=None, extra_env=env)
    server.extra_env["DATAGROVE_CRASH_AT"] = crash_at
    server.start()
    try:
        dataset_id, sid, eid = prepare(server)
        with server.client() as client, pytest.raises(httpx.HTTPError):
            client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
        server.process.wait(timeout=10)  # the server killed itself at the crash point
        server.extra_env.pop("DATAGROVE_CRASH_AT")
        server.start()
        with server.client() as client:
            assert count(client, dataset_id) == rows_after_crash
            retried = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
            assert retried.status_code == 200 and retried.json()["currentState"] == "SUCCESS", retried.text
            assert count(client, dataset_id) == 1000 + PARTS * ROWS_PER_PART  # exactly once
            assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 1000 + PARTS * ROWS_PER_PART
            again = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
            assert again.json()["currentState"] == "SUCCESS"
            assert count(client, dataset_id) == 1000 + PARTS * ROWS_PER_PART
    finally:
        server.kill()


@pytest.mark.parametrize("delay", [0.02, 0.08])
def test_a_commit_killed_at_a_random_moment_leaves_old_or_new_data_and_a_retry_lands_once(crashable, delay):
    dataset_id, sid, eid = prepare(crashable)
    commit_url = f"{crashable.base_url}/v1/streams/{sid}/executions/{eid}/commit"
    headers = {"X-DOMO-Developer-Token": crashable.token}
    outcome: dict[str, object] = {}

    def commit() -> None:
        try:
            outcome["status"] = httpx.put(commit_url, headers=headers, timeout=60).status_code
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    committer = threading.Thread(target=commit)
    committer.start()
    time.sleep(delay)
    crashable.kill()
    committer.join()
    crashable.start()

    with crashable.client() as client:
        after_crash = count(client, dataset_id)
        assert after_crash in (1000, 1000 + PARTS * ROWS_PER_PART)
        retried = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
        assert retried.status_code == 200, retried.text
        assert retried.json()["currentState"] == "SUCCESS"
        assert count(client, dataset_id) == 1000 + PARTS * ROWS_PER_PART  # exactly once, never doubled
        assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 1000 + PARTS * ROWS_PER_PART
        distinct = client.post(
            f"/v1/datasets/query/execute/{dataset_id}",
            json={"sql": "SELECT COUNT(DISTINCT n) FROM table WHERE batch = 'new'"},
        )
        assert distinct.json()["rows"][0][0] == PARTS * ROWS_PER_PART


def test_a_part_upload_killed_midway_leaves_the_dataset_alone_and_the_execution_usable(crashable):
    dataset_id, sid, eid = prepare(crashable)
    url = f"{crashable.base_url}/v1/streams/{sid}/executions/{eid}/part/{PARTS}"
    headers = {"X-DOMO-Developer-Token": crashable.token}

    def slow_body():
        for _ in range(200):
            yield b"".join(f"{i},late\n".encode() for i in range(2000))
            time.sleep(0.01)

    uploader = threading.Thread(
        target=lambda: _ignore_errors(
            lambda: httpx.put(url, content=slow_body(), headers=headers, timeout=60)
        )
    )
    uploader.start()
    time.sleep(0.5)
    crashable.kill()
    uploader.join()
    crashable.start()

    with crashable.client() as client:
        assert count(client, dataset_id) == 1000
        assert client.get(f"/v1/streams/{sid}/executions/{eid}").json()["currentState"] == "ACTIVE"
        assert (
            client.put(f"/v1/streams/{sid}/executions/{eid}/part/{PARTS}", content=b"1,late\n").status_code
            == 200
        )
        assert client.put(f"/v1/streams/{sid}/executions/{eid}/commit").json()["currentState"] == "SUCCESS"
        assert count(client, dataset_id) == 1000 + PARTS * ROWS_PER_PART + 1


def _ignore_errors(call) -> None:
    with contextlib.suppress(httpx.HTTPError):
        call()


def test_a_commit_cut_short_by_a_crash_is_finished_by_the_reaper_without_a_retry(tmp_path):
    server = RunningServer(data_dir=tmp_path / "data", catalog_url=None)
    server.extra_env["DATAGROVE_CRASH_AT"] = "commit-landed"
    server.start()
    try:
        dataset_id, sid, eid = prepare(server)
        with server.client() as client, pytest.raises(httpx.HTTPError):
            client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
        server.process.wait(timeout=10)
        server.extra_env = {
            "DATAGROVE_COMMIT_RESUME_AFTER_SECONDS": "0.5",
            "DATAGROVE_REAPER_INTERVAL_SECONDS": "0.2",
        }
        server.start()
        with server.client() as client:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                state = client.get(f"/v1/streams/{sid}/executions/{eid}").json()["currentState"]
                if state == "SUCCESS":
                    break
                time.sleep(0.2)
            assert state == "SUCCESS"
            assert client.get(f"/v1/datasets/{dataset_id}").json()["rows"] == 1000 + PARTS * ROWS_PER_PART
            assert count(client, dataset_id) == 1000 + PARTS * ROWS_PER_PART
            assert not (server.data_dir / "staging" / "executions" / str(eid)).exists()
    finally:
        server.kill()
