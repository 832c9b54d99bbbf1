"""Sharing datasets over the product API: list, share, revoke, and what each does to the next request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest

from tests.support.server import RunningServer

DS = "/api/data/v3/datasources"


@dataclass(frozen=True)
class Person:
    """A user of the running server with a developer token of its own."""

    id: int
    name: str
    token: str

    def client(self, server: RunningServer) -> httpx.Client:
        return httpx.Client(
            base_url=server.base_url, headers={"X-DOMO-Developer-Token": self.token}, timeout=120
        )


def new_person(server: RunningServer, role: str = "Participant") -> Person:
    """A new user (``POST /v1/users``, or the CLI where that route is missing) and a token for it,
    issued by the admin through ``POST /api/data/v1/accesstokens``."""
    name = "user-" + uuid.uuid4().hex[:10]
    with server.client() as admin:
        created = admin.post("/v1/users", json={"name": name, "email": f"{name}@example.com", "role": role})
        if created.status_code in (404, 405):
            user_id = _cli_user(server, name, role)
        else:
            assert created.status_code in (200, 201), created.text
            user_id = created.json()["id"]
        expires = int(time.time() * 1000) + 86_400_000
        issued = admin.post(
            "/api/data/v1/accesstokens", json={"name": name, "ownerId": user_id, "expires": expires}
        )
        assert issued.status_code == 200, issued.text
    return Person(user_id, name, issued.json()["token"])


def _cli_user(server: RunningServer, name: str, role: str) -> int:
    env = {**os.environ, "DATAGROVE_DATA_DIR": str(server.data_dir)}
    if server.catalog_url:
        env["DATAGROVE_CATALOG_URL"] = server.catalog_url
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "datagrove.cli",
            "user",
            "create",
            "--name",
            name,
            "--email",
            f"{name}@example.com",
        ]
        + ["--role", role, "--data-dir", str(server.data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(json.loads(out.stdout)["id"])


def new_dataset(client: httpx.Client, rows: str = "") -> str:
    """A dataset with columns (name STRING, n LONG), owned by the client's user, optionally loaded."""
    schema = {"columns": [{"type": "STRING", "name": "name"}, {"type": "LONG", "name": "n"}]}
    created = client.post("/v1/datasets", json={"name": "ds-" + uuid.uuid4().hex[:8], "schema": schema})
    assert created.status_code == 201, created.text
    dataset_id = created.json()["id"]
    if rows:
        loaded = client.put(
            f"/v1/datasets/{dataset_id}/data", content=rows, headers={"Content-Type": "text/csv"}
        )
        assert loaded.status_code == 204, loaded.text
    return dataset_id


def share(client: httpx.Client, dataset_id: str, *entries: dict) -> httpx.Response:
    return client.post(f"{DS}/{dataset_id}/share", json={"permissions": list(entries), "sendEmail": False})


def grants(client: httpx.Client, dataset_id: str) -> dict[tuple[str, str], str]:
    response = client.get(f"{DS}/{dataset_id}/permissions")
    assert response.status_code == 200, response.text
    return {(g["type"], g["id"]): g["accessLevel"] for g in response.json()["list"]}


@pytest.fixture
def owner(server: RunningServer) -> Person:
    return new_person(server, role="Editor")


def test_a_new_dataset_lists_its_owner_with_name_and_counts(server: RunningServer, owner: Person):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = client.get(f"{DS}/{dataset_id}/permissions")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {
        "list": [{"type": "USER", "id": str(owner.id), "accessLevel": "OWNER", "name": owner.name}],
        "totalUserCount": 1,
        "totalGroupCount": 0,
    }


def test_a_share_and_a_revoke_take_effect_on_the_very_next_request(server: RunningServer, owner: Person):
    viewer = new_person(server)
    with owner.client(server) as client, viewer.client(server) as theirs:
        dataset_id = new_dataset(client, "a,1\n")
        assert theirs.get(f"{DS}/{dataset_id}").status_code == 404
        shared = share(client, dataset_id, {"type": "USER", "id": str(viewer.id), "accessLevel": "CAN_VIEW"})
        assert shared.status_code == 200, shared.text
        assert {
            "type": "USER",
            "id": str(viewer.id),
            "accessLevel": "CAN_VIEW",
            "name": viewer.name,
        } in shared.json()["list"]
        seen = theirs.get(f"{DS}/{dataset_id}")
        assert seen.status_code == 200 and seen.json()["permissions"] == "READ"
        queried = theirs.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT n FROM table"})
        assert queried.json() == [{"n": 1}]
        revoked = client.delete(f"{DS}/{dataset_id}/permissions/USER/{viewer.id}")
        assert revoked.status_code == 200 and revoked.json() == {}
        assert theirs.get(f"{DS}/{dataset_id}").status_code == 404
        assert theirs.post(f"/api/query/v1/execute/{dataset_id}", json={"sql": "SELECT 1"}).status_code == 404
        assert ("USER", str(viewer.id)) not in grants(client, dataset_id)


