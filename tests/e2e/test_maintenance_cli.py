"""``datagrove maintenance sweep`` and ``datagrove check`` as an operator runs them, beside a real
server whose commits were killed (crash points) after placing their files and before committing:
the sweep never takes an in-flight commit's files, takes a dead one's once they are older than
the safety age, and ``check`` reports orphans, missing files and files of the wrong size with a
non-zero exit. Every test runs with the tables in the data directory and in an S3 bucket (moto,
in this process so that the test can age objects: S3 has no call that sets Last-Modified)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pyarrow.fs as pafs
import pytest

from tests.support.s3_in_process import InProcessMoto, moto_in_process
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "batch"}]}
THREE_DAYS = 3 * 24 * 3600


@dataclass
class Tables:
    """Where a test's server keeps its tables: the data directory, or a bucket; the test's view of
    a table's data files (paths, or ``s3://`` URIs) and what it does to them."""

    moto: InProcessMoto | None = None
    bucket: str = ""

    @property
    def env(self) -> dict[str, str]:
        return self.moto.env(self.bucket) if self.moto is not None else {}

    def data_files(self, data_dir: Path, dataset_id: str) -> set[str]:
        table = "ds_" + dataset_id.replace("-", "")
        if self.moto is None:
            return {str(p) for p in (data_dir / "warehouse" / "datagrove" / table / "data").glob("*.parquet")}
        return {
            "s3://" + key
            for key in self.moto.objects(self.bucket)
            if f"/{table}/data/" in key and key.endswith(".parquet")
        }

    def exists(self, file: str) -> bool:
        if self.moto is None:
            return Path(file).exists()
        return self.moto.filesystem().get_file_info(file.removeprefix("s3://")).type == pafs.FileType.File

    def age(self, files: set[str], seconds: float) -> None:
        then = time.time() - seconds
        for file in files:
            if self.moto is None:
                os.utime(file, (then, then))
            else:
                self.moto.age(file, seconds)

    def delete(self, file: str) -> None:
        if self.moto is None:
            Path(file).unlink()
        else:
            self.moto.filesystem().delete_file(file.removeprefix("s3://"))

    def overwrite(self, file: str, content: bytes) -> None:
        if self.moto is None:
            Path(file).write_bytes(content)
        else:
            with self.moto.filesystem().open_output_stream(file.removeprefix("s3://")) as out:
                out.write(content)


@pytest.fixture(scope="module")
def moto_here() -> Iterator[InProcessMoto]:
    with moto_in_process() as running:
        yield running


@pytest.fixture(params=["local", "s3"])
def tables(request: pytest.FixtureRequest) -> Tables:
    if request.param == "local":
        return Tables()
    moto: InProcessMoto = request.getfixturevalue("moto_here")
    return Tables(moto, moto.new_bucket())


def name(file: str) -> str:
    return file.rsplit("/", 1)[-1]


