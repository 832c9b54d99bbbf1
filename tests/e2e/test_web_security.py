"""The web pages' security over plain HTTP (no browser).

* Every web route is read from the app itself, so a page added later is covered without a change
  here: without a session each page and form leads to the sign-in page; every non-GET route refuses
  a request without the session's CSRF token, or with a wrong one (403).
* The permission matrix of tests/e2e/test_permission_matrix.py, over the pages: for each kind of
  person, the pages show exactly the datasets, rows and columns the API shows them with their own
  developer token, and the share and revoke forms answer as the API's share and revoke do.
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from tests.support.server import RunningServer
from tests.support.web import HTML, Person, make_person, page_csrf, signed_in_client, start_patiently

# Reachable without a session, by design: the sign-in page and its form.
OPEN = {("GET", "/"), ("POST", "/ui/sign-in")}
ACTORS = ("admin", "owner", "co_owner", "editor", "viewer", "group_member", "stranger")
SCHEMA = {"columns": [{"type": "STRING", "name": "region"}, {"type": "LONG", "name": "amount"}]}


def web_routes(data_dir: Path) -> list[tuple[str, str]]:
    """(method, path) of every web route of the app as the server builds it."""
    from datagrove.app import create_app
    from datagrove.settings import Settings
    from datagrove.web.errors import is_web_path

    app = create_app(Settings(data_dir=data_dir))
    return [(method, path) for method, path in _endpoints(app.routes) if is_web_path(path)]


def _endpoints(routes: Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(method, path) of routes, through FastAPI's included routers (``effective_candidates``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield from ((method, route.path) for method in sorted(route.methods))
        elif hasattr(route, "effective_candidates"):
            for candidate in route.effective_candidates():
                if hasattr(candidate, "effective_candidates"):
                    yield from _endpoints([candidate])
                elif isinstance(candidate.original_route, APIRoute):
                    methods = sorted(candidate.original_route.methods)
                    yield from ((method, candidate.path) for method in methods)


def concrete(path: str) -> str:
    """The path with a value for each parameter (an object that need not exist: the session
    check comes first)."""
    return re.sub(r"\{[^}]+\}", "1", path)


@dataclass
class World:
    server: RunningServer
    routes: list[tuple[str, str]]
    people: dict[str, Person]
    tokens: dict[str, str]
    tag: str
    dataset: str
    private: str  # the owner's, shared with nobody
    spare: int  # a user to share with and revoke

    def api(self, actor: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.server.base_url, headers={"X-DOMO-Developer-Token": self.tokens[actor]}, timeout=60
        )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    routes = web_routes(tmp_path_factory.mktemp("routes"))
    server = start_patiently(
        RunningServer(data_dir=tmp_path_factory.mktemp("web-security"), catalog_url=None)
    )
    tag = uuid.uuid4().hex[:8]
    roles = {"admin": "Admin", "owner": "Editor"}
    people = {actor: make_person(server, roles.get(actor, "Participant"), name=actor) for actor in ACTORS}
    tokens: dict[str, str] = {}
    with server.client() as admin:
        for actor, person in people.items():
            issued = admin.post("/api/data/v1/accesstokens", json={"name": actor, "ownerId": person.id})
            assert issued.status_code == 200, issued.text
            tokens[actor] = issued.json()["token"]
        group = admin.post("/v1/groups", json={"name": f"web {tag}"}).json()["id"]
        assert admin.put(f"/v1/groups/{group}/users/{people['group_member'].id}").status_code == 204
        spare = admin.post("/v1/users", json={"name": "spare", "email": f"spare-{tag}@x.io"}).json()["id"]
    owner = httpx.Client(
        base_url=server.base_url, headers={"X-DOMO-Developer-Token": tokens["owner"]}, timeout=60
    )
    with owner:
        ids = []
        for name in (f"shared {tag}", f"private {tag}"):
            created = owner.post("/v1/datasets", json={"name": name, "schema": SCHEMA})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
            put = owner.put(
                f"/v1/datasets/{ids[-1]}/data",
                content=b"east,1\nwest,2\neast,3\n",
                headers={"Content-Type": "text/csv"},
            )
            assert put.status_code == 204, put.text
        grants = [
            {"type": "USER", "id": people["co_owner"].id, "accessLevel": "CO_OWNER"},
            {"type": "USER", "id": people["editor"].id, "accessLevel": "CAN_EDIT"},
            {"type": "USER", "id": people["viewer"].id, "accessLevel": "CAN_VIEW"},
            {"type": "GROUP", "id": group, "accessLevel": "CAN_VIEW"},
        ]
        shared = owner.post(
            f"/api/data/v3/datasources/{ids[0]}/share", json={"permissions": grants, "sendEmail": False}
        )
        assert shared.status_code < 300, shared.text
        assert owner.put(f"/v1/datasets/{ids[0]}", json={"pdpEnabled": True}).status_code == 200
        policy = {
            "name": "east",
            "type": "user",
            "users": [people["viewer"].id],
            "groups": [group],
            "filters": [{"column": "region", "values": ["east"], "operator": "EQUALS", "not": False}],
        }
        assert owner.post(f"/v1/datasets/{ids[0]}/policies", json=policy).status_code == 201
    yield World(server, routes, people, tokens, tag, ids[0], ids[1], spare)
    server.stop()


@pytest.fixture(scope="module")
def sessions(world: World) -> Iterator[dict[str, httpx.Client]]:
    clients = {actor: signed_in_client(world.server, person) for actor, person in world.people.items()}
    yield clients
    for client in clients.values():
        client.close()


def test_the_web_routes_are_read_from_the_app(world: World) -> None:
    assert ("GET", "/ui/datasets") in world.routes
    assert ("GET", "/ui/datasets/{dataset_id}") in world.routes
    assert ("POST", "/ui/datasets/{dataset_id}/share") in world.routes
    assert ("POST", "/ui/sign-out") in world.routes


def test_every_page_and_form_without_a_session_leads_to_sign_in(world: World) -> None:
    wrong = []
    with httpx.Client(base_url=world.server.base_url, headers=HTML, timeout=60) as client:
        for method, path in world.routes:
            if (method, path) in OPEN:
                continue
            for cookies in ({}, {"dg_session": "not-a-session"}):
                client.cookies.clear()
                client.cookies.update(cookies)
                answer = client.request(
                    method, concrete(path), data={"csrf_token": "x"} if method != "GET" else None
                )
                if answer.status_code != 303 or not answer.headers["location"].startswith("/"):
                    wrong.append(f"{method} {path} {cookies}: {answer.status_code}")
                    continue
                if method == "GET":
                    assert answer.headers["location"] == "/?next=" + concrete(path).replace("/", "%2F")
            # A script's request: 401 JSON instead of a redirect.
            client.cookies.clear()
            answer = client.request(method, concrete(path), headers={"Accept": "*/*"})
            if answer.status_code != 401 or answer.json()["status"] != 401:
                wrong.append(f"{method} {path} (script): {answer.status_code}")
    assert not wrong, "\n".join(wrong)


def test_every_form_refuses_a_missing_or_wrong_csrf_token(
    world: World, sessions: dict[str, httpx.Client]
) -> None:
    client = sessions["admin"]
    wrong = []
    for method, path in world.routes:
        if method == "GET" or (method, path) in OPEN:
            continue
        for body, headers in (({}, {}), ({"csrf_token": "wrong"}, {}), ({}, {"X-CSRF-Token": "wrong"})):
            answer = client.request(method, concrete(path), data=body, headers=headers)
            if answer.status_code != 403 or "security token" not in answer.text:
                wrong.append(f"{method} {path} {body or headers}: {answer.status_code}")
    assert not wrong, "\n".join(wrong)
    assert client.get("/ui/datasets").status_code == 200  # still signed in: nothing was done


def test_the_sign_in_form_refuses_a_missing_or_wrong_csrf_token(world: World) -> None:
    person = world.people["viewer"]
    with httpx.Client(base_url=world.server.base_url, headers=HTML, timeout=60) as client:
        client.get("/")  # gets the form's cookie
        for token in (None, "wrong"):
            body = {"email": person.email, "password": person.password}
            if token:
                body["csrf_token"] = token
            answer = client.post("/ui/sign-in", data=body)
            assert answer.status_code == 403
            assert "dg_session" not in client.cookies


def listed(client: httpx.Client, tag: str) -> set[str]:
    page = client.get("/ui/datasets", params={"q": tag})
    assert page.status_code == 200
    return set(re.findall(r'href="/ui/datasets/([0-9a-f-]{36})"', page.text))


def preview(client: httpx.Client, dataset_id: str) -> tuple[int, list[str], list[list[str]]]:
    """Status, column names and cell texts of the dataset page's preview grid."""
    page = client.get(f"/ui/datasets/{dataset_id}")
    if page.status_code != 200:
        return page.status_code, [], []
    grid = re.search(r'<table class="preview">(.*?)</table>', page.text, re.S)
    assert grid, "no preview grid"
    head, _, body = grid.group(1).partition("<tbody>")
    columns = [html.unescape(c) for c in re.findall(r"<th scope=\"col\">([^<]*?) <span", head)]
    rows = [
        [html.unescape(cell.strip()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
        if "colspan" not in row  # the "No rows to show." line
    ]
    return 200, columns, rows


@pytest.mark.parametrize("actor", ACTORS)
def test_the_pages_show_each_person_what_the_api_shows(
    world: World, sessions: dict[str, httpx.Client], actor: str
) -> None:
    client = sessions[actor]
    with world.api(actor) as api:
        api_ids = {
            d["id"] for d in api.get("/v1/datasets", params={"limit": 500}).json() if world.tag in d["name"]
        }
        assert listed(client, world.tag) == api_ids
        for dataset_id in (world.dataset, world.private):
            status, columns, rows = preview(client, dataset_id)
            assert status == api.get(f"/v1/datasets/{dataset_id}").status_code
            if status != 200:
                continue
            answer = api.post(f"/v1/datasets/query/execute/{dataset_id}", json={"sql": "SELECT * FROM table"})
            assert answer.status_code == 200, answer.text
            assert columns == answer.json()["columns"]
            expected = [[("null" if v is None else str(v)) for v in row] for row in answer.json()["rows"]]
            assert rows == expected


def test_the_matrix_of_what_each_person_sees(world: World, sessions: dict[str, httpx.Client]) -> None:
    """The expectations themselves, so that the API and the pages cannot agree on a wrong answer."""
    shared, private = world.dataset, world.private
    expected = {
        "admin": ({shared, private}, 3),
        "owner": ({shared, private}, 3),
        "co_owner": ({shared}, 3),
        "editor": ({shared}, 0),  # PDP on and no policy of its own: no rows
        "viewer": ({shared}, 2),  # its policy: east only
        "group_member": ({shared}, 2),  # the group's policy
        "stranger": (set(), 0),
    }
    for actor, (datasets, rows) in expected.items():
        assert listed(sessions[actor], world.tag) == datasets, actor
        assert len(preview(sessions[actor], shared)[2]) == rows, actor


@pytest.mark.parametrize("actor", ACTORS)
def test_share_and_revoke_forms_answer_as_the_api_does(
    world: World, sessions: dict[str, httpx.Client], actor: str
) -> None:
    client, spare = sessions[actor], world.spare
    principal = {"principal": f"USER:{spare}", "csrf_token": page_csrf(client)}
    with world.api("owner") as owner, world.api(actor) as api:
        ui_share = client.post(f"/ui/datasets/{world.dataset}/share", data={**principal, "level": "CAN_VIEW"})
        owner.delete(f"/api/data/v3/datasources/{world.dataset}/permissions/USER/{spare}")
        body = {"permissions": [{"type": "USER", "id": spare, "accessLevel": "CAN_VIEW"}], "sendEmail": False}
        api_share = api.post(f"/api/data/v3/datasources/{world.dataset}/share", json=body)
        assert (ui_share.status_code == 303) == (api_share.status_code == 200), (
            ui_share.status_code,
            api_share.text,
        )
        if ui_share.status_code != 303:
            assert ui_share.status_code == api_share.status_code
            assert html.escape(api_share.json()["message"], quote=True) in ui_share.text

        share_back = {
            "permissions": [{"type": "USER", "id": spare, "accessLevel": "CAN_VIEW"}],
            "sendEmail": False,
        }
        assert (
            owner.post(f"/api/data/v3/datasources/{world.dataset}/share", json=share_back).status_code == 200
        )
        ui_revoke = client.post(f"/ui/datasets/{world.dataset}/revoke", data=principal)
        owner.post(f"/api/data/v3/datasources/{world.dataset}/share", json=share_back)
        api_revoke = api.delete(f"/api/data/v3/datasources/{world.dataset}/permissions/USER/{spare}")
        assert (ui_revoke.status_code == 303) == (api_revoke.status_code == 200), (
            ui_revoke.status_code,
            api_revoke.text,
        )
        if ui_revoke.status_code != 303:
            assert ui_revoke.status_code == api_revoke.status_code
        owner.delete(f"/api/data/v3/datasources/{world.dataset}/permissions/USER/{spare}")
