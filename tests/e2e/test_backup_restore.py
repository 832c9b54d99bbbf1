"""``datagrove backup`` while a server keeps committing stream executions, ``datagrove restore``
into a fresh data directory (and, for PostgreSQL, a fresh database), and a server started there:
every dataset answers with exactly the rows the original held at the moment of the backup, and
``datagrove check`` finds nothing wrong. With a SQLite catalog and with PostgreSQL.

Also: maintenance deletes nothing while a backup holds its lease, and a restore refuses a target
that already holds a catalog."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from tests.support.postgres import SERVER_URL, private_schema
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "batch"}]}
PART_ROWS = 300


def rows(start: int, n: int, batch: str) -> bytes:
    return "".join(f"{start + i},{batch}\n" for i in range(n)).encode()


def cli_here(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
    catalog_url: str | None,
    *args: str,
) -> tuple[int, str, str]:
    """The CLI in this process (its imports paid once, not per command): (exit code, stdout, stderr)."""
    from datagrove import cli as datagrove_cli

    with monkeypatch.context() as env:
        for key in [k for k in os.environ if k.startswith("DATAGROVE_")]:
            env.delenv(key)
        if catalog_url:
            env.setenv("DATAGROVE_CATALOG_URL", catalog_url)
        capsys.readouterr()
        try:
            datagrove_cli.main([*args, "--data-dir", str(data_dir)])
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
    return code, out.out, out.err


def export(client: httpx.Client, dataset_id: str, version: str | None = None) -> bytes:
    params = {"version": version} if version else {}
    answer = client.get(f"/v1/datasets/{dataset_id}/data", params=params)
    assert answer.status_code == 200, answer.text
    return answer.content


@contextmanager
def database_with_schema(schema: str) -> Iterator[str]:
    """A new database whose search_path names ``schema`` (a restore keeps the catalog's schema)."""
    engine = sa.create_engine(SERVER_URL, isolation_level="AUTOCOMMIT")
    name = "dg_restore_" + uuid.uuid4().hex[:12]
    with engine.connect() as db:
        db.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa.engine.make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False) + (
            f"?options=-csearch_path%3D{schema}"
        )
    finally:
        with engine.connect() as db:
            db.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@contextmanager
def catalogs(kind: str) -> Iterator[tuple[str | None, str | None]]:
    """(the original's catalog URL, the restore target's) for ``kind``."""
    if kind == "sqlite":
        yield None, None
        return
    with private_schema() as original:
        schema = original.rsplit("%3D", 1)[1]
        with database_with_schema(schema) as restored:
            yield original, restored