def test_read_and_write_are_accepted_as_can_view_and_can_edit(server: RunningServer, owner: Person):
    reader, writer = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = share(
            client,
            dataset_id,
            {"type": "USER", "id": reader.id, "accessLevel": "READ"},
            {"type": "user", "id": str(writer.id), "accessLevel": "WRITE"},
        )
        assert response.status_code == 200, response.text
        assert grants(client, dataset_id)[("USER", str(reader.id))] == "CAN_VIEW"
        assert grants(client, dataset_id)[("USER", str(writer.id))] == "CAN_EDIT"
    with writer.client(server) as theirs:
        appended = theirs.post(f"{DS}/{dataset_id}/uploads", json={"values": "w,2", "delimiter": ","})
        assert appended.status_code == 200, appended.text
    with reader.client(server) as theirs:
        assert theirs.post(f"{DS}/{dataset_id}/uploads", json={"values": "r,3"}).status_code == 403


def test_granting_above_ones_own_level_is_403_and_writes_nothing(server: RunningServer, owner: Person):
    sharer, other = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert (
            share(
                client, dataset_id, {"type": "USER", "id": sharer.id, "accessLevel": "CAN_SHARE"}
            ).status_code
            == 200
        )
    with sharer.client(server) as theirs:
        allowed = share(theirs, dataset_id, {"type": "USER", "id": other.id, "accessLevel": "CAN_SHARE"})
        assert allowed.status_code == 200, allowed.text
        too_high = share(
            theirs,
            dataset_id,
            {"type": "USER", "id": other.id, "accessLevel": "CAN_VIEW"},
            {"type": "USER", "id": other.id, "accessLevel": "CO_OWNER"},
        )
        assert too_high.status_code == 403
        assert "CO_OWNER" in too_high.json()["message"]
        assert grants(theirs, dataset_id)[("USER", str(other.id))] == "CAN_SHARE"


