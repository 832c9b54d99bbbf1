"""``/metrics`` and ``/ready`` against a real server: the counters move with the work done (imports,
stream parts and commits, queries, one-row appends, background jobs), requests are counted by route
template and never by raw path, the metrics are refused to an address not allowed unless it
presents the metrics token, and ``/ready`` answers 503 naming the storage while the tables'
directory is gone, then 200 again once it is back (``/health`` stays 200 throughout)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import RunningServer

METRICS_TOKEN = "metrics-" + uuid.uuid4().hex
NOT_ALLOWED = "127.0.0.3"  # loopback too, but outside metrics_allow
DS = "/api/data/v3/datasources"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("metrics"),
        catalog_url=None,
        extra_env={
            "DATAGROVE_METRICS_ALLOW": "127.0.0.1",
            "DATAGROVE_METRICS_TOKEN": METRICS_TOKEN,
            "DATAGROVE_MAINTENANCE_INTERVAL_SECONDS": "2",  # a maintenance round every second or two
        },
    ).start()
    yield running
    running.stop()


def scrape(server: RunningServer) -> Samples:
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def new_dataset(client: httpx.Client, columns: list[dict[str, str]]) -> str:
    body = {"name": "metrics-" + uuid.uuid4().hex[:8], "schema": {"columns": columns}}
    response = client.post("/v1/datasets", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_imports_stream_commits_and_queries_move_their_counters(server: RunningServer) -> None:
    canonical = b"a,1\nb,2\n"
    strict = b"1.5e3\n"  # an exponent: not a canonical DECIMAL, so the strict conversion takes it
    part = b"c\n"
    before = scrape(server)
    with server.client() as client:
        fast_id = new_dataset(client, [{"name": "s", "type": "STRING"}, {"name": "n", "type": "LONG"}])
        assert client.put(f"/v1/datasets/{fast_id}/data", content=canonical).status_code == 204
        strict_id = new_dataset(client, [{"name": "d", "type": "DECIMAL"}])
        assert client.put(f"/v1/datasets/{strict_id}/data", content=strict).status_code == 204
        stream = client.post(
            "/v1/streams",
            json={
                "dataSet": {
                    "name": "metrics-stream",
                    "schema": {"columns": [{"name": "s", "type": "STRING"}]},
                }
            },
        ).json()["id"]
        execution = client.post(f"/v1/streams/{stream}/executions").json()["id"]
        assert (
            client.put(f"/v1/streams/{stream}/executions/{execution}/part/1", content=part).status_code == 200
        )
        assert client.put(f"/v1/streams/{stream}/executions/{execution}/commit").status_code == 200
        answer = client.post(
            f"/v1/datasets/query/execute/{fast_id}", json={"sql": "SELECT SUM(n) FROM table"}
        )
        assert answer.status_code == 200 and answer.json()["rows"] == [[3]]
        bad = client.post(f"/v1/datasets/query/execute/{fast_id}", json={"sql": "SELECT nope FROM table"})
        assert bad.status_code == 400
    after = scrape(server)

    assert moved(before, after, "datagrove_ingested_bytes_total", source="import") == len(canonical) + len(
        strict
    )
    assert moved(before, after, "datagrove_ingested_bytes_total", source="stream_part") == len(part)
    assert moved(before, after, "datagrove_parts_converted_total", source="import", conversion="fast") == 1
    assert moved(before, after, "datagrove_parts_converted_total", source="import", conversion="strict") == 1
    assert (
        moved(before, after, "datagrove_parts_converted_total", source="stream_part", conversion="fast") == 1
    )
    assert moved(before, after, "datagrove_commits_total", kind="import", outcome="success") == 2
    assert moved(before, after, "datagrove_commits_total", kind="stream", outcome="success") == 1
    assert moved(before, after, "datagrove_commit_duration_seconds_count", kind="import") == 2
    assert moved(before, after, "datagrove_queries_total", outcome="success") == 1
    assert moved(before, after, "datagrove_queries_total", outcome="failure") == 1
    assert moved(before, after, "datagrove_query_duration_seconds_count") == 2
    route = "/v1/datasets/query/execute/{dataset_id}"
    assert (
        moved(before, after, "datagrove_http_requests_total", method="POST", route=route, status="200") == 1
    )
    assert (
        moved(before, after, "datagrove_http_requests_total", method="POST", route=route, status="400") == 1
    )
    assert (
        moved(before, after, "datagrove_http_request_duration_seconds_count", method="POST", route=route) == 2
    )


def test_requests_are_counted_by_route_template_never_by_raw_path(server: RunningServer) -> None:
    missing = str(uuid.uuid4())
    nowhere = "/no/such/" + uuid.uuid4().hex
    before = scrape(server)
    with server.client() as client:
        assert client.get(f"/v1/datasets/{missing}").status_code == 404
        assert client.get(nowhere).status_code == 404
    response = httpx.get(f"{server.base_url}/metrics", timeout=30)
    assert missing not in response.text and nowhere not in response.text
    after = scrape(server)
    template = "/v1/datasets/{dataset_id}"
    assert (
        moved(before, after, "datagrove_http_requests_total", method="GET", route=template, status="404") == 1
    )
    assert (
        moved(before, after, "datagrove_http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )


def test_one_row_appends_show_in_the_buffer_depth_and_fold_lag(server: RunningServer) -> None:
    with server.client() as client:
        dataset = new_dataset(client, [{"name": "n", "type": "LONG"}])
        before = scrape(server)
        for n in range(3):
            response = client.post(f"{DS}/{dataset}/uploads", json={"values": str(n), "delimiter": ","})
            assert response.status_code == 200, response.text
    time.sleep(0.05)  # the oldest row is a little old
    after = scrape(server)
    assert moved(before, after, "datagrove_ingested_bytes_total", source="append") == 6  # "0\n" "1\n" "2\n"
    # Folds wait for 10,000 rows or 5 minutes: the rows are still buffered.
    assert value(after, "datagrove_append_buffer_rows") >= 3
    assert value(after, "datagrove_append_fold_lag_seconds") > 0
    assert ("datagrove_append_queue_requests", frozenset()) in after
    lane = f"{DS}/{{dataset_id}}/uploads"  # answered by the append lane, named as its route
    assert moved(before, after, "datagrove_http_requests_total", method="POST", route=lane, status="200") == 3


def test_background_jobs_pool_use_and_the_process_are_measured(server: RunningServer) -> None:
    with server.client() as client:
        dataset = new_dataset(client, [{"name": "n", "type": "LONG"}])
        assert client.put(f"/v1/datasets/{dataset}/data", content=b"1\n").status_code == 204
    deadline = time.monotonic() + 30
    while True:
        samples = scrape(server)
        done = [
            value(samples, "datagrove_job_runs_total", job=job, outcome="success")
            for job in ("maintenance", "scheduler", "audit_retention")
        ]
        if all(done) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert all(done), done
    assert value(samples, "datagrove_catalog_pool_size", pool="catalog") > 0
    assert (
        "datagrove_catalog_pool_connections",
        frozenset({("pool", "catalog"), ("state", "idle")}),
    ) in samples
    assert value(samples, "process_open_fds") > 0
    assert value(samples, "process_resident_memory_bytes") > 0


def test_metrics_need_the_token_from_an_address_not_allowed(server: RunningServer) -> None:
    elsewhere = httpx.Client(
        base_url=server.base_url, transport=httpx.HTTPTransport(local_address=NOT_ALLOWED), timeout=30
    )
    with elsewhere:
        refused = elsewhere.get("/metrics")
        assert refused.status_code == 401
        assert refused.json()["code"] == "unauthorized" and "datagrove_" not in refused.text
        wrong = elsewhere.get("/metrics", headers={"Authorization": "Bearer not-" + METRICS_TOKEN})
        assert wrong.status_code == 401
        # A user's developer token is no metrics token.
        assert elsewhere.get("/metrics", headers={"X-DOMO-Developer-Token": server.token}).status_code == 401
        allowed = elsewhere.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert allowed.status_code == 200 and "datagrove_http_requests_total" in allowed.text
    assert httpx.get(f"{server.base_url}/metrics", timeout=30).status_code == 200  # 127.0.0.1 is allowed


def test_ready_is_503_naming_the_storage_while_the_tables_directory_is_gone(server: RunningServer) -> None:
    assert httpx.get(f"{server.base_url}/ready", timeout=30).json() == {
        "status": "ready",
        "checks": {"catalog": "ok", "storage": "ok"},
    }
    warehouse = server.data_dir / "warehouse"
    away = server.data_dir / "warehouse-away"
    warehouse.rename(away)
    try:
        response = httpx.get(f"{server.base_url}/ready", timeout=30)
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "not_ready" and "storage" in body["message"]
        assert body["details"]["checks"]["catalog"] == "ok"
        assert "missing" in body["details"]["checks"]["storage"]
        assert httpx.get(f"{server.base_url}/health", timeout=30).status_code == 200  # still alive
    finally:
        away.rename(warehouse)
    assert httpx.get(f"{server.base_url}/ready", timeout=30).status_code == 200