class Ingest(threading.Thread):
    """Stream executions committed one after another (two parts each) until stopped."""

    def __init__(self, server: RunningServer, stream_id: int) -> None:
        super().__init__(daemon=True)
        self.server, self.stream_id = server, stream_id
        self.committed = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.server.client() as client:
                while not self.stop.is_set():
                    batch = self.committed
                    base = f"/v1/streams/{self.stream_id}/executions"
                    eid = client.post(base, json={"updateMethod": "APPEND"}).json()["id"]
                    for part in (1, 2):
                        body = rows(batch * 10_000 + part * 1000, PART_ROWS, f"b{batch}")
                        answer = client.put(f"{base}/{eid}/part/{part}", content=body)
                        assert answer.status_code == 200, answer.text
                    assert client.put(f"{base}/{eid}/commit").status_code == 200
                    self.committed += 1
        except BaseException as exc:  # reported by the test
            self.error = exc


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_backup_taken_during_ingest_restores_to_a_server_answering_as_the_original_did(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    with catalogs(kind) as (original_url, restored_url):
        original = RunningServer(
            data_dir=tmp_path / "original",
            catalog_url=original_url,
            extra_env={"DATAGROVE_MAINTENANCE_INTERVAL_SECONDS": "0"},
        )
        original.start()
        try:
            with original.client() as client:
                static = client.post("/v1/datasets", json={"name": "static", "schema": SCHEMA}).json()["id"]
                put = client.put(f"/v1/datasets/{static}/data", content=rows(0, 2000, "s"))
                assert put.status_code == 204
                replaced = client.post("/v1/datasets", json={"name": "replaced", "schema": SCHEMA}).json()[
                    "id"
                ]
                for n in (1500, 700):  # two versions: the backup keeps both
                    put = client.put(f"/v1/datasets/{replaced}/data", content=rows(n, n, f"r{n}"))
                    assert put.status_code == 204
                stream = client.post("/v1/streams", json={"dataSet": {"name": "ingest", "schema": SCHEMA}})
                stream_id, growing = stream.json()["id"], stream.json()["dataSet"]["id"]
                # An execution left receiving parts: its staged parts are not in a backup.
                base = f"/v1/streams/{stream_id}/executions"
                open_eid = client.post(base, json={"updateMethod": "APPEND"}).json()["id"]
                assert client.put(f"{base}/{open_eid}/part/1", content=rows(0, 5, "open")).status_code == 200
                ingest = Ingest(original, stream_id)
                ingest.start()
                while ingest.committed < 2 and ingest.error is None:
                    time.sleep(0.05)
                before = ingest.committed
                # The CLI in this process (one Python start less); the server is another process.
                code, out, err = cli_here(
                    monkeypatch, capsys, original.data_dir, original_url, "backup", str(tmp_path / "backup")
                )
                during = ingest.committed - before
                ingest.stop.set()
                ingest.join(timeout=60)
                assert ingest.error is None, ingest.error
                assert code == 0, out + err
                assert ingest.committed > before  # commits landed beside the backup

                manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
                table = "ds_" + growing.replace("-", "")
                [growing_entry] = [t for t in manifest["tables"] if t["name"].endswith(table)]
                # What the original held at the backup's moment: the current data of the others,
                # the version of the growing one that the backup's catalog copy names.
                expected = {
                    static: export(client, static),
                    replaced: export(client, replaced),
                    growing: export(client, growing, str(growing_entry["snapshotId"])),
                }
                first_version = client.get(f"/v1/datasets/{replaced}/versions").json()[-1]["version"]
                expected_first = export(client, replaced, first_version)
        finally:
            original.stop()

        restored = tmp_path / "restored"
        here = (monkeypatch, capsys, restored, restored_url)
        code, out, err = cli_here(*here, "restore", str(tmp_path / "backup"))
        assert code == 0, out + err
        code, out, err = cli_here(*here, "check")
        assert code == 0, out + err
        assert json.loads(out)["datasets"] == 3

        code, out, err = cli_here(*here, "restore", str(tmp_path / "backup"))
        assert code == 2
        assert "already holds a catalog" in err and "--force" in err

        server = RunningServer(
            data_dir=restored, catalog_url=restored_url, extra_env=dict(original.extra_env)
        )
        server.client_id, server.client_secret, server.token = (
            original.client_id,
            original.client_secret,
            original.token,
        )
        server.start()
        try:
            with server.client() as client:
                for dataset_id, data in expected.items():
                    got = export(client, dataset_id)
                    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), dataset_id
                batches = {line.split(",")[1] for line in expected[growing].decode().splitlines()}
                assert len(expected[growing].splitlines()) == len(batches) * 2 * PART_ROWS  # whole commits
                assert len(batches) >= before
                assert growing_entry["rows"] == len(expected[growing].splitlines())
                count = client.post(
                    f"/v1/datasets/query/execute/{growing}", json={"sql": "SELECT COUNT(*) FROM table"}
                )
                assert count.json()["rows"][0][0] == growing_entry["rows"]
                left_open = client.get(f"/v1/streams/{stream_id}/executions/{open_eid}").json()
                assert left_open["currentState"] == "ABORTED"
                # The restored server takes new commits on top.
                put = client.put(f"/v1/datasets/{static}/data?updateMethod=APPEND", content=rows(9, 1, "new"))
                assert put.status_code == 204, put.text
                assert export(client, static) == expected[static] + b'9,"new"\n'
                # The versions came along: the replaced dataset's first version still reads.
                versions = client.get(f"/v1/datasets/{replaced}/versions").json()
                assert [v["version"] for v in versions][-1] == first_version
                assert export(client, replaced, first_version) == expected_first
        finally:
            server.stop()
        print(f"{kind}: {during} commits during the backup")
