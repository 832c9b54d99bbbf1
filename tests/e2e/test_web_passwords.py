"""Passwords for web sign-in: the write-only ``password`` of ``/v1/users``, ``datagrove user
set-password`` and ``user create --password-stdin``; only Argon2 hashes are stored."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import RunningServer
from tests.support.web import HTML, csrf_in, make_person, start_patiently


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_patiently(
        RunningServer(data_dir=tmp_path_factory.mktemp("web-passwords"), catalog_url=None)
    )
    yield running
    running.stop()


def can_sign_in(server: RunningServer, email: str, password: str) -> bool:
    with httpx.Client(base_url=server.base_url, headers=HTML, timeout=60) as client:
        token = csrf_in(client.get("/").text)
        answer = client.post("/ui/sign-in", data={"csrf_token": token, "email": email, "password": password})
    assert answer.status_code in (303, 401), answer.text
    return answer.status_code == 303


def stored_hash(server: RunningServer, user_id: int) -> str | None:
    with sqlite3.connect(server.data_dir / "catalog.db") as db:
        return db.execute("SELECT password_hash FROM dg_users WHERE id = ?", (user_id,)).fetchone()[0]


def cli(server: RunningServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATAGROVE_DATA_DIR": str(server.data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "datagrove.cli", *args], input=stdin, env=env, capture_output=True, text=True
    )


def test_a_password_given_on_create_signs_in_and_is_never_returned(server: RunningServer) -> None:
    person = make_person(server)
    assert can_sign_in(server, person.email, person.password)
    assert can_sign_in(server, person.email.upper(), person.password)  # emails ignore case
    assert not can_sign_in(server, person.email, person.password + "x")
    with server.client() as api:
        for body in (api.get(f"/v1/users/{person.id}").json(), *api.get("/v1/users").json()):
            assert "password" not in body and "passwordHash" not in body
    stored = stored_hash(server, person.id)
    assert stored is not None and stored.startswith("$argon2id$") and person.password not in stored


def test_an_admin_changes_and_removes_a_password(server: RunningServer) -> None:
    person = make_person(server)
    with server.client() as api:
        changed = api.put(f"/v1/users/{person.id}", json={"name": "Renamed", "password": "a new secret"})
        assert changed.status_code == 200 and changed.json()["name"] == "Renamed"
        assert "password" not in changed.json()
        assert not can_sign_in(server, person.email, person.password)
        assert can_sign_in(server, person.email, "a new secret")
        assert api.put(f"/v1/users/{person.id}", json={"password": None}).status_code == 200
    assert stored_hash(server, person.id) is None
    assert not can_sign_in(server, person.email, "a new secret")


def test_a_user_sets_its_own_password_but_nobody_elses(server: RunningServer) -> None:
    person, other = make_person(server), make_person(server)
    with server.client() as api:
        token = api.post("/api/data/v1/accesstokens", json={"name": "own", "ownerId": person.id}).json()[
            "token"
        ]
    headers = {"X-DOMO-Developer-Token": token}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as own:
        assert own.put(f"/v1/users/{person.id}", json={"password": "my own secret"}).status_code == 200
        refused = own.put(f"/v1/users/{other.id}", json={"password": "taken over!"})
        assert refused.status_code == 403
        assert (
            own.put(f"/v1/users/{person.id}", json={"role": "Admin", "password": "x" * 9}).status_code == 403
        )
    assert can_sign_in(server, person.email, "my own secret")
    assert can_sign_in(server, other.email, other.password)


@pytest.mark.parametrize("password", ["short", 12345678, "x" * 1025])
def test_an_unacceptable_password_is_400_and_creates_no_user(server: RunningServer, password: object) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    with server.client() as api:
        refused = api.post("/v1/users", json={"name": "n", "email": email, "password": password})
        assert refused.status_code == 400
        assert "password" in refused.json()["message"]
        assert all(u["email"] != email for u in api.get("/v1/users", params={"limit": 500}).json())


def test_the_cli_sets_a_password_from_stdin(server: RunningServer) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    created = cli(
        server,
        "user",
        "create",
        "--name",
        "Cli",
        "--email",
        email,
        "--password-stdin",
        stdin="cli secret 1\n",
    )
    assert created.returncode == 0, created.stderr
    assert can_sign_in(server, email, "cli secret 1")
    user_id = str(json.loads(created.stdout)["id"])
    changed = cli(server, "user", "set-password", "--user-id", user_id, stdin="cli secret 2\n")
    assert changed.returncode == 0, changed.stderr
    assert "cli secret 2" not in changed.stdout + changed.stderr
    assert can_sign_in(server, email, "cli secret 2") and not can_sign_in(server, email, "cli secret 1")
    assert cli(server, "user", "set-password", "--user-id", user_id, "--remove").returncode == 0
    assert not can_sign_in(server, email, "cli secret 2")
