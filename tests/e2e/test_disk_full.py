"""A full disk for real: the server's data directory is a small tmpfs, filled by a filler file while
a part upload, an import, a commit and a fold of the append buffer write to it. Each fails with a
clear 507 (a fold waits), nothing becomes visible and staging is cleaned; once the filler is
deleted the same requests succeed and ``datagrove check`` is clean. The free-space floor refuses an
upload before the disk is completely full.

The catalog database lives outside the tmpfs, so that the full disk is met by the data path each
test aims at (staging, Parquet, Iceberg metadata) rather than by whichever catalog write comes first.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import RunningServer
from tests.support.tmpfs import filled, tmpfs

TMPFS_BYTES = 64 * 1024**2
FLOOR_BYTES = 1024**2
SCHEMA = {"columns": [{"type": "LONG", "name": "n"}]}
TEXT_SCHEMA = {"columns": [{"type": "STRING", "name": "s"}]}
FOLD_ROWS = 20


@dataclass
class TmpfsServer(RunningServer):
    """A server whose log lives outside its (small) data directory: a full disk must not cost the
    log that shows what happened."""

    log_dir: Path = Path()

    @property
    def log_path(self) -> Path:
        return self.log_dir / "server.log"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TmpfsServer]:
    outside = tmp_path_factory.mktemp("disk-full-outside")
    with tmpfs(tmp_path_factory.mktemp("disk-full-tmpfs"), size=TMPFS_BYTES) as mount:
        running = TmpfsServer(
            data_dir=mount / "data",
            catalog_url=f"sqlite:///{outside / 'catalog.db'}",
            log_dir=outside,
            extra_env={
                "DATAGROVE_MIN_FREE_DISK_BYTES": str(FLOOR_BYTES),
                "DATAGROVE_APPEND_FOLD_ROWS": str(FOLD_ROWS),
                "DATAGROVE_APPEND_FOLD_INTERVAL_SECONDS": "0.2",
            },
        )
        running.start()
        try:
            yield running
        finally:
            running.stop()


def mount_of(server: RunningServer) -> Path:
    return server.data_dir.parent


def count(client: httpx.Client, dataset_id: str) -> int:
    answer = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0][0]


def assert_507(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    body = response.json()
    assert body["code"] == "insufficient_storage"
    assert "disk" in body["message"] and "Traceback" not in response.text


def upload_leftovers(server: RunningServer) -> list[str]:
    """Files of uploads left in staging (per-upload areas; an execution's staged parts)."""
    staging = server.data_dir / "staging"
    areas = [p.name for p in staging.iterdir() if p.name not in ("executions", "reads")]
    executions = staging / "executions"
    parts = [str(p) for p in executions.rglob("*") if p.is_file()] if executions.exists() else []
    return areas + parts


def numbers(start: int, stop: int) -> bytes:
    return "".join(f"{i}\n" for i in range(start, stop)).encode()


def incompressible(rows: int) -> bytes:
    """CSV text that Parquet cannot shrink much (random hex strings): its conversion needs room."""
    return "".join(f"{secrets.token_hex(24)}\n" for _ in range(rows)).encode()


def new_execution(client: httpx.Client, name: str) -> tuple[int, str, int]:
    stream = client.post("/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}}).json()
    eid = client.post(f"/v1/streams/{stream['id']}/executions", json={"updateMethod": "APPEND"}).json()["id"]
    return stream["id"], stream["dataSet"]["id"], eid


def test_a_part_upload_that_fills_the_disk_is_507_and_succeeds_once_space_returns(
    server: TmpfsServer,
) -> None:
    body = numbers(0, 800_000)  # ~5.4 MB: more than is left
    with server.client() as client:
        sid, dataset_id, eid = new_execution(client, "part")
        part = f"/v1/streams/{sid}/executions/{eid}/part/0"
        with filled(mount_of(server), leave=3 * FLOOR_BYTES):
            assert_507(client.put(part, content=body))
            assert upload_leftovers(server) == []
            assert client.get(f"/v1/streams/{sid}/executions/{eid}").json()["currentState"] == "ACTIVE"
        uploaded = client.put(part, content=body)
        assert uploaded.status_code == 200, uploaded.text
        committed = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
        assert committed.json()["currentState"] == "SUCCESS", committed.text
        assert count(client, dataset_id) == 800_000


def test_an_import_whose_conversion_fills_the_disk_is_507_and_leaves_the_dataset_as_it_was(
    server: TmpfsServer,
) -> None:
    body = incompressible(40_000)  # ~2 MB of CSV, then its Parquet: more than is left
    with server.client() as client:
        dataset_id = client.post("/v1/datasets", json={"name": "import", "schema": TEXT_SCHEMA}).json()["id"]
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=b"kept\n").status_code == 204
        with filled(mount_of(server), leave=len(body) + FLOOR_BYTES // 2):
            assert_507(client.put(f"/v1/datasets/{dataset_id}/data", content=body))
            assert upload_leftovers(server) == []
        assert client.get(f"/v1/datasets/{dataset_id}/data").text == '"kept"\n'
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=body).status_code == 204
        assert count(client, dataset_id) == 40_000


def test_a_commit_on_a_full_disk_is_507_keeps_its_parts_and_a_retry_lands_once(server: TmpfsServer) -> None:
    with server.client() as client:
        sid, dataset_id, eid = new_execution(client, "commit")
        for part in range(3):
            staged = client.put(
                f"/v1/streams/{sid}/executions/{eid}/part/{part}",
                content=numbers(part * 1000, part * 1000 + 1000),
            )
            assert staged.status_code == 200, staged.text
        commit = f"/v1/streams/{sid}/executions/{eid}/commit"
        with filled(mount_of(server), leave=0):
            assert_507(client.put(commit))
        # Begun and kept for a retry (the reaper would also resume it); nothing half-visible.
        assert client.get(f"/v1/streams/{sid}/executions/{eid}").json()["currentState"] == "COMMITTING"
        assert count(client, dataset_id) == 0
        retried = client.put(commit)  # the same request, once space is back
        assert retried.status_code == 200 and retried.json()["currentState"] == "SUCCESS", retried.text
        assert count(client, dataset_id) == 3000
        assert client.put(commit).status_code == 200
        assert count(client, dataset_id) == 3000  # exactly once


def test_a_fold_on_a_full_disk_waits_and_the_rows_land_once_when_space_returns(server: TmpfsServer) -> None:
    with server.client() as client:
        dataset_id = client.post("/v1/datasets", json={"name": "fold", "schema": SCHEMA}).json()["id"]
        rows = FOLD_ROWS + 5
        with filled(mount_of(server), leave=0):
            for n in range(rows):  # durable in the catalog (not on the full disk): acknowledged
                appended = client.post(
                    f"/api/data/v3/datasources/{dataset_id}/uploads",
                    json={"values": str(n), "delimiter": ","},
                )
                assert appended.status_code == 200, appended.text
            deadline = time.monotonic() + 60
            while "waits for disk space" not in server.log_path.read_text():
                assert time.monotonic() < deadline, "the fold never met the full disk"
                time.sleep(0.1)
        deadline = time.monotonic() + 60
        while f'"append buffer folded","dataset":"{dataset_id}"' not in server.log_path.read_text():
            assert time.monotonic() < deadline, "the fold did not resume once space returned"
            time.sleep(0.1)
        answer = client.post(
            f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT n FROM table ORDER BY n"}
        )
        assert [row[0] for row in answer.json()["rows"]] == list(range(rows))  # once each


def test_the_free_space_floor_refuses_an_upload_before_the_disk_is_full(server: TmpfsServer) -> None:
    with server.client() as client:
        sid, dataset_id, eid = new_execution(client, "floor")
        part = f"/v1/streams/{sid}/executions/{eid}/part/0"
        with filled(mount_of(server), leave=FLOOR_BYTES // 2):
            refused = client.put(part, content=numbers(0, 10))  # tiny: it would fit, but the floor
            assert_507(refused)
            assert "min_free_disk_bytes" in refused.json()["message"]
            refused_import = client.put(f"/v1/datasets/{dataset_id}/data", content=numbers(0, 10))
            assert_507(refused_import)
            assert upload_leftovers(server) == []
        assert client.put(part, content=numbers(0, 10)).status_code == 200


def test_after_all_that_the_tables_check_clean(server: TmpfsServer) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGROVE_")}
    env["DATAGROVE_CATALOG_URL"] = server.catalog_url or ""
    verdict = subprocess.run(
        [sys.executable, "-m", "datagrove.cli", "check", "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
