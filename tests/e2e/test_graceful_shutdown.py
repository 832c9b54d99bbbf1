"""Graceful shutdown: SIGTERM during a part upload, a commit, a query and a connector run. The work
under way finishes (a connector run is cancelled and runs again), new requests get 503, the process
exits 0, and a restart shows everything committed once and nothing half-committed — also when the
grace period runs out in the middle of a commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.connector_streams import config, new_stream, wait_for
from tests.support.server import RunningServer
from tests.support.sources import FileServer, Served

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}]}


@pytest.fixture(scope="module")
def web() -> Iterator[FileServer]:
    served = FileServer()
    yield served
    served.close()


def numbers(start: int, stop: int) -> bytes:
    return "".join(f"{i}\n" for i in range(start, stop)).encode()


def count(client: httpx.Client, dataset_id: str) -> int:
    answer = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0][0]


def new_stream_with_parts(client: httpx.Client, name: str, parts: int, rows: int) -> tuple[int, str, int]:
    stream = client.post("/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}}).json()
    sid, dataset_id = stream["id"], stream["dataSet"]["id"]
    eid = client.post(f"/v1/streams/{sid}/executions", json={"updateMethod": "APPEND"}).json()["id"]
    for part in range(parts):
        uploaded = client.put(
            f"/v1/streams/{sid}/executions/{eid}/part/{part}", content=numbers(part * rows, (part + 1) * rows)
        )
        assert uploaded.status_code == 200, uploaded.text
    return sid, dataset_id, eid


def check(server: RunningServer) -> subprocess.CompletedProcess[str]:
    """``datagrove check`` as an operator runs it on the server's data directory."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGROVE_")}
    return subprocess.run(
        [sys.executable, "-m", "datagrove.cli", "check", "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def wait_for_log(server: RunningServer, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in server.log_path.read_text():
        assert time.monotonic() < deadline, f"never logged {text!r}"
        time.sleep(0.05)


def test_sigterm_lets_the_work_under_way_finish_refuses_new_work_and_exits_0(
    tmp_path: Path, web: FileServer
) -> None:
    body = b"id\n" + b"".join(b"%d\n" % i for i in range(200_000))
    web.files["/slow.csv"] = Served(body, trickle=1.0)  # ~20 s to read: still running at SIGTERM
    env = {
        "DATAGROVE_SHUTDOWN_GRACE_SECONDS": "30",
        # The stream commit (after the import) and the query are surely under way at the signal.
        "DATAGROVE_PAUSE_AT": "commit-files-placed#2:4,query-starting:4",
        "DATAGROVE_CONNECTOR_ALLOWED_HOSTS": "127.0.0.1",
        "DATAGROVE_CONNECTOR_HEARTBEAT_SECONDS": "0.5",
        "DATAGROVE_CONNECTOR_RETRY_BACKOFF_SECONDS": "0.2",
    }
    server = RunningServer(data_dir=tmp_path / "data", catalog_url=None, extra_env=env).start()
    try:
        with server.client() as client:
            sid, committed_dataset, eid = new_stream_with_parts(client, "commit", parts=3, rows=1000)
            upload_sid, upload_dataset, upload_eid = new_stream_with_parts(client, "upload", parts=0, rows=0)
            query_dataset = client.post("/v1/datasets", json={"name": "query", "schema": SCHEMA}).json()["id"]
            assert (
                client.put(f"/v1/datasets/{query_dataset}/data", content=numbers(0, 1000)).status_code == 204
            )
            connector = new_stream(client, "csv", config(url=f"{web.url}/slow.csv"))
            run = client.post(f"/api/data/v1/streams/{connector['id']}/executions", json={"action": "Manual"})
            assert run.status_code == 200, run.text
            run_id = run.json()["executionId"]

        first_chunk_sent = threading.Event()

        def slow_body() -> Iterator[bytes]:
            for chunk in range(12):  # ~3.6 s
                yield numbers(chunk * 1000, (chunk + 1) * 1000)
                first_chunk_sent.set()
                time.sleep(0.3)

        def request(method: str, path: str, **kwargs: object) -> httpx.Response:
            with server.client() as own:  # a connection of its own
                return own.request(method, path, **kwargs)  # type: ignore[arg-type]

        with ThreadPoolExecutor(3) as pool:
            upload: Future[httpx.Response] = pool.submit(
                request,
                "PUT",
                f"/v1/streams/{upload_sid}/executions/{upload_eid}/part/0",
                content=slow_body(),
            )
            commit = pool.submit(request, "PUT", f"/v1/streams/{sid}/executions/{eid}/commit")
            query = pool.submit(
                request,
                "POST",
                f"/v1/datasets/query/execute/{query_dataset}",
                json={"sql": "SELECT COUNT(*) FROM table"},
            )
            assert first_chunk_sent.wait(30)
            deadline = time.monotonic() + 30
            while not web.requests:  # the run is reading its source (a loaded machine claims it late)
                assert time.monotonic() < deadline, "the connector run never asked for its file"
                time.sleep(0.05)
            time.sleep(1)  # the commit and the query are in their pauses, the upload half-way
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            wait_for_log(server, "draining")

            refused = httpx.get(f"{server.base_url}/health", timeout=10)
            assert refused.status_code == 503
            assert refused.json()["code"] == "service_unavailable"
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["connection"] == "close"
            new_work = httpx.post(
                f"{server.base_url}/v1/streams",
                headers={"X-DOMO-Developer-Token": server.token},
                json={"dataSet": {"name": "late", "schema": SCHEMA}},
                timeout=10,
            )
            assert new_work.status_code == 503

            # Each finished after the drain began: its response closes its connection.
            for finished in (upload, commit, query):
                assert finished.result().status_code == 200, finished.result().text
                assert finished.result().headers["connection"] == "close"
            assert commit.result().json()["currentState"] == "SUCCESS"
            assert query.result().json()["rows"] == [[1000]]
        assert server.process.wait(timeout=30) == 0
        assert time.monotonic() - signalled < 30
    finally:
        server.kill()

    # The restart resumes: nothing lost, nothing doubled, nothing half-committed.
    restarted = RunningServer(
        data_dir=server.data_dir,
        catalog_url=None,
        port=server.port,
        client_id=server.client_id,
        client_secret=server.client_secret,
        token=server.token,
        extra_env={k: v for k, v in env.items() if k != "DATAGROVE_PAUSE_AT"},
    ).start()
    try:
        with restarted.client() as client:
            assert count(client, committed_dataset) == 3000
            staged = client.get(f"/v1/streams/{upload_sid}/executions/{upload_eid}").json()
            assert staged["currentState"] == "ACTIVE"
            done = client.put(f"/v1/streams/{upload_sid}/executions/{upload_eid}/commit")
            assert done.status_code == 200 and done.json()["currentState"] == "SUCCESS", done.text
            assert count(client, upload_dataset) == 12_000

            cancelled = wait_for(client, connector["id"], run_id)
            assert cancelled["currentState"] == "ERROR"
            assert [e["code"] for e in cancelled["errors"]] == ["shutdown"]
            web.files["/slow.csv"] = Served(body)  # the retry reads at full speed
            deadline = time.monotonic() + 60
            while True:
                runs = client.get(f"/v1/streams/{connector['id']}/executions").json()
                retried = [e for e in runs if e["id"] != run_id]
                if retried and retried[0]["currentState"] == "SUCCESS":
                    break
                assert time.monotonic() < deadline, runs
                time.sleep(0.2)
            assert count(client, connector["dataSource"]["id"]) == 200_000
        verdict = check(restarted)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    finally:
        restarted.stop()


def test_a_commit_still_under_way_when_the_grace_period_ends_lands_once_after_the_restart(
    tmp_path: Path,
) -> None:
    env = {"DATAGROVE_SHUTDOWN_GRACE_SECONDS": "1", "DATAGROVE_PAUSE_AT": "commit-files-placed:8"}
    server = RunningServer(data_dir=tmp_path / "data", catalog_url=None, extra_env=env).start()
    try:
        with server.client() as client:
            sid, dataset_id, eid = new_stream_with_parts(client, "abandoned", parts=4, rows=500)
        with ThreadPoolExecutor(1) as pool, server.client() as own:
            commit = pool.submit(own.put, f"/v1/streams/{sid}/executions/{eid}/commit")
            time.sleep(1.5)  # the commit is in its 8 s pause
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            # Exits once the grace period is over, not after the 8 s the commit would take.
            assert server.process.wait(timeout=30) == 0
            assert time.monotonic() - signalled < 7
            try:
                answered = commit.result()
            except httpx.HTTPError:
                pass  # the connection closed unanswered: the client retries the commit
            else:
                assert answered.status_code >= 500, answered.text
    finally:
        server.kill()

    restarted = RunningServer(
        data_dir=server.data_dir,
        catalog_url=None,
        port=server.port,
        client_id=server.client_id,
        client_secret=server.client_secret,
        token=server.token,
    ).start()
    try:
        with restarted.client() as client:
            assert count(client, dataset_id) == 0  # not half-committed
            interrupted = client.get(f"/v1/streams/{sid}/executions/{eid}").json()
            assert interrupted["currentState"] == "COMMITTING"
            retried = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
            assert retried.status_code == 200 and retried.json()["currentState"] == "SUCCESS", retried.text
            assert count(client, dataset_id) == 2000
            again = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
            assert again.status_code == 200
            assert count(client, dataset_id) == 2000  # exactly once
        verdict = check(restarted)
        assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    finally:
        restarted.stop()
