"""Limits that protect the server, hit and released (docs/operations-limits.md).

* Guessing at ``/oauth/token`` or with developer tokens is refused with 429 before the secret is
  checked, once a client id or a source address is at its limit, audited, and allowed again once
  the window has passed.
* Queries and uploads past the slots of a user or of the server are 429 naming the limit, with
  Retry-After, and go through once the running ones end.
* A query that needs more memory than its limit fails alone with a clear 400; the queries beside
  it answer and the server lives.

One server with small limits and a short window, so that the module stays quick.
"""

from __future__ import annotations

import contextlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from datagrove.uploader import Server, upload
from tests.e2e.test_sharing import Person, new_person
from tests.support.server import RunningServer

WINDOW = 5  # seconds in which failed authentications are counted
PER_CLIENT = 3
PER_ADDRESS = 6
MEMORY = "32MB"
ROWS = 3000
SCHEMA = {"columns": [{"type": "LONG", "name": "n"}]}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        data_dir=tmp_path_factory.mktemp("operation-limits"),
        catalog_url=None,
        extra_env={
            "DATAGROVE_AUTH_MAX_FAILURES_PER_CLIENT": str(PER_CLIENT),
            "DATAGROVE_AUTH_MAX_FAILURES_PER_ADDRESS": str(PER_ADDRESS),
            "DATAGROVE_AUTH_FAILURE_WINDOW_SECONDS": str(WINDOW),
            "DATAGROVE_QUERY_SLOTS_PER_USER": "2",
            "DATAGROVE_QUERY_SLOTS": "3",
            "DATAGROVE_UPLOAD_SLOTS_PER_USER": "1",
            "DATAGROVE_LIMIT_RETRY_AFTER_SECONDS": "1",
            "DATAGROVE_QUERY_MEMORY_LIMIT": MEMORY,
            # An answer past 1 kB is sent as it is produced: a client that stops reading holds its query.
            "DATAGROVE_QUERY_BUFFER_BYTES": "1024",
        },
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def numbers(server: RunningServer) -> str:
    """A dataset of the numbers 0 .. ROWS-1, shared by every query here (nothing writes to it)."""
    with server.client() as client:
        dataset = client.post("/v1/datasets", json={"name": "numbers", "schema": SCHEMA}).json()["id"]
        body = "".join(f"{n}\n" for n in range(ROWS))
        assert client.put(f"/v1/datasets/{dataset}/data", content=body).status_code == 204
    return dataset


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from ``address``: each test that guesses has an address of its
    own (all of 127.0.0.0/8 is this machine), so no test inherits another's failures or block."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def token_request(
    server: RunningServer, client_id: str, secret: str, address: str = "127.0.0.1"
) -> httpx.Response:
    with from_address(address) as http:
        return http.post(
            f"{server.base_url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )


def with_token(server: RunningServer, token: str, address: str = "127.0.0.1") -> httpx.Response:
    with from_address(address) as http:
        return http.get(f"{server.base_url}/v1/datasets", headers={"X-DOMO-Developer-Token": token})


def new_client_id() -> str:
    return "client-" + uuid.uuid4().hex[:8]


def assert_refused(response: httpx.Response, limit: str) -> int:
    """``response`` is a 429 naming ``limit`` with a Retry-After; returns the seconds to wait."""
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "too_many_requests"
    assert body["details"]["limit"] == limit
    assert limit in body["message"]
    wait = int(response.headers["Retry-After"])
    assert wait == body["details"]["retryAfterSeconds"] and 1 <= wait <= WINDOW
    return wait


def refusals_logged(server: RunningServer, text: str, address: str) -> list[dict]:
    with server.client() as admin:
        entries = admin.get("/v1/audit", params={"limit": 1000}).json()
    return [e for e in entries if text in e["additionalComment"] and e["ipAddress"] == address]


# --- authentication attempts ----------------------------------------------------------------------


def test_guessing_a_clients_secret_is_refused_at_the_limit_even_with_the_right_one_then_allowed(
    server: RunningServer,
):
    address = "127.0.0.2"
    for _ in range(PER_CLIENT):
        wrong = "wrong-" + uuid.uuid4().hex
        assert token_request(server, server.client_id, wrong, address).status_code == 401

    refused = token_request(server, server.client_id, server.client_secret, address)
    wait = assert_refused(refused, "auth_max_failures_per_client")
    # Another client from the same address is still judged on its secret.
    assert token_request(server, new_client_id(), "wrong", address).status_code == 401
    assert refusals_logged(server, "auth_max_failures_per_client", address)

    time.sleep(wait + 0.2)
    assert token_request(server, server.client_id, server.client_secret, address).status_code == 200


def test_the_iceberg_catalogs_token_endpoint_shares_the_limits_of_oauth_token(server: RunningServer):
    """A second door to the same secrets (POST /iceberg/v1/oauth/tokens) counts against the same
    client and address, and is refused with the protocol's OAuth error shape and a Retry-After."""
    address = "127.0.0.5"
    time.sleep(WINDOW)  # the first test's guesses at this client leave the window
    with from_address(address) as http:
        for _ in range(PER_CLIENT):
            wrong = http.post(
                f"{server.base_url}/iceberg/v1/oauth/tokens",
                data={
                    "grant_type": "client_credentials",
                    "client_id": server.client_id,
                    "client_secret": "x",
                },
            )
            assert wrong.status_code == 401, wrong.text
        refused = http.post(
            f"{server.base_url}/iceberg/v1/oauth/tokens",
            data={
                "grant_type": "client_credentials",
                "client_id": server.client_id,
                "client_secret": server.client_secret,
            },
        )
    assert refused.status_code == 429, refused.text
    assert "auth_max_failures_per_client" in refused.json()["error_description"]
    assert 1 <= int(refused.headers["Retry-After"]) <= WINDOW
    # The same count holds at /oauth/token: the lock is on the client, whichever door was tried.
    assert_refused(
        token_request(server, server.client_id, server.client_secret, address), "auth_max_failures_per_client"
    )
    time.sleep(int(refused.headers["Retry-After"]) + 0.2)
    assert token_request(server, server.client_id, server.client_secret, address).status_code == 200


def test_one_address_guessing_many_client_ids_is_refused_at_the_address_limit(server: RunningServer):
    address = "127.0.0.3"
    for _ in range(PER_ADDRESS):
        assert token_request(server, new_client_id(), "wrong", address).status_code == 401

    wait = assert_refused(
        token_request(server, new_client_id(), "wrong", address), "auth_max_failures_per_address"
    )
    assert token_request(server, new_client_id(), "wrong").status_code == 401  # another address: judged
    time.sleep(wait + 0.2)
    assert token_request(server, new_client_id(), "wrong", address).status_code == 401  # judged again


def test_unknown_developer_tokens_block_the_address_then_it_is_released(server: RunningServer):
    address = "127.0.0.4"
    statuses = [
        with_token(server, "DDCI" + uuid.uuid4().hex, address).status_code for _ in range(PER_ADDRESS)
    ]
    # The failure that reaches the limit is answered 429 already.
    assert statuses == [401] * (PER_ADDRESS - 1) + [429]

    # While blocked, even the right token is refused unchecked, and so is the token endpoint; other
    # addresses are not.
    wait = assert_refused(with_token(server, server.token, address), "auth_max_failures_per_address")
    assert_refused(
        token_request(server, server.client_id, server.client_secret, address),
        "auth_max_failures_per_address",
    )
    assert with_token(server, server.token).status_code == 200
    time.sleep(wait + 0.2)
    assert with_token(server, server.token, address).status_code == 200
    assert refusals_logged(server, "developer token refused", address)


def test_an_expired_or_malformed_access_token_is_not_counted_as_guessing(server: RunningServer):
    for _ in range(PER_ADDRESS + 2):
        response = httpx.get(
            f"{server.base_url}/v1/datasets", headers={"Authorization": "bearer not.a.token"}, timeout=30
        )
        assert response.status_code == 401
    assert with_token(server, server.token).status_code == 200


# --- concurrent queries ---------------------------------------------------------------------------

# An answer of about 100 MB: nowhere near sent while its client reads none of it.
LARGE_ANSWER = "SELECT REPEAT('x', 1000) AS s FROM table a CROSS JOIN table b LIMIT 100000"


def query(client: httpx.Client, dataset: str, sql: str) -> httpx.Response:
    return client.post(f"/v1/datasets/query/execute/{dataset}", json={"sql": sql})


@contextlib.contextmanager
def held_query(client: httpx.Client, dataset: str) -> Iterator[None]:
    """A query whose answer has started and is not read further: it holds its slot until closed."""
    with client.stream("POST", f"/v1/datasets/query/execute/{dataset}", json={"sql": LARGE_ANSWER}) as answer:
        assert answer.status_code == 200
        chunks = answer.iter_raw(1024)  # kept: dropping it would close the connection
        next(chunks)
        yield


def until_answered(
    client: httpx.Client, dataset: str, sql: str = "SELECT COUNT(*) FROM table", seconds: float = 20
) -> httpx.Response:
    """The query's answer, asked again while it is 429 (the running ones are ending)."""
    deadline = time.monotonic() + seconds
    while True:
        response = query(client, dataset, sql)
        if response.status_code != 429 or time.monotonic() > deadline:
            return response
        time.sleep(float(response.headers["Retry-After"]) / 4)


def test_queries_past_a_users_slots_and_the_servers_are_refused_then_answered(
    server: RunningServer, numbers: str
):
    other, third = new_person(server, role="Admin"), new_person(server, role="Admin")
    with server.client() as mine, other.client(server) as theirs, third.client(server) as last:
        with held_query(mine, numbers), held_query(mine, numbers):
            assert_refused(query(mine, numbers, "SELECT 1"), "query_slots_per_user")
            with held_query(theirs, numbers):  # the server's third and last slot
                assert_refused(query(last, numbers, "SELECT 1"), "query_slots")
        # The answers were abandoned: their queries end and free their slots.
        for client in (mine, theirs, last):
            answered = until_answered(client, numbers)
            assert answered.status_code == 200, answered.text
            assert answered.json()["rows"] == [[ROWS]]


# --- concurrent uploads ---------------------------------------------------------------------------


class SlowBody:
    """A request body sent in two halves, the second only once ``finish`` is called."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self._parts = (first, rest)
        self._go = threading.Event()
        self.started = threading.Event()

    def finish(self) -> None:
        self._go.set()

    def __iter__(self) -> Iterator[bytes]:
        self.started.set()
        yield self._parts[0]
        self._go.wait(60)
        yield self._parts[1]


def test_an_upload_past_a_users_slots_is_refused_until_the_running_one_ends(server: RunningServer):
    person: Person = new_person(server, role="Editor")
    with person.client(server) as client:
        stream = client.post("/v1/streams", json={"dataSet": {"name": "slots", "schema": SCHEMA}}).json()
        execution = client.post(f"/v1/streams/{stream['id']}/executions").json()["id"]
        scratch = client.post("/v1/datasets", json={"name": "scratch", "schema": SCHEMA}).json()["id"]
        part = f"/v1/streams/{stream['id']}/executions/{execution}/part"

        # A slow part holds the user's one upload slot; another upload (an import) is then refused.
        # Which of the two the server sees first is a race: while the import wins, try again.
        for _ in range(10):
            body = SlowBody(b"1\n2\n", b"3\n")
            sent: list[httpx.Response] = []
            uploading = threading.Thread(
                target=lambda b=body, s=sent: s.append(client.put(f"{part}/1", content=b))
            )
            uploading.start()
            try:
                assert body.started.wait(30)
                time.sleep(0.3)
                probe = client.put(f"/v1/datasets/{scratch}/data", content=b"9\n")
            finally:
                body.finish()
                uploading.join(60)
            if probe.status_code == 429:
                break
            assert probe.status_code == 204 and sent[0].status_code in (200, 429), (probe, sent)
        assert_refused(probe, "upload_slots_per_user")
        assert sent and sent[0].status_code == 200, sent
        assert client.put(f"/v1/datasets/{scratch}/data", content=b"9\n").status_code == 204
        assert client.put(f"{part}/2", content=b"4\n").status_code == 200
        assert client.put(f"/v1/streams/{stream['id']}/executions/{execution}/commit").status_code == 200
        rows = query(client, stream["dataSet"]["id"], "SELECT SUM(n) FROM table")
        assert rows.json()["rows"] == [[10]]


def test_the_uploader_waits_out_the_slots_of_a_server_busy_with_its_own_parts(
    server: RunningServer, tmp_path: Path
):
    """Eight parts, four at a time, to a server that takes one upload of this user at a time: the
    parts refused with 429 are sent again after Retry-After, and every row arrives once."""
    person = new_person(server, role="Editor")
    with person.client(server) as client:
        dataset = client.post("/v1/datasets", json={"name": "busy", "schema": SCHEMA}).json()["id"]
        source = tmp_path / "numbers.csv"
        source.write_text("".join(f"{n}\n" for n in range(20_000)))
        done = upload(
            source,
            server=Server(server.base_url, token=person.token),
            dataset_id=dataset,
            parts=8,
            parallel=4,
            progress=io.StringIO(),
        )
        assert done.parts == 8
        answer = query(client, dataset, "SELECT COUNT(*), SUM(n) FROM table")
        assert answer.json()["rows"] == [[20_000, sum(range(20_000))]]


# --- memory per query -----------------------------------------------------------------------------

# A string of ~9 million pieces, built whole in memory: it cannot spill.
HUNGRY = "SELECT LENGTH(GROUP_CONCAT(CONCAT(a.n, '-', b.n))) FROM table a CROSS JOIN table b"
# A GROUP BY of 2.25 million groups: more than the memory limit, but it spills.
SPILLING = (
    "SELECT COUNT(*) FROM (SELECT a.n * 100000 + b.n AS k, COUNT(*) AS c FROM table a "
    "CROSS JOIN table b WHERE a.n < 1500 AND b.n < 1500 GROUP BY k) g"
)


def test_a_query_over_its_memory_fails_alone_while_other_queries_answer(server: RunningServer, numbers: str):
    hungry: list[httpx.Response] = []

    def run_hungry() -> None:
        with server.client() as client:
            hungry.append(until_answered(client, numbers, HUNGRY))

    other = new_person(server, role="Admin")
    running = threading.Thread(target=run_hungry)
    answered = 0
    with other.client(server) as client:
        running.start()
        while True:  # another user's queries, for as long as the hungry one runs
            response = until_answered(client, numbers, "SELECT SUM(n) FROM table")
            assert response.status_code == 200, response.text
            assert response.json()["rows"] == [[ROWS * (ROWS - 1) // 2]]
            answered += 1
            if not running.is_alive():
                break
        running.join()

    refused = hungry[0]
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "query_limit_exceeded"
    assert f"needed more than {MEMORY} of memory" in refused.json()["message"]
    assert httpx.get(f"{server.base_url}/health", timeout=10).status_code == 200
    assert server.process is not None and server.process.poll() is None


def test_a_query_over_its_memory_that_can_spill_answers(server: RunningServer, numbers: str):
    with server.client() as client:
        response = until_answered(client, numbers, SPILLING)
    assert response.status_code == 200, response.text
    assert response.json()["rows"] == [[1500 * 1500]]
    # It spilled, into a directory of its own (removed with its database: tests/unit/test_query_spill.py).
    assert list((server.data_dir / "query-spill").iterdir())