def test_a_viewer_may_not_share_at_all(server: RunningServer, owner: Person):
    viewer, other = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        share(client, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"})
    with viewer.client(server) as theirs:
        response = share(theirs, dataset_id, {"type": "USER", "id": other.id, "accessLevel": "CAN_VIEW"})
    assert response.status_code == 403


def test_a_share_naming_an_unknown_user_is_400_and_grants_nobody(server: RunningServer, owner: Person):
    viewer = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = share(
            client,
            dataset_id,
            {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"},
            {"type": "USER", "id": 987654321, "accessLevel": "CAN_VIEW"},
        )
        assert response.status_code == 400
        assert "987654321" in response.json()["message"]
        assert ("USER", str(viewer.id)) not in grants(client, dataset_id)


@pytest.mark.parametrize(
    "entry",
    [
        {"type": "USER", "id": 1, "accessLevel": "ADMIN"},
        {"type": "CARD", "id": 1, "accessLevel": "CAN_VIEW"},
        {"type": "USER", "id": "abc", "accessLevel": "CAN_VIEW"},
        "not an object",
    ],
)
def test_a_malformed_share_entry_is_400(server: RunningServer, owner: Person, entry: object):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert share(client, dataset_id, entry).status_code == 400  # type: ignore[arg-type]
        assert client.post(f"{DS}/{dataset_id}/share", json={"sendEmail": False}).status_code == 400


def test_sharing_never_lowers_a_level(server: RunningServer, owner: Person):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = share(client, dataset_id, {"type": "USER", "id": owner.id, "accessLevel": "CAN_VIEW"})
        assert response.status_code == 200
        assert grants(client, dataset_id)[("USER", str(owner.id))] == "OWNER"


def test_revoking_the_last_owner_is_409_and_changes_nothing(server: RunningServer, owner: Person):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = client.delete(f"{DS}/{dataset_id}/permissions/USER/{owner.id}")
        assert response.status_code == 409
        assert "last OWNER" in response.json()["message"]
        assert grants(client, dataset_id) == {("USER", str(owner.id)): "OWNER"}
        assert client.get(f"{DS}/{dataset_id}").status_code == 200


def test_revoking_needs_co_owner(server: RunningServer, owner: Person):
    sharer, viewer = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        share(
            client,
            dataset_id,
            {"type": "USER", "id": sharer.id, "accessLevel": "CAN_SHARE"},
            {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"},
        )
    with sharer.client(server) as theirs:
        assert theirs.delete(f"{DS}/{dataset_id}/permissions/USER/{viewer.id}").status_code == 403
    with owner.client(server) as client:
        assert ("USER", str(viewer.id)) in grants(client, dataset_id)


def test_revoking_a_grant_that_does_not_exist_is_404(server: RunningServer, owner: Person):
    stranger = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert client.delete(f"{DS}/{dataset_id}/permissions/USER/{stranger.id}").status_code == 404
        assert client.delete(f"{DS}/{dataset_id}/permissions/USER/987654321").status_code == 404
        assert client.delete(f"{DS}/{dataset_id}/permissions/GROUP/987654321").status_code == 404
        assert client.delete(f"{DS}/{dataset_id}/permissions/USER/nobody").status_code == 404
        assert client.delete(f"{DS}/{dataset_id}/permissions/CARD/1").status_code == 400


def test_a_stranger_gets_404_for_everything_about_the_dataset(server: RunningServer, owner: Person):
    stranger = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
    with stranger.client(server) as theirs:
        for response in (
            theirs.get(f"{DS}/{dataset_id}"),
            theirs.get(f"{DS}/{dataset_id}/permissions"),
            theirs.get(f"{DS}/{dataset_id}/permissions/currentUser"),
            share(theirs, dataset_id, {"type": "USER", "id": stranger.id, "accessLevel": "CAN_VIEW"}),
            theirs.delete(f"{DS}/{dataset_id}/permissions/USER/{owner.id}"),
            theirs.post(f"{DS}/{dataset_id}/uploads", json={"values": "x,1"}),
        ):
            assert response.status_code == 404, response.text
    with owner.client(server) as client:
        assert grants(client, dataset_id) == {("USER", str(owner.id)): "OWNER"}


def test_current_user_level_is_a_json_string(server: RunningServer, owner: Person):
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        assert client.get(f"{DS}/{dataset_id}/permissions/currentUser").json() == "OWNER"


def test_a_co_owner_may_revoke_and_grant_co_owner(server: RunningServer, owner: Person):
    co_owner, editor = new_person(server), new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        share(client, dataset_id, {"type": "USER", "id": co_owner.id, "accessLevel": "CO_OWNER"})
    with co_owner.client(server) as theirs:
        assert (
            share(
                theirs, dataset_id, {"type": "USER", "id": editor.id, "accessLevel": "CO_OWNER"}
            ).status_code
            == 200
        )
        assert (
            share(theirs, dataset_id, {"type": "USER", "id": editor.id, "accessLevel": "OWNER"}).status_code
            == 403
        )
        assert theirs.delete(f"{DS}/{dataset_id}/permissions/USER/{editor.id}").status_code == 200
        assert theirs.delete(f"{DS}/{dataset_id}/permissions/USER/{owner.id}").status_code == 409


def _groups_api(server: RunningServer) -> None:
    with server.client() as admin:
        if admin.get("/v1/groups").status_code in (404, 405):
            pytest.skip("/v1/groups is not available on this server; group grants need it to create groups")


def test_a_group_grant_reaches_its_members_and_its_revoke_too(server: RunningServer, owner: Person):
    _groups_api(server)
    member = new_person(server)
    with server.client() as admin:
        created = admin.post("/v1/groups", json={"name": "g-" + uuid.uuid4().hex[:8], "active": True})
        assert created.status_code == 201, created.text
        group = created.json()
        assert admin.put(f"/v1/groups/{group['id']}/users/{member.id}").status_code == 204
    with owner.client(server) as client, member.client(server) as theirs:
        dataset_id = new_dataset(client)
        assert theirs.get(f"{DS}/{dataset_id}").status_code == 404
        shared = share(client, dataset_id, {"type": "GROUP", "id": group["id"], "accessLevel": "CAN_EDIT"})
        assert shared.status_code == 200, shared.text
        body = shared.json()
        assert {
            "type": "GROUP",
            "id": str(group["id"]),
            "accessLevel": "CAN_EDIT",
            "name": group["name"],
        } in body["list"]
        assert body["totalGroupCount"] == 1 and body["totalUserCount"] == 1
        assert theirs.get(f"{DS}/{dataset_id}").json()["permissions"] == "READ_WRITE"
        assert client.delete(f"{DS}/{dataset_id}/permissions/GROUP/{group['id']}").status_code == 200
        assert theirs.get(f"{DS}/{dataset_id}").status_code == 404


def test_a_share_naming_an_unknown_group_is_400(server: RunningServer, owner: Person):
    _groups_api(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
        response = share(client, dataset_id, {"type": "GROUP", "id": 987654321, "accessLevel": "CAN_VIEW"})
    assert response.status_code == 400
    assert "group 987654321" in response.json()["message"]


def test_an_admin_sees_and_shares_any_dataset(server: RunningServer, owner: Person):
    viewer = new_person(server)
    with owner.client(server) as client:
        dataset_id = new_dataset(client)
    with server.client() as admin:
        assert admin.get(f"{DS}/{dataset_id}").json()["permissions"] == "READ_WRITE_DELETE_SHARE_ADMIN"
        assert (
            share(admin, dataset_id, {"type": "USER", "id": viewer.id, "accessLevel": "CAN_VIEW"}).status_code
            == 200
        )
    with viewer.client(server) as theirs:
        assert theirs.get(f"{DS}/{dataset_id}").status_code == 200
