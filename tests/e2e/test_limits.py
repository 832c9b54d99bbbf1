"""Oversized bodies get a clear 413 and leave nothing behind; the limit counts decompressed bytes."""

from __future__ import annotations

import gzip

import pytest

from tests.support.server import RunningServer

SCHEMA = {"columns": [{"type": "STRING", "name": "s"}]}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    server = RunningServer(
        data_dir=tmp_path_factory.mktemp("limits"),
        catalog_url=None,
        extra_env={"DATAGROVE_MAX_UPLOAD_BYTES": "1000"},
    ).start()
    yield server
    server.stop()


def test_an_import_over_the_limit_is_413_and_the_dataset_unchanged(small):
    with small.client() as client:
        dataset = client.post("/v1/datasets", json={"name": "limit", "schema": SCHEMA}).json()["id"]
        assert client.put(f"/v1/datasets/{dataset}/data", content=b"kept\n").status_code == 204
        response = client.put(f"/v1/datasets/{dataset}/data", content=b"x\n" * 1000)
        assert response.status_code == 413 and "1000 bytes" in response.json()["message"]
        assert client.get(f"/v1/datasets/{dataset}/data").text == '"kept"\n'


def test_a_small_gzip_part_that_inflates_past_the_limit_is_413(small):
    bomb = gzip.compress(b"y\n" * 100_000)  # ~300 bytes on the wire, 200 kB inflated
    assert len(bomb) < 1000
    with small.client() as client:
        sid = client.post("/v1/streams", json={"dataSet": {"name": "bomb", "schema": SCHEMA}}).json()["id"]
        eid = client.post(f"/v1/streams/{sid}/executions").json()["id"]
        response = client.put(f"/v1/streams/{sid}/executions/{eid}/part/1", content=bomb)
        assert response.status_code == 413
        assert client.get(f"/v1/streams/{sid}/executions/{eid}").json()["currentState"] == "ACTIVE"
        staged = small.data_dir / "staging"
        leftovers = [p for p in staged.iterdir() if p.name not in ("executions", "reads")]
        assert leftovers == []  # the half-received body was removed
