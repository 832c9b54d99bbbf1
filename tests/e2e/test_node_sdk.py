"""The Stream API, driven end to end by the unmodified npm package ``domo-sdk@2.0.1`` against a real server.

``tests/node/stream_flow.js`` does the whole flow with the Node SDK: it gets its token the Node way
(``GET /oauth/token?scope=user%20data&grant_type=client_credentials``), creates a stream, an execution,
uploads a plain ``text/csv`` part and an ``application/gzip`` part (no ``Content-Encoding``), commits,
reads the stream and executions back and exports the CSV; it prints what the SDK returned as one JSON line.

Needs Node and npm (``npm ci`` installs the locked ``tests/node/package-lock.json`` once per session).
Without them the tests are skipped locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import RunningServer

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "stream_flow.js"

# What stream_flow.js uploads: part 1 as plain CSV, part 2 gzip-compressed.
PLAIN_ROWS = [["Pythagoras", 70], ["Turing", 41], ["Noether, Emmy", 53]]
GZIP_ROWS = [["Euler", 76], ["Gauss", 77]]


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so the Node SDK tests must run)")
    pytest.skip(reason)


@contextmanager
def _node_modules_lock(exclusive: bool) -> Iterator[None]:
    """Keeps one session's ``npm ci`` (which deletes node_modules) from racing another's ``node`` run."""
    digest = hashlib.sha256(str(NODE_DIR).encode()).hexdigest()[:16]
    lock_path = Path(tempfile.gettempdir()) / f"datagrove-node-tests-{digest}.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def node_sdk() -> str:
    """The ``node`` executable, with ``tests/node/node_modules`` installed from the lock file."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        _unavailable("node and npm are needed for the Node SDK tests")
    assert node and npm
    with _node_modules_lock(exclusive=True):
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            timeout=600,
        )
    if result.returncode != 0:
        _unavailable(f"npm ci failed in {NODE_DIR}:\n{result.stdout}\n{result.stderr}")
    return node


@pytest.fixture(scope="module")
def flow(node_sdk: str, server: RunningServer) -> dict[str, Any]:
    """Runs stream_flow.js once per server and returns its JSON line (plus the stream name it used)."""
    name = f"node sdk {uuid.uuid4().hex[:10]}"
    env = {
        **os.environ,
        "DG_HOST": server.host,
        "DG_CLIENT_ID": server.client_id,
        "DG_CLIENT_SECRET": server.client_secret,
        "DG_STREAM_NAME": name,
    }
    with _node_modules_lock(exclusive=False):
        result = subprocess.run(
            [node_sdk, str(SCRIPT)], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 0, (
        f"stream_flow.js failed (exit {result.returncode}):\n{result.stderr}\n"
        f"server log tail:\n{server.log_path.read_text()[-4000:]}"
    )
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    answer = json.loads(lines[0])
    assert answer["streamName"] == name
    return answer


def parse_csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def as_text(rows: list[list[Any]]) -> list[list[str]]:
    return [[str(v) for v in row] for row in rows]


def test_stream_created_with_numeric_id_and_dataset(flow):
    stream = flow["createdStream"]
    assert isinstance(flow["streamId"], int) and stream["id"] == flow["streamId"]
    assert stream["updateMethod"] == "APPEND"
    assert stream["dataSet"]["name"] == flow["streamName"]
    assert stream["dataSet"]["schema"]["columns"] == [
        {"type": "STRING", "name": "Friend"},
        {"type": "LONG", "name": "Age"},
    ]
    assert flow["fetchedStream"]["id"] == flow["streamId"]
    assert flow["fetchedStream"]["dataSet"]["id"] == flow["datasetId"]


def test_parts_accepted_plain_and_gzip(flow):
    execution_id = flow["createdExecution"]["id"]
    assert isinstance(execution_id, int)
    assert flow["createdExecution"]["currentState"] == "ACTIVE"
    # uploadPart / uploadCompressedPart get the raw body; the script parses it, so it must be the execution JSON.
    for answer, part_id, rows in (
        (flow["plainPartAnswer"], 1, PLAIN_ROWS),
        (flow["gzipPartAnswer"], 2, GZIP_ROWS),
    ):
        assert isinstance(answer, dict), answer
        assert answer["id"] == execution_id
        assert answer["part"]["id"] == part_id and answer["part"]["rows"] == len(rows)


def test_commit_succeeds_and_executions_list_it(flow):
    execution_id = flow["createdExecution"]["id"]
    assert flow["executionStateAfterCommit"] == "SUCCESS"
    assert flow["committed"]["id"] == execution_id
    assert flow["committed"]["rows"] == len(PLAIN_ROWS) + len(GZIP_ROWS)
    assert flow["fetchedExecution"]["currentState"] == "SUCCESS"
    listed = {e["id"]: e for e in flow["executions"]}
    assert listed[execution_id]["currentState"] == "SUCCESS"
    assert flow["dataset"]["id"] == flow["datasetId"]
    assert flow["dataset"]["rows"] == len(PLAIN_ROWS) + len(GZIP_ROWS)


def test_export_through_the_sdk_has_plain_part_then_gzip_part(flow):
    assert isinstance(flow["exportedCsv"], str), flow["exportedCsv"]
    assert parse_csv(flow["exportedCsv"]) == as_text(PLAIN_ROWS + GZIP_ROWS)
    assert parse_csv(flow["exportedCsvWithHeader"]) == [["Friend", "Age"], *as_text(PLAIN_ROWS + GZIP_ROWS)]


def test_query_over_http_sees_the_committed_rows(flow, server):
    with server.client() as http:
        response = http.post(
            f"/v1/datasets/query/execute/{flow['datasetId']}", json={"sql": "SELECT * FROM table"}
        )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["rows"] == PLAIN_ROWS + GZIP_ROWS
    assert result["numRows"] == len(PLAIN_ROWS) + len(GZIP_ROWS)
    assert result["columns"] == ["Friend", "Age"]
