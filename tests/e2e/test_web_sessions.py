"""Web sessions over HTTP: cookie flags, sign-out, idle and absolute expiry, failed sign-in limits
(reached and released) and the activity log. One server with short durations for the module, on a
PostgreSQL catalog (what many nodes share: sessions and failure counts live there)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.postgres import private_schema
from tests.support.server import RunningServer
from tests.support.web import (
    HTML,
    csrf_in,
    make_person,
    make_streamed_dataset,
    page_csrf,
    signed_in_client,
    start_patiently,
)

IDLE, MAX, WINDOW = 4, 9, 30  # a wide window: on a loaded machine an attempt can take seconds
MAX_FAILURES, MAX_FROM_ADDRESS = 3, 6


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    env = {
        "DATAGROVE_WEB_SESSION_IDLE_SECONDS": str(IDLE),
        "DATAGROVE_WEB_SESSION_MAX_SECONDS": str(MAX),
        "DATAGROVE_SIGN_IN_MAX_FAILURES": str(MAX_FAILURES),
        "DATAGROVE_SIGN_IN_MAX_FAILURES_PER_ADDRESS": str(MAX_FROM_ADDRESS),
        "DATAGROVE_SIGN_IN_WINDOW_SECONDS": str(WINDOW),
    }
    with private_schema() as catalog_url:
        running = start_patiently(
            RunningServer(
                data_dir=tmp_path_factory.mktemp("web-sessions"), catalog_url=catalog_url, extra_env=env
            )
        )
        yield running
        running.stop()


def attempt(
    server: RunningServer, email: str, password: str, accept: str = "text/html", source: str = "127.0.0.1"
) -> httpx.Response:
    """A sign-in from ``source`` (any loopback address: each test counts failures from its own)."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.base_url, headers=HTML, timeout=60, transport=transport) as client:
        token = csrf_in(client.get("/").text)
        return client.post(
            "/ui/sign-in",
            data={"csrf_token": token, "email": email, "password": password},
            headers={"Accept": accept},
        )


def signed_in(client: httpx.Client) -> bool:
    response = client.get("/ui/datasets")
    return response.status_code == 200


def test_the_session_cookie_is_httponly_lax_and_secure_behind_tls(server: RunningServer) -> None:
    person = make_person(server)
    plain = attempt(server, person.email, person.password).headers["set-cookie"].lower()
    assert "dg_session=" in plain and "httponly" in plain and "samesite=lax" in plain and "path=/" in plain
    assert "secure" not in plain
    with httpx.Client(base_url=server.base_url, headers=HTML, timeout=60) as client:
        token = csrf_in(client.get("/").text)
        behind_tls = client.post(
            "/ui/sign-in",
            data={"csrf_token": token, "email": person.email, "password": person.password},
            headers={"X-Forwarded-Proto": "https"},
        )
    cookie = behind_tls.headers["set-cookie"].lower()
    assert "dg_session=" in cookie and "; secure" in cookie and "httponly" in cookie


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(server: RunningServer) -> None:
    person = make_person(server)
    client = signed_in_client(server, person)
    stolen = dict(client.cookies)
    out = client.post("/ui/sign-out", data={"csrf_token": page_csrf(client)})
    assert out.status_code == 303 and out.headers["location"] == "/"
    with httpx.Client(base_url=server.base_url, headers=HTML, cookies=stolen, timeout=60) as replay:
        response = replay.get("/ui/datasets")
    assert response.status_code == 303 and response.headers["location"].startswith("/?next=")


def test_a_session_started_with_a_developer_token_ends_when_the_token_is_revoked(
    server: RunningServer,
) -> None:
    with server.client() as api:
        made = api.post("/api/data/v1/accesstokens", json={"name": "web " + uuid.uuid4().hex[:6]})
        made.raise_for_status()
    record = made.json()
    with httpx.Client(base_url=server.base_url, headers=HTML, timeout=60) as client:
        token = csrf_in(client.get("/").text)
        response = client.post("/ui/sign-in", data={"csrf_token": token, "token": record["token"]})
        assert response.status_code == 303, response.text
        assert signed_in(client)
        with server.client() as api:
            api.delete(f"/api/data/v1/accesstokens/{record['id']}").raise_for_status()
        page = client.get("/ui/datasets")
        assert page.status_code == 303 and page.headers["location"].startswith("/")
        assert not signed_in(client)


def test_an_idle_session_ends(server: RunningServer) -> None:
    client = signed_in_client(server, make_person(server))
    assert signed_in(client)
    time.sleep(IDLE + 1)
    assert not signed_in(client)
    # A script's request gets a 401 the page's script can act on, not a redirect.
    assert client.get("/ui/datasets", headers={"Accept": "*/*"}).status_code == 401


