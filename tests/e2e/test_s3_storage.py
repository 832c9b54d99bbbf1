"""Tables in an S3 bucket (moto): the data lives in the bucket, staged parts too, reads go through
the local file cache, a restart keeps everything, and the credentials never show."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.connector_streams import config, rows, run
from tests.support.connector_streams import new_stream as new_connector_stream
from tests.support.postgres import private_schema
from tests.support.s3 import SECRET_ACCESS_KEY, MotoServer
from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "LONG", "name": "n"}, {"type": "STRING", "name": "word"}]}


def csv_rows(start: int, count: int) -> bytes:
    return "".join(f"{n},w{n}\n" for n in range(start, start + count)).encode()


def query(client, dataset_id: str, sql: str) -> list[list]:
    response = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})
    assert response.status_code == 200, response.text
    return response.json()["rows"]


@pytest.fixture(scope="module")
def bucket(moto: MotoServer) -> str:
    return moto.new_bucket()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("s3-connector-files")


@pytest.fixture(scope="module")
def s3_server(
    moto: MotoServer, bucket: str, files: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = {
        **moto.env(bucket),
        "DATAGROVE_LOG_LEVEL": "DEBUG",
        "DATAGROVE_CONNECTOR_LOCAL_DIRS": str(files),
        "DATAGROVE_REAPER_INTERVAL_SECONDS": "0.5",
    }
    running = RunningServer(data_dir=tmp_path_factory.mktemp("s3-node"), catalog_url=None, extra_env=env)
    running.start()
    yield running
    running.stop()


def new_stream(client, name: str) -> tuple[int, str]:
    response = client.post(
        "/v1/streams", json={"dataSet": {"name": name, "schema": SCHEMA}, "updateMethod": "APPEND"}
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["dataSet"]["id"]


def test_a_commit_puts_the_data_in_the_bucket_and_nothing_in_the_data_directory(
    s3_server, moto, bucket, unique
):
    with s3_server.client() as client:
        sid, dataset_id = new_stream(client, f"s3 {unique}")
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        for part in range(3):
            answer = client.put(
                f"/v1/streams/{sid}/executions/{eid}/part/{part}", content=csv_rows(part * 100, 100)
            )
            assert answer.status_code == 200, answer.text
        staged = moto.objects(bucket, f"datagrove/staging/executions/{eid}")
        assert len(staged) == 3  # parts wait in the bucket, where any node's commit finds them
        assert not list((s3_server.data_dir / "staging" / "executions").glob(f"{eid}/*"))
        assert client.put(f"/v1/streams/{sid}/executions/{eid}/commit").json()["currentState"] == "SUCCESS"
        assert moto.objects(bucket, f"datagrove/staging/executions/{eid}") == []
        table = dataset_id.replace("-", "")
        data = [
            k for k in moto.objects(bucket, "datagrove/warehouse") if table in k and k.endswith(".parquet")
        ]
        assert len([k for k in data if "/data/" in k]) == 3
        assert not list((s3_server.data_dir / "warehouse").rglob("*.parquet"))
        assert query(client, dataset_id, "SELECT COUNT(*), SUM(n) FROM table") == [[300, sum(range(300))]]


def test_an_aborted_execution_leaves_no_staged_object(s3_server, moto, bucket, unique):
    with s3_server.client() as client:
        sid, _ = new_stream(client, f"abort {unique}")
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=csv_rows(0, 10))
        assert len(moto.objects(bucket, f"datagrove/staging/executions/{eid}")) == 1
        assert client.put(f"/v1/streams/{sid}/executions/{eid}/abort").status_code == 200
        assert moto.objects(bucket, f"datagrove/staging/executions/{eid}") == []


def test_the_reaper_removes_staged_objects_no_live_execution_owns(s3_server, moto, bucket, unique):
    # What a node that died between staging a part and recording it leaves in the bucket.
    with s3_server.client() as client:
        sid, _ = new_stream(client, f"orphans {unique}")
        done = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{done}/part/0", content=csv_rows(0, 3))
        client.put(f"/v1/streams/{sid}/executions/{done}/commit")
        live = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{live}/part/0", content=csv_rows(0, 3))
    fs = moto.filesystem()
    for execution in (done, 999_999):
        with fs.open_output_stream(
            f"{bucket}/datagrove/staging/executions/{execution}/orphan.parquet"
        ) as out:
            out.write(b"left behind")
    deadline = time.monotonic() + 30
    while moto.objects(bucket, "datagrove/staging/executions/999999") or moto.objects(
        bucket, f"datagrove/staging/executions/{done}"
    ):
        assert time.monotonic() < deadline, "the reaper left orphaned staged objects"
        time.sleep(0.2)
    assert len(moto.objects(bucket, f"datagrove/staging/executions/{live}")) == 1  # an ACTIVE one's stay


def test_a_part_uploaded_again_replaces_its_staged_object(s3_server, moto, bucket, unique):
    with s3_server.client() as client:
        sid, dataset_id = new_stream(client, f"again {unique}")
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=csv_rows(0, 10))
        client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=csv_rows(100, 5))
        assert len(moto.objects(bucket, f"datagrove/staging/executions/{eid}")) == 1
        client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
        assert query(client, dataset_id, "SELECT COUNT(*), MIN(n) FROM table") == [[5, 100]]


def test_a_query_after_the_cache_is_cleared_reads_the_bucket_again(s3_server, unique):
    with s3_server.client() as client:
        created = client.post("/v1/datasets", json={"name": f"cache {unique}", "schema": SCHEMA})
        dataset_id = created.json()["id"]
        client.put(f"/v1/datasets/{dataset_id}/data", content=csv_rows(0, 1000))
        sql = "SELECT COUNT(*), SUM(n), MAX(word) FROM table"
        first = query(client, dataset_id, sql)
        cache = s3_server.data_dir / "cache"
        assert list(cache.iterdir())
        for path in cache.iterdir():
            path.unlink()
        assert query(client, dataset_id, sql) == first == [[1000, sum(range(1000)), "w999"]]
        exported = client.get(f"/v1/datasets/{dataset_id}/data").text.splitlines()
        assert len(exported) == 1000 and exported[0] == '0,"w0"'


def test_a_schema_change_rewrites_the_table_in_the_bucket(s3_server, unique):
    with s3_server.client() as client:
        dataset_id = client.post("/v1/datasets", json={"name": f"schema {unique}", "schema": SCHEMA}).json()[
            "id"
        ]
        client.put(f"/v1/datasets/{dataset_id}/data", content=csv_rows(0, 50))
        wider = {"columns": [*SCHEMA["columns"], {"type": "DOUBLE", "name": "x"}]}
        assert client.put(f"/v1/datasets/{dataset_id}", json={"schema": wider}).status_code == 200
        assert query(client, dataset_id, "SELECT COUNT(*), COUNT(x), SUM(n) FROM table") == [
            [50, 0, sum(range(50))]
        ]


def test_connector_runs_stage_their_files_in_the_bucket_and_dataset_sql_reads_them(
    s3_server, moto, bucket, files
):
    (files / "a.csv").write_bytes(b"k,x\n1,10\n2,20\n")
    (files / "b.csv").write_bytes(b"k,y\n1,one\n2,two\n")
    with s3_server.client() as client:
        a = new_connector_stream(client, "csv", config(path=str(files / "a.csv")))
        b = new_connector_stream(client, "csv", config(path=str(files / "b.csv")))
        ended = [run(client, a["id"]), run(client, b["id"])]
        sql = f"SELECT a.k, a.x, b.y FROM `{a['dataSource']['id']}` a JOIN `{b['dataSource']['id']}` b ON a.k = b.k"
        flow = new_connector_stream(client, "dataset-sql", config(query=sql))
        ended.append(run(client, flow["id"]))
        assert [e["currentState"] for e in ended] == ["SUCCESS"] * 3
        got = rows(client, flow["dataSource"]["id"], "SELECT k, x, y FROM table ORDER BY k")
    assert got == [{"k": 1, "x": 10, "y": "one"}, {"k": 2, "x": 20, "y": "two"}]
    for execution in ended:  # committed: nothing left staged
        assert moto.objects(bucket, f"datagrove/staging/executions/{execution['executionId']}") == []
    assert not list((s3_server.data_dir / "warehouse").rglob("*.parquet"))


def test_user_sql_cannot_read_the_bucket_or_the_cache(s3_server, unique):
    with s3_server.client() as client:
        dataset_id = client.post("/v1/datasets", json={"name": f"box {unique}", "schema": SCHEMA}).json()[
            "id"
        ]
        client.put(f"/v1/datasets/{dataset_id}/data", content=csv_rows(0, 5))
        for sql in (
            "SELECT * FROM read_parquet('s3://anything/x.parquet')",
            f"SELECT * FROM read_parquet('{s3_server.data_dir / 'cache'}/*')",
            "SELECT current_setting('s3_secret_access_key')",
        ):
            answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})
            assert answer.status_code == 400, (sql, answer.text)
            assert SECRET_ACCESS_KEY not in answer.text


def test_the_credentials_never_appear_in_responses_or_logs(s3_server, moto, unique, tmp_path):
    with s3_server.client() as client:
        dataset_id = client.post("/v1/datasets", json={"name": f"leak {unique}", "schema": SCHEMA}).json()[
            "id"
        ]
        answers = [
            client.put(f"/v1/datasets/{dataset_id}/data", content=csv_rows(0, 5)),
            client.get(f"/v1/datasets/{dataset_id}"),
            client.get(f"/v1/datasets/{dataset_id}/data"),
            client.post(
                f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT nonsense FROM table"}
            ),
        ]
    # A node whose bucket does not exist: every storage error must still keep the secret out.
    broken = RunningServer(
        data_dir=tmp_path / "broken",
        catalog_url=None,
        extra_env={**moto.env("no-such-bucket-" + unique), "DATAGROVE_LOG_LEVEL": "DEBUG"},
    ).start()
    try:
        with broken.client() as client:
            failed = client.post("/v1/datasets", json={"name": "x", "schema": SCHEMA})
            assert failed.status_code >= 500
            answers.append(failed)
    finally:
        broken.stop()
    for answer in answers:
        assert SECRET_ACCESS_KEY not in answer.text
    for log in (s3_server.log_path, broken.log_path):
        assert SECRET_ACCESS_KEY not in log.read_text()


def test_a_restarted_node_with_a_new_data_directory_serves_the_data_from_the_bucket(moto, tmp_path, unique):
    bucket = moto.new_bucket()
    with private_schema() as catalog_url:
        first = RunningServer(data_dir=tmp_path / "one", catalog_url=catalog_url, extra_env=moto.env(bucket))
        first.start()
        try:
            with first.client() as client:
                sid, dataset_id = new_stream(client, f"restart {unique}")
                eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
                client.put(f"/v1/streams/{sid}/executions/{eid}/part/0", content=csv_rows(0, 200))
                client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
                before = query(client, dataset_id, "SELECT COUNT(*), SUM(n) FROM table")
        finally:
            first.stop()
        shutil.rmtree(tmp_path / "one")
        second = RunningServer(
            data_dir=tmp_path / "two",
            catalog_url=catalog_url,
            extra_env=moto.env(bucket),
            client_id=first.client_id,
            client_secret=first.client_secret,
            token=first.token,
        ).start()
        try:
            with second.client() as client:
                assert (
                    query(client, dataset_id, "SELECT COUNT(*), SUM(n) FROM table")
                    == before
                    == [[200, sum(range(200))]]
                )
                eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
                client.put(f"/v1/streams/{sid}/executions/{eid}/part/0", content=csv_rows(200, 10))
                client.put(f"/v1/streams/{sid}/executions/{eid}/commit")
                assert query(client, dataset_id, "SELECT COUNT(*) FROM table") == [[210]]
        finally:
            second.stop()
    assert not Path(tmp_path / "one").exists()
