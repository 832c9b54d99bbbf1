"""Cached reads never outlive a change: a revoked token, a deleted user, a changed grant, a deleted
dataset or a new execution state is what the very next request sees — on the server that made the
change, and on another server process sharing the catalog (PostgreSQL).

Each test first asks the reading server twice (so that what it read is in its memory), then changes
something through the writing server, then asks the reader once more. With SQLite the reader and
the writer are one server; with PostgreSQL they are two processes on one catalog.
"""

from __future__ import annotations

import base64
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from datagrove.catalog.database import make_engine
from datagrove.catalog.repository import Catalog
from datagrove.services.auth import Authenticator
from tests.support.postgres import private_schema
from tests.support.server import RunningServer

DS = "/api/data/v3/datasources"
COLUMNS = [{"type": "STRING", "name": "name"}, {"type": "LONG", "name": "n"}]


@dataclass(frozen=True)
class Pair:
    """The server that changes things and the one that must see the change on its next request."""

    writer: RunningServer
    reader: RunningServer

    @property
    def catalog_url(self) -> str:
        return self.writer.catalog_url or f"sqlite:///{self.writer.data_dir / 'catalog.db'}"


@pytest.fixture(scope="module")
def sqlite_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    server = RunningServer(data_dir=tmp_path_factory.mktemp("cached-sqlite"), catalog_url=None).start()
    try:
        yield Pair(server, server)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    shared = {
        "DATAGROVE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
        "DATAGROVE_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    with private_schema() as url:
        first = RunningServer(
            data_dir=tmp_path_factory.mktemp("cached-pg1"), catalog_url=url, extra_env=shared
        ).start()
        try:
            second = RunningServer(
                data_dir=tmp_path_factory.mktemp("cached-pg2"),
                catalog_url=url,
                extra_env=shared,
                client_id=first.client_id,
                client_secret=first.client_secret,
                token=first.token,
            ).start()
            try:
                yield Pair(first, second)
            finally:
                second.stop()
        finally:
            first.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def pair(request: pytest.FixtureRequest) -> Pair:
    return request.getfixturevalue(f"{request.param}_pair")


@dataclass(frozen=True)
class Person:
    id: int
    token: str
    token_id: int

    def get(self, server: RunningServer, path: str) -> httpx.Response:
        return httpx.get(server.base_url + path, headers={"X-DOMO-Developer-Token": self.token}, timeout=60)


def admin(server: RunningServer) -> httpx.Client:
    return server.client()


def new_person(server: RunningServer, role: str = "Participant") -> Person:
    name = "p-" + uuid.uuid4().hex[:10]
    with admin(server) as client:
        created = client.post("/v1/users", json={"name": name, "email": f"{name}@example.com", "role": role})
        assert created.status_code in (200, 201), created.text
        user_id = created.json()["id"]
        expires = int(time.time() * 1000) + 86_400_000
        issued = client.post(
            "/api/data/v1/accesstokens", json={"name": name, "ownerId": user_id, "expires": expires}
        )
        assert issued.status_code == 200, issued.text
    return Person(user_id, issued.json()["token"], issued.json()["id"])


def new_dataset(server: RunningServer) -> str:
    with admin(server) as client:
        created = client.post("/v1/datasets", json={"name": "cached", "schema": {"columns": COLUMNS}})
        assert created.status_code == 201, created.text
    return str(created.json()["id"])


def set_level(server: RunningServer, dataset_id: str, kind: str, principal: int, level: str) -> None:
    with admin(server) as client:
        answer = client.put(
            f"{DS}/{dataset_id}/permissions", json={"type": kind, "id": principal, "accessLevel": level}
        )
        assert answer.status_code == 200, answer.text


def warm(get: object, times: int = 2) -> int:
    """Ask twice; both answers must agree. Returns the status."""
    statuses = {get() for _ in range(times)}  # type: ignore[operator]
    assert len(statuses) == 1, statuses
    return statuses.pop()


def test_a_revoked_developer_token_is_refused_on_the_next_request(pair: Pair):
    person = new_person(pair.writer)
    dataset = new_dataset(pair.writer)
    set_level(pair.writer, dataset, "USER", person.id, "CAN_VIEW")
    assert warm(lambda: person.get(pair.reader, f"/v1/datasets/{dataset}").status_code) == 200

    with admin(pair.writer) as client:
        assert client.delete(f"/api/data/v1/accesstokens/{person.token_id}").status_code == 200

    assert person.get(pair.reader, f"/v1/datasets/{dataset}").status_code == 401
    assert person.get(pair.writer, f"/v1/datasets/{dataset}").status_code == 401


def test_a_deleted_users_token_and_oauth_client_are_refused_on_the_next_request(pair: Pair):
    person = new_person(pair.writer)
    # An OAuth client for the person, made as another process would (the CLI does this).
    engine = make_engine(pair.catalog_url)
    try:
        auth = Authenticator(catalog=Catalog(engine), signing_key="unused", token_lifetime=3600, customer="")
        client, secret = auth.create_client(user_id=person.id, scopes=frozenset({"data"}))
    finally:
        engine.dispose()
    granted = httpx.post(
        f"{pair.reader.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, secret),
        timeout=60,
    )
    assert granted.status_code == 200, granted.text
    bearer = {"Authorization": f"bearer {granted.json()['access_token']}"}

    def with_bearer() -> int:
        return httpx.get(f"{pair.reader.base_url}/v1/streams?limit=1", headers=bearer, timeout=60).status_code

    assert warm(with_bearer) == 200
    assert warm(lambda: person.get(pair.reader, "/v1/streams?limit=1").status_code) == 200

    with admin(pair.writer) as admin_client:
        assert admin_client.delete(f"/v1/users/{person.id}").status_code in (200, 204)

    assert with_bearer() == 401
    assert person.get(pair.reader, "/v1/streams?limit=1").status_code == 401


def test_a_grant_changed_or_revoked_takes_effect_on_the_next_request(pair: Pair):
    person = new_person(pair.writer)
    dataset = new_dataset(pair.writer)
    path = f"/v1/datasets/{dataset}"
    assert warm(lambda: person.get(pair.reader, path).status_code) == 404

    set_level(pair.writer, dataset, "USER", person.id, "CAN_VIEW")
    assert person.get(pair.reader, path).status_code == 200
    assert warm(lambda: person.get(pair.reader, path).status_code) == 200

    set_level(pair.writer, dataset, "USER", person.id, "NONE")
    assert person.get(pair.reader, path).status_code == 404


def test_leaving_a_group_takes_its_grants_away_on_the_next_request(pair: Pair):
    person = new_person(pair.writer)
    dataset = new_dataset(pair.writer)
    path = f"/v1/datasets/{dataset}"
    with admin(pair.writer) as client:
        group = client.post("/v1/groups", json={"name": "g-" + uuid.uuid4().hex[:8]})
        assert group.status_code in (200, 201), group.text
        group_id = group.json()["id"]
        assert client.put(f"/v1/groups/{group_id}/users/{person.id}").status_code in (200, 204)
    set_level(pair.writer, dataset, "GROUP", group_id, "CAN_VIEW")
    assert warm(lambda: person.get(pair.reader, path).status_code) == 200

    with admin(pair.writer) as client:
        assert client.delete(f"/v1/groups/{group_id}/users/{person.id}").status_code in (200, 204)

    assert person.get(pair.reader, path).status_code == 404


def test_a_deleted_dataset_is_gone_on_the_next_request(pair: Pair):
    dataset = new_dataset(pair.writer)
    bearer = {"Authorization": f"bearer {pair.reader.oauth_token()}"}

    def get() -> int:
        return httpx.get(
            f"{pair.reader.base_url}/v1/datasets/{dataset}", headers=bearer, timeout=60
        ).status_code

    assert warm(get) == 200
    with admin(pair.writer) as client:
        assert client.delete(f"/v1/datasets/{dataset}").status_code == 204
    assert get() == 404


def test_a_renamed_dataset_and_a_new_execution_state_show_on_the_next_request(pair: Pair):
    with admin(pair.writer) as client:
        stream = client.post(
            "/v1/streams", json={"dataSet": {"name": "before", "schema": {"columns": COLUMNS}}}
        )
        assert stream.status_code == 201, stream.text
        stream_id, dataset = stream.json()["id"], stream.json()["dataSet"]["id"]
        execution = client.post(f"/v1/streams/{stream_id}/executions")
        assert execution.status_code == 200, execution.text
    poll = f"/v1/streams/{stream_id}/executions/{execution.json()['id']}"
    with admin(pair.reader) as reader:
        assert {reader.get(poll).json()["currentState"] for _ in range(2)} == {"ACTIVE"}
        assert {reader.get(f"/v1/datasets/{dataset}").json()["name"] for _ in range(2)} == {"before"}
        assert {listed_name(reader, stream_id) for _ in range(2)} == {"before"}

        with admin(pair.writer) as writer:
            renamed = writer.put(f"/v1/datasets/{dataset}", json={"name": "after"})
            assert renamed.json()["name"] == "after"  # the request that wrote reads its own write
            assert writer.put(f"{poll}/abort").status_code == 200

        assert reader.get(poll).json()["currentState"] == "ABORTED"
        assert reader.get(f"/v1/datasets/{dataset}").json()["name"] == "after"
        assert listed_name(reader, stream_id) == "after"


def listed_name(client: httpx.Client, stream_id: int) -> str:
    """The name of ``stream_id``'s dataset as ``GET /v1/streams?limit=10`` shows it (its last page)."""
    listed = client.get("/v1/streams?limit=10").json()
    return next(str(s["dataSet"]["name"]) for s in listed if s["id"] == stream_id)


def test_health_answers_without_a_catalog_round_trip(sqlite_pair: Pair):
    """Liveness only: constant, and no credential needed."""
    answer = httpx.get(f"{sqlite_pair.reader.base_url}/health", timeout=60)
    assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
