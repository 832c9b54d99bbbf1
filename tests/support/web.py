"""Helpers for tests of the web interface over plain HTTP: people with passwords, signed-in clients."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx

from tests.support.server import RunningServer

HTML = {"Accept": "text/html"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class Person:
    id: int
    name: str
    email: str
    password: str
    role: str


def make_person(server: RunningServer, role: str = "Participant", name: str | None = None) -> Person:
    """A new user with a password, created through ``/v1/users`` by the bootstrap admin."""
    tag = uuid.uuid4().hex[:8]
    name = name or f"{role} {tag}"
    email, password = f"{tag}@example.com", "pw-" + uuid.uuid4().hex
    with server.client() as api:
        response = api.post(
            "/v1/users", json={"name": name, "email": email, "role": role, "password": password}
        )
        response.raise_for_status()
    return Person(response.json()["id"], name, email, password, role)


def csrf_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def signed_in_client(server: RunningServer, person: Person) -> httpx.Client:
    """An HTTP client holding a web session of ``person`` (signed in through the sign-in form)."""
    client = httpx.Client(base_url=server.base_url, headers=HTML, timeout=60)
    form = client.get("/")
    response = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_in(form.text), "email": person.email, "password": person.password},
    )
    assert response.status_code == 303, response.text
    assert "dg_session" in client.cookies
    return client


def page_csrf(client: httpx.Client, path: str = "/ui/datasets") -> str:
    """The session's CSRF token, read from a page as a browser would."""
    response = client.get(path)
    response.raise_for_status()
    return csrf_in(response.text)


def start_patiently(server: RunningServer, wait_seconds: float = 180) -> RunningServer:
    """``server.start()``, waiting longer for a slow start on a loaded machine (imports can take
    a minute there); the process is stopped if it never answers."""
    import time

    try:
        return server.start()
    except RuntimeError:
        if server.process is None or server.process.poll() is not None:
            raise
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            if httpx.get(f"{server.base_url}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not become healthy:\n{server.log_path.read_text()[-4000:]}")


SALES_SCHEMA = {"columns": [{"type": "STRING", "name": "region"}, {"type": "LONG", "name": "amount"}]}
SALES_ROWS = "East,10\nWest,20\nEast,30\nNorth,40\n"


def make_streamed_dataset(server: RunningServer, name: str, rows: str = SALES_ROWS) -> str:
    """A dataset (owned by the bootstrap admin) filled by one committed stream execution; returns its id."""
    with server.client() as api:
        created = api.post(
            "/v1/streams", json={"dataSet": {"name": name, "schema": SALES_SCHEMA}, "updateMethod": "REPLACE"}
        )
        created.raise_for_status()
        stream_id, dataset_id = created.json()["id"], created.json()["dataSet"]["id"]
        execution = api.post(f"/v1/streams/{stream_id}/executions").json()["id"]
        part = api.put(
            f"/v1/streams/{stream_id}/executions/{execution}/part/1",
            content=rows.encode(),
            headers={"Content-Type": "text/csv"},
        )
        part.raise_for_status()
        api.put(f"/v1/streams/{stream_id}/executions/{execution}/commit").raise_for_status()
    return dataset_id


def make_policy(server: RunningServer, dataset_id: str, user_id: int, region: str) -> None:
    """A row-level policy (PDP turned on): ``user_id`` sees the rows of ``region`` only."""
    body = {
        "name": f"{region} only",
        "type": "user",
        "filters": [{"column": "region", "values": [region], "operator": "EQUALS", "not": False}],
        "users": [user_id],
        "groups": [],
    }
    with server.client() as api:
        api.put(f"/v1/datasets/{dataset_id}", json={"pdpEnabled": True}).raise_for_status()
        api.post(f"/v1/datasets/{dataset_id}/policies", json=body).raise_for_status()
