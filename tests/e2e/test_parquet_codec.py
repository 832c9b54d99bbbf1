"""``DATAGROVE_PARQUET_CODEC`` reaches every writer of data files: a real server set to each codec
writes a dataset through each path (import on the fast and the strict conversion, a stream part, a
folded one-row append, a schema change's rewrite, a connector run), and every Parquet file each
path adds to the table is compressed with that codec."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.support.connector_streams import config, new_stream, run
from tests.support.server import RunningServer

SCHEMA = {
    "columns": [
        {"type": "LONG", "name": "n"},
        {"type": "STRING", "name": "s"},
        {"type": "DATETIME", "name": "t"},
    ]
}
WIDER = {"columns": [*SCHEMA["columns"], {"type": "DOUBLE", "name": "x"}]}


@pytest.fixture(scope="module", params=["snappy", "zstd"])
def coded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    env = {
        "DATAGROVE_PARQUET_CODEC": request.param,
        "DATAGROVE_APPEND_FOLD_ROWS": "1",  # every acknowledged append is folded straight away
        "DATAGROVE_APPEND_FOLD_INTERVAL_SECONDS": "0.1",
    }
    server = RunningServer(
        data_dir=tmp_path_factory.mktemp(f"codec-{request.param}"), catalog_url=None, extra_env=env
    ).start()
    yield server
    server.stop()


def codec_of(server: RunningServer) -> str:
    return server.extra_env["DATAGROVE_PARQUET_CODEC"].upper()


def data_files(server: RunningServer, dataset_id: str) -> set[Path]:
    directory = server.data_dir / "warehouse" / "datagrove" / f"ds_{dataset_id.replace('-', '')}" / "data"
    return set(directory.glob("*.parquet"))


def codecs(path: Path) -> set[str]:
    """The codecs of every column chunk of the file."""
    metadata = pq.ParquetFile(path).metadata
    return {
        metadata.row_group(group).column(column).compression
        for group in range(metadata.num_row_groups)
        for column in range(metadata.num_columns)
    }


def added_by(server: RunningServer, dataset_id: str, before: set[Path]) -> list[Path]:
    """The data files the dataset gained since ``before`` was taken, waiting a little for them."""
    deadline = time.monotonic() + 30
    while not (added := sorted(data_files(server, dataset_id) - before)):
        assert time.monotonic() < deadline, "no new data file"
        time.sleep(0.1)
    return added


def assert_written_with_the_setting(server: RunningServer, files: list[Path]) -> None:
    assert {path.name: codecs(path) for path in files} == {path.name: {codec_of(server)} for path in files}


def new_dataset(client: httpx.Client, schema: dict = SCHEMA) -> str:
    created = client.post("/v1/datasets", json={"name": "codec-" + uuid.uuid4().hex[:8], "schema": schema})
    assert created.status_code in (200, 201), created.text
    return str(created.json()["id"])


def put_data(client: httpx.Client, dataset_id: str, body: bytes, method: str = "APPEND") -> None:
    response = client.put(f"/v1/datasets/{dataset_id}/data", params={"updateMethod": method}, content=body)
    assert response.status_code == 204, response.text


def test_an_import_of_a_canonical_file_is_written_with_the_codec(coded: RunningServer):
    with coded.client() as client:
        dataset_id = new_dataset(client)
        put_data(client, dataset_id, b"1,a,2024-01-01 10:00:00\n2,b,\n", method="REPLACE")
    assert_written_with_the_setting(coded, added_by(coded, dataset_id, set()))


def test_an_import_taking_the_strict_conversion_is_written_with_the_codec(coded: RunningServer):
    with coded.client() as client:
        dataset_id = new_dataset(client)
        # A time zone is outside the canonical forms: DuckDB's conversion writes this file.
        put_data(client, dataset_id, b"1,a,2024-01-01T10:00:00+02:00\n", method="REPLACE")
        answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT t FROM table"})
    assert answer.json()["rows"] == [["2024-01-01T08:00:00"]]
    assert_written_with_the_setting(coded, added_by(coded, dataset_id, set()))


def test_a_committed_stream_part_is_written_with_the_codec(coded: RunningServer):
    with coded.client() as client:
        stream = client.post("/v1/streams", json={"dataSet": {"name": "codec", "schema": SCHEMA}}).json()
        stream_id, dataset_id = stream["id"], stream["dataSet"]["id"]
        execution_id = client.post(f"/v1/streams/{stream_id}/executions").json()["id"]
        part = client.put(f"/v1/streams/{stream_id}/executions/{execution_id}/part/1", content=b"1,a,\n")
        assert part.status_code == 200, part.text
        commit = client.put(f"/v1/streams/{stream_id}/executions/{execution_id}/commit")
        assert commit.status_code == 200, commit.text
    assert_written_with_the_setting(coded, added_by(coded, dataset_id, set()))


def test_folded_one_row_appends_are_written_with_the_codec(coded: RunningServer):
    with coded.client() as client:
        dataset_id = new_dataset(client)
        before = data_files(coded, dataset_id)
        appended = client.post(
            f"/api/data/v3/datasources/{dataset_id}/uploads", json={"values": "7,x,", "delimiter": ","}
        )
        assert appended.status_code == 200, appended.text
    assert_written_with_the_setting(coded, added_by(coded, dataset_id, before))


def test_a_schema_change_rewrites_the_rows_with_the_codec(coded: RunningServer):
    with coded.client() as client:
        dataset_id = new_dataset(client)
        put_data(client, dataset_id, b"1,a,\n2,b,\n", method="REPLACE")
        before = data_files(coded, dataset_id)
        changed = client.put(f"/v1/datasets/{dataset_id}", json={"schema": WIDER})
        assert changed.status_code == 200, changed.text
    assert_written_with_the_setting(coded, added_by(coded, dataset_id, before))


def test_a_connector_run_is_written_with_the_codec(coded: RunningServer):
    with coded.client() as client:
        source = new_dataset(client)
        put_data(client, source, b"".join(b"%d,row,\n" % n for n in range(1000)), method="REPLACE")
        flow = new_stream(client, "dataset-sql", config(query=f"SELECT n, s FROM `{source}`"))
        ended = run(client, flow["id"])
        assert ended["currentState"] == "SUCCESS", ended
    assert_written_with_the_setting(coded, added_by(coded, flow["dataSource"]["id"], set()))
