"""The SQL console, upload, admin, token and connector pages over plain HTTP (no browser): sessions,
CSRF, and the same answers as the API for what a user may see and do."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from contextlib import closing

import httpx
import pytest

from tests.support.server import RunningServer
from tests.support.web import HTML, Person, make_person, page_csrf, signed_in_client, start_patiently

DS = "/api/data/v3/datasources"
JSON = {"Accept": "application/json"}

PAGES = [
    "/ui/sql",
    "/ui/upload",
    "/ui/admin/users",
    "/ui/admin/groups",
    "/ui/admin/activity",
    "/ui/account/tokens",
    "/ui/connectors",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_patiently(RunningServer(data_dir=tmp_path_factory.mktemp("web-tools"), catalog_url=None))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin(server: RunningServer) -> Person:
    return make_person(server, "Admin")


def dataset(server: RunningServer, rows: str = "a,1\nb,2\na,3\n") -> str:
    """A dataset (s STRING, n LONG) owned by the bootstrap admin, loaded with ``rows``."""
    with server.client() as api:
        schema = {"columns": [{"type": "STRING", "name": "s"}, {"type": "LONG", "name": "n"}]}
        created = api.post("/v1/datasets", json={"name": "web-" + uuid.uuid4().hex[:8], "schema": schema})
        assert created.status_code == 201, created.text
        dataset_id = created.json()["id"]
        loaded = api.put(
            f"/v1/datasets/{dataset_id}/data", content=rows, headers={"Content-Type": "text/csv"}
        )
        assert loaded.status_code == 204, loaded.text
    return str(dataset_id)


def share(server: RunningServer, dataset_id: str, person: Person, level: str) -> None:
    with server.client() as api:
        body = {"permissions": [{"type": "USER", "id": person.id, "accessLevel": level}], "sendEmail": False}
        assert api.post(f"{DS}/{dataset_id}/share", json=body).status_code == 200


def run(client: httpx.Client, dataset_id: str, sql: str, csrf: str | None) -> httpx.Response:
    headers = {**JSON, **({"X-CSRF-Token": csrf} if csrf else {})}
    return client.post("/ui/sql/run", json={"dataset": dataset_id, "sql": sql}, headers=headers)


# --- sessions and CSRF -------------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_every_page_without_a_session_sends_a_person_to_sign_in(server: RunningServer, path: str) -> None:
    with httpx.Client(base_url=server.base_url, headers=HTML) as anonymous:
        response = anonymous.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/?next=")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ui/sql/run"),
        ("POST", "/ui/sql/download"),
        ("POST", "/ui/upload/schema"),
        ("POST", "/ui/upload/start"),
        ("PUT", "/ui/upload/streams/1/executions/1/parts/1"),
        ("POST", "/ui/upload/streams/1/executions/1/commit"),
        ("POST", "/ui/account/tokens"),
        ("POST", "/ui/admin/users"),
        ("POST", "/ui/connectors"),
    ],
)
def test_a_script_without_a_session_gets_401(server: RunningServer, method: str, path: str) -> None:
    with httpx.Client(base_url=server.base_url, headers=JSON) as anonymous:
        response = anonymous.request(method, path, content=b"{}")
    assert response.status_code == 401


def test_forms_and_scripts_without_the_csrf_token_are_refused(server: RunningServer, admin: Person) -> None:
    dataset_id = dataset(server)
    with closing(signed_in_client(server, admin)) as client:
        refused = run(client, dataset_id, "SELECT * FROM table", csrf=None)
        assert refused.status_code == 403
        assert "security token" in refused.json()["message"]
        assert run(client, dataset_id, "SELECT 1", csrf="forged").status_code == 403
        created = client.post("/ui/account/tokens", data={"name": "no-csrf"})
        assert created.status_code == 403
        made = client.post("/ui/admin/users", data={"name": "x", "email": f"{uuid.uuid4().hex}@example.com"})
        assert made.status_code == 403
        assert "security token" in made.text  # a page with the message, for a person
        started = client.post("/ui/upload/start", json={"name": "x", "columns": [], "method": "REPLACE"})
        assert started.status_code == 403
        assert (
            client.post("/ui/sql/download", data={"dataset": dataset_id, "sql": "SELECT 1"}).status_code
            == 403
        )


# --- what each user may do is what the API allows ------------------------------------------------


def test_admin_pages_are_403_for_everyone_but_admins(server: RunningServer) -> None:
    editor = make_person(server, "Editor")
    with closing(signed_in_client(server, editor)) as client:
        csrf = page_csrf(client)
        for path in ("/ui/admin/users", "/ui/admin/groups", "/ui/admin/activity"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert "for admins" in response.text
        made = client.post(
            "/ui/admin/users",
            data={"csrf_token": csrf, "name": "Eve", "email": f"{uuid.uuid4().hex}@example.com"},
        )
        assert made.status_code == 403
        grouped = client.post("/ui/admin/groups", data={"csrf_token": csrf, "name": "eve's"})
        assert grouped.status_code == 403


def test_a_user_cannot_query_or_upload_into_a_dataset_the_api_would_refuse(server: RunningServer) -> None:
    hidden, viewed = dataset(server), dataset(server)
    person = make_person(server, "Participant")
    share(server, viewed, person, "CAN_VIEW")
    with closing(signed_in_client(server, person)) as client:
        csrf = page_csrf(client)
        missing = run(client, hidden, "SELECT * FROM table", csrf)
        assert missing.status_code == 404
        assert missing.json()["message"] == f"dataset {hidden} does not exist"
        page = client.get(f"/ui/sql?dataset={hidden}")
        assert f"dataset {hidden} does not exist" in page.text
        assert page.status_code == 404
        assert (
            client.post(
                "/ui/sql/download", data={"csrf_token": csrf, "dataset": hidden, "sql": "SELECT 1"}
            ).status_code
            == 404
        )
        assert run(client, viewed, "SELECT COUNT(*) AS c FROM table", csrf).json()["rows"] == [[3]]

        headers = {**JSON, "X-CSRF-Token": csrf}
        into_hidden = client.post(
            "/ui/upload/start", json={"dataset": hidden, "method": "APPEND"}, headers=headers
        )
        assert into_hidden.status_code == 404
        into_viewed = client.post(
            "/ui/upload/start", json={"dataset": viewed, "method": "APPEND"}, headers=headers
        )
        assert into_viewed.status_code == 403
        assert "CAN_EDIT" in into_viewed.json()["message"]
        new = {"name": "mine", "columns": [{"name": "a", "type": "LONG"}], "method": "REPLACE"}
        created = client.post("/ui/upload/start", json=new, headers=headers)
        assert created.status_code == 403  # a Participant may not create datasets
        upload_page = client.get("/ui/upload")
        assert viewed not in upload_page.text  # only datasets it may edit are offered


def test_the_console_applies_row_level_policies(server: RunningServer, admin: Person) -> None:
    dataset_id = dataset(server)
    reader = make_person(server, "Participant")
    share(server, dataset_id, reader, "CAN_VIEW")
    policy = {
        "name": "only a",
        "filters": [{"column": "s", "values": ["a"], "operator": "EQUALS", "not": False}],
        "users": [reader.id],
        "groups": [],
        "type": "user",
    }
    with server.client() as api:
        assert api.put(f"/v1/datasets/{dataset_id}", json={"pdpEnabled": True}).status_code == 200
        assert api.post(f"/v1/datasets/{dataset_id}/policies", json=policy).status_code == 201
    with closing(signed_in_client(server, reader)) as client:
        answer = run(client, dataset_id, "SELECT s, n FROM table ORDER BY n", page_csrf(client)).json()
    assert answer["rows"] == [["a", 1], ["a", 3]]


# --- the console ---------------------------------------------------------------------------------


def test_a_query_answers_typed_columns_its_rows_and_its_time(server: RunningServer, admin: Person) -> None:
    dataset_id = dataset(server)
    with closing(signed_in_client(server, admin)) as client:
        csrf = page_csrf(client)
        answer = run(client, dataset_id, "SELECT s, SUM(n) AS total FROM table GROUP BY s ORDER BY s", csrf)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["columns"] == [
            {"name": "s", "type": "STRING"},
            {"name": "total", "type": "DECIMAL"},
        ] or body["columns"][0] == {"name": "s", "type": "STRING"}
        assert [row[0] for row in body["rows"]] == ["a", "b"]
        assert body["rowCount"] == 2 and body["truncated"] is False and body["seconds"] >= 0
        bad = run(client, dataset_id, "SELECT nope FROM table", csrf)
        assert bad.status_code == 400
        assert "nope" in bad.json()["message"]


def test_the_console_works_without_script_and_downloads_every_row_as_csv(
    server: RunningServer, admin: Person
) -> None:
    rows = "".join(f"r{i},{i}\n" for i in range(20_000))
    dataset_id = dataset(server, rows)
    with closing(signed_in_client(server, admin)) as client:
        csrf = page_csrf(client, f"/ui/sql?dataset={dataset_id}")
        page = client.post(
            "/ui/sql", data={"csrf_token": csrf, "dataset": dataset_id, "sql": "SELECT * FROM table"}
        )
        assert page.status_code == 200
        assert "20000 rows" in page.text and "<td>r49</td>" in page.text
        shown = run(client, dataset_id, "SELECT * FROM table", csrf).json()
        assert shown["truncated"] is True and len(shown["rows"]) == 10_000
        download = client.post(
            "/ui/sql/download", data={"csrf_token": csrf, "dataset": dataset_id, "sql": "SELECT * FROM table"}
        )
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(download.text)))
    assert lines[0] == ["s", "n"]
    assert len(lines) == 20_001 and lines[-1] == ["r19999", "19999"]


# --- upload --------------------------------------------------------------------------------------


def test_an_upload_in_parts_creates_a_dataset_then_appends_and_replaces(
    server: RunningServer, admin: Person
) -> None:
    text = 'city,visits,day\nOslo,3,2024-01-01\n"Bergen, west",4,2024-01-02\n'
    with closing(signed_in_client(server, admin)) as client:
        headers = {**JSON, "X-CSRF-Token": page_csrf(client, "/ui/upload")}
        schema = client.post("/ui/upload/schema?complete=true", content=text.encode(), headers=headers).json()
        assert schema["columns"] == [
            {"name": "city", "type": "STRING"},
            {"name": "visits", "type": "LONG"},
            {"name": "day", "type": "DATE"},
        ]
        body = text.encode()[schema["headerBytes"] :]
        start = {"name": "cities", "columns": schema["columns"], "method": "REPLACE"}
        opened = client.post("/ui/upload/start", json=start, headers=headers).json()
        first, second = body.split(b"\n", 1)
        for number, part in ((1, first + b"\n"), (2, second)):
            sent = client.put(f"{opened['partsUrl']}/parts/{number}", content=part, headers=headers)
            assert sent.status_code == 200, sent.text
        done = client.post(opened["commitUrl"], json={"method": "REPLACE"}, headers=headers)
        assert done.status_code == 200, done.text
        assert done.json()["rows"] == 2 and done.json()["dataset"] == opened["dataset"]

        for method, expected in (("APPEND", 4), ("REPLACE", 2)):
            again = client.post(
                "/ui/upload/start", json={"dataset": opened["dataset"], "method": method}, headers=headers
            ).json()
            client.put(f"{again['partsUrl']}/parts/1", content=body, headers=headers).raise_for_status()
            committed = client.post(again["commitUrl"], json={"method": method}, headers=headers)
            assert committed.json()["rows"] == expected

        bad = client.post(
            "/ui/upload/start", json={"dataset": opened["dataset"], "method": "APPEND"}, headers=headers
        ).json()
        refused = client.put(f"{bad['partsUrl']}/parts/1", content=b"Oslo,many,2024-01-01\n", headers=headers)
        assert refused.status_code == 400
        assert "many" in refused.json()["message"]
    with server.client() as api:
        rows = api.get(f"/v1/datasets/{opened['dataset']}/data?includeHeader=true").text
    assert list(csv.reader(io.StringIO(rows))) == [
        ["city", "visits", "day"],
        ["Oslo", "3", "2024-01-01"],
        ["Bergen, west", "4", "2024-01-02"],
    ]


def test_a_schema_sample_that_is_not_csv_is_refused_by_name(server: RunningServer, admin: Person) -> None:
    with closing(signed_in_client(server, admin)) as client:
        headers = {**JSON, "X-CSRF-Token": page_csrf(client, "/ui/upload")}
        empty = client.post("/ui/upload/schema?complete=true", content=b"", headers=headers)
        assert empty.status_code == 400 and "empty" in empty.json()["message"]
        binary = client.post("/ui/upload/schema?complete=true", content=b"a\n\xff\xfe", headers=headers)
        assert binary.status_code == 400 and "UTF-8" in binary.json()["message"]


# --- tokens, admin, connectors -------------------------------------------------------------------


def test_a_token_made_on_the_page_works_once_shown_and_stops_when_revoked(server: RunningServer) -> None:
    person = make_person(server, "Editor")
    with closing(signed_in_client(server, person)) as client:
        csrf = page_csrf(client, "/ui/account/tokens")
        created = client.post("/ui/account/tokens", data={"csrf_token": csrf, "name": "laptop"})
        assert created.status_code == 200
        value = created.text.split('id="new-token" class="token-value" readonly value="')[1].split('"')[0]
        assert value.startswith("DDCI")
        assert client.get("/ui/account/tokens").text.count(value) == 0  # shown once
        me = httpx.get(f"{server.base_url}/v1/users/{person.id}", headers={"X-DOMO-Developer-Token": value})
        assert me.status_code == 200
        token_id = created.text.split('action="/ui/account/tokens/')[1].split("/")[0]
        revoked = client.post(f"/ui/account/tokens/{token_id}/revoke", data={"csrf_token": csrf})
        assert revoked.status_code == 303
        assert "laptop" in client.get(revoked.headers["location"]).text
    after = httpx.get(f"{server.base_url}/v1/users/{person.id}", headers={"X-DOMO-Developer-Token": value})
    assert after.status_code == 401


def test_an_admin_creates_a_user_who_then_signs_in_and_the_log_shows_it(
    server: RunningServer, admin: Person
) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with closing(signed_in_client(server, admin)) as client:
        csrf = page_csrf(client, "/ui/admin/users")
        made = client.post(
            "/ui/admin/users",
            data={
                "csrf_token": csrf,
                "name": "Nia New",
                "email": email,
                "role": "Editor",
                "password": "pw-long-enough",
            },
        )
        assert made.status_code == 303
        assert "Nia New" in client.get(made.headers["location"]).text
        taken = client.post(
            "/ui/admin/users", data={"csrf_token": csrf, "name": "Again", "email": email, "role": "Editor"}
        )
        assert taken.status_code == 409 and "already exists" in taken.text
        log = client.get("/ui/admin/activity?action=user.create").text.split('id="activity"')[1]
        assert "Nia New" in log and "user.create" in log and "token." not in log
    with server.client() as api:
        users = api.get("/v1/users?limit=500").json()
    new = next(user for user in users if user["email"] == email)
    assert new["role"] == "Editor"
    signed_in_client(server, Person(new["id"], "Nia New", email, "pw-long-enough", "Editor")).close()


def test_a_connector_stream_is_created_and_run_from_the_page(server: RunningServer, admin: Person) -> None:
    source = dataset(server)
    with closing(signed_in_client(server, admin)) as client:
        csrf = page_csrf(client, "/ui/connectors")
        bad = client.post("/ui/connectors", data={"csrf_token": csrf, "name": "x", "provider": "nope"})
        assert bad.status_code == 400 and "unknown connector" in bad.text
        made = client.post(
            "/ui/connectors",
            data={
                "csrf_token": csrf,
                "name": "copy",
                "provider": "dataset-sql",
                "configuration": f'query=SELECT s, n FROM "{source}"',
                "schedule": "",
                "method": "REPLACE",
            },
        )
        assert made.status_code == 303, made.text
        stream_page = made.headers["location"].split("?")[0]
        ran = client.post(stream_page + "/run", data={"csrf_token": csrf})
        assert ran.status_code == 303
        history = client.get(ran.headers["location"])
        assert history.status_code == 200 and "MANUAL" in history.text
        assert "copy" in client.get("/ui/connectors").text