def test_a_session_in_use_still_ends_at_its_absolute_limit(server: RunningServer) -> None:
    client = signed_in_client(server, make_person(server))
    started = time.monotonic()
    while time.monotonic() - started < MAX - 1.5:
        assert signed_in(client), "the session ended before its limit"
        time.sleep(1)
    time.sleep(2.5)
    assert not signed_in(client)


def test_failed_sign_ins_for_one_email_are_limited_then_released(server: RunningServer) -> None:
    person, source = make_person(server), "127.0.0.2"
    for _ in range(MAX_FAILURES):
        refused = attempt(server, person.email, "wrong-password", source=source)
        assert refused.status_code == 401
        assert "the email or password is not right" in refused.text
    limited = attempt(server, person.email, person.password, source=source)  # even the right password waits
    assert limited.status_code == 429
    assert "too many failed sign-ins; try again in" in limited.text
    wait = int(limited.headers["retry-after"])
    assert 1 <= wait <= WINDOW
    # Another address is refused too: the limit is the email's, wherever the attempts come from.
    as_json = attempt(server, person.email, person.password, accept="application/json", source="127.0.0.3")
    assert as_json.status_code == 429
    assert as_json.json()["message"].startswith("too many failed sign-ins; try again in")
    assert "dg_session" not in as_json.headers.get("set-cookie", "")
    time.sleep(wait + 0.5)
    assert attempt(server, person.email, person.password, source=source).status_code == 303


def test_failed_sign_ins_from_one_address_are_limited_whatever_the_email(server: RunningServer) -> None:
    people, source = [make_person(server) for _ in range(MAX_FROM_ADDRESS)], "127.0.0.4"
    for person in people:  # one failure per email: under the per-email limit
        assert attempt(server, person.email, "wrong-password", source=source).status_code == 401
    limited = attempt(server, people[0].email, people[0].password, source=source)
    assert limited.status_code == 429
    # The same person from another address is not held up by this address's failures.
    assert attempt(server, people[1].email, people[1].password, source="127.0.0.5").status_code == 303
    time.sleep(int(limited.headers["retry-after"]) + 0.5)
    assert attempt(server, people[0].email, people[0].password, source=source).status_code == 303


def test_sign_ins_are_in_the_activity_log_with_their_address(server: RunningServer) -> None:
    person = make_person(server)
    assert attempt(server, person.email, "wrong-password", source="127.0.0.6").status_code == 401
    assert attempt(server, person.email, person.password, source="127.0.0.6").status_code == 303
    with server.client() as api:
        entries = api.get("/v1/audit", params={"limit": 50}).json()
    failed = [
        e
        for e in entries
        if person.email in e["additionalComment"] and e["eventText"] == "Logged in (failed)"
    ]
    succeeded = [e for e in entries if e["userId"] == person.id and e["eventText"] == "Logged in"]
    assert failed and failed[0]["ipAddress"] == "127.0.0.6"
    assert succeeded and succeeded[0]["ipAddress"] == "127.0.0.6"
    assert "web sign-in with a password" in succeeded[0]["additionalComment"]


def test_the_list_sorts_by_owner_and_by_columns(server: RunningServer) -> None:
    """The sorts the API gained for the list page, in PostgreSQL's SQL."""
    tag = uuid.uuid4().hex[:8]
    narrow = make_streamed_dataset(server, f"sort {tag} narrow")
    with server.client() as api:
        wide_schema = {"columns": [{"type": "STRING", "name": f"c{i}"} for i in range(5)]}
        wide = api.post("/v1/datasets", json={"name": f"sort {tag} wide", "schema": wide_schema}).json()["id"]
        owner = make_person(server, "Editor", name=f"AAA {tag}")
        assert api.put(f"/v1/datasets/{wide}", json={"owner": {"id": owner.id}}).status_code == 200

        def order(sort: str) -> list[str]:
            found = api.get("/v1/datasets", params={"nameLike": tag, "sort": sort}).json()
            return [d["id"] for d in found]

        assert order("columns") == [narrow, wide] and order("-columns") == [wide, narrow]
        assert order("owner") == [wide, narrow]  # "AAA ..." before "Administrator"
    client = signed_in_client(server, make_person(server, "Admin"))
    page = client.get("/ui/datasets", params={"q": tag, "sort": "-columns"}).text
    assert page.index(f"sort {tag} wide") < page.index(f"sort {tag} narrow")
