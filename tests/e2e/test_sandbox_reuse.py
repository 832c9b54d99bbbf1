"""Over HTTP, a query's sandbox serves the next query that would see exactly the same, and never a
query under another row-level policy; with S3 storage, a reused sandbox reads the file cache's
copies however often they are evicted and fetched again.

``current_query_id()`` tells reuse apart: DuckDB counts the queries a database has run, so it grows
from one answer to the next only when the second query ran in the first one's database.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.test_pdp import create_person, create_policy, set_pdp, share
from tests.e2e.test_query_answers import log_events
from tests.support.s3 import MotoServer
from tests.support.server import RunningServer

pytestmark = pytest.mark.s3_storage  # the server fixture's S3 flavour too

SCHEMA = {"columns": [{"type": "STRING", "name": "owner"}, {"type": "LONG", "name": "n"}]}
ROWS = "gus,1\nhal,2\ngus,3\nhal,4\nivy,5\n"
QUERY_ID = "SELECT current_query_id() AS id, COUNT(*) AS n FROM table"


def query(client: httpx.Client, dataset_id: str, sql: str) -> list[list]:
    answer = client.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": sql})
    assert answer.status_code == 200, answer.text
    return answer.json()["rows"]


def query_id(client: httpx.Client, dataset_id: str) -> int:
    [[found, _]] = query(client, dataset_id, QUERY_ID)
    return found


def new_dataset(client: httpx.Client, name: str) -> str:
    dataset_id = client.post("/v1/datasets", json={"name": name, "schema": SCHEMA}).json()["id"]
    assert client.put(f"/v1/datasets/{dataset_id}/data", content=ROWS.encode()).status_code == 204
    return dataset_id


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def test_a_query_runs_in_the_sandbox_the_same_query_left_and_the_log_says_so(
    server: RunningServer, client, unique
):
    dataset_id = new_dataset(client, f"reuse-{unique}")
    first = query_id(client, dataset_id)
    assert query_id(client, dataset_id) > first
    assert query_id(client, dataset_id) > first
    logged = [e["sandbox_reused"] for e in log_events(server, "query") if e["dataset"] == dataset_id]
    assert logged == [False, True, True]


def test_users_under_different_policies_querying_alternately_each_see_only_their_rows(
    server: RunningServer, client, unique
):
    dataset_id = new_dataset(client, f"pdp-reuse-{unique}")
    people: dict[str, httpx.Client] = {}
    for name in ("gus", "hal"):
        user_id, token = create_person(server, client, f"{name}-{unique}")
        share(client, dataset_id, user_id)
        create_policy(
            client,
            dataset_id,
            name=name,
            users=[user_id],
            filters=[{"column": "owner", "values": [name], "operator": "EQUALS", "not": False}],
        )
        people[name] = httpx.Client(
            base_url=server.base_url, headers={"X-DOMO-Developer-Token": token}, timeout=120
        )
    set_pdp(client, dataset_id, True)
    sql = "SELECT owner, n FROM table ORDER BY n"
    try:
        ids: dict[str, list[int]] = {"gus": [], "hal": []}
        for _ in range(3):
            for name, person in people.items():
                assert (
                    query(person, dataset_id, sql)
                    == {
                        "gus": [["gus", 1], ["gus", 3]],
                        "hal": [["hal", 2], ["hal", 4]],
                    }[name]
                )
                assert query(client, dataset_id, "SELECT COUNT(*) FROM table") == [[5]]  # the owner
                ids[name].append(query_id(person, dataset_id))
        # Reuse was on all along: each kept its own sandbox, which went on counting.
        assert ids["gus"] == sorted(set(ids["gus"])) and ids["hal"] == sorted(set(ids["hal"]))
    finally:
        for person in people.values():
            person.close()


# --- S3: the file cache's copies ---------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_server(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("s3-reuse"), catalog_url=None, extra_env=moto.env(moto.new_bucket())
    )
    running.start()
    yield running
    running.stop()


def test_a_reused_sandbox_reads_the_cached_copy_fetched_again_after_an_eviction(s3_server, unique):
    with s3_server.client() as client:
        dataset_id = new_dataset(client, f"s3-reuse-{unique}")
        sql = "SELECT owner, SUM(n) FROM table GROUP BY owner ORDER BY owner"
        expected = [["gus", 4], ["hal", 6], ["ivy", 5]]
        first = query_id(client, dataset_id)
        assert query(client, dataset_id, sql) == expected
        cache = s3_server.data_dir / "cache"
        for _ in range(2):
            # As an eviction does (here: another process sharing the cache directory).
            copies = list(cache.iterdir())
            assert copies
            for path in copies:
                path.unlink()
            assert query(client, dataset_id, sql) == expected
        assert query_id(client, dataset_id) > first  # the same sandbox all along
        assert list(cache.iterdir())


def test_a_sandbox_whose_copies_were_evicted_while_idle_still_answers_after_new_data(s3_server, unique):
    with s3_server.client() as client:
        dataset_id = new_dataset(client, f"s3-replace-{unique}")
        assert query(client, dataset_id, "SELECT COUNT(*) FROM table") == [[5]]
        for path in (s3_server.data_dir / "cache").iterdir():
            path.unlink()
        replaced = client.put(f"/v1/datasets/{dataset_id}/data", content=b"zed,9\n")
        assert replaced.status_code == 204
        assert query(client, dataset_id, "SELECT owner, n FROM table") == [["zed", 9]]