def cli(data_dir: Path, tables: Tables, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGROVE_")} | tables.env | extra_env
    return subprocess.run(
        [sys.executable, "-m", "datagrove.cli", *args, "--data-dir", str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def count(client: httpx.Client, dataset_id: str) -> int:
    answer = client.post(
        f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT COUNT(*) FROM table"}
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"][0][0]


def rows(start: int, n: int, batch: str) -> bytes:
    return "".join(f"{start + i},{batch}\n" for i in range(n)).encode()


@pytest.fixture
def server(tmp_path: Path, tables: Tables):
    """A server of this test's own, no background maintenance (the test runs it), killed at the end."""
    running = RunningServer(
        data_dir=tmp_path / "data",
        catalog_url=None,
        extra_env={
            **tables.env,
            "DATAGROVE_MAINTENANCE_INTERVAL_SECONDS": "0",
            "DATAGROVE_CRASH_AT": "commit-files-placed#2",
        },
    )
    yield running
    running.kill()


def test_check_passes_then_the_sweep_takes_a_dead_imports_files_only_past_the_safety_age(
    server: RunningServer, tables: Tables
):
    server.start()
    with server.client() as client:
        dataset_id = client.post("/v1/datasets", json={"name": "swept", "schema": SCHEMA}).json()["id"]
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=rows(0, 1000, "old")).status_code == 204
        committed = tables.data_files(server.data_dir, dataset_id)
        healthy = cli(server.data_dir, tables, "check")
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr
        assert json.loads(healthy.stdout)["ok"] is True
        with pytest.raises(httpx.HTTPError):  # the REPLACE's process dies between placing and committing
            client.put(f"/v1/datasets/{dataset_id}/data", content=rows(0, 500, "new"))
    server.process.wait(timeout=10)
    server.extra_env.pop("DATAGROVE_CRASH_AT")
    server.start()
    placed = tables.data_files(server.data_dir, dataset_id) - committed
    assert placed  # the dead commit's file, referenced by no snapshot

    young = cli(server.data_dir, tables, "maintenance", "sweep", "--dataset", dataset_id)
    assert young.returncode == 0, young.stderr
    assert json.loads(young.stdout)["datasets"][0]["orphans"] == []
    assert all(tables.exists(p) for p in placed)
    # Young: it may be a commit in flight (for a commit claim and a minute; a long claim here, so
    # that a slow machine's restart does not outlast the window).
    recent = cli(
        server.data_dir, tables, "check", "--dataset", dataset_id, DATAGROVE_COMMIT_CLAIM_SECONDS="3600"
    )
    assert recent.returncode == 0, recent.stdout

    tables.age(placed, THREE_DAYS)
    found = cli(server.data_dir, tables, "check")
    assert found.returncode == 1
    assert all(any(name(p) in orphan for orphan in json.loads(found.stdout)["orphans"]) for p in placed)
    assert "orphan" in found.stderr
    dry = cli(server.data_dir, tables, "maintenance", "sweep", "--dataset", dataset_id, "--dry-run")
    assert {name(o) for o in json.loads(dry.stdout)["datasets"][0]["orphans"]} >= {name(p) for p in placed}
    assert all(tables.exists(p) for p in placed)
    swept = cli(server.data_dir, tables, "maintenance", "sweep")
    assert swept.returncode == 0, swept.stderr
    assert not any(tables.exists(p) for p in placed)
    assert cli(server.data_dir, tables, "check").returncode == 0
    with server.client() as client:
        assert count(client, dataset_id) == 1000

    # A file a snapshot references changes size, then goes missing: check says which, and fails.
    [data] = committed
    tables.overwrite(data, b"PAR1 something else")
    resized = cli(server.data_dir, tables, "check")
    assert resized.returncode == 1
    problems = json.loads(resized.stdout)["problems"]
    assert any(name(data) in p and "bytes, the metadata records" in p for p in problems), problems
    tables.delete(data)
    broken = cli(server.data_dir, tables, "check")
    assert broken.returncode == 1
    assert any("missing file" in p and name(data) in p for p in json.loads(broken.stdout)["problems"])


def test_the_sweep_never_takes_the_files_of_a_stream_commit_that_has_not_finished(
    server: RunningServer, tables: Tables
):
    server.start()
    with server.client() as client:
        stream = client.post("/v1/streams", json={"dataSet": {"name": "inflight", "schema": SCHEMA}}).json()
        sid, dataset_id = stream["id"], stream["dataSet"]["id"]
        assert client.put(f"/v1/datasets/{dataset_id}/data", content=rows(0, 1000, "old")).status_code == 204
        committed = tables.data_files(server.data_dir, dataset_id)
        eid = client.post(f"/v1/streams/{sid}/executions", json={"updateMethod": "APPEND"}).json()["id"]
        for part in range(3):
            url = f"/v1/streams/{sid}/executions/{eid}/part/{part}"
            assert client.put(url, content=rows(10_000 * (part + 1), 200, "new")).status_code == 200
        with pytest.raises(httpx.HTTPError):
            client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
    server.process.wait(timeout=10)
    placed = tables.data_files(server.data_dir, dataset_id) - committed
    assert len(placed) == 3

    # Even long past the safety age: the execution is COMMITTING, and its retry needs these files.
    tables.age(placed, THREE_DAYS)
    swept = cli(server.data_dir, tables, "maintenance", "sweep", "--dataset", dataset_id)
    assert swept.returncode == 0, swept.stderr
    assert all(tables.exists(p) for p in placed)

    server.extra_env.pop("DATAGROVE_CRASH_AT")
    server.start()
    with server.client() as client:
        retried = client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
        assert retried.status_code == 200 and retried.json()["currentState"] == "SUCCESS", retried.text
        assert count(client, dataset_id) == 1600
    assert cli(server.data_dir, tables, "check").returncode == 0


def test_a_compaction_killed_before_its_commit_changes_nothing_and_its_files_are_swept(
    tmp_path: Path, tables: Tables
):
    server = RunningServer(
        data_dir=tmp_path / "data",
        catalog_url=None,
        extra_env={**tables.env, "DATAGROVE_MAINTENANCE_INTERVAL_SECONDS": "0"},
    ).start()
    try:
        with server.client() as client:
            dataset_id = client.post("/v1/datasets", json={"name": "small", "schema": SCHEMA}).json()["id"]
            for g in range(12):
                url = f"/v1/datasets/{dataset_id}/data?updateMethod=APPEND"
                assert client.put(url, content=rows(g * 100, 100, f"g{g}")).status_code == 204
            appended = tables.data_files(server.data_dir, dataset_id)
            assert len(appended) == 12 and count(client, dataset_id) == 1200

            killed = cli(
                server.data_dir, tables, "maintenance", "compact", DATAGROVE_CRASH_AT="compaction-placed"
            )
            assert killed.returncode == -9, killed.stderr
            assert count(client, dataset_id) == 1200
            placed = tables.data_files(server.data_dir, dataset_id) - appended
            assert len(placed) == 1 and all(tables.exists(p) for p in appended)
        server.stop()  # a restart releases the commit claim the killed process held
        server.start()

        tables.age(placed, THREE_DAYS)
        assert cli(server.data_dir, tables, "check").returncode == 1
        assert cli(server.data_dir, tables, "maintenance", "sweep").returncode == 0
        assert not any(tables.exists(p) for p in placed)
        done = cli(server.data_dir, tables, "maintenance", "compact", "--dataset", dataset_id)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)["datasets"][0]
        assert (report["small_files"], report["files_written"]) == (12, 1)
        with server.client() as client:
            assert count(client, dataset_id) == 1200
            batches = client.post(
                f"/v1/datasets/query/execute/{dataset_id}",
                json={"sql": "SELECT batch, COUNT(*), SUM(n) FROM table GROUP BY batch ORDER BY batch"},
            ).json()["rows"]
            assert batches == sorted([f"g{g}", 100, sum(range(g * 100, g * 100 + 100))] for g in range(12))
        assert cli(server.data_dir, tables, "check").returncode == 0
    finally:
        server.kill()


def maintained(server: RunningServer) -> dict[str, dict[str, int]]:
    """What the server's background rounds did so far, by dataset (the sums of their log lines)."""
    found: dict[str, dict[str, int]] = {}
    for line in server.log_path.read_text().splitlines():
        if '"dataset maintained"' in line:
            entry = json.loads(line)
            done = found.setdefault(str(entry["dataset"]), {"expired_snapshots": 0, "files_compacted": 0})
            for key in done:
                done[key] += int(entry[key])
    return found


def test_the_server_maintains_its_datasets_in_the_background(tmp_path: Path, tables: Tables):
    server = RunningServer(
        data_dir=tmp_path / "data",
        catalog_url=None,
        extra_env={
            **tables.env,
            "DATAGROVE_MAINTENANCE_INTERVAL_SECONDS": "2",
            "DATAGROVE_RETENTION_DAYS": "0",
            "DATAGROVE_RETENTION_MIN_SNAPSHOTS": "2",
        },
    ).start()
    try:
        with server.client() as client:
            replaced = client.post("/v1/datasets", json={"name": "kept", "schema": SCHEMA}).json()["id"]
            appended = client.post("/v1/datasets", json={"name": "small", "schema": SCHEMA}).json()["id"]
            for g in range(6):
                url = f"/v1/datasets/{replaced}/data"
                assert client.put(url, content=rows(0, 10, f"g{g}")).status_code == 204
            for g in range(11):  # more small files than DATAGROVE_COMPACTION_MIN_SMALL_FILES
                url = f"/v1/datasets/{appended}/data?updateMethod=APPEND"
                assert client.put(url, content=rows(g * 10, 10, f"g{g}")).status_code == 204
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                done = maintained(server)
                if done.get(replaced, {}).get("expired_snapshots") and done.get(appended, {}).get(
                    "files_compacted"
                ):
                    break
                time.sleep(0.5)
            done = maintained(server)
            assert done.get(replaced, {}).get("expired_snapshots", 0) > 0, done
            assert done.get(appended, {}).get("files_compacted") == 11, done
            assert "not done on object storage" not in server.log_path.read_text()
            assert count(client, replaced) == 10
            assert count(client, appended) == 110
        plan = cli(server.data_dir, tables, "maintenance", "expire", "--dataset", replaced, "--dry-run")
        report = json.loads(plan.stdout)["datasets"][0]
        assert report["kept_snapshots"] <= 3 and report["expired_snapshots"] == 0  # done by the server
        compaction = cli(
            server.data_dir, tables, "maintenance", "compact", "--dataset", appended, "--dry-run"
        )
        assert json.loads(compaction.stdout)["datasets"][0]["files_before"] == 1  # compacted by the server
    finally:
        server.kill()
